package org.deepcad.fiji;

import org.scijava.prefs.PrefService;

/**
 * The settings saved by "DeepCAD settings" (device, CPU threads, native library path). Commands
 * read them; an empty device in a command means "the saved device".
 */
public final class DeepCadSettings {
    public static final String DEVICE = "device";
    public static final String THREADS = "threads";
    public static final String LIBRARY_PATH = "library_path";
    public static final String MEMORY_MB = "memory_mb";

    /** The device when none is saved: the engine's "auto" (a CUDA GPU when usable, else the CPU). */
    public static final String DEFAULT_DEVICE = "auto";

    private DeepCadSettings() {}

    public static String device(PrefService prefs) {
        return prefs == null ? DEFAULT_DEVICE : prefs.get(DeepCadSettings.class, DEVICE, DEFAULT_DEVICE);
    }

    public static int threads(PrefService prefs) {
        return prefs == null ? 0 : prefs.getInt(DeepCadSettings.class, THREADS, 0);
    }

    /** The saved denoising working-memory budget in MB, or 0 when none is saved (the engine's default applies). */
    public static int savedMemoryMegabytes(PrefService prefs) {
        return prefs == null ? 0 : Math.max(prefs.getInt(DeepCadSettings.class, MEMORY_MB, 0), 0);
    }

    /** The denoising working-memory budget in MB: the saved one, else the engine's default. */
    public static int memoryMegabytes(PrefService prefs) {
        int saved = savedMemoryMegabytes(prefs);
        return saved > 0 ? saved : EngineDefaults.get().memoryMegabytes;
    }

    /** The denoising working-memory budget in bytes. */
    public static long memoryBytes(PrefService prefs) {
        return (long) Math.max(memoryMegabytes(prefs), 1) << 20;
    }

    /** Saves the memory budget; 0 removes the saved one, so the engine's default applies. */
    public static void saveMemory(PrefService prefs, int megabytes) {
        if (megabytes > 0) prefs.put(DeepCadSettings.class, MEMORY_MB, megabytes);
        else prefs.remove(DeepCadSettings.class, MEMORY_MB);
    }

    public static String libraryPath(PrefService prefs) {
        return prefs == null ? null : prefs.get(DeepCadSettings.class, LIBRARY_PATH, null);
    }

    public static void save(PrefService prefs, String device, int threads, String libraryPath) {
        prefs.put(DeepCadSettings.class, DEVICE, device);
        prefs.put(DeepCadSettings.class, THREADS, threads);
        prefs.put(DeepCadSettings.class, LIBRARY_PATH, libraryPath == null ? "" : libraryPath);
    }

    /**
     * The engine's name of the device a command should use: its own choice (a dialog choice such as
     * "CPU" or "cuda:0 (NVIDIA ...)", or an engine name such as "cpu" from an older macro), or the saved
     * one when it left it blank.
     */
    public static String effectiveDevice(String requested, PrefService prefs) {
        String chosen = DeviceChoice.engineName(requested);
        return chosen != null ? chosen : DeviceChoice.engineName(device(prefs));
    }
}
