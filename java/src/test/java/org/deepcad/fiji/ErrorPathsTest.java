package org.deepcad.fiji;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ij.ImagePlus;
import ij.process.ColorProcessor;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.concurrent.ExecutionException;
import org.deepcad.fiji.commands.DenoiseCommand;
import org.deepcad.fiji.commands.TrainCommand;
import org.junit.jupiter.api.Test;
import org.scijava.command.Command;
import org.scijava.command.CommandService;

/** Bad input gives a DeepCadException whose message says what is wrong; the JVM carries on. */
class ErrorPathsTest {
    private static DeepCadException failure(Class<? extends Command> command, Object... inputs) {
        ExecutionException e = assertThrows(
                ExecutionException.class,
                () -> NativeTestSupport.context()
                        .service(CommandService.class)
                        .run(command, true, inputs)
                        .get());
        Throwable cause = e.getCause();
        while (!(cause instanceof DeepCadException) && cause != null && cause.getCause() != null)
            cause = cause.getCause();
        return assertInstanceOf(DeepCadException.class, cause, () -> "unexpected " + e.getCause());
    }

    private static ImagePlus movie() {
        return TestMovies.sixteenBit("m", TestMovies.simulate(TestMovies.FRAMES, 3)[1], TestMovies.FRAMES);
    }

    @Test
    void noImage() throws Exception {
        DeepCadException e = assertThrows(DeepCadException.class, () -> Movie.sampleType(null));
        assertTrue(e.getMessage().contains("No image"), e.getMessage());
        // The command without an image: SciJava refuses the missing required input before run().
        assertThrows(
                Exception.class,
                () -> NativeTestSupport.context()
                        .service(CommandService.class)
                        .run(DenoiseCommand.class, true, "model_file", NativeTestSupport.model())
                        .get());
    }

    @Test
    void choosingAModelFileWithoutOneSaysWhatToDo() {
        DeepCadException e =
                failure(DenoiseCommand.class, "input", movie(), "model", ModelChoice.FILE, "device", "cpu");
        assertTrue(
                e.getMessage().contains("No model file") && e.getMessage().contains(ModelChoice.BUILT_IN),
                e.getMessage());
    }

    @Test
    void rgbImageIsRefusedWithWhatToDo() throws Exception {
        ImagePlus rgb = new ImagePlus("colour", new ColorProcessor(32, 32));
        DeepCadException e = failure(DenoiseCommand.class, "input", rgb, "model_file", NativeTestSupport.model());
        assertEquals("usage", e.kind());
        assertTrue(e.getMessage().contains("RGB") && e.getMessage().contains("Split Channels"), e.getMessage());
    }

    @Test
    void aFileThatIsNotAModel() throws Exception {
        File text = NativeTestSupport.folder().resolve("notes.safetensors").toFile();
        Files.write(text.toPath(), "not a model".getBytes(StandardCharsets.UTF_8));
        DeepCadException e = failure(DenoiseCommand.class, "input", movie(), "model_file", text, "device", "cpu");
        assertEquals("model", e.kind());
        assertTrue(e.getMessage().contains(text.getPath()), e.getMessage());
    }

    @Test
    void aTruncatedModel() throws Exception {
        byte[] bytes = Files.readAllBytes(NativeTestSupport.model().toPath());
        File truncated =
                NativeTestSupport.folder().resolve("truncated.safetensors").toFile();
        Files.write(truncated.toPath(), Arrays.copyOf(bytes, bytes.length / 2));
        DeepCadException e = failure(DenoiseCommand.class, "input", movie(), "model_file", truncated, "device", "cpu");
        assertEquals("model", e.kind());
    }

    @Test
    void aMissingModel() throws Exception {
        File missing = NativeTestSupport.folder().resolve("absent.safetensors").toFile();
        DeepCadException e = failure(DenoiseCommand.class, "input", movie(), "model_file", missing, "device", "cpu");
        assertTrue(e.getMessage().contains("absent.safetensors"), e.getMessage());
    }

    @Test
    void aMovieTooShortToTrainOn() throws Exception {
        ImagePlus shortMovie = TestMovies.sixteenBit("short", TestMovies.simulate(6, 4)[1], 6);
        File bundle = NativeTestSupport.folder().resolve("short.safetensors").toFile();
        DeepCadException e = failure(
                TrainCommand.class,
                "input",
                shortMovie,
                "model_file",
                bundle,
                "epochs",
                1,
                "patch_t",
                16,
                "patch_xy",
                16,
                "base_width",
                4,
                "device",
                "cpu");
        assertTrue(e.getMessage().contains("6"), e.getMessage());
        assertTrue(!bundle.exists(), "no bundle is written");
    }

