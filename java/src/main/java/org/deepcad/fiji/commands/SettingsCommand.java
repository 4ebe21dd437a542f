package org.deepcad.fiji.commands;

import com.google.gson.JsonParser;
import java.io.File;
import org.deepcad.fiji.DeepCadException;
import org.deepcad.fiji.DeepCadNative;
import org.deepcad.fiji.DeepCadRuntime;
import org.deepcad.fiji.DeepCadSettings;
import org.deepcad.fiji.NativeLibrary;
import org.scijava.Initializable;
import org.scijava.ItemIO;
import org.scijava.command.Command;
import org.scijava.plugin.Attr;
import org.scijava.plugin.Menu;
import org.scijava.plugin.Parameter;
import org.scijava.plugin.Plugin;

/**
 * Saves the device, CPU thread count and native library location used by the other DeepCAD
 * commands, then reports the devices found. A new library path takes effect after a Fiji restart
 * (a JVM loads a native library once).
 *
 * <p>The dialog opens with the current settings, and a key a macro or {@code --run} leaves out keeps
 * its current setting (as ImageJ's own settings dialogs do): {@code run("DeepCAD settings",
 * "device=cpu")} changes the device only. {@code library_path=[]} clears the library path.
 */
@Plugin(
        type = Command.class,
        menu = {@Menu(label = "Plugins"), @Menu(label = "DeepCAD"), @Menu(label = "DeepCAD settings", weight = 5)},
        headless = true)
public class SettingsCommand extends DeepCadCommand implements Initializable {
    private static final int UNSET = -1;

    // Unset until initialize() fills what neither the macro options nor the caller gave with the
    // saved setting; persist = false because the saved settings are the memory here, not SciJava's.
    @Parameter(
            label = "Default device",
            persist = false,
            description = "auto (a CUDA GPU when usable, else CPU), cpu, cuda or cuda:N")
    private String device;

    @Parameter(label = "CPU threads", min = "0", persist = false, description = "0 = libtorch's default (all cores)")
    private int threads = UNSET;

    @Parameter(
            label = "Memory for denoising (MB)",
            min = "64",
            persist = false,
            description =
                    "Working memory of a denoising run (network and frames in flight); the tile size follows from it, "
                            + "and frames too large for it are denoised in bands. A run that cannot fit even so is refused with the size it needs.")
    private int memory_mb = UNSET;

    @Parameter(
            label = "Native library (file or folder)",
            style = "open",
            required = false,
            persist = false,
            description = "Only needed when libdeepcad.so is not in Fiji.app/lib/linux64")
    private File library_path;

    @Parameter(
            type = ItemIO.OUTPUT,
            label = "Devices",
            attrs = @Attr(name = UndisplayedOutputs.NO_DISPLAY, value = "true"))
    private String devices;

    private boolean initialized;

    /** Runs after the macro options or the caller's inputs are set, before the dialog. */
    @Override
    public void initialize() {
        initialized = true;
        if (device == null) device = DeepCadSettings.device(prefs);
        if (threads == UNSET) threads = DeepCadSettings.threads(prefs);
        if (memory_mb == UNSET) memory_mb = DeepCadSettings.memoryMegabytes(prefs);
        if (library_path == null) {
            String saved = DeepCadSettings.libraryPath(prefs);
            if (saved != null && !saved.isEmpty()) library_path = new File(saved);
        }
    }

    @Override
    protected void execute() {
        // A caller that skipped preprocessing (process = false) gets the saved values too. Not run
        // twice: a library path cleared in the dialog must stay cleared.
        if (!initialized) initialize();
        if (threads < 0)
            throw DeepCadException.usage("CPU threads must be 0 (libtorch's default) or more, not " + threads + ".");
        if (memory_mb < 64)
            throw DeepCadException.usage("Memory for denoising must be at least 64 MB, not " + memory_mb + ".");
        String library = library_path == null ? "" : library_path.getPath();
        String before = DeepCadSettings.libraryPath(prefs);
        DeepCadSettings.save(prefs, device.trim(), threads, library);
        DeepCadSettings.saveMemory(prefs, memory_mb);
        if (NativeLibrary.loadedFrom() != null && !library.isEmpty() && !library.equals(before)) {
            log.warn("DeepCAD: the native library is already loaded from " + NativeLibrary.loadedFrom()
                    + "; restart Fiji to use " + library + ".");
        }
        DeepCadRuntime.start(prefs, log);
        devices = JsonParser.parseString(DeepCadNative.devicesJson())
                .getAsJsonObject()
                .get("description")
                .getAsString();
        log.info("DeepCAD devices:\n" + devices);
    }
}
