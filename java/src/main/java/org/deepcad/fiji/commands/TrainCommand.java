package org.deepcad.fiji.commands;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import ij.ImagePlus;
import java.io.File;
import org.deepcad.fiji.CommandProgress;
import org.deepcad.fiji.DeepCadException;
import org.deepcad.fiji.DeepCadNative;
import org.deepcad.fiji.DeepCadRuntime;
import org.deepcad.fiji.DeepCadSettings;
import org.deepcad.fiji.DeviceChoice;
import org.deepcad.fiji.EngineDefaults;
import org.deepcad.fiji.LossPlot;
import org.deepcad.fiji.Movie;
import org.deepcad.fiji.VirtualOutput;
import org.scijava.ItemIO;
import org.scijava.command.Command;
import org.scijava.plugin.Attr;
import org.scijava.plugin.Menu;
import org.scijava.plugin.Parameter;
import org.scijava.plugin.Plugin;

/**
 * Trains a DeepCAD model bundle on the current movie, or on TIFF files when input_path is set.
 * The engine writes the bundle after every epoch, so a cancelled run keeps the last finished epoch.
 */
@Plugin(
        type = Command.class,
        menu = {@Menu(label = "Plugins"), @Menu(label = "DeepCAD"), @Menu(label = "Train DeepCAD model", weight = 1)},
        headless = true)
public class TrainCommand extends DeepCadCommand {

    @Parameter(
            label = "Movie",
            required = false,
            description = "The movie to train on (ignored when an input file or folder is given)")
    private ImagePlus input;

    @Parameter(
            label = "Input file or folder",
            style = "both",
            required = false,
            persist = false,
            description = "Train on this TIFF file, or on every TIFF in this folder, instead of the open movie")
    private File input_path;

    @Parameter(
            label = "Model file to write",
            style = "save",
            persist = false,
            description = "Where the model bundle (.safetensors) is written after every epoch",
            required = false)
    private File model_file;

    @Parameter(
            label = "Epochs",
            min = "1",
            persist = false,
            description =
                    "Most epochs to train; training stops earlier when the time limit is reached. Continuing a model on the same movie: the total, so running a stopped training again finishes it")
    private int epochs = EngineDefaults.UNSET;

    @Parameter(
            label = "Time limit (minutes)",
            min = "0",
            persist = false,
            description = "Stop training after this many minutes (0 = no limit); the epoch under way is saved, "
                    + "and the best epoch is kept beside the model as <name>.best.safetensors")
    private double time_limit_minutes = Double.NaN;

    @Parameter(
            label = "Patch frames (t)",
            min = "8",
            stepSize = "8",
            persist = false,
            description = "Frames per training patch; a multiple of 8")
    private int patch_t = EngineDefaults.UNSET;

    @Parameter(
            label = "Patch size (x and y)",
            min = "8",
            stepSize = "8",
            persist = false,
            description = "Pixels per training patch side; a multiple of 8")
    private int patch_xy = EngineDefaults.UNSET;

    @Parameter(
            label = "Network base width",
            min = "1",
            max = "256",
            persist = false,
            description = "16 = DeepCAD-RT (fast), 64 = DeepCAD (larger)")
    private int base_width = EngineDefaults.UNSET;

    @Parameter(
            label = "Start from the built-in model",
            required = false,
            persist = false,
            description =
                    "Fine-tune the built-in general model (learns much faster) instead of starting from random weights; needs base width 16")
    private Boolean start_from_built_in;

    @Parameter(
            label = "Self-supervision",
            choices = {"interlaced", "hybrid", "masked"},
            required = false,
            persist = false,
            description =
                    "interlaced: DeepCAD's (each frame predicted from the frames around it; events shorter than the "
                            + "frame spacing are smoothed). hybrid (experimental): also a blind spot on the frame "
                            + "itself, meant to keep such events (not yet better in our tests); slower. masked "
                            + "(experimental): learns hidden pixels from consecutive frames, the frame itself "
                            + "included; denoises as fast as interlaced (not yet better in our tests). The model "
                            + "remembers its method")
    private String method;

    @Parameter(label = "Patches per epoch", min = "1", persist = false)
    private int patches_per_epoch = EngineDefaults.UNSET;

    @Parameter(
            label = "Learning rate",
            min = "0",
            stepSize = "0.0001",
            persist = false,
            description = "Peak Adam learning rate on normalised data (it warms up, then decays on a cosine)")
    private double learning_rate = Double.NaN;

    @Parameter(
            label = "Device",
            style = DeviceChoice.STYLE,
            required = false,
            persist = false,
            description = DeviceChoice.DESCRIPTION)
    private String device;

    @Parameter(
            label = "Replace an existing model file",
            required = false,
            persist = false,
            description =
                    "Allow training to replace a file that already exists at the model path (never an input movie)")
    private boolean replace_existing = false;

