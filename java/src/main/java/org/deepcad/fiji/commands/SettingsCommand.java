package org.deepcad.fiji.commands;

import java.io.File;

import org.deepcad.fiji.DeepCadNative;
import org.deepcad.fiji.DeepCadRuntime;
import org.deepcad.fiji.DeepCadSettings;
import org.deepcad.fiji.Json;
import org.deepcad.fiji.NativeLibrary;
import org.scijava.ItemIO;
import org.scijava.plugin.Attr;
import org.scijava.command.Command;
import org.scijava.plugin.Menu;
import org.scijava.plugin.Parameter;
import org.scijava.plugin.Plugin;

/**
 * Saves the device, CPU thread count and native library location used by the other DeepCAD
 * commands, then reports the devices found. A new library path takes effect after a Fiji restart
 * (a JVM loads a native library once).
 */
@Plugin(type = Command.class, menu = {@Menu(label = "Plugins"), @Menu(label = "DeepCAD"), @Menu(label = "DeepCAD settings", weight = 5)}, headless = true)
public class SettingsCommand extends DeepCadCommand {

    @Parameter(label = "Default device", description = "auto (a CUDA GPU when usable, else CPU), cpu, cuda or cuda:N")
    private String device = DeepCadSettings.DEFAULT_DEVICE;

    @Parameter(label = "CPU threads", min = "0", description = "0 = libtorch's default (all cores)")
    private int threads = 0;

    @Parameter(label = "Memory for denoising (MB)", min = "64",
        description = "Working memory of a denoising run (network and frames in flight); the tile size follows from it, "
            + "and frames too large for it are denoised in bands. A run that cannot fit even so is refused with the size it needs.")
    private int memory_mb = DeepCadSettings.DEFAULT_MEMORY_MB;

    @Parameter(label = "Native library (file or folder)", style = "open", required = false,
        description = "Only needed when libdeepcad.so is not in Fiji.app/lib/linux64")
    private File library_path;

    @Parameter(type = ItemIO.OUTPUT, label = "Devices", attrs = @Attr(name = UndisplayedOutputs.NO_DISPLAY, value = "true"))
    private String devices;

    @Override
    protected void execute() {
        String library = library_path == null ? "" : library_path.getPath();
        String before = DeepCadSettings.libraryPath(prefs);
        DeepCadSettings.save(prefs, device.trim(), threads, library);
        DeepCadSettings.saveMemory(prefs, memory_mb);
        if (NativeLibrary.loadedFrom() != null && !library.isEmpty() && !library.equals(before)) {
            log.warn("DeepCAD: the native library is already loaded from " + NativeLibrary.loadedFrom()
                + "; restart Fiji to use " + library + ".");
        }
        DeepCadRuntime.start(prefs, log);
        devices = Json.field(DeepCadNative.devicesJson(), "description");
        log.info("DeepCAD devices:\n" + devices);
    }
}
