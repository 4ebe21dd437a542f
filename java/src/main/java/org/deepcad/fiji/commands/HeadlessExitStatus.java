package org.deepcad.fiji.commands;

import java.awt.GraphicsEnvironment;
import java.util.LinkedList;
import java.util.concurrent.atomic.AtomicInteger;
import org.scijava.Priority;
import org.scijava.console.AbstractConsoleArgument;
import org.scijava.console.ConsoleArgument;
import org.scijava.plugin.Parameter;
import org.scijava.plugin.Plugin;
import org.scijava.service.AbstractService;
import org.scijava.service.Service;
import org.scijava.ui.UIService;

/**
 * Makes a headless command-line Fiji run ({@code --headless} with {@code -macro}, {@code -batch} or
 * {@code --run}) exit with status 1 when a DeepCAD command failed in it, so that a
 * batch script or a cluster job sees the failure in {@code $?}.
 *
 * <p>Fiji's launcher cannot do this by itself: {@code net.imagej.Main} returns normally whatever the
 * commands did (status 0), and ImageJ's {@code -batch} handling, which Fiji's launcher adds to every
 * headless run, ends with {@code System.exit(0)}. Both dispose of the SciJava context first, so the
 * decision is taken here, when the context disposes of this service: the last one, as this service
 * comes first. {@code System.exit(1)} then runs the JVM's shutdown hooks as any exit does (saved
 * settings are written, running native calls are cancelled).
 *
 * <p>Only a context that processed command-line arguments (see {@link CommandLine}) and is headless
 * exits: Fiji's GUI, a script inside Fiji, pyimagej or an application embedding a context are never
 * ended by this class. A cancelled command is not a failure.
 */
@Plugin(type = Service.class, priority = Priority.FIRST)
public class HeadlessExitStatus extends AbstractService {
    /** The exit status of a headless command-line run in which a DeepCAD command failed. */
    public static final int FAILED = 1;

    private final AtomicInteger failures = new AtomicInteger();
    private volatile String firstFailure;
    private volatile boolean commandLine;

    /** A DeepCAD command failed with this message. */
    public void failed(String message) {
        if (failures.getAndIncrement() == 0) firstFailure = message;
    }

    public int failures() {
        return failures.get();
    }

    /** Whether this context was started from a command line (its arguments were processed). */
    public boolean startedFromCommandLine() {
        return commandLine;
    }

    @Override
    public void dispose() {
        if (!commandLine || failures.get() == 0 || !headless()) return;
        int n = failures.get();
        // Written straight to stderr: the log service may already be disposed of.
        System.err.println("[ERROR] DeepCAD: " + (n == 1 ? "a command" : n + " commands")
                + " failed in this headless run (" + firstFailure + "); exiting with status " + FAILED + ".");
        System.err.flush();
        System.exit(FAILED);
    }

    private boolean headless() {
        UIService ui = getContext() == null ? null : getContext().getService(UIService.class);
        return GraphicsEnvironment.isHeadless() || (ui != null && ui.isHeadless());
    }

    /**
     * Notes that the context is processing command-line arguments. It handles none: SciJava's
     * console service asks every argument plugin, highest priority first, whether it handles the
     * arguments left, and this one answers no after taking note.
     */
    @Plugin(type = ConsoleArgument.class, priority = Priority.FIRST)
    public static class CommandLine extends AbstractConsoleArgument {
        @Parameter(required = false)
        private HeadlessExitStatus status;

        @Override
        public boolean supports(LinkedList<String> args) {
            if (status != null) status.commandLine = true;
            return false;
        }

        @Override
        public void handle(LinkedList<String> args) {
            // Never called: supports() is always false.
        }
    }
}
