package org.deepcad.fiji.commands;

import ij.IJ;
import ij.macro.Interpreter;
import java.util.List;
import org.deepcad.fiji.CommandProgress;
import org.deepcad.fiji.DeepCadException;
import org.deepcad.fiji.DeepCadNative;
import org.deepcad.fiji.DeepCadRuntime;
import org.deepcad.fiji.DeepCadSettings;
import org.deepcad.fiji.DeviceChoice;
import org.deepcad.fiji.EngineDefaults;
import org.deepcad.fiji.LossPlot;
import org.scijava.Initializable;
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
 *
 * <p>Defaults come from the engine ({@link EngineDefaults}), through an initializer: a parameter with
 * an engine default starts unset ({@link EngineDefaults#UNSET}, {@code NaN} or {@code null}) and
 * {@link #initialize()}, which SciJava's InitPreprocessor calls after the macro options, the
 * {@code --run} keys or the caller's inputs are set and before the dialog, fills what is still unset;
 * {@code run()} does the same for callers that skip preprocessing. (A field initialiser cannot call
 * the engine: the library may not be loadable yet, and a failure there would surface as SciJava's
 * instantiation error instead of this command's "DeepCAD: ..." line.) The library is therefore loaded
 * before the dialog opens, and one that cannot be loaded fails the command there, with its message,
 * as any other failure. The {@code device} input is shown as its entry in the device list
 * ({@link org.deepcad.fiji.DeviceWidget}: this machine's devices).
 */
public abstract class DeepCadCommand extends ContextCommand implements Initializable {
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

    private boolean prepared;

    /** Loads the library and fills the inputs still unset with the engine's defaults; once, before the dialog. */
    @Override
    public void initialize() {
        try {
            prepareOnce();
        } catch (DeepCadException e) {
            fail(e.getMessage());
            throw e;
        }
    }

    private void prepareOnce() {
        if (prepared) return;
        prepared = true;
        prepare();
    }

    /** What {@link #initialize()} does (once): the library, then the engine's defaults. */
    protected void prepare() {
        DeepCadRuntime.start(prefs, log);
        useEngineDefaults(EngineDefaults.get());
    }

    /** Fills the inputs still unset (UNSET, NaN, null) with the engine's defaults; the library is loaded. */
    protected void useEngineDefaults(EngineDefaults defaults) {}

    /**
     * A device input as the dialog shows it: its entry in this machine's device list ("cpu" from an
     * older macro is "CPU"); unset or blank, the device saved in DeepCAD settings. A value that names no
     * device here stays as it is, for the engine to refuse with its reason.
     */
    protected final String shownDevice(String given, String devicesJson) {
        List<String> choices = DeviceChoice.choices(devicesJson);
        String value = DeviceChoice.engineName(given) == null
                ? DeviceChoice.label(DeepCadSettings.device(prefs), choices)
                : DeviceChoice.label(given, choices);
        return DeviceChoice.engineName(value) == null ? DeviceChoice.AUTOMATIC : value;
    }

    /** {@link #shownDevice(String, String)} with the engine's device list (the library is loaded). */
    protected final String shownDevice(String given) {
        return shownDevice(given, DeepCadNative.devicesJson());
    }

    @Override
    public final void run() {
        try {
            prepareOnce();
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
