package org.deepcad.spark;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.api.java.JavaSparkContext;
import org.deepcad.fiji.DeepCadException;

/**
 * {@code spark-submit --class org.deepcad.spark.DenoiseBlocks deepcad-spark.jar INPUT MODEL OUTPUT BLOCKS}:
 * denoises a movie (Zarr or TIFF) in BLOCKS time blocks, one Spark task per block, into one shared
 * Zarr array. The driver asks the engine for the plan (which also creates the output array); each
 * task asks the engine to denoise its block. The union of the blocks is bit-identical to the
 * whole-movie result. A failed task is retried by Spark: a finished block is skipped, a half-written
 * one is written again, so re-running the whole job after a crash only does what is missing.
 */
public final class DenoiseBlocks {
    static final String USAGE = "usage: spark-submit --class org.deepcad.spark.DenoiseBlocks deepcad-spark.jar "
            + "INPUT MODEL OUTPUT BLOCKS [--threads N] [--settings JSON] [--summary FILE]\n"
            + "  INPUT     a Zarr v3 array or TIFF movie every executor can read\n"
            + "  MODEL     a model bundle (.safetensors) every executor can read, or 'default' (built in)\n"
            + "  OUTPUT    the Zarr array to write (shared storage)\n"
            + "  BLOCKS    number of time blocks (tasks)\n"
            + "  --threads N      libtorch threads per task (default: spark.task.cpus, i.e. 1)\n"
            + "  --settings JSON  engine denoise settings, e.g. {\"tile\":[64,96,96]}\n"
            + "  --summary FILE   also write the run's summary (JSON) there\n"
            + "The native library: --files /path/libdeepcad.so, or --conf spark.deepcad.library=PATH.";

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * glibc settings for executor JVMs, the ones the CLI applies to itself with mallopt
     * ({@code device::tune_allocator_for_throughput}): keep freed activation buffers mapped instead
     * of zeroing fresh pages for every layer. The library never changes a JVM's allocator, so
     * executors get them from their environment, unless the user set these variables. One
     * 580-frame block of 128x128 on one thread: 69.3 s (14.1 s system) without, 48.7 s (1.1 s) with,
     * as the CLI. In local mode the executor is the driver JVM: export them before spark-submit.
     */
    static final String[][] EXECUTOR_ALLOCATOR = {
        {"MALLOC_MMAP_THRESHOLD_", "1073741824"},
        {"MALLOC_TRIM_THRESHOLD_", "1073741824"},
        {"MALLOC_ARENA_MAX", "2"},
    };

    /** What every task needs to know; shipped to executors with the closure. */
    public static final class Job implements Serializable {
        private static final long serialVersionUID = 1L;
        public final String input;
        public final String model;
        public final String output;
        public final int blocks;
        /** The JSON the native entry points take (settings plus threads), or null for the defaults. */
        public final String settingsJson;

        public Job(String input, String model, String output, int blocks, String settingsJson) {
            this.input = input;
            this.model = model;
            this.output = output;
            this.blocks = blocks;
            this.settingsJson = settingsJson;
        }
    }

    /** The outcome of one run. */
    public static final class Result {
        public final String planJson;
        public final List<BlockRun> runs;
        public final String statusJson;
        public final boolean complete;
        public final double wallSeconds;
        /** Of the wall time: planning and preparing the output on the driver; the Spark job of the blocks. */
        public final double planSeconds;

        public final double blocksSeconds;
        public final String applicationId;

        Result(
                String planJson,
                List<BlockRun> runs,
                String statusJson,
                boolean complete,
                double wallSeconds,
                double planSeconds,
                double blocksSeconds,
                String applicationId) {
            this.applicationId = applicationId;
            this.planSeconds = planSeconds;
            this.blocksSeconds = blocksSeconds;
            this.planJson = planJson;
            this.runs = runs;
            this.statusJson = statusJson;
            this.complete = complete;
            this.wallSeconds = wallSeconds;
        }

