package org.deepcad.fiji;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * LiveDenoiser as an acquisition plugin uses it: a camera thread pushes one image per call at a
 * fixed rate and collects the images each call returns; the result is complete, in order, and equal
 * to denoising the finished movie with the same tile, with and without fast events restored.
 */
public class LiveDenoiserTest {
    private static final int FRAMES = 200;
    private static final long CAMERA_PERIOD_MS = 10; // 100 Hz

    private static short[][] planes(float[] values) {
        int len = TestMovies.SIZE * TestMovies.SIZE;
        short[][] planes = new short[FRAMES][len];
        for (int t = 0; t < FRAMES; t++)
            for (int i = 0; i < len; i++)
                planes[t][i] = (short) Math.max(0, Math.min(65535, Math.round(values[t * len + i])));
        return planes;
    }

    @Test
    public void imagesPushedAtCameraRateComeBackCompleteInOrderAndEqualToTheFinishedMovie() throws Exception {
        liveEqualsTheFinishedMovie(false);
    }

    @Test
    public void restoredEventsComeBackLiveAsInTheFinishedMovie() throws Exception {
        liveEqualsTheFinishedMovie(true);
    }

    private static void liveEqualsTheFinishedMovie(boolean restoreEvents) throws Exception {
        String model = NativeTestSupport.model().getPath();
        short[][] planes = planes(TestMovies.simulate(FRAMES, 28)[1]);
        int side = TestMovies.SIZE;
        List<LiveDenoiser.Frame> received = Collections.synchronizedList(new ArrayList<>());
        // The test model normalises per movie: a warm-up window of the whole movie measures the
        // statistics the offline run measures (a shorter one is the live default, and differs).
        String options = "{\"device\":\"cpu\",\"behind\":\"queue\",\"max_behind\":100000,\"step\":16,"
                + "\"warm_up_frames\":" + FRAMES + ",\"restore_events\":" + restoreEvents + "}";
        int[] tile;
        String normalization;
        try (LiveDenoiser live = new LiveDenoiser(model, side, side, "u16", options)) {
            Throwable[] failure = new Throwable[1];
            Thread camera = new Thread(
                    () -> {
                        try {
                            long start = System.nanoTime();
                            for (int t = 0; t < FRAMES; t++) {
                                long due = start + t * CAMERA_PERIOD_MS * 1_000_000L;
                                long wait = due - System.nanoTime();
                                if (wait > 0) Thread.sleep(wait / 1_000_000L, (int) (wait % 1_000_000L));
                                received.addAll(live.push(planes[t]));
                            }
                            received.addAll(live.finish());
                        } catch (Throwable e) {
                            failure[0] = e;
                        }
                    },
                    "camera");
            camera.start();
            camera.join(300_000);
            if (failure[0] != null) throw new AssertionError("the camera thread failed", failure[0]);
            tile = live.tile();
            normalization = live.normalization();
            assertEquals(FRAMES, live.status()[0], "every image was taken");
            assertEquals(52, live.lookAhead(), "by default the stream waits for the network's whole reach");
        }
        assertEquals(FRAMES, received.size(), "every image comes back once");
        for (int t = 0; t < FRAMES; t++) {
            assertEquals(t, received.get(t).index, "images come back in order");
            assertTrue(received.get(t).denoised);
        }
        assertTrue(normalization.contains("first " + FRAMES + " frames"), normalization);
        String settings =
                "{\"tile\":[" + tile[0] + "," + tile[1] + "," + tile[2] + "],\"restore_events\":" + restoreEvents + "}";
        Object[] offline = DeepCadNative.denoise(model, "cpu", planes, side, side, "u16", settings, "float32", null);
        for (int t = 0; t < FRAMES; t++) assertArrayEquals((float[]) offline[t], received.get(t).pixels, "frame " + t);
    }

    @Test
    public void wrongImagesAndClosedStreamsAreExceptionsNotCrashes() throws Exception {
        String model = NativeTestSupport.model().getPath();
        int side = TestMovies.SIZE;
        LiveDenoiser live = new LiveDenoiser(model, side, side, "u16", "{\"device\":\"cpu\"}");
        DeepCadException wrongType = assertThrows(DeepCadException.class, () -> live.push(new float[side * side]));
        assertTrue(wrongType.getMessage().contains("short[]"), wrongType.getMessage());
        assertThrows(DeepCadException.class, () -> live.push(new short[3]));
        assertThrows(DeepCadException.class, () -> live.push(null));
        live.close();
        live.close();
        assertThrows(IllegalStateException.class, () -> live.push(new short[side * side]));
        DeepCadException badOption =
                assertThrows(DeepCadException.class, () -> new LiveDenoiser(model, side, side, "u16", "{\"step\":12}"));
        assertTrue(badOption.getMessage().contains("step of 12 frames"), badOption.getMessage());
    }
}
