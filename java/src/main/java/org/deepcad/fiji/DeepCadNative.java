package org.deepcad.fiji;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

/**
 * The native entry points of libdeepcad (see {@code src/jni} in the Rust crate). Call
 * {@link NativeLibrary#load} first. Every method throws {@link DeepCadException} on failure; none
 * of them can bring the JVM down because of its arguments.
 *
 * <p>Pixel data travels as one primitive array per frame ({@code byte[]} for "u8",
 * {@code short[]} for "u16", {@code float[]} for "f32"), which is exactly how an ImageJ
 * {@code ImageStack} holds its planes, so no concatenated copy is made on the Java side.
 * Settings are JSON objects holding only the keys to change from the engine's defaults. Each long
 * call crosses JNI as its pixels (or plane source), one request JSON (built here with Gson) and the
 * progress listener.
 *
 * <p>The long calls (denoise, train) go through {@link NativeCalls}: a JVM that exits while one runs
 * stops it and waits for it to return before libtorch is torn down.
 */
public final class DeepCadNative {
    private DeepCadNative() {}

    /** The engine's version, e.g. "deepcad 0.1.0". */
    public static native String version();

    /** JSON: {"version", "cuda_available", "devices": [...], "description", "threads", "libtorch_dir"}. */
    public static native String devicesJson();

    /**
     * The engine's defaults as JSON (src/jni/defaults.rs): {"train": its TrainSettings, "denoise": its
     * DenoiseSettings ("tile", "batch_size", "max_memory_bytes", "output_type", ...), "official_pipeline": {"deepcad-rt" and
     * "deepcad-rt-2021": {"patch", "gap", "overlap"}}, "suffix"}. Read through {@link EngineDefaults}.
     */
    public static native String defaultsJson();

    /** Sets libtorch's CPU thread count for this process (0 leaves it unchanged). */
    public static native void setThreads(int threads);

    /** The model bundle's metadata as JSON, without loading its weights. */
    public static native String modelInfoJson(String modelPath);

    /**
     * The engine's output rules for a file this door writes itself: throws a {@link DeepCadException}
     * when {@code output} is {@code input} (may be null), exists and {@code overwrite} is false, or is
     * anything but a regular file (a device, a pipe, a folder), which is never replaced.
     */
    public static void checkOutput(String output, String input, boolean overwrite) {
        JsonObject request = new JsonObject();
        request.addProperty("output", output);
        JsonArray inputs = new JsonArray();
        if (input != null) inputs.add(input);
        request.add("inputs", inputs);
        request.addProperty("overwrite", overwrite);
        checkOutput0(request.toString());
    }

    private static native void checkOutput0(String requestJson);

    /**
     * Denoises one movie. {@code planes[t]} holds frame t ({@code width*height} samples of
     * {@code sampleType}). {@code modelPath} "default" is the built-in model. {@code outputType} is
     * "auto", "input" or "float32" (see {@link OutputChoice}). Returns one new array per frame: of
     * the input type, or {@code float[]} when the output type resolved to 32-bit float.
     */
    public static Object[] denoise(
            String modelPath,
            String device,
            Object[] planes,
            int width,
            int height,
            String sampleType,
            String settingsJson,
            String outputType,
            ProgressListener listener) {
        JsonObject request = denoiseRequest(modelPath, device, settingsJson, outputType);
        addPlaneShape(request, width, height, sampleType);
        try (NativeCalls.Call call = NativeCalls.enter()) {
            return denoise0(planes, request.toString(), call.listener(listener));
        }
    }

    private static native Object[] denoise0(Object[] planes, String requestJson, ProgressListener listener);

    /**
     * Denoises a movie read one plane at a time from {@code planes} (see {@link PlaneSource}) into
     * a TIFF at {@code outputPath}, streaming: neither the movie nor the result is held whole.
     * {@code sourcePath} (may be null) is the file the planes come from, never overwritten;
     * {@code calibrationJson} (may be null) holds pixel_width, pixel_height, pixel_depth, unit,
     * frame_interval, time_unit for the output file. Returns a JSON report: output, frames, width,
     * height, sample_type, data_offset and frame_bytes (frame t's little-endian samples start at
     * data_offset + t*frame_bytes, as the engine's writer put them), tile, seconds. A crash or
     * cancel leaves nothing under {@code outputPath}.
     */
    public static String denoiseToFile(
            String modelPath,
            String device,
            PlaneSource planes,
            int frames,
            int width,
            int height,
            String sampleType,
            String settingsJson,
            String outputType,
            String outputPath,
            String sourcePath,
            String calibrationJson,
            ProgressListener listener) {
        JsonObject request = denoiseRequest(modelPath, device, settingsJson, outputType);
        request.addProperty("frames", frames);
        addPlaneShape(request, width, height, sampleType);
        request.addProperty("output", outputPath);
        request.addProperty("source", sourcePath);
        request.add("calibration", settings(calibrationJson, "calibration"));
        try (NativeCalls.Call call = NativeCalls.enter()) {
            return denoiseToFile0(planes, request.toString(), call.listener(listener));
        }
    }