    @Parameter(
            label = "Continue from model",
            style = "open",
            required = false,
            persist = false,
            description = "Optional: a bundle whose weights and epoch count training continues from")
    private File resume_from;

    @Parameter(
            type = ItemIO.OUTPUT,
            label = "Training report",
            attrs = @Attr(name = UndisplayedOutputs.NO_DISPLAY, value = "true"))
    private String report;

    // Every number above starts unset (EngineDefaults.UNSET, NaN, null) and gets the engine's default
    // unless a macro, a caller or the dialog set it: see DeepCadCommand.
    @Override
    protected void useEngineDefaults(EngineDefaults defaults) {
        device = shownDevice(device);
        if (epochs == EngineDefaults.UNSET) epochs = defaults.epochs;
        if (Double.isNaN(time_limit_minutes)) time_limit_minutes = defaults.timeLimitMinutes;
        if (patch_t == EngineDefaults.UNSET) patch_t = defaults.patchT;
        if (patch_xy == EngineDefaults.UNSET) patch_xy = defaults.patchXy;
        if (base_width == EngineDefaults.UNSET) base_width = defaults.baseWidth;
        if (start_from_built_in == null) start_from_built_in = defaults.startFromBuiltIn;
        if (method == null || method.isEmpty()) method = defaults.method;
        if (patches_per_epoch == EngineDefaults.UNSET) patches_per_epoch = defaults.patchesPerEpoch;
        if (Double.isNaN(learning_rate)) learning_rate = defaults.learningRate;
    }

    @Override
    protected void execute() {
        if (model_file == null)
            throw DeepCadException.usage("No model file: set model_file to the bundle to write (.safetensors).");
        boolean fromFiles = input_path != null && !input_path.getPath().isEmpty();
        String sampleType = fromFiles ? null : Movie.sampleType(input);
        if (!fromFiles && Movie.movieCount(input) > 1) {
            throw DeepCadException.usage("'" + input.getTitle() + "' holds " + Movie.movieCount(input)
                    + " movies (channels or slices besides time); train on one: Image > Color > Split Channels or "
                    + "Image > Duplicate a single channel/slice, or train on files.");
        }
        DeepCadRuntime.start(prefs, log);
        String settings = settingsJson();
        String chosenDevice = DeepCadSettings.effectiveDevice(device, prefs);
        String resume = resume_from == null || resume_from.getPath().isEmpty() ? null : resume_from.getPath();
        LossPlot plot = LossPlot.createIfDisplayed(
                "DeepCAD training loss: " + model_file.getName(), ui == null || ui.isHeadless());
        CommandProgress progress = progress("training " + model_file.getName(), plot);
        try {
            if (fromFiles) {
                report = DeepCadNative.trainFiles(
                        input_path.getPath(), settings, model_file.getPath(), resume, chosenDevice, progress);
            } else {
                int[] indices = Movie.stackIndices(input, 0);
                report = DeepCadNative.train(
                        Movie.planes(input, indices),
                        input.getWidth(),
                        input.getHeight(),
                        sampleType,
                        sourceName(input),
                        settings,
                        model_file.getPath(),
                        resume,
                        chosenDevice,
                        progress);
            }
        } catch (DeepCadException e) {
            if (!e.isCancelled()) throw e;
            cancel("Training was cancelled; " + model_file + " holds the last finished epoch, if any.");
            log.info("DeepCAD: " + getCancelReason());
            return;
        } finally {
            progress.finish();
        }
        int completed = JsonParser.parseString(report)
                .getAsJsonObject()
                .get("epochs_completed")
                .getAsInt();
        log.info("DeepCAD: trained " + completed + " epoch(s); model written to " + model_file);
    }

    /** The training settings the engine lays over its defaults. */
    private String settingsJson() {
        JsonObject json = new JsonObject();
        json.addProperty("epochs", epochs);
        JsonArray patch = new JsonArray();
        patch.add(patch_t);
        patch.add(patch_xy);
        patch.add(patch_xy);
        json.add("patch", patch);
        json.addProperty("base_width", base_width);
        json.addProperty("patches_per_epoch", patches_per_epoch);
        json.addProperty("learning_rate", learning_rate);
        if (time_limit_minutes > 0) json.addProperty("time_budget_seconds", time_limit_minutes * 60);
        json.addProperty("init", start_from_built_in ? "builtin" : "random");
        json.addProperty("method", method);
        json.addProperty("overwrite", replace_existing);
        return json.toString();
    }

    /**
     * How the bundle names an image it was trained on (its training.sources[].path): the title, and
     * the file it was opened from when ImageJ knows it. The bundle's origin says "fiji".
     */
    static String sourceName(ImagePlus image) {
        String file = VirtualOutput.sourcePath(image);
        return "image '" + image.getTitle() + "'" + (file == null ? "" : " from " + file);
    }

    public String report() {
        return report;
    }
}
