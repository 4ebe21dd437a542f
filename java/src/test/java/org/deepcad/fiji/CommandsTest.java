package org.deepcad.fiji;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ij.CompositeImage;
import ij.ImagePlus;
import ij.ImageStack;
import ij.measure.Calibration;
import java.io.File;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.deepcad.fiji.commands.DenoiseCommand;
import org.deepcad.fiji.commands.DenoiseFilesCommand;
import org.deepcad.fiji.commands.ModelInfoCommand;
import org.junit.jupiter.api.Test;
import org.scijava.command.CommandModule;
import org.scijava.command.CommandService;

/** The commands run in a plain SciJava context on ImageJ images, against the real engine. */
class CommandsTest {
    private static CommandModule run(Class<? extends org.scijava.command.Command> command, Object... inputs)
            throws Exception {
        return NativeTestSupport.context()
                .service(CommandService.class)
                .run(command, true, inputs)
                .get();
    }

    private static ImagePlus denoise(ImagePlus input, Object... extra) throws Exception {
        // The input's bit depth unless a test asks otherwise (later pairs win).
        Object[] base = {
            "input", input, "model_file", NativeTestSupport.model(), "output_type", OutputChoice.SAME_AS_INPUT
        };
        Object[] inputs = new Object[base.length + extra.length];
        System.arraycopy(base, 0, inputs, 0, base.length);
        System.arraycopy(extra, 0, inputs, base.length, extra.length);
        CommandModule module = run(DenoiseCommand.class, inputs);
        assertFalse(module.isCanceled(), () -> "cancelled: " + module.getCancelReason());
        return (ImagePlus) module.getOutput("output");
    }

    @Test
    void trainedModelDenoisesASimulatedMovieKeepingShapeTypeTitleAndCalibration() throws Exception {
        float[][] movie = TestMovies.simulate(TestMovies.FRAMES, 7);
        ImagePlus input = TestMovies.sixteenBit("cells.tif", movie[1], TestMovies.FRAMES);
        ImagePlus output = denoise(input, "device", "cpu", "output_type", OutputChoice.SAME_AS_INPUT);

        assertEquals("cells-denoised", output.getTitle());
        assertEquals(input.getWidth(), output.getWidth());
        assertEquals(input.getHeight(), output.getHeight());
        assertEquals(TestMovies.FRAMES, output.getStackSize());
        assertArrayEquals(input.getDimensions(), output.getDimensions());
        assertEquals(ImagePlus.GRAY16, output.getType());
        Calibration in = input.getCalibration(), out = output.getCalibration();
        assertEquals(in.pixelWidth, out.pixelWidth);
        assertEquals(in.getUnit(), out.getUnit());
        assertEquals(in.frameInterval, out.frameInterval);
        assertEquals("t5", output.getStack().getSliceLabel(5));

        double noisyError = TestMovies.meanSquaredError(input, movie[0]);
        double denoisedError = TestMovies.meanSquaredError(output, movie[0]);
        System.out.printf(
                "MSE against the clean movie: noisy %.2f, denoised %.2f; means clean %.2f noisy %.2f denoised %.2f%n",
                noisyError, denoisedError, mean(movie[0]), mean(floatsOf(input)), mean(floatsOf(output)));
        assertTrue(denoisedError < 0.8 * noisyError, "denoised MSE " + denoisedError + " vs noisy " + noisyError);
        // The input is never modified.
        assertEquals(
                0,
                TestMovies.meanSquaredError(
                        input, floatsOf(TestMovies.sixteenBit("again", movie[1], TestMovies.FRAMES))),
                0.0);
    }

    private static double mean(float[] values) {
        double sum = 0;
        for (float v : values) sum += v;
        return sum / values.length;
    }

    private static float[] floatsOf(ImagePlus image) {
        int len = image.getWidth() * image.getHeight();
        float[] values = new float[len * image.getStackSize()];
        for (int t = 0; t < image.getStackSize(); t++) {
            float[] plane = (float[]) image.getStack()
                    .getProcessor(t + 1)
                    .convertToFloatProcessor()
                    .getPixels();
            System.arraycopy(plane, 0, values, t * len, len);
        }
        return values;
    }

    @Test
    void thirtyTwoBitOutputOnRequestAndFramesAsTheTimeAxis() throws Exception {
        float[][] movie = TestMovies.simulate(TestMovies.FRAMES, 8);
        ImagePlus input = TestMovies.sixteenBit("frames", movie[1], TestMovies.FRAMES);
        input.setDimensions(1, 1, TestMovies.FRAMES);
        ImagePlus output = denoise(input, "output_type", OutputChoice.FLOAT32, "device", "cpu");
        assertEquals(ImagePlus.GRAY32, output.getType());
        assertEquals(TestMovies.FRAMES, output.getNFrames());
        assertEquals(1, output.getNSlices());
        ImagePlus sixteen = denoise(input, "device", "cpu", "output_type", OutputChoice.SAME_AS_INPUT);
        // The 16-bit result is the 32-bit result rounded and clipped.
        float[] f = (float[]) output.getStack().getPixels(3);
        short[] s = (short[]) sixteen.getStack().getPixels(3);
        for (int i = 0; i < s.length; i++) {
            assertEquals(Math.max(0, Math.min(65535, Math.round(f[i]))), s[i] & 0xffff, 1.0, "pixel " + i);
        }
    }

