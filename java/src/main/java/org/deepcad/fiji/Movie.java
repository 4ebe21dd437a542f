package org.deepcad.fiji;

import ij.CompositeImage;
import ij.ImagePlus;
import ij.ImageStack;
import ij.process.ByteProcessor;
import ij.process.LUT;
import ij.process.ShortProcessor;

/**
 * How an ImagePlus maps onto the engine's movies: the time axis is the frames, or the slices when
 * there is only one frame; every other plane position (each channel, and each slice of a
 * slices-and-frames hyperstack) is a separate movie, denoised one after the other. Planes are
 * passed by reference, never copied here.
 */
public final class Movie {
    private Movie() {}

    /** The engine's sample type name for the image, or an exception a user can act on. */
    public static String sampleType(ImagePlus image) {
        // Headless, an unset image input arrives as an empty ImagePlus, not as null.
        if (image == null || image.getWidth() == 0 || image.getStack().getSize() == 0) {
            throw DeepCadException.usage("No image: open a movie (a stack or hyperstack with a time axis) first.");
        }
        switch (image.getType()) {
            case ImagePlus.GRAY8:
                return "u8";
            case ImagePlus.GRAY16:
                return "u16";
            case ImagePlus.GRAY32:
                return "f32";
            case ImagePlus.COLOR_RGB:
                throw DeepCadException.usage(
                        "'" + image.getTitle() + "' is an RGB image; DeepCAD denoises grayscale "
                                + "movies. Split it (Image > Color > Split Channels) or convert it (Image > Type > 8-bit or 16-bit).");
            default:
                throw DeepCadException.usage("'" + image.getTitle() + "' is an indexed-color image; convert it to "
                        + "8-bit or 16-bit grayscale (Image > Type) first.");
        }
    }

    /** Number of time points: frames, or slices when there is one frame. */
    public static int timePoints(ImagePlus image) {
        return image.getNFrames() > 1 ? image.getNFrames() : image.getNSlices();
    }

    /** Number of separate movies in the image (channels × slices, or channels when time is slices). */
    public static int movieCount(ImagePlus image) {
        return image.getNChannels() * (image.getNFrames() > 1 ? image.getNSlices() : 1);
    }

    /** Stack indices (1-based) of the planes of movie {@code m}, in time order. */
    public static int[] stackIndices(ImagePlus image, int m) {
        int channels = image.getNChannels();
        int c = m % channels + 1;
        int z = m / channels + 1;
        boolean timeIsFrames = image.getNFrames() > 1;
        int[] indices = new int[timePoints(image)];
        for (int t = 0; t < indices.length; t++) {
            indices[t] = timeIsFrames ? image.getStackIndex(c, z, t + 1) : image.getStackIndex(c, t + 1, 1);
        }
        return indices;
    }

    public static Object[] planes(ImagePlus image, int[] stackIndices) {
        ImageStack stack = image.getStack();
        Object[] planes = new Object[stackIndices.length];
        for (int t = 0; t < planes.length; t++) planes[t] = stack.getPixels(stackIndices[t]);
        return planes;
    }

    /** An empty stack of the input's shape to fill with results. */
    public static ImageStack emptyLike(ImagePlus image) {
        ImageStack in = image.getStack();
        ImageStack out = new ImageStack(image.getWidth(), image.getHeight(), in.getSize());
        for (int i = 1; i <= in.getSize(); i++) out.setSliceLabel(in.getSliceLabel(i), i);
        return out;
    }

    /**
     * Makes every plane the same type: when some are {@code float[]} and others integer, the integer
     * ones become {@code float[]} with the same values (an ImageStack holds one type).
     */
    public static void toCommonType(Object[] planes, int width, int height) {
        boolean anyFloat = false;
        boolean anyInteger = false;
        for (Object p : planes) {
            if (p instanceof float[]) anyFloat = true;
            else anyInteger = true;
        }
        if (!(anyFloat && anyInteger)) return;
        for (int i = 0; i < planes.length; i++) {
            if (planes[i] instanceof short[]) {
                planes[i] = new ShortProcessor(width, height, (short[]) planes[i], null)
                        .convertToFloatProcessor()
                        .getPixels();
            } else if (planes[i] instanceof byte[]) {
                planes[i] = new ByteProcessor(width, height, (byte[]) planes[i], null)
                        .convertToFloatProcessor()
                        .getPixels();
            }
        }
    }

    /** "<title>-denoised", with the engine's suffix (a .tif/.tiff ending is dropped first). */
    public static String resultTitle(String title) {
        String base = title.replaceFirst("(?i)\\.tiff?$", "");
        return base + EngineDefaults.get().suffix;
    }

    /** The result image: same dimensions, hyperstack layout, calibration, properties and display. */
    public static ImagePlus result(ImagePlus input, ImageStack stack) {
        ImagePlus out = new ImagePlus(resultTitle(input.getTitle()), stack);
        out.setDimensions(input.getNChannels(), input.getNSlices(), input.getNFrames());
        out.setOpenAsHyperStack(input.isHyperStack());
        out.setCalibration(input.getCalibration().copy());
        String info = input.getInfoProperty();
        if (info != null) out.setProperty("Info", info);
        String[] properties = input.getPropertiesAsArray();
        if (properties != null) out.setProperties(properties);
        if (out.getBitDepth() == input.getBitDepth()) {
            out.setDisplayRange(input.getDisplayRangeMin(), input.getDisplayRangeMax());
        } else {
            out.resetDisplayRange();
        }
        if (input.isComposite()) {
            CompositeImage composite = new CompositeImage(out, ((CompositeImage) input).getMode());
            LUT[] luts = ((CompositeImage) input).getLuts();
            if (out.getBitDepth() == input.getBitDepth()) composite.setLuts(luts);
            return composite;
        }
        return out;
    }
}
