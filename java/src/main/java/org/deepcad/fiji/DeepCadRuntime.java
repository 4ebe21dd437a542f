package org.deepcad.fiji;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
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
                log.info(DeepCadNative.version() + " loaded from " + path + "; "
                        + (cuda ? "CUDA is available" : "no usable CUDA GPU, computing on the CPU") + ". Devices: "
                        + devices.get("description").getAsString());
            }
        }
    }
}
