package org.deepcad.fiji;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.VirtualStack;
import ij.process.ImageProcessor;
import java.io.File;
import java.util.ArrayList;
import java.util.List;
import org.deepcad.fiji.commands.DenoiseCommand;
import org.junit.jupiter.api.Test;
import org.scijava.command.CommandModule;
import org.scijava.command.CommandService;

/**
 * Virtual stacks are denoised plane by plane: the engine pulls planes on demand through a
 * {@link PlaneSource} and streams the result into a TIFF that is opened as a virtual stack; the
 * pixels equal the in-memory path's.
 */
class VirtualStackTest {
    /** A virtual stack over another stack that records which planes were read, in order. */
    static final class CountingStack extends VirtualStack {
        final ImageStack inner;
        final List<Integer> requests = new ArrayList<>();

        CountingStack(ImageStack inner) {
            super(inner.getWidth(), inner.getHeight(), inner.getSize());
            this.inner = inner;
            setBitDepth(inner.getBitDepth());
        }

        @Override
        public ImageProcessor getProcessor(int n) {
            synchronized (requests) {
                requests.add(n);
            }
            return inner.getProcessor(n);
        }

        @Override
        public int getSize() {
            return inner.getSize();
        }

        @Override
        public int size() {
            return inner.getSize();
        }

        /** The inner virtual stack's folder; ImageJ's own answer (none) over an in-memory stack. */
        @Override
        public String getDirectory() {
            return inner instanceof VirtualStack ? ((VirtualStack) inner).getDirectory() : super.getDirectory();
        }

        @Override
        public String getFileName(int n) {
            return inner instanceof VirtualStack ? ((VirtualStack) inner).getFileName(n) : super.getFileName(n);
        }
    }

    private static ImagePlus denoiseCommand(ImagePlus input, Object... extra) throws Exception {
        // The input's bit depth unless a test asks otherwise (later pairs win).
        Object[] base = {
            "input",
            input,
            "model_file",
            NativeTestSupport.model(),
            "device",
            "cpu",
            "output_type",
            OutputChoice.SAME_AS_INPUT
        };
        Object[] inputs = new Object[base.length + extra.length];
        System.arraycopy(base, 0, inputs, 0, base.length);
        System.arraycopy(extra, 0, inputs, base.length, extra.length);
        CommandModule module = NativeTestSupport.context()
                .service(CommandService.class)
                .run(DenoiseCommand.class, true, inputs)
                .get();
        assertFalse(module.isCanceled(), () -> "cancelled: " + module.getCancelReason());
        return (ImagePlus) module.getOutput("output");
    }

    /** Writes the movie as a TIFF in a fresh folder and opens it as ImageJ's virtual stack. */
    private static ImagePlus virtualCopy(ImagePlus movie, String folder) throws Exception {
        File dir = NativeTestSupport.folder().resolve(folder).toFile();
        assertTrue(dir.mkdirs());
        File file = new File(dir, movie.getTitle());
        assertTrue(IJ.saveAsTiff(movie, file.getPath()));
        ImagePlus virtual = IJ.openVirtual(file.getPath());
        assertNotNull(virtual);
        assertTrue(virtual.getStack().isVirtual());
        return virtual;
    }

    @Test
    void theCommandDenoisesAVirtualStackIntoAFileBesideItAndMatchesTheInMemoryPath() throws Exception {
        float[][] movie = TestMovies.simulate(TestMovies.FRAMES, 61);
        ImagePlus inMemory = TestMovies.sixteenBit("recording.tif", movie[1], TestMovies.FRAMES);
        ImagePlus opened = virtualCopy(inMemory, "virtual-command");
        CountingStack counting = new CountingStack(opened.getStack());
        ImagePlus virtual = new ImagePlus("recording.tif", counting);
        virtual.setCalibration(opened.getCalibration());
        counting.requests.clear();

        ImagePlus output = denoiseCommand(virtual);
        ImagePlus expected = denoiseCommand(inMemory);

        assertTrue(output.getStack().isVirtual(), "the result is a virtual stack");
        File written = new File(new File(opened.getOriginalFileInfo().directory), "recording-denoised.tif");
        assertTrue(written.isFile(), "the result is written beside the source: " + written);
        assertEquals("recording-denoised", output.getTitle());
        assertEquals(TestMovies.FRAMES, output.getStackSize());
        assertEquals(ImagePlus.GRAY16, output.getType());
        assertEquals(0.4, output.getCalibration().pixelWidth, 1e-9);
        for (int t = 1; t <= TestMovies.FRAMES; t++) {
            assertArrayEquals(
                    (short[]) expected.getStack().getPixels(t),
                    (short[]) output.getStack().getPixels(t),
                    "frame " + t);
        }
        // The file itself carries the calibration when reopened on its own.
        assertEquals(0.4, IJ.openImage(written.getPath()).getCalibration().pixelWidth, 1e-6);
        // Every plane was pulled, each a bounded number of times (at most 3 here: once, plus its
        // mirror images past either end of this 64-frame movie).
        int[] counts = new int[TestMovies.FRAMES + 1];
        for (int n : counting.requests) counts[n]++;
        for (int t = 1; t <= TestMovies.FRAMES; t++) {
            assertTrue(counts[t] >= 1 && counts[t] <= 3, "plane " + t + " read " + counts[t] + " times");
        }
        // A second run does not overwrite the first result.
        denoiseCommand(virtual);
        assertTrue(new File(written.getParentFile(), "recording-denoised-2.tif").isFile());
    }

