package org.deepcad.fiji;

import ij.ImagePlus;
import ij.io.FileSaver;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;

/**
 * Saves a denoised image as a TIFF with ImageJ's own writer (dimensions, calibration and
 * properties included), the project's way: never over the source movie, never over an existing
 * file unless asked, and under a hidden temporary name that is renamed when complete, so a failure
 * never leaves a half file under the final name.
 */
public final class ResultFile {
    private ResultFile() {}

    /** Refuses, before any work, a target that is the source movie, exists (unless replacing) or has no folder. */
    public static void checkWritable(File target, ImagePlus source, boolean replace) {
        String sourcePath = VirtualOutput.sourcePath(source);
        if (sourcePath != null && same(target, new File(sourcePath))) {
            throw DeepCadException.usage(
                    "Output file " + target + " is the movie being denoised; choose another name.");
        }
        if (target.isDirectory()) {
            throw DeepCadException.usage("Output file " + target + " is a folder; give a file name such as "
                    + new File(target, Movie.resultTitle(source.getTitle()) + ".tif") + ".");
        }
        if (target.exists() && !replace) {
            throw DeepCadException.usage("Output file " + target + " already exists; choose another name or tick "
                    + "'Replace an existing output file'.");
        }
        File folder = target.getAbsoluteFile().getParentFile();
        if (folder == null || !folder.isDirectory()) {
            throw DeepCadException.usage("The folder of output file " + target + " does not exist; create it first.");
        }
        // The engine's rules for what is left: never a device, pipe or other non-file, even when replacing.
        DeepCadNative.checkOutput(target.getPath(), sourcePath, replace);
    }

    /** Writes the image to target through a temporary file in the same folder. */
    public static void save(ImagePlus image, File target, boolean replace) {
        File folder = target.getAbsoluteFile().getParentFile();
        File partial = new File(folder, "." + target.getName() + ".partial-" + System.nanoTime());
        // FileSaver renames the image it saves after the file; save a view so the result keeps its title.
        ImagePlus view = new ImagePlus(image.getTitle(), image.getStack());
        view.setDimensions(image.getNChannels(), image.getNSlices(), image.getNFrames());
        view.setOpenAsHyperStack(image.isHyperStack());
        view.setCalibration(image.getCalibration());
        String[] properties = image.getPropertiesAsArray();
        if (properties != null) view.setProperties(properties);
        String info = image.getInfoProperty();
        if (info != null) view.setProperty("Info", info);
        boolean ok = new FileSaver(view).saveAsTiff(partial.getPath());
        try {
            if (!ok || !partial.isFile()) {
                throw new DeepCadException("io", "Could not write " + target + " (folder full or not writable?).");
            }
            if (target.exists() && !replace) {
                throw DeepCadException.usage(
                        "Output file " + target + " appeared while denoising; the result was not saved. "
                                + "Choose another name or tick 'Replace an existing output file'.");
            }
            // Checked again at the last moment: something other than a file may have appeared there.
            DeepCadNative.checkOutput(target.getPath(), null, replace);
            Files.move(
                    partial.toPath(),
                    target.toPath(),
                    StandardCopyOption.REPLACE_EXISTING,
                    StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new DeepCadException("io", "Could not write " + target + ": " + e.getMessage(), e);
        } finally {
            partial.delete();
        }
    }

    private static boolean same(File a, File b) {
        try {
            return a.getCanonicalFile().equals(b.getCanonicalFile());
        } catch (IOException e) {
            return a.getAbsoluteFile().equals(b.getAbsoluteFile());
        }
    }
}
