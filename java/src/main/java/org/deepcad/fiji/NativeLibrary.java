package org.deepcad.fiji;

import java.io.File;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Finds and loads libdeepcad once per JVM. JNI binds a native library to one class loader, so this
 * class and {@link DeepCadNative} live in the same jar and nothing else loads the library.
 *
 * <p>Search order: an explicit setting (system property {@value #PROPERTY}, environment variable
 * {@value #ENVIRONMENT}, or the path saved in DeepCAD settings), then {@code java.library.path}
 * (Fiji's launcher puts {@code Fiji.app/lib/linux64} there), then {@code lib/linux64} and
 * {@code lib/linux-x64} of the Fiji installation this jar sits in.
 *
 * <p>libtorch's libraries are DeepCAD's own copies in the private folder {@code lib/linux64/deepcad}
 * (libdeepcad's run path is {@code $ORIGIN/deepcad}), so they never clash with files of the same name
 * that another update site puts in {@code lib/linux64}. What the system loader cannot keep apart is a
 * library already loaded in this process: a {@code libtorch_cpu.so} another plugin loaded first would
 * be used in place of ours (same SONAME). That case is refused before loading, naming the file.
 */
public final class NativeLibrary {
    public static final String PROPERTY = "deepcad.library.path";
    public static final String ENVIRONMENT = "DEEPCAD_LIBRARY_PATH";
    public static final String FILE_NAME = "libdeepcad.so";

    /** The folder beside libdeepcad.so that holds DeepCAD's libtorch (libdeepcad's run path: $ORIGIN/deepcad). */
    public static final String PRIVATE_FOLDER = "deepcad";

    /** The CPU set in {@link #PRIVATE_FOLDER}: what libdeepcad.so loads (libtorch 2.11.0). */
    static final List<String> CPU_SET =
            Arrays.asList("libtorch_cpu.so", "libc10.so", "libgomp.so.1", "libcudart.so.13", "libcupti.so.13");

    /**
     * libtorch itself: a copy of one of these already in the process (another plugin's) would take the place of
     * ours, with another version's symbols and memory layout, so it is refused.
     */
    private static final List<String> LIBTORCH =
            Arrays.asList("libtorch_cpu.so", "libc10.so", "libtorch_cuda.so", "libc10_cuda.so");

    /**
     * C runtimes with versioned symbols: a copy another plugin loaded first serves us too (the system loader
     * checks each symbol version), and is named in the log and in any load failure.
     */
    private static final List<String> SHAREABLE = Arrays.asList("libgomp.so.1", "libcudart.so.13", "libcupti.so.13");

    private static final String INSTALL_HINT = "Install DeepCAD through its Fiji update site (Help > Update..., "
            + "Manage update sites), or copy the DeepCAD overlay's Fiji.app folder over your Fiji.app, so that "
            + "lib/linux64 holds " + FILE_NAME + " and lib/linux64/" + PRIVATE_FOLDER + " holds "
            + String.join(", ", CPU_SET) + " (libtorch 2.11.0; glibc 2.29 or newer); then restart Fiji. "
            + "Or set the library path in Plugins > DeepCAD > DeepCAD settings.";

    private static String loadedFrom;
    private static final List<String> sharedWithOthers = new ArrayList<>();

    private NativeLibrary() {}

    /** Where the library was loaded from, or null when it is not loaded yet. */
    public static synchronized String loadedFrom() {
        return loadedFrom;
    }

    /**
     * Libraries of our set that another plugin had already loaded from elsewhere and that we therefore share,
     * as "name from path" (empty in the usual case).
     */
    public static synchronized List<String> sharedWithOthers() {
        return new ArrayList<>(sharedWithOthers);
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
        File torchFolder = libtorchFolder(file);
        Map<String, String> loaded = loadedLibraries();
        for (String name : LIBTORCH) {
            String other = loaded.get(name);
            if (other != null && (torchFolder == null || !sameFile(new File(other), new File(torchFolder, name)))) {
                throw new DeepCadException("library", libtorchConflict(name, other, torchFolder));
            }
        }
        List<String> shared = new ArrayList<>();
        for (String name : SHAREABLE) {
            String other = loaded.get(name);
            if (other != null && (torchFolder == null || !sameFile(new File(other), new File(torchFolder, name)))) {
                shared.add(name + " from " + other);
            }
        }
        try {
            System.load(path);
        } catch (UnsatisfiedLinkError e) {
            String missing = missingFromPrivateFolder(file);
            throw new DeepCadException(
                    "library",
                    "Found " + path + " but could not load it: " + e.getMessage() + ". "
                            + (missing.isEmpty() ? "" : missing + " ")
                            + (shared.isEmpty()
                                    ? ""
                                    : "Already loaded by another plugin before DeepCAD, and used in place of "
                                            + "DeepCAD's own copies: " + String.join("; ", shared)
                                            + " (restart Fiji and run a DeepCAD command before that plugin). ")
                            + "Otherwise libtorch's libraries are missing or of another version, or the system's "
                            + "glibc is older than 2.29. Looked in: " + String.join(", ", looked) + ". " + INSTALL_HINT,
                    e);
        }
        loadedFrom = path;
        sharedWithOthers.addAll(shared);
        NativeCalls.installShutdownHook();
        return path;
    }

    /** Where libdeepcad at {@code library} finds libtorch: its private folder, else its own folder; null if neither. */
    static File libtorchFolder(File library) {
        File folder = library.getAbsoluteFile().getParentFile();
        File own = new File(folder, PRIVATE_FOLDER);
        if (new File(own, "libtorch_cpu.so").isFile()) return own;
        if (new File(folder, "libtorch_cpu.so").isFile()) return folder;
        return null;
    }

    private static String libtorchConflict(String name, String other, File torchFolder) {
        return "Another copy of " + name + " is already loaded in this Fiji, from " + other
                + ": a plugin that uses libtorch (or a library it loaded) started it before DeepCAD. "
                + (torchFolder == null
                        ? "DeepCAD needs its own libtorch 2.11.0. "
                        : "DeepCAD needs its own copy, " + new File(torchFolder, name) + " (libtorch 2.11.0). ")
                + "Two libtorch copies of one name cannot be used in one Java process, so DeepCAD did not load. "
                + "What to do: restart Fiji and run a DeepCAD command before using that other plugin "
                + "(or denoise with the deepcad command line). If " + other + " is in a Fiji.app/lib folder, "
                + "Help > Update... shows which update site installed it.";
    }

    /** "lib/linux64/deepcad is missing a, b." when libdeepcad's private folder exists but lacks part of the set. */
    private static String missingFromPrivateFolder(File library) {
        File own = new File(library.getAbsoluteFile().getParentFile(), PRIVATE_FOLDER);
        if (!own.isDirectory()) return "";
        List<String> missing = new ArrayList<>();
        for (String name : CPU_SET) {
            if (!new File(own, name).isFile()) missing.add(name);
        }
        return missing.isEmpty()
                ? ""
                : own + " is missing " + String.join(", ", missing)
                        + " (an interrupted update? Run Help > Update... again).";
    }

    /** Shared libraries mapped in this process now, by file name (Linux: /proc/self/maps); empty elsewhere. */
    static Map<String, String> loadedLibraries() {
        Map<String, String> libraries = new LinkedHashMap<>();
        try {
            for (String line : Files.readAllLines(Paths.get("/proc/self/maps"), StandardCharsets.UTF_8)) {
                int slash = line.indexOf('/');
                if (slash < 0) continue;
                String mapped = line.substring(slash).replace(" (deleted)", "");
                String name = mapped.substring(mapped.lastIndexOf('/') + 1);
                if (LIBTORCH.contains(name) || SHAREABLE.contains(name)) libraries.putIfAbsent(name, mapped);
            }
        } catch (IOException | RuntimeException e) {
            // No /proc (not Linux) or unreadable: nothing known to be loaded.
        }
        return libraries;
    }

    private static boolean sameFile(File a, File b) {
        try {
            return a.getCanonicalFile().equals(b.getCanonicalFile());
        } catch (IOException e) {
            return a.getAbsoluteFile().equals(b.getAbsoluteFile());
        }
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
