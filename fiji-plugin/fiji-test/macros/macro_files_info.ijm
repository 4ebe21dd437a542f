// Headless macro: Denoise files and Model info. Arguments: data folder, model file.
args = split(getArgument(), ",");
dir = args[0];
model = args[1];
out = dir + "/files-macro";
File.makeDirectory(out);
run("Denoise files with DeepCAD model", "input_path=[" + dir + "/bright.tif] output_folder=[" + out + "] model=[Model file] model_file=[" + model + "] device=cpu output_type=Automatic replace_existing=false");
check("denoise files: <name>-denoised.tif written", File.exists(out + "/bright-denoised.tif"), out + "/bright-denoised.tif");
check("denoise files: opens no image", (nImages == 0), "nImages=" + nImages);
run("DeepCAD model info", "model_file=[" + model + "]");
check("model info: opens no image", (nImages == 0), "nImages=" + nImages);
done("macro_files_info");
