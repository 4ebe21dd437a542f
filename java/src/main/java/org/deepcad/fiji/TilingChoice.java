package org.deepcad.fiji;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;

/**
 * How a movie is cut into tiles for the network. Seamless (ours) gives the whole-movie result with
 * no tile borders; the two DeepCAD-RT choices reproduce the official test pipelines exactly (their
 * tiling, per-tile brightness factor and output cast), so a DeepCAD-RT model gives the numbers its
 * authors got, tile seams included. The official pipelines hold the whole movie in memory.
 */
public final class TilingChoice {
    public static final String SEAMLESS = "Seamless (DeepCAD)";
    public static final String DEEPCAD_RT = "DeepCAD-RT official pipeline";
    public static final String DEEPCAD_RT_2021 = "DeepCAD-RT 2021 official pipeline";

    private TilingChoice() {}

    /**
     * The heading of the dialog's group of official-pipeline fields (patch, overlap) for the chosen
     * tiling: whether they apply.
     */
    public static String heading(String choice) {
        boolean official = DEEPCAD_RT.equals(choice) || DEEPCAD_RT_2021.equals(choice);
        String text = official
                ? "<b>" + choice + "</b>: its patch and overlap"
                : "<i>DeepCAD-RT official pipelines only (not used with " + SEAMLESS + "):</i>";
        // One line: a wrappable heading made the dialog open with a tall empty band (its height was
        // measured before its width was known).
        return "<html>" + text.replace(" ", "&nbsp;") + "</html>";
    }

    /**
     * The denoise settings JSON for the engine: the memory budget, whether an existing output may
     * be replaced, and for the official pipelines their patch ("t,y,x") and overlap factor.
     */
    public static JsonObject settings(
            String choice, String patch, double overlap, long maxMemoryBytes, boolean overwrite) {
        JsonObject json = new JsonObject();
        json.addProperty("overwrite", overwrite);
        if (maxMemoryBytes > 0) json.addProperty("max_memory_bytes", maxMemoryBytes);
        String pipeline = pipeline(choice);
        if (pipeline != null) {
            JsonObject compat = new JsonObject();
            compat.addProperty("pipeline", pipeline);
            compat.add("patch", patchList(patch));
            compat.addProperty("overlap", overlap);
            json.add("compat", compat);
        }
        return json;
    }

    /** The engine's pipeline name, or null for seamless tiling. */
    static String pipeline(String choice) {
        if (choice == null || SEAMLESS.equals(choice)) return null;
        if (DEEPCAD_RT.equals(choice)) return "deepcad-rt";
        if (DEEPCAD_RT_2021.equals(choice)) return "deepcad-rt-2021";
        throw DeepCadException.usage("Unknown tiling '" + choice + "': choose '" + SEAMLESS + "', '" + DEEPCAD_RT
                + "' or '" + DEEPCAD_RT_2021 + "'.");
    }

    /** "150,150,150" (or one number for all three axes) as a JSON list, checked. */
    static JsonArray patchList(String patch) {
        String[] parts = (patch == null ? "" : patch.trim()).split("\\s*,\\s*");
        if (parts.length == 1) parts = new String[] {parts[0], parts[0], parts[0]};
        if (parts.length != 3)
            throw DeepCadException.usage("Patch '" + patch + "' must be three sizes t,y,x such as 150,150,150.");
        JsonArray list = new JsonArray();
        for (String part : parts) {
            int value;
            try {
                value = Integer.parseInt(part);
            } catch (NumberFormatException e) {
                throw DeepCadException.usage(
                        "Patch '" + patch + "' must be three whole numbers t,y,x such as 150,150,150.");
            }
            if (value < 1) throw DeepCadException.usage("Patch '" + patch + "' must be positive on every axis.");
            list.add(value);
        }
        return list;
    }
}
