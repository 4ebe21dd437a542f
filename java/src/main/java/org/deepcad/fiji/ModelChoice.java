package org.deepcad.fiji;

import java.io.File;

/**
 * Which model a denoising command uses: the built-in general model (no training needed) or a
 * model file. The engine knows the built-in one by the name {@link #BUILT_IN_NAME}. With nothing
 * chosen, a model file given means that file and no file means the built-in model, so a first run
 * gets a result without training, and a macro that names only {@code model_file} keeps its file.
 */
public final class ModelChoice {
    public static final String FILE = "Model file";
    public static final String BUILT_IN = "Built-in general model";
    /** The model input's help text, the same in every command that has one. */
    public static final String DESCRIPTION = "A model trained on your own movies (best), or the built-in general model "
            + "trained on simulated two-photon movies (no training needed; for detail you can trust, fine-tune on "
            + "your movie: Train with a time budget)";
    /** The model file input's help text. */
    public static final String FILE_DESCRIPTION =
            "A DeepCAD model bundle (.safetensors) from 'Train DeepCAD model' or 'deepcad train'";
    /** The model path that selects the built-in model in the engine. */
    public static final String BUILT_IN_NAME = "default";

    private ModelChoice() {}

    /** The choice when none was made: the file when one is given, else the built-in model. */
    public static String defaultChoice(File modelFile) {
        return modelFile != null && !modelFile.getPath().isEmpty() ? FILE : BUILT_IN;
    }

    /** The path to hand to the engine, or a usage error naming what is missing. */
    public static String enginePath(String choice, File modelFile) {
        if (choice == null || choice.trim().isEmpty()) choice = defaultChoice(modelFile);
        if (BUILT_IN.equals(choice)) return BUILT_IN_NAME;
        if (!FILE.equals(choice)) {
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
