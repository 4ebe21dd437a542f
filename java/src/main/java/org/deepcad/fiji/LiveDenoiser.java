package org.deepcad.fiji;

import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Denoises images while they are acquired, one image per call, for any Java acquisition software
 * (e.g. a Micro-Manager on-the-fly processor, which gets one image per call and emits delayed
 * images from inside that call).
 *
 * <p>{@link #push} hands one image ({@code byte[]} "u8", {@code short[]} "u16", {@code float[]}
 * "f32") to the engine's live stream and returns every image that became final meanwhile, in
 * order, possibly none; it never waits for the network. An image is final once the images the
 * network needs after it have arrived: {@link #lookAhead()} frames after its step (by default the
 * network's whole temporal reach, so the result equals denoising the finished movie).
 * {@link #close()} finishes the remaining images: call {@link #finish()} first to get them.
 * When the network is slower than the camera, whole steps come back undenoised
 * ({@link Frame#denoised} false) or pushes are refused, as {@code behind} chooses.
 */
public final class LiveDenoiser implements AutoCloseable {
    /** One finished image: its index from 0, its pixels in input units, and whether it was denoised. */
    public static final class Frame {
        public final long index;
        public final float[] pixels;
        public final boolean denoised;

        Frame(long index, float[] pixels, boolean denoised) {
            this.index = index;
            this.pixels = pixels;
            this.denoised = denoised;
        }
    }

    private final int width;
    private final int height;
    private final String sampleType;
    private long handle;

    /**
     * Opens a stream of {@code width x height} images of {@code sampleType} ("u8", "u16", "f32")
     * denoised by the model bundle at {@code modelPath}. {@code optionsJson} (may be null) holds the
     * keys to change: device ("auto", "cpu", "cuda:N"), look_ahead (frames), step (frames per step,
     * a multiple of 8), behind ("drop" or "queue"), max_behind (frames), warm_up_frames,
     * max_memory_bytes, precision ("auto", "float32", "bfloat16"), restore_events ("on": add back the
     * fast, cell-sized events the network smoothed away, as offline denoising's setting does; "auto",
     * the default, stays off live, since how fast events decay is measured on 300 frames or more).
     */
    public LiveDenoiser(String modelPath, int width, int height, String sampleType, String optionsJson) {
        JsonObject request = optionsJson == null
                ? new JsonObject()
                : com.google.gson.JsonParser.parseString(optionsJson).getAsJsonObject();
        request.addProperty("model", modelPath);
        this.width = width;
        this.height = height;
        this.sampleType = sampleType;
        this.handle = DeepCadNative.liveOpen0(request.toString(), width, height, sampleType);
    }

    /** Hands one image over; returns the images finished since the last call, in order. */
    public synchronized List<Frame> push(Object pixels) {
        return frames(DeepCadNative.livePush0(open(), pixels, width, height, sampleType));
    }

    /** The movie has ended: denoises and returns every image not yet returned. */
    public synchronized List<Frame> finish() {
        return frames(DeepCadNative.liveFinish0(open()));
    }

    /** The normalisation used, in words (null until the first image is finished). */
    public synchronized String normalization() {
        return DeepCadNative.liveNormalization0(open());
    }

    /** Images pushed, finished, late, passed through undenoised, and waiting beyond the next step. */
    public synchronized long[] status() {
        long[] s = DeepCadNative.liveStatus0(open());
        return new long[] {s[0], s[1], s[2], s[3], s[4]};
    }

    /** The network's tile {t, y, x}: denoising the finished movie with it gives the same numbers. */
    public synchronized int[] tile() {
        long[] s = DeepCadNative.liveStatus0(open());
        return new int[] {(int) s[5], (int) s[6], (int) s[7]};
    }

    /** Frames after a step that the stream waits for before denoising it. */
    public synchronized int lookAhead() {
        return (int) DeepCadNative.liveStatus0(open())[8];
    }

    /** The most images that arrive after an image before it is returned, once past the first step. */
    public synchronized int delayFrames() {
        return (int) DeepCadNative.liveStatus0(open())[9];
    }

    /** Releases the stream; images not yet returned are dropped (call {@link #finish()} first). */
    @Override
    public synchronized void close() {
        if (handle != 0) {
            DeepCadNative.liveClose0(handle);
            handle = 0;
        }
    }

    private long open() {
        if (handle == 0) throw new IllegalStateException("this LiveDenoiser is closed");
        return handle;
    }

    private static List<Frame> frames(Object[] pairs) {
        if (pairs.length == 0) return Collections.emptyList();
        List<Frame> frames = new ArrayList<>(pairs.length / 2);
        for (int k = 0; k + 1 < pairs.length; k += 2) {
            long[] about = (long[]) pairs[k];
            frames.add(new Frame(about[0], (float[]) pairs[k + 1], about[1] != 0));
        }
        return frames;
    }
}