    @Test
    void aVirtualStackWithoutFileNamesAsksForAnOutputFileInsteadOfFailingRaw() throws Exception {
        ImagePlus source =
                TestMovies.sixteenBit("made", TestMovies.simulate(TestMovies.FRAMES, 66)[1], TestMovies.FRAMES);
        // Over an in-memory stack: planes computed on request, no folder and no file names, as a plugin makes them.
        ImagePlus nameless = new ImagePlus("made by a plugin", new CountingStack(source.getStack()));
        java.util.concurrent.ExecutionException e =
                assertThrows(java.util.concurrent.ExecutionException.class, () -> denoiseCommand(nameless));
        Throwable cause = e.getCause();
        while (!(cause instanceof DeepCadException) && cause != null && cause.getCause() != null)
            cause = cause.getCause();
        assertTrue(cause instanceof DeepCadException, "a DeepCadException, not " + e.getCause());
        assertTrue(cause.getMessage().contains("Output file"), cause.getMessage());
        // With an output file it streams like any virtual stack.
        File out = NativeTestSupport.folder().resolve("nameless-denoised.tif").toFile();
        ImagePlus output = denoiseCommand(nameless, "output_file", out.getPath());
        assertTrue(out.isFile());
        assertEquals(TestMovies.FRAMES, output.getStackSize());
    }

    @Test
    void aTwoChannelVirtualHyperstackGivesOneFilePerChannelShownAsOneHyperstack() throws Exception {
        ImagePlus a = TestMovies.sixteenBit("a", TestMovies.simulate(TestMovies.FRAMES, 64)[1], TestMovies.FRAMES);
        ImagePlus b = TestMovies.sixteenBit("b", TestMovies.simulate(TestMovies.FRAMES, 65)[1], TestMovies.FRAMES);
        ImageStack both = new ImageStack(TestMovies.SIZE, TestMovies.SIZE);
        for (int t = 1; t <= TestMovies.FRAMES; t++) {
            both.addSlice(a.getStack().getProcessor(t));
            both.addSlice(b.getStack().getProcessor(t));
        }
        ImagePlus hyper = new ImagePlus("two.tif", both);
        hyper.setDimensions(2, 1, TestMovies.FRAMES);
        hyper.setOpenAsHyperStack(true);
        ImagePlus virtual = virtualCopy(hyper, "virtual-channels");
        assertEquals(2, virtual.getNChannels());
        assertEquals(TestMovies.FRAMES, virtual.getNFrames());
        File chosen = NativeTestSupport.folder().resolve("chosen/out.tif").toFile();
        assertTrue(chosen.getParentFile().mkdirs());

        ImagePlus output = denoiseCommand(virtual, "output_file", chosen.getPath());
        ImagePlus expected = denoiseCommand(hyper);

        assertTrue(output.getStack().isVirtual());
        assertArrayEquals(hyper.getDimensions(), output.getDimensions());
        assertTrue(new File(chosen.getParentFile(), "out-c1.tif").isFile());
        assertTrue(new File(chosen.getParentFile(), "out-c2.tif").isFile());
        assertFalse(chosen.exists(), "per-channel files replace the single name");
        for (int i = 1; i <= both.getSize(); i++) {
            assertArrayEquals(
                    (short[]) expected.getStack().getPixels(i),
                    (short[]) output.getStack().getPixels(i),
                    "plane " + i);
        }
    }

