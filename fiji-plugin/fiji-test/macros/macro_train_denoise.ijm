// Macro test: open a simulated movie, give it a calibration, train briefly, denoise; the result is
// the image "<title>-denoised", selectable by title, with the input's dimensions, bit depth and
// calibration, and its saved copy (output_file) holds the same pixels. Argument: the data folder.
dir = getArgument();
open(dir + "/bright.tif");
rename("cells");
Stack.setDimensions(1, 1, nSlices);
setVoxelSize(0.4, 0.4, 1, "um");
Stack.setFrameInterval(0.033);
Stack.setTUnit("s");
model = dir + "/macro-model.safetensors";
run("Train DeepCAD model", "input=cells model_file=[" + model + "] epochs=1 time_limit_minutes=0 patch_t=16 patch_xy=32 base_width=16 start_from_built_in=true patches_per_epoch=4 learning_rate=0.001 device=cpu replace_existing=false");
check("train: model file written", File.exists(model), model);
check("train: no image window added (loss plot is not an image)", (nImages == 1), "nImages=" + nImages);
saved = dir + "/macro-denoised.tif";
run("Denoise with DeepCAD model", "input=cells model=[Model file] model_file=[" + model + "] device=cpu output_type=Automatic output_file=[" + saved + "] replace_existing=false");
check("denoise: result is open", isOpen("cells-denoised"), "no image 'cells-denoised'; nImages=" + nImages);
selectImage("cells-denoised");
check("denoise: selectImage(\"cells-denoised\") works", (getTitle() == "cells-denoised"), getTitle());
getDimensions(w, h, c, z, t);
check("denoise: dimensions 48x40, 1 channel, 1 slice, 64 frames", (w == 48 && h == 40 && c == 1 && z == 1 && t == 64),
    "" + w + "x" + h + " c" + c + " z" + z + " t" + t);
check("denoise: 16-bit like the input", (bitDepth() == 16), "bit depth " + bitDepth());
getVoxelSize(pw, ph, pd, unit);
check("denoise: pixel size 0.4 um kept", (near(pw, 0.4) && near(ph, 0.4) && (unit == "um" || unit == fromCharCode(181) + "m" || unit == "micron")),
    "" + pw + " x " + ph + " " + unit);
Stack.getUnits(ux, uy, uz, ut, uv);
check("denoise: frame interval 0.033 s kept", (near(Stack.getFrameInterval(), 0.033) && ut == "s"),
    "" + Stack.getFrameInterval() + " " + ut);
check("denoise: input left open and unchanged in size", (isOpen("cells") && nImages == 2), "nImages=" + nImages);
check("denoise: output_file written", File.exists(saved), saved);
if (File.exists(saved)) {
    open(saved);
    savedTitle = getTitle();
    getVoxelSize(spw, sph, spd, sunit);
    check("output_file: calibration saved", near(spw, 0.4), "" + spw + " " + sunit);
    check("output_file: 16-bit, 64 frames", (bitDepth() == 16 && nSlices == 64), "" + bitDepth() + "-bit, " + nSlices);
    d = maxAbsDiff("cells-denoised", savedTitle);
    check("output_file: same pixels as the image", (d == 0), "max |difference| " + d);
}
done("macro_train_denoise");
