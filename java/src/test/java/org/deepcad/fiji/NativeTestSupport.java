package org.deepcad.fiji;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import org.scijava.Context;
import org.scijava.command.CommandModule;
import org.scijava.command.CommandService;

/**
 * One SciJava context and one small trained model shared by the test classes: training takes the
 * longest and every denoise test needs a model, so it is trained once per test JVM.
 */
public final class NativeTestSupport {
    private static Context context;
    private static File model;
    private static Path folder;

    private NativeTestSupport() {}

    public static synchronized Context context() {
        if (context == null) {
            NativeLibrary.load(null);
            context = new Context();
        }
        return context;
    }

    public static synchronized Path folder() throws Exception {
        if (folder == null) {
            folder = Files.createTempDirectory("deepcad-fiji-test");
            folder.toFile().deleteOnExit();
        }
        return folder;
    }

    /** A 2-epoch, base-width-4 model (a raised learning rate lets so small a net learn in 2 epochs) trained through the Train command on a 32×32×64 simulated movie. */
    /** Epochs of the shared test model: enough for a clear denoising gain in float32 and in mixed bfloat16. */
    public static final int MODEL_EPOCHS = 3;

    public static synchronized File model() throws Exception {
        if (model == null) {
            File bundle = folder().resolve("tiny.safetensors").toFile();
            float[][] movie = TestMovies.simulate(TestMovies.FRAMES, 1);
            CommandModule module = context()
                    .service(CommandService.class)
                    .run(
                            org.deepcad.fiji.commands.TrainCommand.class,
                            true,
                            "input",
                            TestMovies.sixteenBit("training.tif", movie[1], TestMovies.FRAMES),
                            "model_file",
                            bundle,
                            "epochs",
                            MODEL_EPOCHS,
                            "patch_t",
                            16,
                            "patch_xy",
                            16,
                            "base_width",
                            4,
                            "patches_per_epoch",
                            48,
                            "learning_rate",
                            0.003,
                            "device",
                            "cpu")
                    .get();
            if (module.isCanceled())
                throw new IllegalStateException("training was cancelled: " + module.getCancelReason());
            model = bundle;
        }
        return model;
    }

    /** A JSON object the engine returned (a report, model info, the device list), read with Gson. */
    public static JsonObject json(String text) {
        return JsonParser.parseString(text).getAsJsonObject();
    }
}
