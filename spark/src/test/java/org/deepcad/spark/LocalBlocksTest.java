package org.deepcad.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkException;
import org.apache.spark.api.java.JavaSparkContext;
import org.deepcad.fiji.DeepCadException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Spark door in one JVM ({@code local[2]}: two task threads), through the real JNI library and
 * the real CLI: blocks denoised by Spark tasks equal the CLI's single-process result bit for bit.
 */
class LocalBlocksTest {
    private static JavaSparkContext sc;
    private static String cli;

    @TempDir
    static Path dir;

    @BeforeAll
    static void start() throws Exception {
        cli = requiredFile("deepcad.cli");
        requiredFile("deepcad.library.path");
        sc = new JavaSparkContext(new SparkConf()
                .setMaster("local[2]")
                .setAppName("deepcad-spark-test")
                .set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1"));
        assertEquals(
                0,
                cli(
                        "simulate",
                        "-o",
                        dir.resolve("movie.tif").toString(),
                        "--width",
                        "96",
                        "--height",
                        "96",
                        "--frames",
                        "160",
                        "--seed",
                        "3",
                        "-q"));
        assertEquals(
                0,
                cli(
                        "denoise",
                        dir.resolve("movie.tif").toString(),
                        "--model",
                        "default",
                        "-o",
                        dir.resolve("whole.zarr").toString(),
                        "--threads",
                        "1",
                        "-q"));
    }

    @AfterAll
    static void stop() {
        if (sc != null) sc.close();
    }

    @Test
    void blocksEqualTheWholeMovieAndRerunsChangeNothing() throws Exception {
        String out = dir.resolve("blocks.zarr").toString();
        DenoiseBlocks.Job job = new DenoiseBlocks.Job(
                dir.resolve("movie.tif").toString(), "default", out, 4, DenoiseBlocks.settingsJson(null, 1));
        DenoiseBlocks.Result first = DenoiseBlocks.run(sc, job);
        assertTrue(first.complete, first.statusJson);
        assertEquals(4, first.runs.size());
        assertEquals(0, cli("status", out), "deepcad status after the Spark run");
        assertEquals(0, cli("compare", dir.resolve("whole.zarr").toString(), out), "blocks vs whole movie");

        DenoiseBlocks.Result again = DenoiseBlocks.run(sc, job);
        assertTrue(again.complete, again.statusJson);
        for (BlockRun run : again.runs) assertTrue(run.reportJson.contains("\"already_done\":true"), run.toString());
        assertEquals(0, cli("compare", dir.resolve("whole.zarr").toString(), out), "after a second run");
    }

    @Test
    void engineFailuresAreJavaExceptionsOnDriverAndExecutors() throws Exception {
        String missing = dir.resolve("no-such-movie.zarr").toString();
        DeepCadException planning = assertThrows(
                DeepCadException.class,
                () -> BlockEngine.plan(
                        missing, "default", dir.resolve("never.zarr").toString(), 4, null));
        assertTrue(planning.getMessage().contains("no-such-movie"), planning.getMessage());
        assertNotEquals("internal", planning.kind());

        String out = dir.resolve("failing.zarr").toString();
        String movie = dir.resolve("movie.tif").toString();
        BlockEngine.plan(movie, "default", out, 2, null);
        DeepCadException outOfRange =
                assertThrows(DeepCadException.class, () -> BlockEngine.denoise(movie, "default", out, 5, 2, null));
        assertEquals("usage", outOfRange.kind(), outOfRange.getMessage());

        // The same failure inside a task fails the job with the engine's message, and Spark goes on.
        SparkException failed = assertThrows(
                SparkException.class,
                () -> sc.parallelize(Arrays.asList(7), 1)
                        .map(i -> BlockEngine.denoise(movie, "default", out, i, 2, null))
                        .collect());
        assertTrue(failed.getMessage().contains("DeepCadException"), failed.getMessage());
        assertEquals(3L, sc.parallelize(Arrays.asList(1, 2, 3), 3).count());
    }

    private static String requiredFile(String property) {
        String path = System.getProperty(property);
        if (path == null || !new File(path).isFile()) {
            throw new IllegalStateException("-D" + property + " must name a built file (cargo build), got " + path);
        }
        return path;
    }

    private static int cli(String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(cli);
        command.addAll(Arrays.asList(args));
        Path log = Files.createTempFile(dir, "cli", ".log");
        Process p = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        if (!p.waitFor(5, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new AssertionError("timed out: " + command);
        }
        if (p.exitValue() != 0) {
            System.err.println(String.join(" ", command) + " exited " + p.exitValue() + ":\n"
                    + new String(Files.readAllBytes(log), StandardCharsets.UTF_8));
        }
        return p.exitValue();
    }
}
