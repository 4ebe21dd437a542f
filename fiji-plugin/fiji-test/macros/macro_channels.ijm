// Channels through both Fiji doors: "Denoise" denoises every channel of an open hyperstack;
// "Denoise files" takes the channel to denoise (channel=2 is C2, the CLI's --channel 1) and gives
// the same numbers (test-fiji.sh compares both with the CLI). A folder where one movie cannot be
// denoised (two channels, none chosen) writes the others and then fails, as the CLI does: the macro
// must stop there. Argument: the data folder.
dir = getArgument();
open(dir + "/bright.tif");
run("Stack to Hyperstack...", "order=xyczt(default) channels=2 slices=1 frames=32 display=Grayscale");
saveAs("Tiff", dir + "/two-channels.tif");
rename("two");
run("Denoise with DeepCAD model", "input=two model=[Built-in general model] device=cpu output_type=[32-bit float]");
selectImage("two-denoised");
getDimensions(w, h, c, z, t);
check("image door: every channel denoised (2 channels x 32 frames)", (c == 2 && t == 32), "c" + c + " t" + t);
run("Duplicate...", "title=two-c2 duplicate channels=2");
saveAs("Tiff", dir + "/two-image-c2.tif");
close("*");
run("Denoise files with DeepCAD model", "input_path=[" + dir + "/two-channels.tif] output_folder=[" + dir + "/files-c2] model=[Built-in general model] device=cpu output_type=[32-bit float] channel=2");
check("files door, channel=2: written", File.exists(dir + "/files-c2/two-channels-denoised.tif"), "no files-c2/two-channels-denoised.tif");
done("macro_channels");
File.makeDirectory(dir + "/mixed");
File.copy(dir + "/bright.tif", dir + "/mixed/one.tif");
File.copy(dir + "/two-channels.tif", dir + "/mixed/two.tif");
run("Denoise files with DeepCAD model", "input_path=[" + dir + "/mixed] output_folder=[" + dir + "/mixed-out] model=[Built-in general model] device=cpu output_type=Automatic");
print("AFTER-MIXED-FOLDER (must not be printed)");
