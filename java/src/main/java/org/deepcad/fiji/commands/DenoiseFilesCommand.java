package org.deepcad.fiji.commands;

import java.io.File;

import org.deepcad.fiji.CommandProgress;
import org.deepcad.fiji.DeepCadException;
import org.deepcad.fiji.DeepCadNative;
import org.deepcad.fiji.DeepCadRuntime;
import org.deepcad.fiji.DeepCadSettings;
import org.scijava.ItemIO;
import org.scijava.app.StatusService;
import org.scijava.command.Command;
import org.scijava.command.ContextCommand;
import org.scijava.log.LogService;
import org.scijava.plugin.Parameter;
import org.scijava.plugin.Plugin;
import org.scijava.prefs.PrefService;

/**
 * Denoises a TIFF file, or every TIFF in a folder, into an output folder. The engine streams the
 * movies frame by frame, so they need not fit in memory; this is the command for headless batches.
 */
@Plugin(type = Command.class, menuPath = "Plugins>DeepCAD>Denoise files with DeepCAD model", headless = true)
public class DenoiseFilesCommand extends ContextCommand {
    @Parameter
    private LogService log;
    @Parameter
    private StatusService status;
    @Parameter(required = false)
    private PrefService prefs;

    @Parameter(label = "Input file or folder", style = "both", persist = false)
    private File input_path;

    @Parameter(label = "Output folder", style = "directory", persist = false,
        description = "Denoised files are written here as <name>-denoised.tif; existing files are not overwritten")
    private File output_folder;

    @Parameter(label = "Model file", style = "open", persist = false)
    private File model_file;

    @Parameter(label = "Device", required = false, persist = false,
        description = "auto, cpu, cuda or cuda:N; empty = the device saved in DeepCAD settings")
    private String device = "";

    @Parameter(label = "32-bit output", required = false, persist = false)
    private boolean float32_output = false;

    @Parameter(type = ItemIO.OUTPUT, label = "Report")
    private String report;

    @Override
    public void run() {
        if (input_path == null) throw DeepCadException.usage("No input: set input_path to a TIFF file or a folder of TIFFs.");
        if (output_folder == null) throw DeepCadException.usage("No output folder: set output_folder.");
        if (model_file == null) throw DeepCadException.usage("No model file: set model_file to a DeepCAD model bundle.");
        DeepCadRuntime.start(prefs, log);
        CommandProgress progress = new CommandProgress(this, status, log, null);
        try {
            report = DeepCadNative.denoiseFiles(model_file.getPath(), DeepCadSettings.effectiveDevice(device, prefs),
                input_path.getPath(), output_folder.getPath(), "{}", float32_output, progress);
        } catch (DeepCadException e) {
            if (!e.isCancelled()) throw e;
            cancel("Denoising was cancelled; finished files stay in " + output_folder + ".");
            return;
        } finally {
            progress.finish();
        }
        log.info("DeepCAD: " + report);
    }

    public String report() {
        return report;
    }
}
