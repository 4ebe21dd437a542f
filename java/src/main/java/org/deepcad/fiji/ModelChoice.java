package org.deepcad.fiji;

import java.io.File;

/**
 * Which model a denoising command uses: the built-in general model (no training needed) or a
 * model file. The engine knows the built-in one by the name {@link #BUILT_IN_NAME}.
 */
public final class ModelChoice {
    public static final String FILE = "Model file";
    public static final String BUILT_IN = "Built-in general model";
    /** The model path that selects the built-in model in the engine. */
    public static final String BUILT_IN_NAME = "default";

    private ModelChoice() {}

    /** The path to hand to the engine, or a usage error naming what is missing. */
    public static String enginePath(String choice, File modelFile) {
        if (BUILT_IN.equals(choice)) return BUILT_IN_NAME;
        if (choice != null && !FILE.equals(choice)) {
            throw DeepCadException.usage(
                    "Unknown model choice '" + choice + "': choose '" + FILE + "' or '" + BUILT_IN + "'.");
        }
        if (modelFile == null) {
            throw DeepCadException.usage("No model file: choose a DeepCAD model bundle (.safetensors), or choose '"
                    + BUILT_IN + "' as the model.");
        }
        return modelFile.getPath();
    }
}