    @Test
    void theBuiltInModelNeedsNoFileAndAutomaticOutputKeepsDimDataInFloat() throws Exception {
        float[][] movie = TestMovies.simulate(TestMovies.FRAMES, 12);
        ImagePlus input = TestMovies.sixteenBit("dim.tif", movie[1], TestMovies.FRAMES);
        CommandModule module =
                run(DenoiseCommand.class, "input", input, "model", ModelChoice.BUILT_IN, "device", "cpu");
        assertFalse(module.isCanceled(), () -> "cancelled: " + module.getCancelReason());
        ImagePlus output = (ImagePlus) module.getOutput("output");
        assertEquals("dim-denoised", output.getTitle());
        assertArrayEquals(input.getDimensions(), output.getDimensions());
        // A few photons per pixel: rounding to 16 bits would throw part of the gain away.
        assertEquals(ImagePlus.GRAY32, output.getType());
        double noisyError = TestMovies.meanSquaredError(input, movie[0]);
        double denoisedError = TestMovies.meanSquaredError(output, movie[0]);
        System.out.printf("built-in model: MSE noisy %.2f, denoised %.2f%n", noisyError, denoisedError);
        assertTrue(denoisedError < 0.5 * noisyError, "denoised MSE " + denoisedError + " vs noisy " + noisyError);
    }

    private static ImagePlus denoiseToFloat(ImagePlus input, String restoreEvents) throws Exception {
        return denoise(input, "output_type", OutputChoice.FLOAT32, "device", "cpu", "restore_events", restoreEvents);
    }

    @Test
    void restoringFastEventsChangesTheOutputAndIsRefusedWithAnOfficialTiling() throws Exception {
        float[][] movie = TestMovies.simulate(TestMovies.FRAMES, 14);
        ImagePlus input = TestMovies.sixteenBit("events.tif", movie[1], TestMovies.FRAMES);
        ImagePlus plain = denoiseToFloat(input, EventRestorationChoice.NEVER);
        ImagePlus restored = denoiseToFloat(input, EventRestorationChoice.ALWAYS);
        assertArrayEquals(plain.getDimensions(), restored.getDimensions());
        boolean changed = false;
        for (int z = 1; z <= plain.getStackSize() && !changed; z++) {
            float[] a = (float[]) plain.getStack().getPixels(z);
            float[] b = (float[]) restored.getStack().getPixels(z);
            changed = !java.util.Arrays.equals(a, b);
        }
        assertTrue(changed, "restoring events changed nothing");
        java.util.concurrent.ExecutionException refused = org.junit.jupiter.api.Assertions.assertThrows(
                java.util.concurrent.ExecutionException.class,
                () -> denoise(
                        input,
                        "device",
                        "cpu",
                        "tiling",
                        TilingChoice.DEEPCAD_RT,
                        "restore_events",
                        EventRestorationChoice.ALWAYS));
        Throwable cause = refused.getCause();
        while (!(cause instanceof DeepCadException) && cause != null && cause.getCause() != null)
            cause = cause.getCause();
        String message = String.valueOf(cause.getMessage());
        assertTrue(message.contains("event restoration") && message.contains("official"), message);
        assertFalse(message.contains("--"), "a command-line flag in a Fiji message: " + message);
    }

    @Test
    void planesOfMixedTypesBecomeFloatWithTheSameValues() {
        Object[] planes = {new short[] {1, (short) 65535}, new float[] {0.5f, 2f}, new byte[] {(byte) 200, 3}};
        Movie.toCommonType(planes, 2, 1);
        assertArrayEquals(new float[] {1f, 65535f}, (float[]) planes[0]);
        assertArrayEquals(new float[] {0.5f, 2f}, (float[]) planes[1]);
        assertArrayEquals(new float[] {200f, 3f}, (float[]) planes[2]);
        Object[] same = {new short[] {7}, new short[] {8}};
        Movie.toCommonType(same, 1, 1);
        assertTrue(same[0] instanceof short[] && same[1] instanceof short[]);
    }

