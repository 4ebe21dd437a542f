package org.deepcad.fiji.commands;

import com.google.gson.JsonObject;
import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.WindowManager;
import ij.io.FileInfo;
import ij.plugin.FileInfoVirtualStack;
import java.io.File;
import java.util.ArrayList;
import java.util.List;
import org.deepcad.fiji.CommandProgress;
import org.deepcad.fiji.DeepCadException;
import org.deepcad.fiji.DeepCadNative;
import org.deepcad.fiji.DeepCadRuntime;
import org.deepcad.fiji.DeepCadSettings;
import org.deepcad.fiji.DeviceChoice;
import org.deepcad.fiji.EngineDefaults;
import org.deepcad.fiji.EventRestorationChoice;
import org.deepcad.fiji.ModelChoice;
import org.deepcad.fiji.Movie;
import org.deepcad.fiji.OutputChoice;
import org.deepcad.fiji.ResultFile;
import org.deepcad.fiji.TilingChoice;
import org.deepcad.fiji.VirtualOutput;
import org.scijava.ItemIO;
import org.scijava.ItemVisibility;
import org.scijava.command.Command;
import org.scijava.plugin.Menu;
import org.scijava.plugin.Parameter;
import org.scijava.plugin.Plugin;

/**
 * Denoises the current movie into a new image "&lt;title&gt;-denoised" with the same dimensions, bit
 * depth (32-bit when the data are too dim for it, or on request) and calibration. Channels (and the slices of a slices-and-frames
 * hyperstack) are denoised one after the other.
 *
 * <p>A virtual stack (a movie larger than memory, e.g. opened with File &gt; Import &gt; TIFF Virtual
 * Stack) is never loaded: the engine pulls its planes one at a time and streams the result into a
 * TIFF file (the "Output file", or "&lt;title&gt;-denoised.tif" beside the source, see
 * {@link VirtualOutput}), which is then shown as a virtual stack too.
 */
@Plugin(
        type = Command.class,
        menu = {
            @Menu(label = "Plugins"),
            @Menu(label = "DeepCAD"),
            @Menu(label = "Denoise with DeepCAD model", weight = 2)
        },
        headless = true)
public class DenoiseCommand extends DeepCadCommand {
    @Parameter(
            label = "Movie",
            description = "A grayscale stack or hyperstack; time = frames, or slices when there is one frame",
            required = false)
    private ImagePlus input;

