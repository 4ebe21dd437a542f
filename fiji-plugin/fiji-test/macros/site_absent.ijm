// The update-site test (site-test.sh), after the DeepCAD site was deactivated and Fiji restarted: no
// DeepCAD command is left, and ImageJ itself works.
List.setCommands;
deepcad = List.get("Denoise with DeepCAD model");
check("no 'Denoise with DeepCAD model' command is left", (deepcad == ""), "still registered: " + deepcad);
newImage("after-deactivation", "16-bit ramp", 32, 24, 3);
check("ImageJ works: a new image", (nImages == 1 && getTitle() == "after-deactivation" && nSlices == 3), "nImages=" + nImages);
close("*");
done("site_absent");
