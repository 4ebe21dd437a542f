package org.deepcad.fiji;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * The built overlay (fiji-plugin/build.sh, laid out by java/run-tests.sh) on its own: a fresh JVM
 * with only the overlay's jar and Fiji's own jars on the class path runs a command end to end,
 * and libtorch is loaded from the overlay's lib/linux64/deepcad. Skipped when no overlay was built.
 */
class OverlayTest {
    private static File overlay() {
        String dir = System.getProperty("deepcad.overlay.dir");
        File app = dir == null ? null : new File(dir);
        assumeTrue(
                app != null && new File(app, "jars/deepcad-fiji.jar").isFile(),
                "no overlay at " + dir + " (java/run-tests.sh builds one)");
        return app;
    }

    /** scijava-common, parsington, ij and gson from this JVM's class path: the jars Fiji itself provides. */
    private static String fijiJars() {
        return Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
                .filter(p -> {
                    String name = new File(p).getName();
                    return name.startsWith("scijava-common-")
                            || name.startsWith("parsington-")
                            || name.startsWith("ij-")
                            || name.startsWith("gson-");
                })
                .collect(Collectors.joining(File.pathSeparator));
    }

    private static String runFresh(File app, boolean libraryPathSet, String... args) throws Exception {
        Path script = NativeTestSupport.folder().resolve("OverlayRun.java");
        try (InputStream in = OverlayTest.class.getResourceAsStream("/OverlayRun.java")) {
            Files.copy(in, script, StandardCopyOption.REPLACE_EXISTING);
        }
        List<String> command = new ArrayList<>(Arrays.asList(
                new File(System.getProperty("java.home"), "bin/java").getPath(), "-Djava.awt.headless=true"));
        if (libraryPathSet) command.add("-Djava.library.path=" + new File(app, "lib/linux64").getPath());
        command.addAll(Arrays.asList(
                "-cp",
                new File(app, "jars/deepcad-fiji.jar").getPath() + File.pathSeparator + fijiJars(),
                script.toString()));
        command.addAll(Arrays.asList(args));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().remove(NativeLibrary.ENVIRONMENT);
        builder.environment().remove("LD_LIBRARY_PATH");
        Process process = builder.start();
        byte[] output = readAll(process.getInputStream());
        assertTrue(process.waitFor(180, TimeUnit.SECONDS), "the fresh JVM finished");
        String text = new String(output, StandardCharsets.UTF_8);
        System.out.println(text);
        assertEquals(0, process.exitValue(), text);
        return text;
    }

    private static byte[] readAll(InputStream in) throws Exception {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        byte[] buffer = new byte[8192];
        for (int n; (n = in.read(buffer)) > 0; ) out.write(buffer, 0, n);
        return out.toByteArray();
    }

    @Test
    void theOverlayAloneDenoisesThroughTheCommand() throws Exception {
        File app = overlay();
        String lib = new File(app, "lib/linux64").getCanonicalPath();
        String text = runFresh(app, true, NativeTestSupport.model().getPath());
        // A dim simulated movie: the automatic output type keeps the denoised detail in 32-bit float.
        assertTrue(text.contains("output=overlay-denoised 32x32x64 32-bit"), text);
        assertTrue(text.contains("loaded_from=" + lib + "/libdeepcad.so"), text);
        assertTrue(
                text.contains("libtorch_dir=" + lib + "/" + NativeLibrary.PRIVATE_FOLDER + "\n"),
                "libtorch comes from the overlay's private folder: " + text);
    }

    @Test
    void withoutJavaLibraryPathTheLibraryIsFoundBesideTheJarsFolder() throws Exception {
        File app = overlay();
        String text = runFresh(app, false, NativeTestSupport.model().getPath(), "info");
        assertTrue(text.contains("base_width=4"), text);
        assertTrue(text.contains("loaded_from=" + new File(app, "lib/linux64").getCanonicalPath()), text);
    }
}
