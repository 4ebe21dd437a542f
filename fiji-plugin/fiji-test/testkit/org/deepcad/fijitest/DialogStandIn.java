package org.deepcad.fijitest;

import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import org.scijava.ItemVisibility;
import org.scijava.Priority;
import org.scijava.module.Module;
import org.scijava.module.ModuleItem;
import org.scijava.module.process.AbstractPreprocessorPlugin;
import org.scijava.module.process.PreprocessorPlugin;
import org.scijava.plugin.Plugin;

/**
 * Test only: the user in front of the input dialog. When a module runs as a menu click runs it
 * (module service, full pre- and postprocessing), SciJava's Swing input harvester (priority -10000)
 * shows a dialog for every input nobody has resolved yet, and the user types values and clicks OK.
 * This preprocessor runs just before the harvester and fills exactly those inputs, with the values
 * {@link #answer} was given for that command, and its headings (message items), so no dialog appears (none given:
 * the real dialog). Everything else (the macro
 * recorder's pre- and postprocessor, the active-image preprocessor, the command) is the real thing.
 */
@Plugin(type = PreprocessorPlugin.class, priority = Priority.LOW)
public class DialogStandIn extends AbstractPreprocessorPlugin {
    private static final Map<String, Map<String, Object>> ANSWERS = Collections.synchronizedMap(new HashMap<>());

    /** The values the "user" enters in the dialog of the command with this class name. */
    public static void answer(String commandClass, Map<String, Object> values) {
        if (values == null) ANSWERS.remove(commandClass);
        else ANSWERS.put(commandClass, values);
    }

    @Override
    public void process(Module module) {
        Map<String, Object> values = ANSWERS.get(module.getInfo().getDelegateClassName());
        if (values == null) return;
        for (ModuleItem<?> input : module.getInfo().inputs()) {
            String name = input.getName();
            // A heading is part of the dialog the user confirms: resolved with it, as OK does.
            if (input.getVisibility() == ItemVisibility.MESSAGE) module.resolveInput(name);
            if (module.isInputResolved(name) || !values.containsKey(name)) continue;
            module.setInput(name, values.get(name));
            module.resolveInput(name);
        }
    }
}
