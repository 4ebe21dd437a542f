package org.deepcad.fiji;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A JVM that ends while a native denoise is still computing on another thread (Fiji quitting
 * mid-run) ends normally: the shutdown hook stops the call and waits for it to return before
 * libtorch is torn down. Before the hook the JVM ended under the running call (once with a SIGSEGV
 * in dnnl_primitive_execute, exit 134). Each case runs {@link ExitDuringNativeCall} in a JVM of its own.
 */
class ShutdownTest {
    private static void endWhileComputing(String how) throws Exception {
        Path dir = Files.createTempDirectory(NativeTestSupport.folder(), "exit-" + how);
        String library = System.getProperty(NativeLibrary.PROPERTY);
        ProcessBuilder builder = new ProcessBuilder(Arrays.asList(
                        new File(System.getProperty("java.home"), "bin/java").getPath(),
                        "-Xmx1g",
                        "-Djava.awt.headless=true",
                        "-XX:ErrorFile=" + dir.resolve("hs_err_pid%p.log"),
                        "-cp",
                        System.getProperty("java.class.path"),
                        ExitDuringNativeCall.class.getName(),
                        library,
                        how))
                .directory(dir.toFile())
                .redirectErrorStream(true);
        builder.environment().remove(NativeLibrary.ENVIRONMENT);
        Process process = builder.start();
        String output = read(process.getInputStream());
        assertTrue(process.waitFor(300, TimeUnit.SECONDS), "the JVM ended");
        System.out.println(output);
        assertEquals(0, process.exitValue(), "exit status (134/139: a native crash)\n" + output);
        String[] crashReports = dir.toFile().list((d, name) -> name.startsWith("hs_err"));
        assertEquals(0, crashReports == null ? 0 : crashReports.length, "JVM crash report written\n" + output);
        assertTrue(output.contains("EXITING while the denoise runs"), output);
        assertTrue(output.contains("DeepCAD: Java is exiting; stopping 1 running computation(s) first."), output);
        // Printed by the hook once the call has returned from native code (the worker's own line may
        // or may not make it out before the JVM ends).
        assertTrue(
                output.contains("DeepCAD: the running computations stopped (in "),
                "the running call was stopped and returned before the JVM ended\n" + output);
        assertTrue(!output.contains("NATIVE-CALL-ENDED") || output.contains("NATIVE-CALL-ENDED cancelled"), output);
    }

    private static String read(InputStream in) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buffer = new byte[8192];
        for (int n; (n = in.read(buffer)) > 0; ) out.write(buffer, 0, n);
        return new String(out.toByteArray(), StandardCharsets.UTF_8);
    }

    @Test
    void systemExitDuringADenoiseStopsItAndExitsNormally() throws Exception {
        endWhileComputing("exit");
    }

    @Test
    void mainReturningWithADenoiseOnADaemonThreadStopsItAndExitsNormally() throws Exception {
        endWhileComputing("return");
    }
}
