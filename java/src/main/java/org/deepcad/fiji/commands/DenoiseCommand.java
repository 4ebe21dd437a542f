package org.deepcad.fiji.commands;

import ij.ImagePlus;
import ij.ImageStack;

import java.io.File;

import org.deepcad.fiji.CommandProgress;
import org.deepcad.fiji.DeepCadException;
import org.deepcad.fiji.DeepCadNative;
import org.deepcad.fiji.DeepCadRuntime;
import org.deepcad.fiji.DeepCadSettings;
import org.deepcad.fiji.Movie;
import org.scijava.ItemIO;
import org.scijava.app.StatusService;
import org.scijava.command.Command;
import org.scijava.command.ContextCommand;
import org.scijava.log.LogService;
import org.scijava.plugin.Parameter;
import org.scijava.plugin.Plugin;
import org.scijava.prefs.PrefService;

/**
 * Denoises the current movie into a new image "&lt;title&gt;-denoised" with the same dimensions, bit
 * depth (or 32-bit on request) and calibration. Channels (and the slices of a slices-and-frames
 * hyperstack) are denoised one after the other.
 */
@Plugin(type = Command.class, menuPath = "Plugins>DeepCAD>Denoise with DeepCAD model", headless = true)
public class DenoiseCommand extends ContextCommand {
    @Parameter
    private LogService log;
    @Parameter
    private StatusService status;
    @Parameter(required = false)
    private PrefService prefs;

    @Parameter(label = "Movie", description = "A grayscale stack or hyperstack; time = frames, or slices when there is one frame")
    private ImagePlus input;

    @Parameter(label = "Model file", style = "open", persist = false,
        description = "A DeepCAD model bundle (.safetensors) from 'Train DeepCAD model' or 'deepcad train'")
    private File model_file;

    @Parameter(label = "Device", required = false, persist = false,
        description = "auto, cpu, cuda or cuda:N; empty = the device saved in DeepCAD settings")
    private String device = "";

    @Parameter(label = "32-bit output", required = false, persist = false,
        description = "Write 32-bit float results instead of the input's bit depth (clipped to its range)")
    private boolean float32_output = false;

    @Parameter(type = ItemIO.OUTPUT, label = "Denoised movie")
    private ImagePlus output;

    @Override
    public void run() {
        String sampleType = Movie.sampleType(input);
        if (model_file == null) throw DeepCadException.usage("No model file: set model_file to a DeepCAD model bundle.");
        DeepCadRuntime.start(prefs, log);
        String chosenDevice = DeepCadSettings.effectiveDevice(device, prefs);
        CommandProgress progress = new CommandProgress(this, status, log, null);
        ImageStack result = Movie.emptyLike(input);
        int movies = Movie.movieCount(input);
        try {
            for (int m = 0; m < movies; m++) {
                if (movies > 1) log.info("DeepCAD: denoising movie " + (m + 1) + " of " + movies + " in " + input.getTitle());
                int[] indices = Movie.stackIndices(input, m);
                Object[] denoised = DeepCadNative.denoise(model_file.getPath(), chosenDevice, Movie.planes(input, indices),
                    input.getWidth(), input.getHeight(), sampleType, "{}", float32_output, progress);
                for (int t = 0; t < indices.length; t++) result.setPixels(denoised[t], indices[t]);
            }
        } catch (DeepCadException e) {
            if (!e.isCancelled()) throw e;
            cancel("Denoising was cancelled; no output image was made.");
            return;
        } finally {
            progress.finish();
        }
        output = Movie.result(input, result);
    }

    public ImagePlus output() {
        return output;
    }
}
