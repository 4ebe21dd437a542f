// First run (issue 26, item 4), headless: with nothing chosen, Denoise uses the built-in general model
// (no training, no model file); the device keys of older macros (device=cpu, auto) and the dialog's
// choices as the recorder writes them (device=CPU, Automatic) all run and give the same pixels; the
// official pipeline's keys are still macro keys (its dialog heading is not).
dir = getArgument();
open(dir + "/bright.tif");
rename("f");
// The result is registered with the macro but the macro's current image stays the input: select it.
run("Denoise with DeepCAD model", "input=f");
check("nothing chosen: a result without a model file", isOpen("f-denoised"), "no f-denoised");
selectImage("f-denoised");
rename("f-nothing");
selectImage("f");
run("Denoise with DeepCAD model", "input=f model=[Built-in general model] device=cpu output_type=Automatic");
selectImage("f-denoised");
rename("f-explicit");
check("... which is the built-in general model's result", (maxAbsDiff("f-nothing", "f-explicit") == 0), "differs by " + maxAbsDiff("f-nothing", "f-explicit"));
devices = newArray("auto", "CPU", "Automatic", "[cpu]");
for (i = 0; i < devices.length; i++) {
    selectImage("f");
    run("Denoise with DeepCAD model", "input=f model=[Built-in general model] device=" + devices[i]);
    selectImage("f-denoised");
    rename("f-" + i);
    check("device=" + devices[i] + " runs and gives the same pixels", (maxAbsDiff("f-" + i, "f-explicit") == 0), "differs by " + maxAbsDiff("f-" + i, "f-explicit"));
}
selectImage("f");
run("Denoise with DeepCAD model", "input=f model=[Built-in general model] device=cpu tiling=[DeepCAD-RT official pipeline] official_patch=[32,32,32] official_overlap=0.5");
selectImage("f-denoised");
rename("f-official");
check("official pipeline keys: a result of the same size", (maxAbsDiff("f-official", "f-explicit") >= 0), "sizes differ");
check("... which differs from the seamless result (the keys were used)", (maxAbsDiff("f-official", "f-explicit") > 0), "identical");
close("*");
done("macro_first_run");
