package org.deepcad.fiji;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import ij.IJ;
import ij.ImagePlus;
import java.io.File;
import org.deepcad.fiji.commands.DenoiseCommand;
import org.junit.jupiter.api.Test;
import org.scijava.command.CommandModule;
import org.scijava.command.CommandService;

/**
 * The official DeepCAD-RT checkpoint through Fiji's Denoise with the official tilings gives the
 * official pipelines' outputs (fixtures/deepcad-rt-official/pipeline, tolerance 1e-2 from its README),
 * and the memory budget from DeepCAD settings reaches the engine.
 */
class OfficialPipelineTest {
    private static File fixtures() {
        String shared = System.getenv("DEEPCAD_SHARED");
        File root = shared != null
                ? new File(shared)
                : new File(System.getProperty("user.dir"))
                        .getAbsoluteFile()
                        .getParentFile()
                        .getParentFile()
                        .toPath()
                        .resolve("shared")
                        .toFile();
        File folder = new File(root, "fixtures/deepcad-rt-official");
        assertTrue(
                new File(folder, "pipeline/input.tif").isFile(),
                "fixture missing: " + folder + " (set DEEPCAD_SHARED)");
        return folder;
    }

    private static float maxDifference(ImagePlus ours, ImagePlus gold) {
        assertEquals(gold.getStackSize(), ours.getStackSize());
        float worst = 0;
        for (int t = 1; t <= gold.getStackSize(); t++) {
            float[] a =
                    (float[]) ours.getStack().getProcessor(t).convertToFloat().getPixels();
            float[] b =
                    (float[]) gold.getStack().getProcessor(t).convertToFloat().getPixels();
            for (int i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
        return worst;
    }

    private static ImagePlus denoise(File folder, String tiling) throws Exception {
        ImagePlus input = IJ.openImage(new File(folder, "pipeline/input.tif").getPath());
        CommandModule module = NativeTestSupport.context()
                .service(CommandService.class)
                .run(
                        DenoiseCommand.class,
                        true,
                        "input",
                        input,
                        "model",
                        ModelChoice.FILE,
                        "model_file",
                        new File(folder, "E_10_Iter_3500.pth"),
                        "device",
                        "cpu",
                        "output_type",
                        OutputChoice.FLOAT32,
                        "tiling",
                        tiling,
                        "official_patch",
                        "64,64,64",
                        "official_overlap",
                        0.25)
                .get();
        assertFalse(module.isCanceled(), () -> "cancelled: " + module.getCancelReason());
        return (ImagePlus) module.getOutput("output");
    }

    @Test
    void bothOfficialPipelinesAreReproducedThroughFiji() throws Exception {
        File folder = fixtures();
        ImagePlus main = denoise(folder, TilingChoice.DEEPCAD_RT);
        float mainError =
                maxDifference(main, IJ.openImage(new File(folder, "pipeline/output_main_float32.tif").getPath()));
        ImagePlus early = denoise(folder, TilingChoice.DEEPCAD_RT_2021);
        float earlyError =
                maxDifference(early, IJ.openImage(new File(folder, "pipeline/output_early_float32.tif").getPath()));
        System.out.printf(
                "official pipelines through Fiji: max |ours - official| %.2e (deepcad-rt), %.2e (2021)%n",
                mainError, earlyError);
        assertTrue(mainError <= 1e-2, "deepcad-rt differs by " + mainError);
        assertTrue(earlyError <= 1e-2, "deepcad-rt-2021 differs by " + earlyError);
        // Seamless tiling is a different result (no per-tile factor, no seams).
        ImagePlus seamless = denoise(folder, TilingChoice.SEAMLESS);
        assertTrue(maxDifference(seamless, main) > 1.0, "seamless tiling should differ from the official pipeline");
    }

    @Test
    void theSettingsJsonCarriesTheMemoryBudgetAndThePipeline() {
        JsonObject json = TilingChoice.settings(TilingChoice.DEEPCAD_RT_2021, "64", 0.25, 256L << 20, true);
        assertEquals(
                JsonParser.parseString("{\"overwrite\": true, \"max_memory_bytes\": 268435456, \"compat\": "
                        + "{\"pipeline\": \"deepcad-rt-2021\", \"patch\": [64, 64, 64], \"overlap\": 0.25}}"),
                json);
        assertEquals(
                JsonParser.parseString("{\"overwrite\": false, \"max_memory_bytes\": 1073741824}"),
                TilingChoice.settings(TilingChoice.SEAMLESS, "nonsense", 0.6, 1L << 30, false));
        DeepCadException bad = org.junit.jupiter.api.Assertions.assertThrows(
                DeepCadException.class,
                () -> TilingChoice.settings(TilingChoice.DEEPCAD_RT, "64,x,64", 0.6, 1L << 30, false));
        assertTrue(bad.getMessage().contains("64,x,64") && !bad.getMessage().contains("--"), bad.getMessage());
    }
}
