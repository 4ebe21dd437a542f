package org.deepcad.fiji;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.gson.JsonObject;
import ij.ImagePlus;
import ij.ImageStack;
import ij.measure.Calibration;

/** Small simulated calcium-imaging movies from the engine's simulator, as ImageJ images. */
public final class TestMovies {
    public static final int SIZE = 32;
    public static final int FRAMES = 64;

    private TestMovies() {}

    /** {clean, noisy}, each frames*SIZE*SIZE values. */
    public static float[][] simulate(int frames, long seed) {
        NativeLibrary.load(null);
        JsonObject config = new JsonObject();
        config.addProperty("width", SIZE);
        config.addProperty("height", SIZE);
        config.addProperty("frames", frames);
        config.addProperty("neurons", 4);
        config.addProperty("seed", seed);
        Object[] pair = DeepCadNative.simulate(config.toString());
        assertEquals(2, pair.length);
        return new float[][] {(float[]) pair[0], (float[]) pair[1]};
    }

    /** A 16-bit stack (time = slices) of the values, with a calibration to check it is carried over. */
    public static ImagePlus sixteenBit(String title, float[] values, int frames) {
        ImageStack stack = new ImageStack(SIZE, SIZE);
        int len = SIZE * SIZE;
        for (int t = 0; t < frames; t++) {
            short[] plane = new short[len];
            for (int i = 0; i < len; i++)
                plane[i] = (short) Math.max(0, Math.min(65535, Math.round(values[t * len + i])));
            stack.addSlice("t" + (t + 1), plane);
        }
        ImagePlus image = new ImagePlus(title, stack);
        Calibration calibration = image.getCalibration();
        calibration.pixelWidth = 0.4;
        calibration.pixelHeight = 0.4;
        calibration.setUnit("um");
        calibration.frameInterval = 0.033;
        calibration.setTimeUnit("s");
        return image;
    }

    /** Mean squared difference between an image's planes (in time order) and reference values. */
    public static double meanSquaredError(ImagePlus image, float[] reference) {
        int len = image.getWidth() * image.getHeight();
        double sum = 0;
        for (int t = 0; t < image.getStackSize(); t++) {
            float[] plane = (float[]) image.getStack()
                    .getProcessor(t + 1)
                    .convertToFloatProcessor()
                    .getPixels();
            for (int i = 0; i < len; i++) {
                double d = plane[i] - reference[t * len + i];
                sum += d * d;
            }
        }
        return sum / ((double) len * image.getStackSize());
    }
}
