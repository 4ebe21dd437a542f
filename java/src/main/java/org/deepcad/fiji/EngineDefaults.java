package org.deepcad.fiji;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.ArrayList;
import java.util.List;

/**
 * The engine's own defaults ({@link DeepCadNative#defaultsJson()}: its {@code TrainSettings},
 * {@code DenoiseSettings}, the official pipelines' tiling and the output suffix), read once per JVM.
 * The dialogs and every command that leaves a setting unset use these, so no engine default is
 * repeated as a Java constant: a default changed in the engine changes in Fiji too.
 *
 * <p>How they reach the {@code @Parameter} fields: a SciJava parameter's default is its field's
 * value, and a field initialiser cannot call the engine (the library may not be loadable yet, and
 * a failure there would surface as SciJava's instantiation error instead of the command's own
 * "DeepCAD: ..." message). So the fields start unset ({@link #UNSET}, {@code NaN} or {@code null})
 * and {@code DeepCadCommand.initialize()}, which SciJava's InitPreprocessor calls after the macro
 * options or the caller's inputs are set and before the dialog, fills the ones still unset from
 * this holder (and {@code run()} does the same for callers that skip preprocessing).
 */
public final class EngineDefaults {
    /** An int parameter nobody set (every one of them is positive when set). */
    public static final int UNSET = -1;

    private static EngineDefaults loaded;

    // Training (TrainSettings::default()).
    public final int epochs;
    public final int patchT;
    public final int patchXy;
    public final int baseWidth;
    public final int patchesPerEpoch;
    public final double learningRate;
    public final boolean startFromBuiltIn;
    /** The self-supervision a new training uses ("interlaced", "hybrid" or "masked"). */
    public final String method;
    /** The training time budget in minutes, 0 for none. */
    public final double timeLimitMinutes;
    // Denoising (DenoiseSettings::default()).
    public final int memoryMegabytes;
    /** The engine's name of the default output type ("auto"). */
    public final String outputType;
    // DeepCAD-RT's official pipeline ("deepcad-rt"), its defaults as the dialog's fields spell them.
    public final String officialPatch;
    public final double officialOverlap;
    /** What a denoised movie's name gets ("-denoised"). */
    public final String suffix;
    /** The engine's words for the settings the dialogs offer as choices ("method", "output_type"...). */
    private final JsonObject words;

    private EngineDefaults(JsonObject json) {
        JsonObject train = json.getAsJsonObject("train");
        JsonArray patch = train.getAsJsonArray("patch");
        epochs = train.get("epochs").getAsInt();
        patchT = patch.get(0).getAsInt();
        patchXy = patch.get(1).getAsInt();
        baseWidth = train.get("base_width").getAsInt();
        patchesPerEpoch = train.get("patches_per_epoch").getAsInt();
        learningRate = train.get("learning_rate").getAsDouble();
        startFromBuiltIn = "builtin".equals(train.get("init").getAsString());
        method = train.get("method").getAsString();
        JsonElement budget = train.get("time_budget_seconds");
        timeLimitMinutes = budget == null || budget.isJsonNull() ? 0 : budget.getAsDouble() / 60;
        JsonObject denoise = json.getAsJsonObject("denoise");
        memoryMegabytes = (int) (denoise.get("max_memory_bytes").getAsLong() >> 20);
        outputType = denoise.get("output_type").getAsString();
        JsonObject official = json.getAsJsonObject("official_pipeline").getAsJsonObject("deepcad-rt");
        JsonArray officialPatchList = official.getAsJsonArray("patch");
        officialPatch = officialPatchList.get(0).getAsInt() + ","
                + officialPatchList.get(1).getAsInt() + ","
                + officialPatchList.get(2).getAsInt();
        // The factor as the engine derives its gaps from it, rounded to the dialog's precision.
        officialOverlap = Math.round(official.get("overlap").getAsDouble() * 1e6) / 1e6;
        suffix = json.get("suffix").getAsString();
        words = json.getAsJsonObject("words");
    }

    /**
     * The words the engine accepts for {@code setting} ("method", "output_type", "official_pipeline",
     * "precision"), in its order. A SciJava choice list is fixed at compile time, so the dialogs keep
     * theirs and the tests check them against these.
     */
    public List<String> words(String setting) {
        List<String> list = new ArrayList<>();
        for (JsonElement word : words.getAsJsonArray(setting)) list.add(word.getAsString());
        return list;
    }

    /**
     * The engine's defaults. Loads the library from the default places when no command has loaded it
     * yet (commands load it first with the saved settings, {@link DeepCadRuntime#start}).
     *
     * @throws DeepCadException when the library cannot be loaded
     */
    public static synchronized EngineDefaults get() {
        if (loaded == null) {
            if (NativeLibrary.loadedFrom() == null) NativeLibrary.load(null);
            loaded = new EngineDefaults(
                    JsonParser.parseString(DeepCadNative.defaultsJson()).getAsJsonObject());
        }
        return loaded;
    }
}
