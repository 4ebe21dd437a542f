package org.deepcad.fiji;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.List;
import org.scijava.log.LogService;
import org.scijava.prefs.PrefService;

/** What every command does first: load the native library with the saved settings, say once what it runs on. */
public final class DeepCadRuntime {
    private static boolean announced;

    private DeepCadRuntime() {}

    public static synchronized void start(PrefService prefs, LogService log) {
        String path = NativeLibrary.load(DeepCadSettings.libraryPath(prefs));
        int threads = DeepCadSettings.threads(prefs);
        if (threads > 0) DeepCadNative.setThreads(threads);
        if (!announced) {
            announced = true;
            JsonObject devices =
                    JsonParser.parseString(DeepCadNative.devicesJson()).getAsJsonObject();
            boolean cuda = devices.get("cuda_available").getAsBoolean();
            if (log != null) {
                String torch = devices.has("libtorch_dir")
                                && !devices.get("libtorch_dir").isJsonNull()
                        ? devices.get("libtorch_dir").getAsString()
                        : "an unknown folder";
                List<String> shared = NativeLibrary.sharedWithOthers();
                log.info(DeepCadNative.version() + " loaded from " + path + ", libtorch from " + torch + "; "
                        + (cuda ? "CUDA is available" : "no usable CUDA GPU, computing on the CPU") + ". Devices: "
                        + devices.get("description").getAsString()
                        + (shared.isEmpty()
                                ? ""
                                : ". Sharing libraries another plugin loaded first: " + String.join("; ", shared)));
            }
        }
    }
}
