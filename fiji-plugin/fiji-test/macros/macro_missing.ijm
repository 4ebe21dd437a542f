// A run("...") with a required key missing stops the macro with a message that names the key; the
// line after it must never run. Argument: the data folder.
dir = getArgument();
run("Denoise files with DeepCAD model", "output_folder=[" + dir + "] model=[Built-in general model] device=cpu");
print("AFTER-MISSING-INPUT (must not be printed)");
