// Omitted macro parameters take their defaults, never values from an earlier run: a run with
// output_type=[32-bit float] and an output file, then the same call without those keys.
dir = getArgument();
open(dir + "/bright.tif");
rename("m");
run("Denoise with DeepCAD model", "input=m model=[Built-in general model] device=cpu output_type=[32-bit float] output_file=[" + dir + "/omitted-first.tif]");
selectImage("m-denoised");
check("first run: 32-bit float as asked", (bitDepth() == 32), "bit depth " + bitDepth());
close();
File.delete(dir + "/omitted-first.tif");
selectImage("m");
run("Denoise with DeepCAD model", "input=m model=[Built-in general model] device=cpu");
selectImage("m-denoised");
check("second run without output_type: Automatic (16-bit), not the earlier 32-bit", (bitDepth() == 16), "bit depth " + bitDepth());
check("second run without output_file: nothing written", (!File.exists(dir + "/omitted-first.tif")), "omitted-first.tif written again");
// The image argument omitted as in recorded IJ1 macros: the active image is used.
selectImage("m");
run("Denoise with DeepCAD model", "model=[Built-in general model] device=cpu output_type=Automatic");
check("input omitted: the active image is denoised", (isOpen("m-denoised-1") || nImages == 3), "nImages=" + nImages);
done("macro_omitted");
