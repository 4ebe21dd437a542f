package org.deepcad.fiji;

/**
 * The native entry points of libdeepcad (see {@code src/jni} in the Rust crate). Call
 * {@link NativeLibrary#load} first. Every method throws {@link DeepCadException} on failure; none
 * of them can bring the JVM down because of its arguments.
 *
 * <p>Pixel data travels as one primitive array per frame ({@code byte[]} for "u8",
 * {@code short[]} for "u16", {@code float[]} for "f32"), which is exactly how an ImageJ
 * {@code ImageStack} holds its planes, so no concatenated copy is made on the Java side.
 * Settings are JSON objects holding only the keys to change from the engine's defaults.
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

    /** Sets libtorch's CPU thread count for this process (0 leaves it unchanged). */
    public static native void setThreads(int threads);

    /** The model bundle's metadata as JSON, without loading its weights. */
    public static native String modelInfoJson(String modelPath);

    /**
     * Denoises one movie. {@code planes[t]} holds frame t ({@code width*height} samples of
     * {@code sampleType}). {@code modelPath} "default" is the built-in model. {@code outputType} is
     * "auto", "input" or "float32" (see {@link OutputChoice}). Returns one new array per frame: of
     * the input type, or {@code float[]} when the output type resolved to 32-bit float.
     */
    public static Object[] denoise(String modelPath, String device, Object[] planes, int width,
        int height, String sampleType, String settingsJson, String outputType,
        ProgressListener listener)
    {
        try (NativeCalls.Call call = NativeCalls.enter()) {
            return denoise0(modelPath, device, planes, width, height, sampleType, settingsJson, outputType,
                call.listener(listener));
        }
    }

    private static native Object[] denoise0(String modelPath, String device, Object[] planes, int width,
        int height, String sampleType, String settingsJson, String outputType,
        ProgressListener listener);

    /**
     * Denoises a movie read one plane at a time from {@code planes} (see {@link PlaneSource}) into
     * a TIFF at {@code outputPath}, streaming: neither the movie nor the result is held whole.
     * {@code sourcePath} (may be null) is the file the planes come from, never overwritten;
     * {@code calibrationJson} (may be null) holds pixel_width, pixel_height, pixel_depth, unit,
     * frame_interval, time_unit for the output file. Returns a JSON report: output, frames, width,
     * height, sample_type, data_offset and frame_bytes (frame t's little-endian samples start at
     * data_offset + t*frame_bytes), tile, seconds. A crash or cancel leaves nothing under
     * {@code outputPath}.
     */
    public static String denoiseToFile(String modelPath, String device, PlaneSource planes, int frames,
        int width, int height, String sampleType, String settingsJson, String outputType, String outputPath,
        String sourcePath, String calibrationJson, ProgressListener listener)
    {
        try (NativeCalls.Call call = NativeCalls.enter()) {
            return denoiseToFile0(modelPath, device, planes, frames, width, height, sampleType, settingsJson,
                outputType, outputPath, sourcePath, calibrationJson, call.listener(listener));
        }
    }

    private static native String denoiseToFile0(String modelPath, String device, PlaneSource planes, int frames,
        int width, int height, String sampleType, String settingsJson, String outputType, String outputPath,
        String sourcePath, String calibrationJson, ProgressListener listener);

    /** Denoises TIFF files (a file or a folder of them) into a folder, streaming; returns a JSON report. */
    public static String denoiseFiles(String modelPath, String device, String inputPath,
        String outputFolder, String settingsJson, String outputType, ProgressListener listener)
    {
        try (NativeCalls.Call call = NativeCalls.enter()) {
            return denoiseFiles0(modelPath, device, inputPath, outputFolder, settingsJson, outputType, call.listener(listener));
        }
    }

    private static native String denoiseFiles0(String modelPath, String device, String inputPath,
        String outputFolder, String settingsJson, String outputType, ProgressListener listener);

    /**
     * Trains a model bundle on one movie held in memory and writes it to {@code outputPath};
     * {@code resumePath} may be null. Returns the training report as JSON.
     */
    public static String train(Object[] planes, int width, int height, String sampleType,
        String sourceName, String settingsJson, String outputPath, String resumePath, String device,
        ProgressListener listener)
    {
        try (NativeCalls.Call call = NativeCalls.enter()) {
            return train0(planes, width, height, sampleType, sourceName, settingsJson, outputPath, resumePath, device,
                call.listener(listener));
        }
    }

    private static native String train0(Object[] planes, int width, int height, String sampleType,
        String sourceName, String settingsJson, String outputPath, String resumePath, String device,
        ProgressListener listener);

    /** Trains on TIFF files (a file or a folder of them); otherwise like {@link #train}. */
    public static String trainFiles(String inputPath, String settingsJson, String outputPath,
        String resumePath, String device, ProgressListener listener)
    {
        try (NativeCalls.Call call = NativeCalls.enter()) {
            return trainFiles0(inputPath, settingsJson, outputPath, resumePath, device, call.listener(listener));
        }
    }

    private static native String trainFiles0(String inputPath, String settingsJson, String outputPath,
        String resumePath, String device, ProgressListener listener);

    /**
     * The engine's simulated calcium-imaging movie: {@code {float[] clean, float[] noisy}}, each
     * frames*height*width values. The JSON holds the simulator settings to change (width, height,
     * frames, neurons, photons, seed...).
     */
    public static native Object[] simulate(String configJson);
}
