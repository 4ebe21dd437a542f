package org.deepcad.fiji;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ij.ImagePlus;
import ij.Macro;
import java.io.File;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.deepcad.fiji.commands.DenoiseCommand;
import org.deepcad.fiji.commands.DenoiseFilesCommand;
import org.deepcad.fiji.commands.ModelInfoCommand;
import org.deepcad.fiji.commands.SettingsCommand;
import org.deepcad.fiji.commands.TrainCommand;
import org.junit.jupiter.api.Test;
import org.scijava.command.Command;
import org.scijava.command.CommandInfo;
import org.scijava.command.CommandModule;
import org.scijava.command.CommandService;
import org.scijava.convert.ConvertService;
import org.scijava.module.ModuleItem;
import org.scijava.service.Service;

/**
 * Every command parameter set from an IJ1 macro options string, the way Fiji's macro playback does
 * it: keys are the lower-cased field names read with {@link Macro#getValue}, values converted by
 * ConvertService (images by title). Also checks the names are snake_case and the keys unambiguous.
 */
class MacroOptionsTest {
    private static final Map<String, ImagePlus> OPEN_IMAGES = new HashMap<>();

    private static CommandModule runMacro(Class<? extends Command> command, String options) throws Exception {
        CommandService commands = NativeTestSupport.context().service(CommandService.class);
        ConvertService convert = NativeTestSupport.context().service(ConvertService.class);
        CommandInfo info = commands.getCommand(command);
        Map<String, Object> inputs = new HashMap<>();
        Set<String> expected = new TreeSet<>();
        for (ModuleItem<?> item : info.inputs()) {
            if (Service.class.isAssignableFrom(item.getType()) || item.getType() == org.scijava.Context.class) continue;
            // A dialog heading is no macro key (the macro preprocessor resolves it, the recorder leaves it out).
            if (item.getVisibility() == org.scijava.ItemVisibility.MESSAGE) continue;
            expected.add(item.getName());
            String text = Macro.getValue(options + " ", item.getName(), null);
            assertNotNull(text, command.getSimpleName() + ": the test's options lack '" + item.getName() + "'");
            Object value =
                    item.getType() == ImagePlus.class ? OPEN_IMAGES.get(text) : convert.convert(text, item.getType());
            assertNotNull(value, item.getName() + "=" + text + " does not convert to " + item.getType());
            inputs.put(item.getName(), value);
        }
        for (String name : expected) {
            assertTrue(name.matches("[a-z][a-z0-9_]*"), name + " is not snake_case");
        }
        return commands.run(command, true, inputs).get();
    }

    private static String path(File file) {
        return "[" + file.getPath() + "]";
    }

    @Test
    void everyCommandRunsFromMacroStrings() throws Exception {
        File model = NativeTestSupport.model();
        ImagePlus movie = TestMovies.sixteenBit(
                "macro movie.tif", TestMovies.simulate(TestMovies.FRAMES, 11)[1], TestMovies.FRAMES);
        OPEN_IMAGES.put("macro movie.tif", movie);

        CommandModule denoised = runMacro(
                DenoiseCommand.class,
                "input=[macro movie.tif] model=[Model file] model_file=" + path(model)
                        // restore_events=false: as macros recorded it when the field was a checkbox.
                        + " device=cpu output_type=[32-bit float] restore_events=false replace_existing=false"
                        + " tiling=[Seamless (DeepCAD)] official_patch=[150,150,150] official_overlap=0.6 output_file="
                        + path(NativeTestSupport.folder()
                                .resolve("macro virtual output.tif")
                                .toFile()));
        assertEquals(ImagePlus.GRAY32, ((ImagePlus) denoised.getOutput("output")).getType());

        File trained =
                NativeTestSupport.folder().resolve("macro model.safetensors").toFile();
        CommandModule train = runMacro(
                TrainCommand.class,
                "input=[macro movie.tif] input_path=[] model_file=" + path(trained)
                        + " epochs=1 time_limit_minutes=0 patch_t=16 patch_xy=16 base_width=4 start_from_built_in=false patches_per_epoch=8 learning_rate=0.003"
                        + " method=interlaced device=cpu replace_existing=false resume_from=[]");
        assertFalse(train.isCanceled());
        assertTrue(trained.isFile());
        assertEquals(
                "1",
                NativeTestSupport.json((String) train.getOutput("report"))
                        .get("epochs_completed")
                        .getAsString());

        CommandModule resumed = runMacro(
                TrainCommand.class,
                "input=[macro movie.tif] input_path=[] model_file=" + path(trained)
                        + " epochs=2 time_limit_minutes=0 patch_t=16 patch_xy=16 base_width=4 start_from_built_in=false patches_per_epoch=8 learning_rate=0.003"
                        + " method=interlaced device=cpu replace_existing=false resume_from=" + path(trained));
        assertEquals(
                "2",
                NativeTestSupport.json((String) resumed.getOutput("report"))
                        .get("epochs_completed")
                        .getAsString());

        // A time limit (0.6 s) ends a 500-epoch request early; replacing the existing model was asked
        // for; the macro's method key reaches the bundle (model info below).
        CommandModule limited = runMacro(
                TrainCommand.class,
                "input=[macro movie.tif] input_path=[] model_file=" + path(trained)
                        + " epochs=500 time_limit_minutes=0.01 patch_t=16 patch_xy=16 base_width=4 start_from_built_in=false patches_per_epoch=8 learning_rate=0.003"
                        + " method=hybrid device=cpu replace_existing=true resume_from=[]");
        int epochs = NativeTestSupport.json((String) limited.getOutput("report"))
                .get("epochs_completed")
                .getAsInt();
        assertTrue(epochs >= 1 && epochs < 500, "epochs " + epochs);

        CommandModule info = runMacro(ModelInfoCommand.class, "model_file=" + path(trained));
        assertEquals(
                "4",
                NativeTestSupport.json((String) info.getOutput("model_info"))
                        .get("base_width")
                        .getAsString());
        assertEquals(
                "hybrid",
                NativeTestSupport.json((String) info.getOutput("model_info"))
                        .get("method")
                        .getAsString());

        File in = NativeTestSupport.folder().resolve("macro in").toFile();
        File out = NativeTestSupport.folder().resolve("macro out").toFile();
        assertTrue(in.mkdirs());
        ij.IJ.saveAsTiff(movie, new File(in, "one.tif").getPath());
        runMacro(
                DenoiseFilesCommand.class,
                "input_path=" + path(in) + " output_folder=" + path(out) + " model=[Model file] model_file="
                        + path(model)
                        + " device=cpu output_type=[Same as input] restore_events=Always replace_existing=false channel=0 slice=0");
        assertTrue(new File(out, "one-denoised.tif").isFile());

        CommandModule settings =
                runMacro(SettingsCommand.class, "device=auto threads=0 memory_mb=1024 library_path=[]");
        assertTrue(((String) settings.getOutput("devices")).contains("cpu"));
    }
}
