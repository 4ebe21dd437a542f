package org.deepcad.fiji;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import ij.ImagePlus;
import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import org.deepcad.fiji.commands.DenoiseCommand;
import org.deepcad.fiji.commands.DenoiseFilesCommand;
import org.deepcad.fiji.commands.SettingsCommand;
import org.deepcad.fiji.commands.TrainCommand;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.scijava.Context;
import org.scijava.command.Command;
import org.scijava.command.CommandModule;
import org.scijava.command.CommandService;
import org.scijava.module.Module;
import org.scijava.module.ModuleService;
import org.scijava.plugin.Parameter;

/**
 * What a dialog opens with, and what a command uses when a macro leaves a key out, comes from the
 * engine (DeepCadNative.defaultsJson), not from Java constants: each command is initialised as
 * SciJava's InitPreprocessor does before the dialog. Also: the first-run choices (built-in model, this
 * machine's devices) and the device spellings older macros use.
 */
class DialogDefaultsTest {
    /**
     * A command as SciJava has it just before its dialog: created by the module service (context
     * injected), the given inputs set and resolved as a macro or caller sets them, initialize() run.
     */
    private static Module initialised(Class<? extends Command> command, Object... inputs) throws Exception {
        Context context = NativeTestSupport.context();
        Module module = context.service(ModuleService.class)
                .createModule(context.service(CommandService.class).getCommand(command));
        for (int i = 0; i < inputs.length; i += 2) {
            module.setInput((String) inputs[i], inputs[i + 1]);
            module.resolveInput((String) inputs[i]);
        }
        module.initialize();
        return module;
    }

    private static CommandModule run(Class<? extends Command> command, Object... inputs) throws Exception {
        return NativeTestSupport.context()
                .service(CommandService.class)
                .run(command, true, inputs)
                .get();
    }

    /** Some tests ask the engine directly before any command has loaded the library. */
    @BeforeAll
    static void loadTheLibrary() {
        NativeTestSupport.context();
    }

    /** A dialog field's fixed SciJava choice list. */
    private static List<String> choices(Class<?> command, String field) throws Exception {
        return Arrays.asList(
                command.getDeclaredField(field).getAnnotation(Parameter.class).choices());
    }

    @Test
    void everyChoiceListSpeaksTheEnginesWords() throws Exception {
        EngineDefaults engine = EngineDefaults.get();
        assertEquals(engine.words("method"), choices(TrainCommand.class, "method"));
        for (Class<?> command : Arrays.asList(DenoiseCommand.class, DenoiseFilesCommand.class)) {
            List<String> outputs = new ArrayList<>();
            for (String choice : choices(command, "output_type")) outputs.add(OutputChoice.engineName(choice));
            assertEquals(engine.words("output_type"), outputs, command.getSimpleName());
        }
        List<String> pipelines = new ArrayList<>();
        for (String choice : choices(DenoiseCommand.class, "tiling")) {
            String pipeline = TilingChoice.pipeline(choice);
            if (pipeline != null) pipelines.add(pipeline);
        }
        assertEquals(engine.words("official_pipeline"), pipelines);
    }

    @Test
    void trainingDialogShowsTheEnginesDefaults() throws Exception {
        JsonObject engine = NativeTestSupport.json(DeepCadNative.defaultsJson());
        JsonObject train = engine.getAsJsonObject("train");
        Module command = initialised(TrainCommand.class);
        assertEquals(train.get("epochs").getAsInt(), command.getInput("epochs"));
        assertEquals(train.get("patches_per_epoch").getAsInt(), command.getInput("patches_per_epoch"));
        assertEquals(train.get("learning_rate").getAsDouble(), command.getInput("learning_rate"));
        assertEquals(train.get("base_width").getAsInt(), command.getInput("base_width"));
        JsonArray patch = train.getAsJsonArray("patch");
        assertEquals(patch.get(0).getAsInt(), command.getInput("patch_t"));
        assertEquals(patch.get(1).getAsInt(), command.getInput("patch_xy"));
        assertEquals("builtin".equals(train.get("init").getAsString()), command.getInput("start_from_built_in"));
        assertEquals(train.get("method").getAsString(), command.getInput("method"));
        assertEquals(0.0, command.getInput("time_limit_minutes"));
        // The numbers the README documents (a changed engine default must change the README too).
        assertEquals(0.001, command.getInput("learning_rate"));
        assertEquals(200, command.getInput("patches_per_epoch"));
        assertEquals(10, command.getInput("epochs"));
        assertEquals(Boolean.TRUE, command.getInput("start_from_built_in"));
    }