        /** One JSON object: wall time, per-block runs, the engine's plan and status. */
        public String summaryJson() {
            ObjectNode root = JSON.createObjectNode();
            root.put("application_id", applicationId);
            root.put("wall_seconds", wallSeconds);
            root.put("plan_seconds", planSeconds);
            root.put("blocks_seconds", blocksSeconds);
            root.put("complete", complete);
            var blocks = root.putArray("blocks");
            for (BlockRun run : runs) {
                ObjectNode b = blocks.addObject();
                b.put("index", run.index);
                b.put("executor", run.executor);
                b.put("pid", run.pid);
                b.put("library", run.library);
                b.put("seconds", run.seconds);
                b.put("cpu_seconds", run.cpuSeconds);
                b.set("report", parse(run.reportJson));
            }
            root.set("plan", parse(planJson));
            root.set("status", parse(statusJson));
            return root.toString();
        }
    }

    private DenoiseBlocks() {}

    /** Plans on the driver, denoises every block as its own task, and reads back the output's status. */
    public static Result run(JavaSparkContext sc, Job job) {
        long start = System.nanoTime();
        String plan = BlockEngine.plan(job.input, job.model, job.output, job.blocks, job.settingsJson);
        int count = blockCount(plan, job.blocks);
        long planned = System.nanoTime();
        List<Integer> indices = new ArrayList<>();
        for (int i = 0; i < count; i++) indices.add(i);
        sc.setJobDescription("DeepCAD: denoise " + count + " blocks of " + job.input);
        List<BlockRun> runs = new ArrayList<>(sc.parallelize(indices, count)
                .map(i -> denoiseOne(job, i, count))
                .collect());
        long blocksDone = System.nanoTime();
        runs.sort(Comparator.comparingInt(r -> r.index));
        String status = BlockEngine.status(job.output);
        double wall = (System.nanoTime() - start) / 1e9;
        return new Result(
                plan,
                runs,
                status,
                isComplete(status),
                wall,
                (planned - start) / 1e9,
                (blocksDone - planned) / 1e9,
                sc.sc().applicationId());
    }

    /** Runs in a task: one engine call for one block. */
    static BlockRun denoiseOne(Job job, int index, int count) {
        long start = System.nanoTime();
        double cpuStart = processCpuSeconds();
        String report = BlockEngine.denoise(job.input, job.model, job.output, index, count, job.settingsJson);
        double seconds = (System.nanoTime() - start) / 1e9;
        double cpuEnd = processCpuSeconds();
        SparkEnv env = SparkEnv.get();
        return new BlockRun(
                index,
                env == null ? "?" : env.executorId(),
                ProcessHandle.current().pid(),
                BlockEngine.loadedFrom(),
                seconds,
                cpuStart < 0 || cpuEnd < 0 ? -1 : cpuEnd - cpuStart,
                report);
    }

    private static double processCpuSeconds() {
        return ProcessHandle.current()
                .info()
                .totalCpuDuration()
                .map(d -> d.toNanos() / 1e9)
                .orElse(-1.0);
    }

    static int blockCount(String planJson, int requested) {
        JsonNode plan = parse(planJson);
        JsonNode blocks = plan.get("blocks");
        if (blocks != null && blocks.isArray()) return blocks.size();
        if (blocks != null && blocks.isInt()) return blocks.asInt();
        return requested;
    }

    static boolean isComplete(String statusJson) {
        JsonNode status = parse(statusJson);
        JsonNode complete = status.get("complete");
        if (complete != null) return complete.asBoolean();
        JsonNode missing = status.get("missing");
        return missing != null && missing.isArray() && missing.size() == 0;
    }

    static JsonNode parse(String json) {
        try {
            return JSON.readTree(json);
        } catch (IOException e) {
            throw new DeepCadException(
                    "internal", "the engine returned JSON Java cannot read (" + e.getMessage() + "): " + json, e);
        }
    }

    /** The settings JSON for the native calls: the user's settings plus the thread count. */
    static String settingsJson(String userSettings, int threads) {
        ObjectNode settings;
        if (userSettings == null || userSettings.trim().isEmpty()) {
            settings = JSON.createObjectNode();
        } else {
            JsonNode parsed;
            try {
                parsed = JSON.readTree(userSettings);
            } catch (JsonProcessingException e) {
                throw DeepCadException.usage(
                        "--settings is not valid JSON (" + e.getOriginalMessage() + "): " + userSettings);
            }
            if (!parsed.isObject())
                throw DeepCadException.usage("--settings must be a JSON object, got " + userSettings);
            settings = (ObjectNode) parsed;
        }
        if (threads > 0 && !settings.has("threads")) settings.put("threads", threads);
        return settings.size() == 0 ? null : settings.toString();
    }

