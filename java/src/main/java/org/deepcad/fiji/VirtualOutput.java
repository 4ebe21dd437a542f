package org.deepcad.fiji;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import ij.ImagePlus;
import ij.ImageStack;
import ij.VirtualStack;
import ij.io.FileInfo;
import ij.measure.Calibration;
import java.io.File;

/**
 * Where a virtual stack's denoised result goes and how it is opened again as a virtual stack.
 * The result of a movie too large for memory cannot be held in memory either, so it is written
 * to a TIFF by the engine and shown as a {@code FileInfoVirtualStack} over that file: planes are
 * read from disk when displayed. Without an explicit output file it is written beside the source
 * as "&lt;title&gt;-denoised.tif" (never overwriting: "-2", "-3"... are added), where a user finds
 * it next to the recording. A multi-channel (or slices-and-frames) image gives one file per movie,
 * "&lt;name&gt;-c&lt;c&gt;[-z&lt;z&gt;].tif".
 */
public final class VirtualOutput {
    private VirtualOutput() {}

    /** The file the source's planes come from, or null when unknown. */
    public static String sourcePath(ImagePlus input) {
        File dir = sourceDirectory(input);
        FileInfo info = input.getOriginalFileInfo();
        String name = info != null ? info.fileName : null;
        ImageStack stack = input.getStack();
        if (name == null && stack instanceof VirtualStack && stack.getSize() > 0)
            name = firstFileName((VirtualStack) stack);
        if (dir == null || name == null || name.isEmpty()) return null;
        return new File(dir, name).getPath();
    }

    /**
     * The first plane's file name, or null. A virtual stack made by a plugin may have no file
     * names at all: ImageJ's getFileName then throws a NullPointerException.
     */
    private static String firstFileName(VirtualStack stack) {
        try {
            return stack.getFileName(1);
        } catch (RuntimeException noNames) {
            return null;
        }
    }

    private static File sourceDirectory(ImagePlus input) {
        ImageStack stack = input.getStack();
        String dir = stack instanceof VirtualStack ? ((VirtualStack) stack).getDirectory() : null;
        if (dir == null && input.getOriginalFileInfo() != null) dir = input.getOriginalFileInfo().directory;
        return dir == null || dir.isEmpty() ? null : new File(dir);
    }

    /** "&lt;title&gt;-denoised.tif" beside the source, with "-2", "-3"... if taken. */
    public static File besideSource(ImagePlus input) {
        File dir = sourceDirectory(input);
        if (dir == null || !dir.isDirectory() || !dir.canWrite()) {
            throw DeepCadException.usage("'" + input.getTitle() + "' is a virtual stack whose folder is unknown or not "
                    + "writable" + (dir == null ? "" : " (" + dir + ")")
                    + ", so its denoised movie cannot be written beside "
                    + "it: set 'Output file' to where the result should go.");
        }
        String base = Movie.resultTitle(input.getTitle());
        File file = new File(dir, base + ".tif");
        for (int n = 2; exists(file, input); n++) file = new File(dir, base + "-" + n + ".tif");
        return file;
    }

    /** Whether the name (or any per-movie name derived from it) is taken. */
    private static boolean exists(File file, ImagePlus input) {
        int movies = Movie.movieCount(input);
        for (int m = 0; m < movies; m++) if (movieFile(file, input, m).exists()) return true;
        return false;
    }

    /** The output file of movie {@code m}: {@code output} itself when there is one movie. */
    public static File movieFile(File output, ImagePlus input, int m) {
        if (Movie.movieCount(input) == 1) return output;
        String name = output.getName();
        String base = name.replaceFirst("(?i)\\.tiff?$", "");
        int channels = input.getNChannels();
        String suffix = (channels > 1 ? "-c" + (m % channels + 1) : "")
                + (input.getNFrames() > 1 && input.getNSlices() > 1 ? "-z" + (m / channels + 1) : "");
        return new File(output.getAbsoluteFile().getParentFile(), base + suffix + ".tif");
    }

    /** The input's calibration as the engine's JSON, written into the output file. */
    public static String calibrationJson(ImagePlus input) {
        Calibration c = input.getCalibration();
        JsonObject json = new JsonObject();
        json.addProperty("pixel_width", c.pixelWidth);
        json.addProperty("pixel_height", c.pixelHeight);
        json.addProperty("pixel_depth", c.pixelDepth);
        json.addProperty("unit", c.getUnit());
        json.addProperty("frame_interval", c.frameInterval);
        json.addProperty("time_unit", c.getTimeUnit());
        return json.toString();
    }

    /**
     * Records where the frames of one denoised movie lie ({@code report} from
     * {@link DeepCadNative#denoiseToFile}): frame t goes to stack position {@code stackIndices[t]}.
     */
    public static void addPlanes(FileInfo[] planes, int[] stackIndices, String report, File file) {
        JsonObject json = JsonParser.parseString(report).getAsJsonObject();
        long offset = json.get("data_offset").getAsLong();
        long frameBytes = json.get("frame_bytes").getAsLong();
        String sampleType = json.get("sample_type").getAsString();
        int width = json.get("width").getAsInt();
        int height = json.get("height").getAsInt();
        File absolute = file.getAbsoluteFile();
        for (int t = 0; t < stackIndices.length; t++) {
            FileInfo fi = new FileInfo();
            fi.fileFormat = FileInfo.TIFF;
            fi.fileType = "u8".equals(sampleType)
                    ? FileInfo.GRAY8
                    : "f32".equals(sampleType) ? FileInfo.GRAY32_FLOAT : FileInfo.GRAY16_UNSIGNED;
            fi.width = width;
            fi.height = height;
            fi.intelByteOrder = true;
            fi.nImages = 1;
            fi.directory = absolute.getParent() + File.separator;
            fi.fileName = absolute.getName();
            fi.longOffset = offset + t * frameBytes;
            planes[stackIndices[t] - 1] = fi;
        }
    }
}