    @Test
    void aValueGivenBeforeTheDialogIsKept() throws Exception {
        Module command = initialised(TrainCommand.class, "learning_rate", 0.003, "epochs", 3);
        assertEquals(0.003, command.getInput("learning_rate"));
        assertEquals(3, command.getInput("epochs"));
        assertEquals(EngineDefaults.get().patchesPerEpoch, command.getInput("patches_per_epoch"));
    }

    @Test
    void denoiseDialogOffersTheBuiltInModelAndTheEnginesOfficialTiling() throws Exception {
        JsonObject official =
                NativeTestSupport.json(DeepCadNative.defaultsJson()).getAsJsonObject("official_pipeline");
        Module first = initialised(DenoiseCommand.class);
        assertEquals(ModelChoice.BUILT_IN, first.getInput("model"), "nothing chosen: the built-in model");
        assertEquals(OutputChoice.AUTOMATIC, first.getInput("output_type"));
        assertEquals(TilingChoice.SEAMLESS, first.getInput("tiling"));
        JsonArray patch = official.getAsJsonObject("deepcad-rt").getAsJsonArray("patch");
        assertEquals(
                patch.get(0).getAsInt() + "," + patch.get(1).getAsInt() + ","
                        + patch.get(2).getAsInt(),
                first.getInput("official_patch"));
        assertEquals("150,150,150", first.getInput("official_patch"));
        assertEquals(0.6, first.getInput("official_overlap"));
        assertTrue(((String) first.getInput("official_heading"))
                .replace("&nbsp;", " ")
                .contains("not used with"));

        // A model file given (an older macro with model_file only): that file.
        Module withFile = initialised(DenoiseCommand.class, "model_file", new File("/data/models/cells.safetensors"));
        assertEquals(ModelChoice.FILE, withFile.getInput("model"));
        Module files = initialised(DenoiseFilesCommand.class);
        assertEquals(ModelChoice.BUILT_IN, files.getInput("model"));
    }

    @Test
    void memoryAndSuffixAreTheEngines() throws Exception {
        JsonObject engine = NativeTestSupport.json(DeepCadNative.defaultsJson());
        assertEquals(
                engine.getAsJsonObject("denoise").get("max_memory_bytes").getAsLong() >> 20,
                EngineDefaults.get().memoryMegabytes);
        assertEquals(1024, EngineDefaults.get().memoryMegabytes);
        assertEquals("cells" + engine.get("suffix").getAsString(), Movie.resultTitle("cells.tif"));
        assertEquals("cells-denoised", Movie.resultTitle("cells.tif"));
        // With no memory saved, commands use the engine's budget, and the settings dialog opens with it.
        Module settings = initialised(SettingsCommand.class, "device", "cpu");
        int saved = DeepCadSettings.savedMemoryMegabytes(
                NativeTestSupport.context().service(org.scijava.prefs.PrefService.class));
        assertEquals(saved > 0 ? saved : 1024, settings.getInput("memory_mb"));
    }

