package org.deepcad.fiji.commands;

import com.google.gson.JsonParser;
import java.io.File;
import org.deepcad.fiji.DeepCadException;
import org.deepcad.fiji.DeepCadNative;
import org.deepcad.fiji.DeepCadRuntime;
import org.deepcad.fiji.DeepCadSettings;
import org.deepcad.fiji.DeviceChoice;
import org.deepcad.fiji.EngineDefaults;
import org.deepcad.fiji.NativeLibrary;
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
 * "device=cpu")} changes the device only. {@code library_path=[]} clears the library path. Unlike the
 * other commands, its dialog opens when the library cannot be loaded (that is when a user comes here to
 * set the library path): the devices are then Automatic and CPU, and the memory 0 (the engine's default).
 */
@Plugin(
        type = Command.class,
        menu = {@Menu(label = "Plugins"), @Menu(label = "DeepCAD"), @Menu(label = "DeepCAD settings", weight = 5)},
        headless = true)
public class SettingsCommand extends DeepCadCommand {
    private static final int UNSET = -1;

    // Unset until prepare() fills what neither the macro options nor the caller gave with the
    // saved setting; persist = false because the saved settings are the memory here, not SciJava's.
    @Parameter(
            label = "Default device",
            style = DeviceChoice.STYLE,
            persist = false,
            description =
                    "Automatic: the first CUDA GPU when usable, else the CPU. The list holds this machine's devices")
    private String device;

    @Parameter(label = "CPU threads", min = "0", persist = false, description = "0 = libtorch's default (all cores)")
    private int threads = UNSET;

    @Parameter(
            label = "Memory for denoising (MB)",
            min = "0",
            persist = false,
            description =
                    "Working memory of a denoising run (network and frames in flight); the tile size follows from it, "
                            + "and frames too large for it are denoised in bands. A run that cannot fit even so is refused with the size it needs. "
                            + "Opens at the saved value or the engine's default; 0 = the engine's default.")
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

    /**
     * Runs once, after the macro options or the caller's inputs are set and before the dialog (and in
     * run() for callers that skip preprocessing; not twice: a library path cleared in the dialog must
     * stay cleared): what nobody gave is the saved setting, or the engine's default.
     */
    @Override
    protected void prepare() {
        if (threads == UNSET) threads = DeepCadSettings.threads(prefs);
        if (library_path == null) {
            String saved = DeepCadSettings.libraryPath(prefs);
            if (saved != null && !saved.isEmpty()) library_path = new File(saved);
        }
        String devicesJson = null;
        EngineDefaults defaults = null;
        try {
            DeepCadRuntime.start(prefs, log);
            devicesJson = DeepCadNative.devicesJson();
            defaults = EngineDefaults.get();
        } catch (DeepCadException e) {
            log.warn("DeepCAD: " + e.getMessage() + " (the settings can be changed all the same)");
        }
        if (memory_mb == UNSET) {
            int saved = DeepCadSettings.savedMemoryMegabytes(prefs);
            memory_mb = saved > 0 ? saved : defaults != null ? defaults.memoryMegabytes : 0;
        }
        // Without the engine the devices offered are Automatic and CPU.
        device = shownDevice(device, devicesJson != null ? devicesJson : "{\"devices\": [\"cpu\"]}");
    }

    @Override
    protected void execute() {
        if (threads < 0)
            throw DeepCadException.usage("CPU threads must be 0 (libtorch's default) or more, not " + threads + ".");
        if (memory_mb != 0 && memory_mb < 64)
            throw DeepCadException.usage(
                    "Memory for denoising must be at least 64 MB (or 0 for the engine's default), not " + memory_mb
                            + ".");
        String library = library_path == null ? "" : library_path.getPath();
        String before = DeepCadSettings.libraryPath(prefs);
        String chosen = DeviceChoice.engineName(device);
        DeepCadSettings.save(prefs, chosen == null ? DeepCadSettings.DEFAULT_DEVICE : chosen, threads, library);
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
