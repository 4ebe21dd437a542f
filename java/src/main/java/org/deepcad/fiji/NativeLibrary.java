package org.deepcad.fiji;

import java.io.File;
import java.net.URISyntaxException;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Finds and loads libdeepcad once per JVM. JNI binds a native library to one class loader, so this
 * class and {@link DeepCadNative} live in the same jar and nothing else loads the library.
 *
 * <p>Search order: an explicit setting (system property {@value #PROPERTY}, environment variable
 * {@value #ENVIRONMENT}, or the path saved in DeepCAD settings), then {@code java.library.path}
 * (Fiji's launcher puts {@code Fiji.app/lib/linux64} there), then {@code lib/linux64} and
 * {@code lib/linux-x64} of the Fiji installation this jar sits in. libtorch's own libraries are
 * found by the system loader next to libdeepcad (its run path is {@code $ORIGIN}).
 */
public final class NativeLibrary {
    public static final String PROPERTY = "deepcad.library.path";
    public static final String ENVIRONMENT = "DEEPCAD_LIBRARY_PATH";
    public static final String FILE_NAME = "libdeepcad.so";

    private static final String INSTALL_HINT = "Install the DeepCAD overlay: copy its Fiji.app folder over your "
            + "Fiji.app so that lib/linux64 holds " + FILE_NAME + " next to libtorch_cpu.so, libc10.so, libgomp.so.1, "
            + "libcudart.so.13 and libcupti.so.13 (libtorch 2.11.0, glibc 2.29 or newer), then restart Fiji; "
            + "or set the library path in Plugins > DeepCAD > DeepCAD settings.";

    private static String loadedFrom;

    private NativeLibrary() {}

    /** Where the library was loaded from, or null when it is not loaded yet. */
    public static synchronized String loadedFrom() {
        return loadedFrom;
    }

    /**
     * Loads the library unless it is already loaded.
     *
     * @param configuredPath a file or folder saved in the DeepCAD settings, or null
     * @return the absolute path of the loaded library
     * @throws DeepCadException kind "library", saying where it looked and what to install
     */
    public static synchronized String load(String configuredPath) {
        if (loadedFrom != null) return loadedFrom;
        if (!isLinuxX64()) {
            throw new DeepCadException(
                    "library",
                    "DeepCAD's native library is built for Linux x86-64 only; this is " + System.getProperty("os.name")
                            + " " + System.getProperty("os.arch") + ".");
        }
        List<String> looked = new ArrayList<>();
        for (String explicit : explicitSettings(configuredPath)) {
            File candidate = resolve(new File(explicit));
            looked.add(candidate.getPath() + " (explicit setting)");
            if (!candidate.isFile()) {
                throw new DeepCadException(
                        "library",
                        "The DeepCAD library path is set to '" + explicit + "', but " + candidate
                                + " does not exist. Fix or clear the setting. " + INSTALL_HINT);
            }
            return loadFile(candidate, looked);
        }
        for (File folder : searchFolders()) {
            File candidate = new File(folder, FILE_NAME);
            looked.add(candidate.getPath());
            if (candidate.isFile()) return loadFile(candidate, looked);
        }
        throw new DeepCadException(
                "library", FILE_NAME + " was not found. Looked in: " + String.join(", ", looked) + ". " + INSTALL_HINT);
    }

    private static String loadFile(File file, List<String> looked) {
        String path = file.getAbsolutePath();
        try {
            System.load(path);
        } catch (UnsatisfiedLinkError e) {
            throw new DeepCadException(
                    "library",
                    "Found " + path + " but could not load it: " + e.getMessage()
                            + ". Usually libtorch's libraries are missing from that folder or too old/new, or the system's "
                            + "glibc is older than 2.29. Looked in: " + String.join(", ", looked) + ". " + INSTALL_HINT,
                    e);
        }
        loadedFrom = path;
        NativeCalls.installShutdownHook();
        return path;
    }

    /** The explicit settings in priority order; empty values are ignored. */
    private static List<String> explicitSettings(String configuredPath) {
        List<String> values = new ArrayList<>();
        for (String value : new String[] {System.getProperty(PROPERTY), System.getenv(ENVIRONMENT), configuredPath}) {
            if (value != null && !value.trim().isEmpty()) values.add(value.trim());
        }
        return values;
    }

    /** A folder setting means the library file inside it. */
    private static File resolve(File setting) {
        return setting.isDirectory() ? new File(setting, FILE_NAME) : setting;
    }

    private static Set<File> searchFolders() {
        Set<File> folders = new LinkedHashSet<>();
        String libraryPath = System.getProperty("java.library.path", "");
        for (String entry : libraryPath.split(File.pathSeparator)) {
            if (!entry.isEmpty()) folders.add(new File(entry).getAbsoluteFile());
        }
        File app = fijiAppOfThisJar();
        if (app != null) {
            folders.add(new File(app, "lib/linux64"));
            folders.add(new File(app, "lib/linux-x64"));
        }
        return folders;
    }

    /** Fiji.app for a jar at Fiji.app/jars/[sub/]deepcad-fiji.jar; null elsewhere (e.g. in tests). */
    static File fijiAppOfThisJar() {
        try {
            CodeSource source = NativeLibrary.class.getProtectionDomain().getCodeSource();
            if (source == null) return null;
            File location = new File(source.getLocation().toURI());
            for (File dir = location.getParentFile(); dir != null; dir = dir.getParentFile()) {
                if (dir.getName().equals("jars")) return dir.getParentFile();
            }
        } catch (URISyntaxException | SecurityException | IllegalArgumentException e) {
            // An unusual class loader: fall through to "not in a Fiji installation".
        }
        return null;
    }

    private static boolean isLinuxX64() {
        String os = System.getProperty("os.name", "").toLowerCase();
        String arch = System.getProperty("os.arch", "").toLowerCase();
        return os.contains("linux") && (arch.equals("amd64") || arch.equals("x86_64"));
    }
}