    @Test
    void deviceIsAChoiceOfThisMachinesDevices() throws Exception {
        JsonObject devices = NativeTestSupport.json(DeepCadNative.devicesJson());
        List<String> choices = DeviceChoice.choices(devices.toString());
        assertEquals(Arrays.asList(DeviceChoice.AUTOMATIC, DeviceChoice.CPU), choices.subList(0, 2));
        assertEquals(devices.getAsJsonArray("devices").size() + 1, choices.size(), "one entry per CUDA device");
        Module command = initialised(DenoiseCommand.class, "device", "cpu");
        assertEquals(DeviceChoice.CPU, command.getInput("device"), "an older macro's 'cpu' is the CPU choice");
        Module unset = initialised(DenoiseCommand.class);
        String saved = DeepCadSettings.device(NativeTestSupport.context().service(org.scijava.prefs.PrefService.class));
        assertEquals(DeviceChoice.label(saved, choices), unset.getInput("device"), "unset: the saved device");
        // A GPU's entry names the card, and still means cuda:N on a machine with another card.
        List<String> gpu = DeviceChoice.choices("{\"devices\": [\"cpu\", \"cuda:0\", \"cuda:1\"], \"description\":"
                + " \"cpu: 2 threads\\ncuda:0: NVIDIA H100 80GB HBM3, 79.1 GiB (78.5 GiB free), compute capability 9.0"
                + "\\ncuda:1: NVIDIA A100-SXM4-40GB, 39.4 GiB (39.0 GiB free), compute capability 8.0\"}");
        assertEquals(
                Arrays.asList("Automatic", "CPU", "cuda:0 (NVIDIA H100 80GB HBM3)", "cuda:1 (NVIDIA A100-SXM4-40GB)"),
                gpu);
        assertEquals("cuda:1", DeviceChoice.engineName("cuda:1 (NVIDIA A100-SXM4-40GB)"));
        assertEquals("cuda:1", DeviceChoice.engineName("cuda:1 (Some Other Card)"));
        assertEquals("cuda:0 (NVIDIA H100 80GB HBM3)", DeviceChoice.label("cuda:0", gpu));
        // Older macros' spellings.
        assertEquals("auto", DeviceChoice.engineName("auto"));
        assertEquals("auto", DeviceChoice.engineName("Automatic"));
        assertEquals("cpu", DeviceChoice.engineName("cpu"));
        assertEquals("cpu", DeviceChoice.engineName("CPU"));
        assertEquals("cuda:0", DeviceChoice.engineName("cuda:0"));
        assertEquals("cuda", DeviceChoice.engineName("cuda"));
        assertNull(DeviceChoice.engineName(""), "blank: the saved device");
    }

    @Test
    void olderMacroDeviceSpellingsStillWork() throws Exception {
        ImagePlus movie =
                TestMovies.sixteenBit("dev", TestMovies.simulate(TestMovies.FRAMES, 21)[1], TestMovies.FRAMES);
        for (String device : new String[] {"cpu", "CPU", "auto", "Automatic"}) {
            CommandModule run = run(
                    DenoiseCommand.class, "input", movie, "model_file", NativeTestSupport.model(), "device", device);
            assertFalse(run.isCanceled(), device + ": " + run.getCancelReason());
            assertEquals("dev-denoised", ((ImagePlus) run.getOutput("output")).getTitle(), device);
        }
        boolean cuda = NativeTestSupport.json(DeepCadNative.devicesJson())
                .get("cuda_available")
                .getAsBoolean();
        if (!cuda) {
            // cuda:0 on a machine without one: the engine's own reason, as before the choice list.
            ExecutionException e = assertThrows(
                    ExecutionException.class,
                    () -> run(
                            DenoiseCommand.class,
                            "input",
                            movie,
                            "model_file",
                            NativeTestSupport.model(),
                            "device",
                            "cuda:0"));
            Throwable cause = e.getCause();
            while (!(cause instanceof DeepCadException) && cause != null && cause.getCause() != null)
                cause = cause.getCause();
            assertInstanceOf(DeepCadException.class, cause);
            assertTrue(cause.getMessage().contains("CUDA is not usable"), cause.getMessage());
        }
    }

    @Test
    void withNothingChosenDenoiseUsesTheBuiltInModel() throws Exception {
        ImagePlus movie =
                TestMovies.sixteenBit("first", TestMovies.simulate(TestMovies.FRAMES, 22)[1], TestMovies.FRAMES);
        CommandModule run = run(DenoiseCommand.class, "input", movie, "device", "cpu");
        assertFalse(run.isCanceled(), () -> run.getCancelReason());
        assertEquals(ModelChoice.BUILT_IN, run.getInput("model"));
        ImagePlus out = (ImagePlus) run.getOutput("output");
        assertEquals("first-denoised", out.getTitle());
        assertEquals(TestMovies.FRAMES, out.getStackSize());
    }
}
