package org.deepcad.fiji;

/**
 * Receives the engine's progress on the thread that called into the engine. Phases: a phase name
 * from the engine (for example "denoise" or "train"), {@code "epoch"} at the end of each training
 * epoch (done = epoch, total = epochs, with both losses), {@code "info"} and {@code "warning"}
 * (message only). Losses are NaN where they do not apply.
 */
public interface ProgressListener {
    /** @return false to cancel the call; the engine stops at its next safe point. */
    boolean onEvent(String phase, long done, long total, String message, double trainLoss, double validationLoss);
}
