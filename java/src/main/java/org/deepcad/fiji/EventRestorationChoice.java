package org.deepcad.fiji;

/**
 * The "Restore fast events" field that both denoise commands show (engine setting restore_events):
 * Automatic measures how fast the movie's events decay and restores them when they last only a few
 * frames; Always and Never decide without looking.
 */
public final class EventRestorationChoice {
    public static final String LABEL = "Restore fast events";
    public static final String AUTOMATIC = "Automatic";
    public static final String ALWAYS = "Always";
    public static final String NEVER = "Never";

    public static final String DESCRIPTION = "Add back the brief, cell-shaped events (decaying within a few "
            + "frames) that denoising removes with the noise, where the movie shows cells: for spike inference with "
            + "fast indicators or low frame rates. Automatic does so when the movie's events decay that fast (it "
            + "needs 300 frames to tell, and says in the log what it found); restoring costs some picture quality "
            + "in dim movies";

    private EventRestorationChoice() {}

    /**
     * The engine's word for a choice ("auto", "on", "off"). Macros recorded when the field was a
     * checkbox say true or false.
     */
    public static String engineName(String choice) {
        if (choice == null || AUTOMATIC.equals(choice)) return "auto";
        if (ALWAYS.equals(choice) || "true".equals(choice)) return "on";
        if (NEVER.equals(choice) || "false".equals(choice)) return "off";
        throw DeepCadException.usage("Unknown choice '" + choice + "' for " + LABEL + ": choose '" + AUTOMATIC + "', '"
                + ALWAYS + "' or '" + NEVER + "'.");
    }
}
