package org.deepcad.fiji;

/** The words of the "Restore fast events" field that both denoise commands show (engine setting restore_events). */
public final class EventRestorationChoice {
    public static final String LABEL = "Restore fast events";

    public static final String DESCRIPTION = "Add back the brief, cell-shaped events (shorter than the time between "
            + "frames) that denoising removes with the noise: for fast indicators at low frame rates. Costs a little "
            + "picture quality on slow indicators in dim movies";

    private EventRestorationChoice() {}
}
