package org.deepcad.fiji;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.google.gson.JsonObject;
import ij.IJ;
import ij.ImagePlus;
import java.io.File;
import org.deepcad.fiji.commands.TrainCommand;
import org.junit.jupiter.api.Test;
import org.scijava.command.CommandModule;
import org.scijava.command.CommandService;

/** A model trained in Fiji says so: origin "fiji", and its source is the image's title and file. */
class ModelOriginTest {
    private static String info(File model) {
        NativeLibrary.load(null);
        return DeepCadNative.modelInfoJson(model.getPath());
    }

    @Test
    void anImageWithoutAFileIsRecordedByItsTitle() throws Exception {
        String info = info(NativeTestSupport.model());
        assertEquals("fiji", training(info).get("origin").getAsString(), info);
        assertEquals("image 'training.tif'", source(info), info);
    }

    @Test
    void anImageOpenedFromAFileIsRecordedWithItsFileAndAResumeSaysSo() throws Exception {
        File folder = NativeTestSupport.folder().toFile();
        File tiff = new File(folder, "origin movie.tif");
        IJ.saveAsTiff(
                TestMovies.sixteenBit(
                        "origin movie.tif", TestMovies.simulate(TestMovies.FRAMES, 21)[1], TestMovies.FRAMES),
                tiff.getPath());
        ImagePlus opened = IJ.openImage(tiff.getPath());
        File model = new File(folder, "origin.safetensors");
        CommandService commands = NativeTestSupport.context().service(CommandService.class);
        Object[] settings = {
            "input",
            opened,
            "model_file",
            model,
            "patch_t",
            16,
            "patch_xy",
            16,
            "base_width",
            4,
            "start_from_built_in",
            false,
            "patches_per_epoch",
            4,
            "device",
            "cpu"
        };
        CommandModule first = commands.run(TrainCommand.class, true, with(settings, "epochs", 1))
                .get();
        assertFalse(first.isCanceled(), first.getCancelReason());
        String info = info(model);
        assertEquals("fiji", training(info).get("origin").getAsString(), info);
        assertEquals("image 'origin movie.tif' from " + tiff.getPath(), source(info), info);

        commands.run(TrainCommand.class, true, with(with(settings, "epochs", 2), "resume_from", model))
                .get();
        assertEquals("fiji (resumed)", training(info(model)).get("origin").getAsString());
    }

    private static Object[] with(Object[] inputs, String key, Object value) {
        Object[] more = java.util.Arrays.copyOf(inputs, inputs.length + 2);
        more[inputs.length] = key;
        more[inputs.length + 1] = value;
        return more;
    }

    /** The bundle's training record. */
    private static JsonObject training(String info) {
        return NativeTestSupport.json(info).getAsJsonObject("training");
    }

    /** How the bundle names the (only) movie it was trained on. */
    private static String source(String info) {
        return training(info)
                .getAsJsonArray("sources")
                .get(0)
                .getAsJsonObject()
                .get("path")
                .getAsString();
    }
}
