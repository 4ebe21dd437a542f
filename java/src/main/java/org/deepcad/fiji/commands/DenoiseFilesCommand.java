package org.deepcad.fiji.commands;

import com.google.gson.JsonObject;
import java.io.File;
import org.deepcad.fiji.CommandProgress;
import org.deepcad.fiji.DeepCadException;
import org.deepcad.fiji.DeepCadNative;
import org.deepcad.fiji.DeepCadRuntime;
import org.deepcad.fiji.DeepCadSettings;
import org.deepcad.fiji.DeviceChoice;
import org.deepcad.fiji.EngineDefaults;
import org.deepcad.fiji.EventRestorationChoice;
import org.deepcad.fiji.ModelChoice;
import org.deepcad.fiji.OutputChoice;
import org.deepcad.fiji.TilingChoice;
import org.scijava.ItemIO;
import org.scijava.command.Command;
import org.scijava.plugin.Attr;
import org.scijava.plugin.Menu;
import org.scijava.plugin.Parameter;
import org.scijava.plugin.Plugin;

/**
 * Denoises a TIFF file, or every TIFF in a folder, into an output folder. The engine streams the
 * movies frame by frame, so they need not fit in memory; this is the command for headless batches.
 * It handles files exactly as {@code deepcad denoise} does: a multi-channel file needs a channel
 * choice (channel here = {@code --channel} + 1: ImageJ counts channels from 1), and a run in which any
 * file could not be denoised fails, naming how many, after writing the others.
 */
@Plugin(
        type = Command.class,
        menu = {
            @Menu(label = "Plugins"),
            @Menu(label = "DeepCAD"),
            @Menu(label = "Denoise files with DeepCAD model", weight = 3)
        },
        headless = true)
public class DenoiseFilesCommand extends DeepCadCommand {

    @Parameter(label = "Input file or folder", style = "both", persist = false, required = false)
    private File input_path;

    @Parameter(
            label = "Output folder",
            style = "directory",
            persist = false,
            description =
                    "Denoised files are written here as <name>-denoised.tif; an existing file is refused unless replacing is allowed",
            required = false)
    private File output_folder;

    @Parameter(
            label = EventRestorationChoice.LABEL,
            choices = {EventRestorationChoice.AUTOMATIC, EventRestorationChoice.ALWAYS, EventRestorationChoice.NEVER},
            required = false,
            persist = false,
            description = EventRestorationChoice.DESCRIPTION)
    private String restore_events = EventRestorationChoice.AUTOMATIC;

    @Parameter(
            label = "Replace existing output files",
            required = false,
            persist = false,
            description =
                    "Allow replacing <name>-denoised.tif files that already exist in the output folder (never an input)")
    private boolean replace_existing = false;

    // Unset (null) until chosen: a model file given means that file, none the built-in model.
    @Parameter(
            label = "Model",
            choices = {ModelChoice.FILE, ModelChoice.BUILT_IN},
            persist = false,
            required = false,
            description = ModelChoice.DESCRIPTION)
    private String model;

    @Parameter(
            label = "Model file",
            style = "open",
            persist = false,
            required = false,
            callback = "modelFileChosen",
            description = ModelChoice.FILE_DESCRIPTION)
    private File model_file;

    @Parameter(
            label = "Device",
            style = DeviceChoice.STYLE,
            required = false,
            persist = false,
            description = DeviceChoice.DESCRIPTION)
    private String device;

    @Parameter(
            label = "Output type",
            choices = {OutputChoice.AUTOMATIC, OutputChoice.SAME_AS_INPUT, OutputChoice.FLOAT32},
            required = false,
            persist = false,
            description = "Automatic: each input's bit depth, or 32-bit float when the data are too dim for it")
    private String output_type;

    @Parameter(
            label = "Channel (multi-channel files)",
            min = "0",
            required = false,
            persist = false,
            description =
                    "Which channel of multi-channel (hyperstack) files to denoise: 1 for the first (C1), as ImageJ counts; "
                            + "0 = none (a multi-channel file is then refused, naming this option). Denoise with DeepCAD model, on an open "
                            + "image, denoises every channel")
    private int channel = 0;

    @Parameter(
            label = "Slice (files with slices and frames)",
            min = "0",
            required = false,
            persist = false,
            description =
                    "Which z slice of files with both slices and frames to denoise over time: 1 for the first; 0 = none")
    private int slice = 0;

    @Parameter(
            type = ItemIO.OUTPUT,
            label = "Report",
            attrs = @Attr(name = UndisplayedOutputs.NO_DISPLAY, value = "true"))
    private String report;

    @Override
    protected void useEngineDefaults(EngineDefaults defaults) {
        device = shownDevice(device);
        if (model == null || model.trim().isEmpty()) model = ModelChoice.defaultChoice(model_file);
        if (output_type == null) output_type = OutputChoice.choice(defaults.outputType);
    }

    /** Dialog callback: a model file picked means "use that file". */
    @SuppressWarnings("unused")
    private void modelFileChosen() {
        if (model_file != null && !model_file.getPath().isEmpty()) model = ModelChoice.FILE;
    }

    @Override
    protected void execute() {
        if (input_path == null)
            throw DeepCadException.usage("No input: set input_path to a TIFF file or a folder of TIFFs.");
        if (output_folder == null) throw DeepCadException.usage("No output folder: set output_folder.");
        String modelPath = ModelChoice.enginePath(model, model_file);
        String outputType = OutputChoice.engineName(output_type);
        DeepCadRuntime.start(prefs, log);
        CommandProgress progress = progress("denoising files", null);
        try {
            report = DeepCadNative.denoiseFiles(
                    modelPath,
                    DeepCadSettings.effectiveDevice(device, prefs),
                    input_path.getPath(),
                    output_folder.getPath(),
                    settingsJson(),
                    outputType,
                    progress);
        } catch (DeepCadException e) {
            if (!e.isCancelled()) throw e;
            cancel("Denoising was cancelled; finished files stay in " + output_folder + ".");
            return;
        } finally {
            progress.finish();
        }
        // Each file's line was logged as it finished; the JSON report is for scripts (module output).
        log.info("DeepCAD: finished; the denoised files are in " + output_folder);
    }

    /**
     * The engine's settings, with the channel and slice as the engine (and the command line's
     * --channel/--slice) count them: from 0.
     */
    private String settingsJson() {
        if (channel < 0 || slice < 0)
            throw DeepCadException.usage(
                    "channel and slice count from 1 (0 = none chosen), not " + Math.min(channel, slice) + ".");
        JsonObject json = TilingChoice.settings(
                TilingChoice.SEAMLESS, null, 0, DeepCadSettings.memoryBytes(prefs), replace_existing);
        json.addProperty("restore_events", EventRestorationChoice.engineName(restore_events));
        if (channel > 0) json.addProperty("channel", channel - 1);
        if (slice > 0) json.addProperty("slice", slice - 1);
        return json.toString();
    }

    public String report() {
        return report;
    }
}