    // Unset (null) until chosen: a model file given without a choice means that file; nothing at all
    // means the built-in general model, so a first run gets a result without training.
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
            description =
                    "Automatic: the input's bit depth, or 32-bit float when the data are too dim for it (rounding would throw away part of the denoising gain)")
    private String output_type;

    // A path as text, not a File: SciJava pops up a file chooser for a lone unset File input, which
    // would interrupt every macro or script call that leaves this optional field empty.
    @Parameter(
            label = "Output file (optional)",
            required = false,
            persist = false,
            description = "Also save the denoised movie as this TIFF (the way to keep a result in headless runs). "
                    + "Virtual stacks are always written to a file: this one, or when empty <title>-denoised.tif beside "
                    + "the source file (never overwriting an existing file), and opened from it")
    private String output_file = "";

    @Parameter(
            label = "Tiling",
            choices = {TilingChoice.SEAMLESS, TilingChoice.DEEPCAD_RT, TilingChoice.DEEPCAD_RT_2021},
            required = false,
            persist = false,
            callback = "tilingChanged",
            description =
                    "Seamless: the whole-movie result, no tile borders. The DeepCAD-RT choices reproduce the official "
                            + "test pipelines exactly (a DeepCAD-RT model then gives its authors' numbers, tile seams included)")
    private String tiling = TilingChoice.SEAMLESS;

    // The official pipelines' own settings, grouped under a heading that says when they apply (this
    // SciJava's Swing dialog cannot hide fields): the tiling's callback rewrites it when the tiling
    // changes in the dialog. A message is neither a macro key nor recorded.
    @Parameter(visibility = ItemVisibility.MESSAGE, label = "", required = false, persist = false)
    private String official_heading = TilingChoice.heading(TilingChoice.SEAMLESS);

    @Parameter(
            label = "Official pipeline patch (t,y,x)",
            required = false,
            persist = false,
            description = "Only for the DeepCAD-RT choices: their patch size (DeepCAD-RT's default)")
    private String official_patch;

    @Parameter(
            label = "Official pipeline overlap",
            required = false,
            persist = false,
            min = "0",
            max = "0.95",
            stepSize = "0.05",
            description =
                    "Only for the DeepCAD-RT choices: the overlap factor between patches (DeepCAD-RT's demo value)")
    private double official_overlap = Double.NaN;

    @Parameter(
            label = EventRestorationChoice.LABEL,
            choices = {EventRestorationChoice.AUTOMATIC, EventRestorationChoice.ALWAYS, EventRestorationChoice.NEVER},
            required = false,
            persist = false,
            description = EventRestorationChoice.DESCRIPTION + ". Not with the DeepCAD-RT tilings")
    private String restore_events = EventRestorationChoice.AUTOMATIC;

    @Parameter(
            label = "Replace an existing output file",
            required = false,
            persist = false,
            description = "Allow replacing a file that already exists at 'Output file' (never the source movie)")
    private boolean replace_existing = false;

    @Parameter(type = ItemIO.OUTPUT, label = "Denoised movie")
    private ImagePlus output;

    @Override
    protected void useEngineDefaults(EngineDefaults defaults) {
        device = shownDevice(device);
        if (model == null || model.trim().isEmpty()) model = ModelChoice.defaultChoice(model_file);
        if (output_type == null) output_type = OutputChoice.choice(defaults.outputType);
        if (official_patch == null) official_patch = defaults.officialPatch;
        if (Double.isNaN(official_overlap)) official_overlap = defaults.officialOverlap;
        official_heading = TilingChoice.heading(tiling);
    }

    /** Dialog callback: a model file picked means "use that file". */
    @SuppressWarnings("unused")
    private void modelFileChosen() {
        if (model_file != null && !model_file.getPath().isEmpty()) model = ModelChoice.FILE;
    }

    /** Dialog callback: the heading above the official pipeline's fields says whether they apply. */
    @SuppressWarnings("unused")
    private void tilingChanged() {
        official_heading = TilingChoice.heading(tiling);
    }

    @Override
    protected void execute() {
        String sampleType = Movie.sampleType(input);
        File saveTo = output_file == null || output_file.trim().isEmpty() ? null : new File(output_file.trim());
        // The output check asks the engine (its output rules), so the library is loaded first: in a fresh
        // Fiji whose first DeepCAD command is this one, the native call would otherwise be unlinked.
        DeepCadRuntime.start(prefs, log);
        if (saveTo != null && !input.getStack().isVirtual()) ResultFile.checkWritable(saveTo, input, replace_existing);
        String modelPath = ModelChoice.enginePath(model, model_file);
        String outputType = OutputChoice.engineName(output_type);
        String chosenDevice = DeepCadSettings.effectiveDevice(device, prefs);
        CommandProgress progress = progress("denoising " + input.getTitle(), null);
        if (input.getStack().isVirtual()) {
            try {
                denoiseVirtual(sampleType, modelPath, chosenDevice, outputType, progress);
            } catch (DeepCadException e) {
                if (!e.isCancelled()) throw e;
                cancel("Denoising was cancelled; no output image was made.");
            } finally {
                progress.finish();
            }
            return;
        }
        ImageStack result = Movie.emptyLike(input);
        Object[] planes = new Object[input.getStackSize()];
        int movies = Movie.movieCount(input);
        try {
            for (int m = 0; m < movies; m++) {
                if (movies > 1)
                    log.info("DeepCAD: denoising movie " + (m + 1) + " of " + movies + " in " + input.getTitle());
                int[] indices = Movie.stackIndices(input, m);
                Object[] denoised = DeepCadNative.denoise(
                        modelPath,
                        chosenDevice,
                        Movie.planes(input, indices),
                        input.getWidth(),
                        input.getHeight(),
                        sampleType,
                        settingsJson(false),
                        outputType,
                        progress);
                for (int t = 0; t < indices.length; t++) planes[indices[t] - 1] = denoised[t];
            }
        } catch (DeepCadException e) {
            if (!e.isCancelled()) throw e;
            cancel("Denoising was cancelled; no output image was made.");
            return;
        } finally {
            progress.finish();
        }
        // A per-movie model may find one channel too dim for integers and another not: one type for all.
        Movie.toCommonType(planes, input.getWidth(), input.getHeight());
        for (int i = 0; i < planes.length; i++) result.setPixels(planes[i], i + 1);
        output = Movie.result(input, result);
        if (saveTo != null) {
            ResultFile.save(output, saveTo, replace_existing);
            log.info("DeepCAD: " + output.getTitle() + " saved to " + saveTo);
        }
        showForHeadlessMacro();
    }

    /**
     * Headless, a command's output image is only logged, never registered with ImageJ, so a macro
     * could neither select nor save it. Inside a macro we register it ourselves (a headless macro
     * runs in batch mode: show() adds the image to the macro's images without any window).
     */
    private void showForHeadlessMacro() {
        if (!headless() || !IJ.isMacro()) return;
        output.show();
        // In batch mode show() also makes the image this thread's "current image", and this is a
        // pooled SciJava thread: a later command on it would take this result as the active image
        // instead of the one the macro selected. The macro's own current image is left as it was.
        WindowManager.setTempCurrentImage(null);
    }

    /**
     * Streams each movie of the virtual input into its output file (planes pulled one at a time
     * on this thread) and opens the result as a virtual stack. On failure or cancel, the files
     * this run finished are removed again, so nothing half-made is left behind.
     */
    private void denoiseVirtual(
            String sampleType, String modelPath, String chosenDevice, String outputType, CommandProgress progress) {
        File target = output_file != null && !output_file.trim().isEmpty()
                ? new File(output_file.trim())
                : VirtualOutput.besideSource(input);
        ImageStack stack = input.getStack();
        FileInfo[] planes = new FileInfo[stack.getSize()];
        int movies = Movie.movieCount(input);
        List<File> written = new ArrayList<>();
        boolean complete = false;
        try {
            for (int m = 0; m < movies; m++) {
                int[] indices = Movie.stackIndices(input, m);
                File file = VirtualOutput.movieFile(target, input, m);
                log.info("DeepCAD: denoising " + input.getTitle()
                        + (movies > 1 ? " (movie " + (m + 1) + " of " + movies + ")" : "") + " plane by plane into "
                        + file);
                String report = DeepCadNative.denoiseToFile(
                        modelPath,
                        chosenDevice,
                        t -> stack.getPixels(indices[t]),
                        indices.length,
                        input.getWidth(),
                        input.getHeight(),
                        sampleType,
                        settingsJson(replace_existing),
                        outputType,
                        file.getPath(),
                        VirtualOutput.sourcePath(input),
                        VirtualOutput.calibrationJson(input),
                        progress);
                written.add(file);
                VirtualOutput.addPlanes(planes, indices, report, file);
            }
            complete = true;
        } finally {
            if (!complete) for (File file : written) file.delete();
        }
        output = Movie.result(input, new FileInfoVirtualStack(planes));
        showForHeadlessMacro();
    }

    private String settingsJson(boolean overwrite) {
        JsonObject json = TilingChoice.settings(
                tiling, official_patch, official_overlap, DeepCadSettings.memoryBytes(prefs), overwrite);
        json.addProperty("restore_events", EventRestorationChoice.engineName(restore_events));
        return json.toString();
    }

    public ImagePlus output() {
        return output;
    }
}