    @Test
    void planesArePulledInTimeOrderThroughABoundedWindowAndTheFileEqualsTheInMemoryResult() throws Exception {
        // 600 frames in time tiles of 120 (halo 52: 16 new frames per tile), so the engine slides
        // through the movie; it asks for every frame only while its window passes over it.
        int frames = 600, size = TestMovies.SIZE, tile = 120;
        float[][] movie = TestMovies.simulate(frames, 62);
        ImagePlus image = TestMovies.sixteenBit("long.tif", movie[1], frames);
        ImageStack stack = image.getStack();
        // Event restoration off: its automatic choice first reads the movie's first frames twice more
        // (how fast events decay); this test follows the denoising window alone.
        String settings = "{\"tile\": [" + tile + ", " + size + ", " + size + "], \"restore_events\": \"off\"}";
        List<Integer> requests = new ArrayList<>();
        File out = NativeTestSupport.folder().resolve("window-out.tif").toFile();
        String report = DeepCadNative.denoiseToFile(
                NativeTestSupport.model().getPath(),
                "cpu",
                t -> {
                    requests.add(t);
                    return stack.getPixels(t + 1);
                },
                frames,
                size,
                size,
                "u16",
                settings,
                "input",
                out.getPath(),
                null,
                null,
                null);

        // The test model normalises per movie: one ascending pass over up to 256 evenly spread frames
        // measures the movie first, then the window slides.
        int sampled = Math.min(256, frames);
        for (int k = 1; k < sampled; k++) {
            assertTrue(requests.get(k) > requests.get(k - 1), "the statistics pass reads in order");
        }
        int[] counts = new int[frames];
        int furthest = -1;
        for (int t : requests.subList(sampled, requests.size())) {
            counts[t]++;
            // Never back by more than one tile: the engine needs only a window of the movie.
            assertTrue(furthest - t < tile, "frame " + t + " asked for after frame " + furthest);
            furthest = Math.max(furthest, t);
        }
        int maxCount = 0;
        for (int t = 0; t < frames; t++) {
            assertTrue(counts[t] >= 1, "frame " + t + " never read");
            maxCount = Math.max(maxCount, counts[t]);
        }
        // Each frame lies in at most ceil(120/16) = 8 time tiles (plus mirror images at the ends).
        assertTrue(maxCount <= 10, "a frame was read " + maxCount + " times");

        Object[] expected = DeepCadNative.denoise(
                NativeTestSupport.model().getPath(),
                "cpu",
                Movie.planes(image, indices(frames)),
                size,
                size,
                "u16",
                settings,
                "input",
                null);
        ImageStack written = IJ.openImage(out.getPath()).getStack();
        assertEquals(frames, written.getSize());
        assertEquals(NativeTestSupport.json(report).get("frame_bytes").getAsLong(), 2L * size * size);
        for (int t = 0; t < frames; t++) {
            assertArrayEquals((short[]) expected[t], (short[]) written.getPixels(t + 1), "frame " + t);
        }
    }

    private static int[] indices(int frames) {
        int[] indices = new int[frames];
        for (int t = 0; t < frames; t++) indices[t] = t + 1;
        return indices;
    }

    @Test
    void anExceptionInAPlaneSourceReachesTheCallerAndLeavesNoFile() throws Exception {
        File out = NativeTestSupport.folder().resolve("thrown-out.tif").toFile();
        IllegalStateException boom = new IllegalStateException("disk gone");
        float[] values = TestMovies.simulate(TestMovies.FRAMES, 63)[1];
        ImageStack stack = TestMovies.sixteenBit("m", values, TestMovies.FRAMES).getStack();
        IllegalStateException thrown = assertThrows(
                IllegalStateException.class,
                () -> DeepCadNative.denoiseToFile(
                        NativeTestSupport.model().getPath(),
                        "cpu",
                        t -> {
                            if (t == 20) throw boom;
                            return stack.getPixels(t + 1);
                        },
                        TestMovies.FRAMES,
                        TestMovies.SIZE,
                        TestMovies.SIZE,
                        "u16",
                        "{}",
                        "input",
                        out.getPath(),
                        null,
                        null,
                        null));
        assertSame(boom, thrown);
        assertFalse(out.exists());
        assertEquals(0, leftovers(out), "no temporary file is left");

        // A plane of the wrong type is a usage error naming the frame.
        DeepCadException wrong = assertThrows(
                DeepCadException.class,
                () -> DeepCadNative.denoiseToFile(
                        NativeTestSupport.model().getPath(),
                        "cpu",
                        t -> new int[3],
                        TestMovies.FRAMES,
                        TestMovies.SIZE,
                        TestMovies.SIZE,
                        "u16",
                        "{}",
                        "input",
                        out.getPath(),
                        null,
                        null,
                        null));
        assertEquals("usage", wrong.kind());
        assertTrue(wrong.getMessage().contains("frame ") && wrong.getMessage().contains("short[]"), wrong.getMessage());
        assertFalse(out.exists());
        assertEquals(0, leftovers(out));
    }

    private static int leftovers(File out) {
        String[] names = out.getParentFile().list((dir, name) -> name.startsWith("." + out.getName() + ".partial"));
        return names == null ? 0 : names.length;
    }
}