    @Test
    void anUnknownDevice() throws Exception {
        DeepCadException e = failure(
                DenoiseCommand.class, "input", movie(), "model_file", NativeTestSupport.model(), "device", "tpu");
        assertEquals("usage", e.kind());
        assertTrue(e.getMessage().contains("tpu"), e.getMessage());
    }

    @Test
    void nativeArgumentsOfTheWrongShapeOrType() throws Exception {
        NativeTestSupport.context();
        String model = NativeTestSupport.model().getPath();
        DeepCadException wrongLength = assertThrows(
                DeepCadException.class,
                () -> DeepCadNative.denoise(
                        model, "cpu", new Object[] {new short[10]}, 32, 32, "u16", "{}", "input", null));
        assertTrue(wrongLength.getMessage().contains("frame 1"), wrongLength.getMessage());
        // A 65536² image declared with one short: refused for its length before memory for the
        // whole image is claimed (it used to clear 17 GB first), and as a usage error.
        DeepCadException hugeDeclared = assertThrows(
                DeepCadException.class,
                () -> DeepCadNative.denoise(
                        model, "cpu", new Object[] {new short[1]}, 65536, 65536, "u16", "{}", "input", null));
        assertEquals("usage", hugeDeclared.kind());
        assertTrue(hugeDeclared.getMessage().contains("short[] of 4294967296 values"), hugeDeclared.getMessage());
        DeepCadException wrongType = assertThrows(
                DeepCadException.class,
                () -> DeepCadNative.denoise(
                        model, "cpu", new Object[] {new float[32 * 32]}, 32, 32, "u16", "{}", "input", null));
        assertTrue(wrongType.getMessage().contains("short[]"), wrongType.getMessage());
        assertThrows(
                DeepCadException.class,
                () -> DeepCadNative.denoise(model, "cpu", null, 32, 32, "u16", null, "input", null));
        assertThrows(
                DeepCadException.class,
                () -> DeepCadNative.denoise(model, "cpu", new Object[] {null}, 32, 32, "u16", null, "input", null));
        assertThrows(
                DeepCadException.class,
                () -> DeepCadNative.denoise(model, "cpu", new Object[0], -1, 32, "rgb", null, "input", null));
        DeepCadException badOutputType = assertThrows(
                DeepCadException.class,
                () -> DeepCadNative.denoise(
                        model, "cpu", new Object[] {new short[32 * 32]}, 32, 32, "u16", null, "float64", null));
        assertTrue(badOutputType.getMessage().contains("float64"), badOutputType.getMessage());
        DeepCadException badSettings = assertThrows(
                DeepCadException.class,
                () -> DeepCadNative.train(
                        new Object[] {new short[4]},
                        2,
                        2,
                        "u16",
                        "x",
                        "{\"epochz\": 3}",
                        "/tmp/x.safetensors",
                        null,
                        "cpu",
                        null));
        assertTrue(badSettings.getMessage().contains("epochz"), badSettings.getMessage());
        assertThrows(DeepCadException.class, () -> DeepCadNative.modelInfoJson(null));
        assertThrows(DeepCadException.class, () -> DeepCadNative.setThreads(-2));
        // Still alive and working.
        assertTrue(DeepCadNative.version().startsWith("deepcad"));
    }

    @Test
    void aListenerThatThrowsStopsTheCallAndItsExceptionReachesTheCaller() throws Exception {
        NativeTestSupport.context();
        IllegalStateException boom = new IllegalStateException("listener failed");
        float[] noisy = TestMovies.simulate(TestMovies.FRAMES, 5)[1];
        Object[] planes =
                TestMovies.sixteenBit("x", noisy, TestMovies.FRAMES).getStack().getImageArray();
        planes = Arrays.copyOf(planes, TestMovies.FRAMES);
        Object[] finalPlanes = planes;
        IllegalStateException thrown = assertThrows(
                IllegalStateException.class,
                () -> DeepCadNative.denoise(
                        NativeTestSupport.model().getPath(),
                        "cpu",
                        finalPlanes,
                        32,
                        32,
                        "u16",
                        null,
                        "input",
                        (phase, done, total, message, trainLoss, validationLoss) -> {
                            throw boom;
                        }));
        assertSame(boom, thrown);
        DeepCadException cancelled = assertThrows(
                DeepCadException.class,
                () -> DeepCadNative.denoise(
                        NativeTestSupport.model().getPath(),
                        "cpu",
                        finalPlanes,
                        32,
                        32,
                        "u16",
                        null,
                        "input",
                        (phase, done, total, message, trainLoss, validationLoss) -> false));
        assertEquals("cancelled", cancelled.kind());
    }
}
