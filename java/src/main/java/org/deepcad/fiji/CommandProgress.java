package org.deepcad.fiji;

import ij.IJ;
import org.scijava.Cancelable;
import org.scijava.app.StatusService;
import org.scijava.log.LogService;
import org.scijava.task.Task;

/**
 * The engine's progress, as a Fiji user sees it: the status bar and progress bar (StatusService),
 * the log (LogService), a task in Fiji's task monitor and, while training with a display, a live
 * loss plot. Cancelling the command (the task monitor's cancel, Esc, or a script), or interrupting
 * its thread, makes the next event return false, which stops the engine.
 */
public final class CommandProgress implements ProgressListener {
    private final Cancelable command;
    private final StatusService status;
    private final LogService log;
    private final LossPlot plot;
    private final Task task;

    /** @param plot the live loss plot, or null (headless, or not training) */
    public CommandProgress(Cancelable command, StatusService status, LogService log, LossPlot plot) {
        this(command, status, log, plot, null);
    }

    /**
     * @param task the SciJava task shown in Fiji's task monitor (its cancel button cancels the
     *     command), or null
     */
    public CommandProgress(Cancelable command, StatusService status, LogService log, LossPlot plot, Task task) {
        this.command = command;
        this.status = status;
        this.log = log;
        this.plot = plot;
        this.task = task;
        // A stale Esc from before this run must not cancel it; a new one does (ImageJ's convention).
        IJ.resetEscape();
        if (task != null) {
            task.setCancelCallBack(() -> command.cancel("Cancelled from the task monitor."));
            task.start();
        }
    }

    @Override
    public boolean onEvent(
            String phase, long done, long total, String message, double trainLoss, double validationLoss) {
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
                if (log != null)
                    log.info(String.format(
                            "epoch %d%s: training loss %.6g, validation loss %.6g (%s)",
                            done, of, trainLoss, validationLoss, message));
                showStatus(done, total, "DeepCAD training: epoch " + done + of);
                if (plot != null) plot.add((int) done, trainLoss, validationLoss);
                break;
            default:
                showStatus(done, total, "DeepCAD " + phase + (message.isEmpty() ? "" : ": " + message));
        }
        if (task != null && total > 0) {
            task.setProgressMaximum(total);
            task.setProgressValue(done);
        }
        if (IJ.escapePressed() && !command.isCanceled()) command.cancel("Cancelled with Esc.");
        return !command.isCanceled() && !Thread.currentThread().isInterrupted();
    }

    private void showStatus(long done, long total, String message) {
        if (task != null) task.setStatusMessage(message);
        if (status == null) return;
        // StatusService takes ints; scale very large counts so the bar still moves.
        long scale = Math.max(1, total / Integer.MAX_VALUE + 1);
        status.showStatus((int) (done / scale), (int) Math.max(total / scale, 0), message);
    }

    /** Clears the status bar after the call. */
    public void finish() {
        if (status != null) status.clearStatus();
        if (task != null) task.finish();
    }
}
