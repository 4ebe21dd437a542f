// Run by OverlayTest in a fresh JVM whose class path holds only the overlay's jar and the jars Fiji
// itself provides (scijava-common, parsington, ij, gson): denoises a simulated movie through the command.
// Usage: java -cp ... OverlayRun.java <model.safetensors> [denoise|info]
import com.google.gson.JsonParser;
import ij.ImagePlus;
import ij.ImageStack;
import org.deepcad.fiji.DeepCadNative;
import org.deepcad.fiji.NativeLibrary;
import org.scijava.Context;
import org.scijava.command.CommandModule;
import org.scijava.command.CommandService;

public class OverlayRun {
    public static void main(String[] args) throws Exception {
        Context context = new Context();
        try {
            CommandService commands = context.service(CommandService.class);
            if (args.length > 1 && args[1].equals("info")) {
                CommandModule info = commands.run(
                                "org.deepcad.fiji.commands.ModelInfoCommand",
                                true,
                                "model_file",
                                new java.io.File(args[0]))
                        .get();
                System.out.println("base_width="
                        + JsonParser.parseString((String) info.getOutput("model_info"))
                                .getAsJsonObject()
                                .get("base_width"));
            } else {
                NativeLibrary.load(null);
                float[] noisy = (float[])
                        DeepCadNative.simulate("{\"width\": 32, \"height\": 32, \"frames\": 64, \"neurons\": 4}")[1];
                ImageStack stack = new ImageStack(32, 32);
                for (int t = 0; t < 64; t++) {
                    short[] plane = new short[32 * 32];
                    for (int i = 0; i < plane.length; i++) plane[i] = (short) Math.round(noisy[t * 1024 + i]);
                    stack.addSlice(null, plane);
                }
                CommandModule module = commands.run(
                                "org.deepcad.fiji.commands.DenoiseCommand",
                                true,
                                "input",
                                new ImagePlus("overlay", stack),
                                "model_file",
                                new java.io.File(args[0]),
                                "device",
                                "cpu")
                        .get();
                ImagePlus out = (ImagePlus) module.getOutput("output");
                System.out.println("output=" + out.getTitle() + " " + out.getWidth() + "x" + out.getHeight() + "x"
                        + out.getStackSize() + " " + out.getBitDepth() + "-bit");
            }
            System.out.println("loaded_from=" + NativeLibrary.loadedFrom());
            com.google.gson.JsonElement dir = JsonParser.parseString(DeepCadNative.devicesJson())
                    .getAsJsonObject()
                    .get("libtorch_dir");
            System.out.println("libtorch_dir=" + (dir.isJsonNull() ? "null" : dir.getAsString()));
        } finally {
            context.dispose();
        }
    }
}
