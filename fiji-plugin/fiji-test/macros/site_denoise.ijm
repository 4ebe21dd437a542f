// The update-site test (site-test.sh): "Denoise with DeepCAD model" with the built-in model in a Fiji.app
// that the ImageJ updater installed DeepCAD into. Argument: "movie|output[|lib1;lib2...]". The optional
// libraries are loaded first (System.load through the macro language's call()), as another plugin that
// ships its own libtorch or libgomp would have loaded them before DeepCAD.
args = split(getArgument(), "|");
if (args.length > 2) {
    preload = split(args[2], ";");
    for (i = 0; i < preload.length; i++) {
        call("java.lang.System.load", preload[i]);
        print("PRELOADED " + preload[i]);
    }
}
List.setCommands;
print("DEEPCAD-COMMAND [" + List.get("Denoise with DeepCAD model") + "]");
open(args[0]);
rename("site-input");
run("Denoise with DeepCAD model", "input=site-input model=[Built-in general model] device=cpu output_type=Automatic output_file=[" + args[1] + "] replace_existing=true");
print("AFTER-DENOISE");
check("Denoise (built-in model) wrote " + args[1], File.exists(args[1]), "no file");
close("*");
done("site_denoise");
