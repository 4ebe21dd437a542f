// Optional keys left out of a macro: SciJava's file preprocessor used to cancel "DeepCAD settings"
// without library_path (and "DeepCAD model info" without model_file) silently. Settings must run,
// keys left out keep their setting; model info without its file must stop the macro naming the key.
// Argument: the data folder.
run("DeepCAD settings", "device=cpu threads=0 memory_mb=1500");
print("AFTER-SETTINGS-1");
run("DeepCAD settings", "memory_mb=1600");
print("AFTER-SETTINGS-2");
run("DeepCAD model info", "");
print("AFTER-INFO-WITHOUT-MODEL (must not be printed)");
