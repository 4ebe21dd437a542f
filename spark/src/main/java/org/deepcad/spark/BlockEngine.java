package org.deepcad.spark;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.SparkFiles;
import org.deepcad.fiji.DeepCadException;

/**
 * The engine's block entry points (src/jni/blocks.rs) and the one place that loads libdeepcad.so,
 * once per JVM: the driver's and every executor's. The library does the planning, the Zarr I/O
 * and the denoising; Java only passes paths, block numbers and settings, and gets JSON back.
 *
 * <p>Where the library comes from, first match wins:
 * <ol>
 *   <li>{@code SparkFiles.get("libdeepcad.so")}: the file shipped with {@code spark-submit --files
 *       /path/libdeepcad.so}, which Spark copies into each executor's own work folder (never a
 *       shared temporary folder that several workers would write at once);</li>
 *   <li>the system property {@value #PROPERTY} ({@code -Ddeepcad.library.path=...}, e.g. through
 *       {@code spark.executor.extraJavaOptions});</li>
 *   <li>the Spark setting {@value #SPARK_CONF} ({@code --conf spark.deepcad.library=...}), a path
 *       every node can read (shared storage or the same install everywhere);</li>
 *   <li>the environment variable {@value #ENVIRONMENT};</li>
 *   <li>on the driver, the local path given to {@code --files} (client mode).</li>
 * </ol>
 * A folder means the library file inside it. libtorch is found by the library's run path
 * ({@code $ORIGIN}, then the folder it was built against), so a node needs libtorch 2.11.0 either
 * next to a configured library or where the build found it.
 */
public final class BlockEngine {
    public static final String FILE_NAME = "libdeepcad.so";
    public static final String PROPERTY = "deepcad.library.path";
    public static final String SPARK_CONF = "spark.deepcad.library";
    public static final String ENVIRONMENT = "DEEPCAD_LIBRARY_PATH";

    private static final ObjectMapper JSON = new ObjectMapper();

    private static String loadedFrom;

    private BlockEngine() {}

    /** Loads the library unless this JVM already has; returns the path it was loaded from. */
    public static synchronized String load() {
        if (loadedFrom != null) return loadedFrom;
        List<String> looked = new ArrayList<>();
        for (String[] candidate : candidates()) {
            File file = new File(candidate[1]);
            if (file.isDirectory()) file = new File(file, FILE_NAME);
            looked.add(file + " (" + candidate[0] + ")");
            if (!file.isFile()) {
                if (candidate[0].startsWith("SparkFiles") || candidate[0].startsWith("--files")) continue;
                throw new DeepCadException(
                        "library",
                        "The DeepCAD library is set by " + candidate[0] + " to '" + candidate[1] + "', but " + file
                                + " does not exist on " + host() + ".");
            }
            String path = file.getAbsolutePath();
            try {
                System.load(path);
            } catch (UnsatisfiedLinkError e) {
                throw new DeepCadException(
                        "library",
                        "Found " + path + " on " + host() + " but could not load it: " + e.getMessage()
                                + ". libtorch 2.11.0 must lie next to it or where it was built against.",
                        e);
            }
            loadedFrom = path;
            return path;
        }
        throw new DeepCadException(
                "library",
                FILE_NAME + " was not found on " + host() + ". Ship it with "
                        + "spark-submit --files /path/" + FILE_NAME + ", or set --conf " + SPARK_CONF + "=PATH, -D"
                        + PROPERTY
                        + "=PATH or " + ENVIRONMENT + ". Looked at: "
                        + (looked.isEmpty() ? "nothing" : String.join(", ", looked)));
    }

    /** Where the library was loaded from in this JVM, or null. */
    public static synchronized String loadedFrom() {
        return loadedFrom;
    }

    /** (source, path) pairs in priority order. */
    private static List<String[]> candidates() {
        List<String[]> out = new ArrayList<>();
        SparkEnv env = SparkEnv.get();
        if (env != null) {
            try {
                out.add(new String[] {"SparkFiles (--files)", SparkFiles.get(FILE_NAME)});
            } catch (RuntimeException e) {
                // No SparkFiles folder in this JVM (yet): fall through to the explicit settings.
            }
        }
        String property = System.getProperty(PROPERTY);
        if (notBlank(property)) out.add(new String[] {"-D" + PROPERTY, property.trim()});
        if (env != null) {
            SparkConf conf = env.conf();
            if (conf.contains(SPARK_CONF) && notBlank(conf.get(SPARK_CONF))) {
                out.add(new String[] {
                    "--conf " + SPARK_CONF, conf.get(SPARK_CONF).trim()
                });
            }
        }
        String variable = System.getenv(ENVIRONMENT);
        if (notBlank(variable)) out.add(new String[] {ENVIRONMENT, variable.trim()});
        if (env != null && env.conf().contains("spark.files")) {
            for (String entry : env.conf().get("spark.files").split(",")) {
                String path = entry.trim().replaceFirst("^file:(//)?", "");
                if (path.endsWith("/" + FILE_NAME)) out.add(new String[] {"--files (driver)", path});
            }
        }
        return out;
    }

    private static boolean notBlank(String s) {
        return s != null && !s.trim().isEmpty();
    }

    static String host() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.io.IOException e) {
            return "this node";
        }
    }

    /** Plans {@code blocks} time blocks of {@code input} and creates the shared output array (or
     *  checks that an existing one matches the plan); returns the plan as JSON. */
    public static String plan(String input, String model, String output, int blocks, String settingsJson) {
        load();
        return planBlocks(request(input, model, output, blocks, settingsJson).toString());
    }

    /** Denoises block {@code index} of {@code blocks} into the prepared output; a block already
     *  complete is skipped, a half-written one is written again. Returns a JSON report. */
    public static String denoise(
            String input, String model, String output, int index, int blocks, String settingsJson) {
        load();
        ObjectNode request = request(input, model, output, blocks, settingsJson);
        request.put("index", index);
        return denoiseBlock(request.toString());
    }

    /** Which blocks of {@code output} are complete, as JSON. */
    public static String status(String output) {
        load();
        return blockStatus(output);
    }

    /** One block call's request: what the Fiji door's requests are, built with the JSON library Spark ships. */
    private static ObjectNode request(String input, String model, String output, int blocks, String settingsJson) {
        ObjectNode request = JSON.createObjectNode();
        request.put("input", input);
        request.put("model", model);
        request.put("output", output);
        request.put("blocks", blocks);
        if (settingsJson != null && !settingsJson.trim().isEmpty()) {
            try {
                request.set("settings", JSON.readTree(settingsJson));
            } catch (JsonProcessingException e) {
                throw DeepCadException.usage(
                        "block settings are not valid JSON (" + e.getOriginalMessage() + "): " + settingsJson);
            }
        }
        return request;
    }

    private static native String planBlocks(String requestJson);

    private static native String denoiseBlock(String requestJson);

    private static native String blockStatus(String output);
}
