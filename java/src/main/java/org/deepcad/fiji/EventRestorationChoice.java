package org.deepcad.fiji;

/** The words of the "Restore fast events" field that both denoise commands show (engine setting restore_events). */
public final class EventRestorationChoice {
    public static final String LABEL = "Restore fast events";

    public static final String DESCRIPTION = "Add back the brief, cell-shaped events (shorter than the time between "
            + "frames) that denoising removes with the noise, where the movie shows cells: for spike inference with "
            + "fast indicators at low frame rates. Costs some picture quality in dim movies";

    private EventRestorationChoice() {}
}