    private static native String denoiseToFile0(PlaneSource planes, String requestJson, ProgressListener listener);

    /** Denoises TIFF files (a file or a folder of them) into a folder, streaming; returns a JSON report. */
    public static String denoiseFiles(
            String modelPath,
            String device,
            String inputPath,
            String outputFolder,
            String settingsJson,
            String outputType,
            ProgressListener listener) {
        JsonObject request = denoiseRequest(modelPath, device, settingsJson, outputType);
        request.addProperty("input", inputPath);
        request.addProperty("output_folder", outputFolder);
        try (NativeCalls.Call call = NativeCalls.enter()) {
            return denoiseFiles0(request.toString(), call.listener(listener));
        }
    }

    private static native String denoiseFiles0(String requestJson, ProgressListener listener);

    /**
     * Trains a model bundle on one movie held in memory and writes it to {@code outputPath};
     * {@code resumePath} may be null. Returns the training report as JSON.
     */
    public static String train(
            Object[] planes,
            int width,
            int height,
            String sampleType,
            String sourceName,
            String settingsJson,
            String outputPath,
            String resumePath,
            String device,
            ProgressListener listener) {
        JsonObject request = trainingRequest(settingsJson, outputPath, resumePath, device);
        addPlaneShape(request, width, height, sampleType);
        request.addProperty("source_name", sourceName);
        try (NativeCalls.Call call = NativeCalls.enter()) {
            return train0(planes, request.toString(), call.listener(listener));
        }
    }

    private static native String train0(Object[] planes, String requestJson, ProgressListener listener);

    /** Trains on TIFF files (a file or a folder of them); otherwise like {@link #train}. */
    public static String trainFiles(
            String inputPath,
            String settingsJson,
            String outputPath,
            String resumePath,
            String device,
            ProgressListener listener) {
        JsonObject request = trainingRequest(settingsJson, outputPath, resumePath, device);
        request.addProperty("input", inputPath);
        try (NativeCalls.Call call = NativeCalls.enter()) {
            return trainFiles0(request.toString(), call.listener(listener));
        }
    }

    private static native String trainFiles0(String requestJson, ProgressListener listener);

    /**
     * What every denoise request names besides its input and output (nulls are left out). The output
     * type is one of the engine's denoise settings, so it travels among them.
     */
    private static JsonObject denoiseRequest(String modelPath, String device, String settingsJson, String outputType) {
        JsonObject request = new JsonObject();
        request.addProperty("model", modelPath);
        request.addProperty("device", device);
        JsonElement settings = settings(settingsJson, "denoise settings");
        if (outputType != null && (settings.isJsonNull() || settings.isJsonObject())) {
            JsonObject changes = settings.isJsonObject() ? settings.getAsJsonObject() : new JsonObject();
            changes.addProperty("output_type", outputType);
            settings = changes;
        }
        request.add("settings", settings);
        return request;
    }

    /** The size and sample type of the planes a request hands over. */
    private static void addPlaneShape(JsonObject request, int width, int height, String sampleType) {
        request.addProperty("width", width);
        request.addProperty("height", height);
        request.addProperty("sample_type", sampleType);
    }

    /** What every training request names besides its input. */
    private static JsonObject trainingRequest(
            String settingsJson, String outputPath, String resumePath, String device) {
        JsonObject request = new JsonObject();
        request.add("settings", settings(settingsJson, "training settings"));
        request.addProperty("output", outputPath);
        request.addProperty("resume", resumePath);
        request.addProperty("device", device);
        return request;
    }

    /**
     * A settings object as the engine reads it (keys to change from its defaults), or JSON null
     * for none. Whether the keys and values are right is the engine's to say, in one style for all.
     */
    private static JsonElement settings(String json, String what) {
        if (json == null || json.trim().isEmpty()) return JsonNull.INSTANCE;
        try {
            return JsonParser.parseString(json);
        } catch (JsonParseException e) {
            throw DeepCadException.usage(what + " are not valid JSON (" + e.getMessage() + "): " + json);
        }
    }

    /**
     * The engine's simulated calcium-imaging movie: {@code {float[] clean, float[] noisy}}, each
     * frames*height*width values. The JSON holds the simulator settings to change (width, height,
     * frames, neurons, photons, seed...).
     */
    public static native Object[] simulate(String configJson);

    // Live denoising (src/jni/live.rs), used through LiveDenoiser.

    static native long liveOpen0(String requestJson, int width, int height, String sampleType);

    static native Object[] livePush0(long handle, Object plane, int width, int height, String sampleType);

    static native Object[] liveFinish0(long handle);

    static native long[] liveStatus0(long handle);

    static native String liveNormalization0(long handle);

    static native void liveClose0(long handle);
}
