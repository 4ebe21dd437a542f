package org.deepcad.fiji;

/**
 * The bit depth of denoised results. Automatic keeps the input's depth unless the data are so dim
 * that rounding to integers would throw away part of the denoising gain (then 32-bit float).
 */
public final class OutputChoice {
    public static final String AUTOMATIC = "Automatic";
    public static final String SAME_AS_INPUT = "Same as input";
    public static final String FLOAT32 = "32-bit float";

    private OutputChoice() {}

    /** The choice for an engine name ("auto", "input", "float32"), e.g. the engine's default output type. */
    public static String choice(String engineName) {
        if ("input".equals(engineName)) return SAME_AS_INPUT;
        if ("float32".equals(engineName)) return FLOAT32;
        if ("auto".equals(engineName)) return AUTOMATIC;
        throw DeepCadException.usage("Unknown output type '" + engineName + "'.");
    }

    /** The engine's name for a choice ("auto", "input", "float32"). */
    public static String engineName(String choice) {
        if (choice == null || AUTOMATIC.equals(choice)) return "auto";
        if (SAME_AS_INPUT.equals(choice)) return "input";
        if (FLOAT32.equals(choice)) return "float32";
        throw DeepCadException.usage("Unknown output type '" + choice + "': choose '" + AUTOMATIC + "', '"
                + SAME_AS_INPUT + "' or '" + FLOAT32 + "'.");
    }
}
