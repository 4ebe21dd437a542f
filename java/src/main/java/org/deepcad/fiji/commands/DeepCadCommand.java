package org.deepcad.fiji.commands;

import ij.IJ;
import ij.macro.Interpreter;
import org.deepcad.fiji.CommandProgress;
import org.deepcad.fiji.DeepCadException;
import org.deepcad.fiji.LossPlot;
import org.scijava.app.StatusService;
import org.scijava.command.ContextCommand;
import org.scijava.log.LogService;
import org.scijava.plugin.Parameter;
import org.scijava.prefs.PrefService;
import org.scijava.task.TaskService;
import org.scijava.ui.UIService;

/**
 * What every DeepCAD command shares: its services and how it fails. Menu weights 1-5 keep the
 * submenu in the README's order (Train first) instead of alphabetical.
 *
 * <p>Every user parameter is declared {@code required = false} and checked here instead: SciJava
 * cancels a command whose required input is unset before {@code run()}, silently (the reason is
 * logged at debug level only), so a headless {@code --run} or a macro that forgot a key did nothing
 * and said nothing. A failure is logged as one line that names the problem, stops the IJ1 macro
 * that called the command (the macro would otherwise carry on without the result) and is rethrown
 * for programmatic callers. A headless command-line run in which a command failed exits with status 1
 * ({@link HeadlessExitStatus}).
 */
public abstract class DeepCadCommand extends ContextCommand {
    @Parameter
    protected LogService log;

    @Parameter(required = false)
    protected StatusService status;

    @Parameter(required = false)
    protected PrefService prefs;

    @Parameter(required = false)
    protected UIService ui;

    @Parameter(required = false)
    protected TaskService tasks;

    @Override
    public final void run() {
        try {
            execute();
        } catch (DeepCadException e) {
            if (e.isCancelled()) {
                if (!isCanceled()) cancel(e.getMessage());
                log.info("DeepCAD: " + getCancelReason());
                return;
            }
            fail(e.getMessage());
            throw e;
        } catch (RuntimeException e) {
            fail("unexpected error (please report it): " + e);
            throw e;
        }
    }

    /** The command's work; throws {@link DeepCadException} with a message that says what to do. */
    protected abstract void execute();

    private void fail(String message) {
        log.error("DeepCAD: " + message);
        HeadlessExitStatus exitStatus =
                getContext() == null ? null : getContext().getService(HeadlessExitStatus.class);
        if (exitStatus != null) exitStatus.failed(message);
        if (IJ.isMacro()) {
            Interpreter macro = Interpreter.getInstance();
            try {
                // Shows "Macro Error: <message> in line n" and stops the macro at the failed run("...").
                if (macro != null) macro.abort("DeepCAD: " + message);
            } catch (RuntimeException macroCanceled) {
                // abort(...) also throws "Macro canceled" on whichever thread calls it; ours carries on.
            }
        }
    }

    /** Progress to the status bar, the log, the task monitor (with its cancel) and Esc. */
    protected CommandProgress progress(String what, LossPlot plot) {
        return new CommandProgress(
                this, status, log, plot, tasks == null ? null : tasks.createTask("DeepCAD: " + what));
    }

    protected boolean headless() {
        return ui != null ? ui.isHeadless() : java.awt.GraphicsEnvironment.isHeadless();
    }
}
