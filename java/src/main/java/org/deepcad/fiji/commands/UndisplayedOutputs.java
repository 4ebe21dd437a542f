package org.deepcad.fiji.commands;

import org.scijava.Priority;
import org.scijava.module.Module;
import org.scijava.module.ModuleItem;
import org.scijava.module.process.AbstractPostprocessorPlugin;
import org.scijava.module.process.PostprocessorPlugin;
import org.scijava.plugin.Plugin;

/**
 * Keeps outputs marked {@code @Attr(name = NO_DISPLAY, value = "true")} (machine-readable JSON
 * reports for scripts) from being shown: Fiji would open a raw JSON text window for each, and
 * headless runs would print it. It marks them resolved before SciJava's display postprocessor runs;
 * scripts still read them with {@code module.getOutput(name)}. The log says what happened in words.
 */
@Plugin(type = PostprocessorPlugin.class, priority = Priority.VERY_HIGH)
public class UndisplayedOutputs extends AbstractPostprocessorPlugin {
    public static final String NO_DISPLAY = "deepcad-no-display";

    @Override
    public void process(Module module) {
        for (ModuleItem<?> output : module.getInfo().outputs()) {
            if ("true".equals(output.get(NO_DISPLAY))) module.resolveOutput(output.getName());
        }
    }
}
