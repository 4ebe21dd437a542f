// Types and shapes through imagej-legacy: 8-bit and 32-bit movies, a two-channel hyperstack, a
// title with spaces and brackets, a virtual stack. Built-in model (no training). Argument: data folder.
dir = getArgument();
model = "model=[Built-in general model] device=cpu output_type=Automatic";

open(dir + "/bright.tif");
rename("eight");
run("8-bit");
run("Denoise with DeepCAD model", "input=eight " + model);
check("8-bit movie: result exists", isOpen("eight-denoised"), "nImages=" + nImages);
if (isOpen("eight-denoised")) {
    selectImage("eight-denoised");
    check("8-bit movie: result is 8-bit with 64 frames", (bitDepth() == 8 && nSlices == 64), "" + bitDepth() + "-bit, " + nSlices);
}
close("*");

open(dir + "/bright.tif");
rename("float");
run("32-bit");
run("Denoise with DeepCAD model", "input=float " + model);
check("32-bit movie: result exists", isOpen("float-denoised"), "nImages=" + nImages);
if (isOpen("float-denoised")) {
    selectImage("float-denoised");
    check("32-bit movie: result is 32-bit", (bitDepth() == 32), "" + bitDepth());
}
close("*");

open(dir + "/bright.tif");
run("Stack to Hyperstack...", "order=xyczt(default) channels=2 slices=1 frames=32 display=Grayscale");
rename("two channels");
run("Denoise with DeepCAD model", "input=[two channels] " + model);
check("hyperstack: result exists", isOpen("two channels-denoised"), "nImages=" + nImages);
if (isOpen("two channels-denoised")) {
    selectImage("two channels-denoised");
    getDimensions(w, h, c, z, t);
    check("hyperstack: 2 channels x 32 frames kept", (c == 2 && z == 1 && t == 32 && Stack.isHyperstack), "c" + c + " z" + z + " t" + t);
}
close("*");

open(dir + "/bright.tif");
run("Stack to Hyperstack...", "order=xyczt(default) channels=1 slices=2 frames=32 display=Grayscale");
rename("slices and frames");
run("Denoise with DeepCAD model", "input=[slices and frames] " + model);
check("slices-and-frames hyperstack: result exists", isOpen("slices and frames-denoised"), "nImages=" + nImages);
if (isOpen("slices and frames-denoised")) {
    selectImage("slices and frames-denoised");
    getDimensions(w, h, c, z, t);
    check("slices-and-frames hyperstack: 2 slices x 32 frames kept", (c == 1 && z == 2 && t == 32), "c" + c + " z" + z + " t" + t);
}
close("*");

open(dir + "/bright.tif");
rename("my [cells] #1");
run("Denoise with DeepCAD model", model);
check("title with spaces and brackets: result titled '<title>-denoised'", isOpen("my [cells] #1-denoised"), "titles: " + String.join(getList("image.titles")));
close("*");

run("TIFF Virtual Stack...", "open=[" + dir + "/bright.tif]");
check("virtual stack: opened as virtual", (is("Virtual Stack")), "not virtual");
out = dir + "/virtual-denoised.tif";
run("Denoise with DeepCAD model", "input=bright.tif " + model + " output_file=[" + out + "]");
check("virtual stack: streamed into output_file", File.exists(out), out);
check("virtual stack: result open", isOpen("bright-denoised"), "titles: " + String.join(getList("image.titles")));
if (isOpen("bright-denoised")) {
    selectImage("bright-denoised");
    check("virtual stack: result is a virtual stack of 64 frames", (is("Virtual Stack") && nSlices == 64), "" + nSlices);
}
done("macro_types");
