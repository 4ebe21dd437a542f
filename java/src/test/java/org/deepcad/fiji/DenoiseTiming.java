package org.deepcad.fiji;

import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;
import java.io.File;
import org.deepcad.fiji.commands.DenoiseCommand;
import org.scijava.Context;
import org.scijava.command.CommandModule;
import org.scijava.command.CommandService;

/**
 * A developer tool, not a test: times the "Denoise with DeepCAD model" command on a TIFF movie in a
 * plain SciJava context (as the tests run it), so it can be compared with `deepcad denoise` on the
 * same movie, model, device and thread count. Only the command run is timed (it includes loading
 * the model, like the CLI); opening the TIFF is timed separately. With a reference TIFF (e.g. the
 * CLI's output) it prints how far the command's pixels are from it.
 *
 * <pre>
 * mvn -q -f java/pom.xml test-compile
 * mvn -q -f java/pom.xml dependency:build-classpath -Dmdep.outputFile=/tmp/cp.txt
 * java -Ddeepcad.library.path=$PWD/target/release/libdeepcad.so -Djava.awt.headless=true \
 *   -cp java/target/classes:java/target/test-classes:$(cat /tmp/cp.txt) \
 *   org.deepcad.fiji.DenoiseTiming movie.tif model.safetensors [reference.tif] [runs=2] [threads=2]
 * </pre>
 */
public final class DenoiseTiming {
    private DenoiseTiming() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: DenoiseTiming movie.tif model.safetensors [reference.tif] [runs=2] [threads=2]");
            System.exit(2);
        }
        File movie = new File(args[0]);
        File model = new File(args[1]);
        String reference = args.length > 2 && !args[2].isEmpty() ? args[2] : null;
        int runs = args.length > 3 ? Integer.parseInt(args[3]) : 2;
        int threads = args.length > 4 ? Integer.parseInt(args[4]) : 2;

        System.out.println("library: " + NativeLibrary.load(null));
        // Set explicitly so saved DeepCAD settings (0 = unchanged) cannot leave libtorch's default in place.
        DeepCadNative.setThreads(threads);

        long start = System.nanoTime();
        ImagePlus input = IJ.openImage(movie.getPath());
        if (input == null) throw new IllegalArgumentException("ImageJ could not open " + movie);
        System.out.printf(
                "opened %s: %d×%d×%d, %d-bit in %.2f s%n",
                movie, input.getWidth(), input.getHeight(), input.getStackSize(), input.getBitDepth(), seconds(start));

        try (Context context = new Context()) {
            CommandService commands = context.service(CommandService.class);
            ImagePlus output = null;
            for (int run = 1; run <= runs; run++) {
                long cpuStart = processCpuNanos();
                start = System.nanoTime();
                CommandModule module = commands.run(
                                DenoiseCommand.class, true, "input", input, "model_file", model, "device", "cpu")
                        .get();
                double took = seconds(start);
                double cpu = (processCpuNanos() - cpuStart) / 1e9;
                if (module.isCanceled()) throw new IllegalStateException("cancelled: " + module.getCancelReason());
                output = (ImagePlus) module.getOutput("output");
                System.out.printf(
                        "command run %d: %.2f s wall (%.1f frames/s), %.2f s process CPU, engine threads %s%n",
                        run,
                        took,
                        input.getStackSize() / took,
                        cpu,
                        NativeTestSupport.json(DeepCadNative.devicesJson()).get("threads"));
            }
            if (reference != null && output != null) compare(output, reference);
        }
    }

    /** Max absolute pixel difference against a reference TIFF of the same shape. */
    private static void compare(ImagePlus output, String referencePath) {
        ImagePlus reference = IJ.openImage(referencePath);
        if (reference == null) throw new IllegalArgumentException("ImageJ could not open " + referencePath);
        if (reference.getStackSize() != output.getStackSize()
                || reference.getWidth() != output.getWidth()
                || reference.getHeight() != output.getHeight()) {
            throw new IllegalArgumentException("reference " + referencePath + " has another shape than the output");
        }
        ImageStack a = output.getStack(), b = reference.getStack();
        double max = 0, sum = 0;
        long differing = 0, total = 0;
        for (int s = 1; s <= a.getSize(); s++) {
            float[] x = (float[]) a.getProcessor(s).convertToFloatProcessor().getPixels();
            float[] y = (float[]) b.getProcessor(s).convertToFloatProcessor().getPixels();
            for (int i = 0; i < x.length; i++) {
                double d = Math.abs(x[i] - y[i]);
                max = Math.max(max, d);
                sum += d;
                if (d != 0) differing++;
                total++;
            }
        }
        System.out.printf(
                "against %s: max |difference| %.4g, mean %.4g, %d of %d pixels differ%n",
                referencePath, max, sum / total, differing, total);
    }

    /** CPU time of the whole JVM process (all threads, libtorch's included): a load-independent cost, unlike wall time when other jobs share the cores. */
    private static long processCpuNanos() {
        java.lang.management.OperatingSystemMXBean os =
                java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        return os instanceof com.sun.management.OperatingSystemMXBean
                ? ((com.sun.management.OperatingSystemMXBean) os).getProcessCpuTime()
                : -1;
    }

    private static double seconds(long startNanos) {
        return (System.nanoTime() - startNanos) / 1e9;
    }
}
