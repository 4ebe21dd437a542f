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
    /** The engine's default working-memory budget for denoising, in MB. */
    public static final int DEFAULT_MEMORY_MB = 1024;

    public static final String DEFAULT_DEVICE = "auto";

    private DeepCadSettings() {}

    public static String device(PrefService prefs) {
        return prefs == null ? DEFAULT_DEVICE : prefs.get(DeepCadSettings.class, DEVICE, DEFAULT_DEVICE);
    }

    public static int threads(PrefService prefs) {
        return prefs == null ? 0 : prefs.getInt(DeepCadSettings.class, THREADS, 0);
    }

    /** The denoising working-memory budget in MB. */
    public static int memoryMegabytes(PrefService prefs) {
        return prefs == null ? DEFAULT_MEMORY_MB : prefs.getInt(DeepCadSettings.class, MEMORY_MB, DEFAULT_MEMORY_MB);
    }

    /** The denoising working-memory budget in bytes. */
    public static long memoryBytes(PrefService prefs) {
        return (long) Math.max(memoryMegabytes(prefs), 1) << 20;
    }

    public static void saveMemory(PrefService prefs, int megabytes) {
        prefs.put(DeepCadSettings.class, MEMORY_MB, megabytes);
    }

    public static String libraryPath(PrefService prefs) {
        return prefs == null ? null : prefs.get(DeepCadSettings.class, LIBRARY_PATH, null);
    }

    public static void save(PrefService prefs, String device, int threads, String libraryPath) {
        prefs.put(DeepCadSettings.class, DEVICE, device);
        prefs.put(DeepCadSettings.class, THREADS, threads);
        prefs.put(DeepCadSettings.class, LIBRARY_PATH, libraryPath == null ? "" : libraryPath);
    }

    /** The device a command should use: its own choice, or the saved one when it left it blank. */
    public static String effectiveDevice(String requested, PrefService prefs) {
        if (requested == null || requested.trim().isEmpty() || requested.trim().equalsIgnoreCase("default")) {
            return device(prefs);
        }
        return requested.trim();
    }
}
