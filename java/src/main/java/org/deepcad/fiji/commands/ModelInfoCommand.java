package org.deepcad.fiji.commands;

import java.io.File;
import org.deepcad.fiji.DeepCadException;
import org.deepcad.fiji.DeepCadNative;
import org.deepcad.fiji.DeepCadRuntime;
import org.scijava.ItemIO;
import org.scijava.command.Command;
import org.scijava.plugin.Menu;
import org.scijava.plugin.Parameter;
import org.scijava.plugin.Plugin;

/** Shows what a model bundle holds (architecture, patch, normalisation, training history) without loading its weights. */
@Plugin(
        type = Command.class,
        menu = {@Menu(label = "Plugins"), @Menu(label = "DeepCAD"), @Menu(label = "DeepCAD model info", weight = 4)},
        headless = true)
public class ModelInfoCommand extends DeepCadCommand {

    @Parameter(label = "Model file", style = "open", persist = false, required = false)
    private File model_file;

    @Parameter(type = ItemIO.OUTPUT, label = "Model info")
    private String model_info;

    @Override
    protected void execute() {
        if (model_file == null)
            throw DeepCadException.usage("No model file: set model_file to a DeepCAD model bundle.");
        DeepCadRuntime.start(prefs, log);
        model_info = DeepCadNative.modelInfoJson(model_file.getPath());
        // No log line of its own: the output is shown (headless: printed) once by Fiji itself.
    }

    public String modelInfo() {
        return model_info;
    }
}