    public static void main(String[] args) {
        String summaryFile = null;
        String userSettings = null;
        Integer threads = null;
        List<String> positional = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("-h") || a.equals("--help")) {
                System.out.println(USAGE);
                return;
            } else if ((a.equals("--threads") || a.equals("--settings") || a.equals("--summary"))
                    && i + 1 >= args.length) {
                usageExit(a + " needs a value");
            } else if (a.equals("--threads")) {
                threads = positiveInt(args[++i], "--threads");
            } else if (a.equals("--settings")) {
                userSettings = args[++i];
            } else if (a.equals("--summary")) {
                summaryFile = args[++i];
            } else if (a.startsWith("--")) {
                usageExit("unknown option " + a);
            } else {
                positional.add(a);
            }
        }
        if (positional.size() != 4)
            usageExit("expected INPUT MODEL OUTPUT BLOCKS, got " + positional.size() + " arguments");
        int blocks = positiveInt(positional.get(3), "BLOCKS");

        SparkConf conf = new SparkConf().setAppName("DeepCAD denoise " + positional.get(0));
        for (String[] variable : EXECUTOR_ALLOCATOR) {
            if (!conf.contains("spark.executorEnv." + variable[0])) conf.setExecutorEnv(variable[0], variable[1]);
        }
        int exit;
        try (JavaSparkContext sc = new JavaSparkContext(conf)) {
            int perTask =
                    threads != null ? threads : Integer.parseInt(sc.getConf().get("spark.task.cpus", "1"));
            Job job = new Job(
                    absolute(positional.get(0)),
                    model(positional.get(1)),
                    absolute(positional.get(2)),
                    blocks,
                    settingsJson(userSettings, perTask));
            Result result = run(sc, job);
            for (BlockRun run : result.runs) System.out.println(run);
            System.out.printf(
                    Locale.ROOT,
                    "DeepCAD: %d blocks in %.2f s; output %s %s%n",
                    result.runs.size(),
                    result.wallSeconds,
                    job.output,
                    result.complete ? "complete" : "INCOMPLETE: " + result.statusJson);
            String summary = result.summaryJson();
            System.out.println("summary: " + summary);
            if (summaryFile != null) Files.write(Paths.get(summaryFile), summary.getBytes(StandardCharsets.UTF_8));
            exit = result.complete ? 0 : 3;
        } catch (DeepCadException e) {
            System.err.println("DeepCAD (" + e.kind() + "): " + e.getMessage());
            exit = "usage".equals(e.kind()) ? 2 : 1;
        } catch (IOException e) {
            System.err.println("DeepCAD: could not write the summary " + summaryFile + ": " + e.getMessage());
            exit = 1;
        } catch (Exception e) {
            // A task failed more often than Spark retries (the engine's message is in it), or Spark itself failed.
            System.err.println(
                    "DeepCAD: the Spark job failed; what is done stays done, the same command finishes the rest: " + e);
            exit = 1;
        }
        if (exit != 0) System.exit(exit);
    }

    /** Executors run in their own work folders: a relative path means the driver's folder. URIs stay as they are. */
    static String absolute(String path) {
        if (path.contains("://")) return path;
        return Paths.get(path).toAbsolutePath().normalize().toString();
    }

    /** The built-in model's name stays a name; anything else is a path. */
    static String model(String model) {
        return model.equals("default") ? model : absolute(model);
    }

    private static int positiveInt(String text, String what) {
        try {
            int v = Integer.parseInt(text);
            if (v > 0) return v;
        } catch (NumberFormatException e) {
            // reported below
        }
        usageExit(what + " must be a positive whole number, got '" + text + "'");
        return 0;
    }

    private static void usageExit(String message) {
        System.err.println("DeepCAD: " + message + "\n" + USAGE);
        System.exit(2);
    }
}
