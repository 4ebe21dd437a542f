package org.deepcad.fiji.commands;

import ij.IJ;
import java.awt.GraphicsEnvironment;
import org.scijava.module.Module;
import org.scijava.module.ModuleItem;
import org.scijava.module.process.AbstractPreprocessorPlugin;
import org.scijava.module.process.PreprocessorPlugin;
import org.scijava.plugin.Parameter;
import org.scijava.plugin.Plugin;
import org.scijava.ui.UIService;
import org.scijava.widget.InputHarvester;

/**
 * When nobody can answer a dialog (headless, or inside an IJ1 macro), the inputs a DeepCAD command
 * was not given are marked resolved: they keep their declared defaults, and the command itself says
 * what is missing ("No model file: set model_file ...").
 *
 * <p>Why: SciJava's {@code FilePreprocessor} asks for a file with a chooser whenever a command's only
 * unresolved input is a {@code File}, whatever its {@code required = false}. Headless there is no
 * chooser, so it cancelled the command before {@code run()}, silently: "DeepCAD settings" without
 * {@code library_path}, "DeepCAD model info" without {@code model_file}, or any command given every
 * key but one file did nothing, said nothing and exited 0. Inside a GUI macro the same chooser is
 * answered from the macro options, which lack the key, and the command was cancelled the same way.
 * Interactive use is unchanged: a menu click still gets its dialog, or the file chooser when a file
 * is the only input.
 *
 * <p>Runs after SciJava's {@code LoadInputsPreprocessor} (priority InputHarvester.PRIORITY + 1) and
 * before the {@code FilePreprocessor} (+ 0.5) and the input dialog (InputHarvester.PRIORITY).
 */
@Plugin(type = PreprocessorPlugin.class, priority = OmittedInputs.PRIORITY)
public class OmittedInputs extends AbstractPreprocessorPlugin {
    static final double PRIORITY = InputHarvester.PRIORITY + 0.75;

    @Parameter(required = false)
    private UIService ui;

    @Override
    public void process(Module module) {
        if (!(module.getDelegateObject() instanceof DeepCadCommand) || !noOneToAsk()) return;
        for (ModuleItem<?> input : module.getInfo().inputs()) {
            if (!module.isInputResolved(input.getName())) module.resolveInput(input.getName());
        }
    }

    private boolean noOneToAsk() {
        boolean headless = ui != null ? ui.isHeadless() : GraphicsEnvironment.isHeadless();
        return headless || IJ.isMacro();
    }
}
