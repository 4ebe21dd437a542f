package org.deepcad.fiji;

import org.scijava.Cancelable;
import org.scijava.app.StatusService;
import org.scijava.log.LogService;

/**
 * The engine's progress, as a Fiji user sees it: the status bar and progress bar (StatusService),
 * the log (LogService) and, while training with a display, a live loss plot. Cancelling the
 * command, or interrupting its thread, makes the next event return false, which stops the engine.
 */
public final class CommandProgress implements ProgressListener {
    private final Cancelable command;
    private final StatusService status;
    private final LogService log;
    private final LossPlot plot;

    /** @param plot the live loss plot, or null (headless, or not training) */
    public CommandProgress(Cancelable command, StatusService status, LogService log, LossPlot plot) {
        this.command = command;
        this.status = status;
        this.log = log;
        this.plot = plot;
    }

    @Override
    public boolean onEvent(String phase, long done, long total, String message, double trainLoss,
        double validationLoss)
    {
        switch (phase) {
            case "info":
                if (log != null) log.info(message);
                break;
            case "warning":
                if (log != null) log.warn(message);
                break;
            case "epoch":
                // total 0: the run lasts as long as its time limit allows.
                String of = total > 0 ? "/" + total : "";
                if (log != null) log.info(String.format("epoch %d%s: training loss %.6g, validation loss %.6g (%s)",
                    done, of, trainLoss, validationLoss, message));
                showStatus(done, total, "DeepCAD training: epoch " + done + of);
                if (plot != null) plot.add((int) done, trainLoss, validationLoss);
                break;
            default:
                showStatus(done, total, "DeepCAD " + phase + (message.isEmpty() ? "" : ": " + message));
        }
        return !command.isCanceled() && !Thread.currentThread().isInterrupted();
    }

    private void showStatus(long done, long total, String message) {
        if (status == null) return;
        // StatusService takes ints; scale very large counts so the bar still moves.
        long scale = Math.max(1, total / Integer.MAX_VALUE + 1);
        status.showStatus((int) (done / scale), (int) Math.max(total / scale, 0), message);
    }

    /** Clears the status bar after the call. */
    public void finish() {
        if (status != null) status.clearStatus();
    }
}