    @Test
    void channelsAreDenoisedOneByOne() throws Exception {
        float[][] a = TestMovies.simulate(TestMovies.FRAMES, 21);
        float[][] b = TestMovies.simulate(TestMovies.FRAMES, 22);
        ImagePlus first = TestMovies.sixteenBit("a", a[1], TestMovies.FRAMES);
        ImagePlus second = TestMovies.sixteenBit("b", b[1], TestMovies.FRAMES);
        ImageStack both = new ImageStack(TestMovies.SIZE, TestMovies.SIZE);
        for (int t = 1; t <= TestMovies.FRAMES; t++) {
            both.addSlice(first.getStack().getProcessor(t));
            both.addSlice(second.getStack().getProcessor(t));
        }
        ImagePlus hyper = new ImagePlus("two channels", both);
        hyper.setDimensions(2, 1, TestMovies.FRAMES);
        hyper.setOpenAsHyperStack(true);
        CompositeImage composite = new CompositeImage(hyper, CompositeImage.COMPOSITE);

        ImagePlus output = denoise(composite, "device", "cpu");
        assertTrue(output.isComposite());
        assertArrayEquals(composite.getDimensions(), output.getDimensions());
        ImagePlus alone = denoise(second, "device", "cpu");
        // Channel 2 of the hyperstack equals channel 2 denoised on its own.
        for (int t = 1; t <= TestMovies.FRAMES; t += 21) {
            assertArrayEquals(
                    (short[]) alone.getStack().getPixels(t),
                    (short[]) output.getStack().getPixels(output.getStackIndex(2, 1, t)),
                    "frame " + t);
        }
    }

    @Test
    void twoDenoiseCommandsAtOnceGiveTheSameResultsAsOneAtATime() throws Exception {
        float[][] movie = TestMovies.simulate(TestMovies.FRAMES, 31);
        ImagePlus input = TestMovies.sixteenBit("parallel", movie[1], TestMovies.FRAMES);
        ImagePlus reference = denoise(input, "device", "cpu");
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Callable<ImagePlus> job = () -> denoise(input, "device", "cpu");
            Future<ImagePlus> one = pool.submit(job);
            Future<ImagePlus> two = pool.submit(job);
            for (Future<ImagePlus> result : new Future[] {one, two}) {
                ImagePlus image = result.get();
                for (int t = 1; t <= TestMovies.FRAMES; t++) {
                    assertArrayEquals((short[]) reference.getStack().getPixels(t), (short[])
                            image.getStack().getPixels(t));
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void modelInfoDescribesTheBundle() throws Exception {
        CommandModule module = run(ModelInfoCommand.class, "model_file", NativeTestSupport.model());
        String info = (String) module.getOutput("model_info");
        assertEquals("4", NativeTestSupport.json(info).get("base_width").getAsString());
        assertEquals(
                String.valueOf(NativeTestSupport.MODEL_EPOCHS),
                NativeTestSupport.json(info)
                        .getAsJsonObject("training")
                        .get("epochs_completed")
                        .getAsString());
    }

    @Test
    void denoiseFilesWritesOneOutputPerInput() throws Exception {
        File in = NativeTestSupport.folder().resolve("batch-in").toFile();
        File out = NativeTestSupport.folder().resolve("batch-out").toFile();
        assertTrue(in.mkdirs());
        for (int i = 0; i < 2; i++) {
            float[][] movie = TestMovies.simulate(TestMovies.FRAMES, 40 + i);
            ij.IJ.saveAsTiff(
                    TestMovies.sixteenBit("m" + i, movie[1], TestMovies.FRAMES),
                    new File(in, "m" + i + ".tif").getPath());
        }
        CommandModule module = run(
                DenoiseFilesCommand.class,
                "input_path",
                in,
                "output_folder",
                out,
                "model_file",
                NativeTestSupport.model(),
                "device",
                "cpu",
                "output_type",
                OutputChoice.SAME_AS_INPUT);
        assertNotNull(module.getOutput("report"));
        for (int i = 0; i < 2; i++) {
            ImagePlus result = ij.IJ.openImage(new File(out, "m" + i + "-denoised.tif").getPath());
            assertNotNull(result, "output " + i);
            assertEquals(TestMovies.FRAMES, result.getStackSize());
            assertEquals(ImagePlus.GRAY16, result.getType());
            assertEquals(0.4, result.getCalibration().pixelWidth, 1e-9);
        }
        // A second run into the same folder: the existing outputs are refused, untouched, unless replacing is allowed.
        long before = new File(out, "m0-denoised.tif").lastModified();
        java.util.concurrent.ExecutionException refused = org.junit.jupiter.api.Assertions.assertThrows(
                java.util.concurrent.ExecutionException.class,
                () -> run(
                        DenoiseFilesCommand.class,
                        "input_path",
                        in,
                        "output_folder",
                        out,
                        "model_file",
                        NativeTestSupport.model(),
                        "device",
                        "cpu"));
        Throwable cause = refused.getCause();
        while (!(cause instanceof DeepCadException) && cause != null && cause.getCause() != null)
            cause = cause.getCause();
        assertTrue(
                cause instanceof DeepCadException && cause.getMessage().contains("already exists"),
                String.valueOf(cause));
        assertEquals(before, new File(out, "m0-denoised.tif").lastModified());
        CommandModule replaced = run(
                DenoiseFilesCommand.class,
                "input_path",
                in,
                "output_folder",
                out,
                "model_file",
                NativeTestSupport.model(),
                "device",
                "cpu",
                "replace_existing",
                true);
        assertTrue(((String) replaced.getOutput("report")).contains("m1-denoised.tif"));
    }
}
