package org.deepcad.fiji;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ij.ImagePlus;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.zip.Deflater;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.deepcad.fiji.commands.DenoiseCommand;
import org.deepcad.fiji.commands.DenoiseFilesCommand;
import org.deepcad.fiji.commands.ModelInfoCommand;
import org.deepcad.fiji.commands.SettingsCommand;
import org.junit.jupiter.api.Test;
import org.scijava.command.Command;
import org.scijava.command.CommandService;

/**
 * The hostile-input suite's JNI half: inputs a careless or hostile user could hand the Fiji
 * commands, made here. Each must end in a DeepCadException that names the culprit, within a time
 * limit, with every input byte-identical, nothing under an output name, and this JVM alive to run
 * the next case. The tally is printed.
 */
class HostileInputsTest {
    private int cases;
    private int clean;
    private final List<String> problems = new ArrayList<>();

    private static byte[] hash(File file) throws Exception {
        if (!file.isFile()) return null;
        return MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file.toPath()));
    }

    private void expectCleanFailure(
            String name,
            String mustName,
            List<File> inputs,
            List<File> noOutput,
            Class<? extends Command> command,
            Object... arguments)
            throws Exception {
        cases++;
        List<byte[]> before = new ArrayList<>();
        for (File f : inputs) before.add(hash(f));
        try {
            NativeTestSupport.context()
                    .service(CommandService.class)
                    .run(command, true, arguments)
                    .get(60, TimeUnit.SECONDS);
            problems.add(name + ": succeeded");
        } catch (TimeoutException e) {
            problems.add(name + ": still running after 60 s");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            while (!(cause instanceof DeepCadException) && cause != null && cause.getCause() != null)
                cause = cause.getCause();
            if (!(cause instanceof DeepCadException)) {
                problems.add(name + ": " + e.getCause());
            } else if (!cause.getMessage().contains(mustName)) {
                problems.add(name + ": the message does not name '" + mustName + "': " + cause.getMessage());
            } else {
                clean++;
            }
        }
        for (int i = 0; i < inputs.size(); i++) {
            if (!Arrays.equals(before.get(i), hash(inputs.get(i))))
                problems.add(name + ": " + inputs.get(i) + " changed");
        }
        for (File f : noOutput) {
            if (f.exists()) problems.add(name + ": " + f + " was left behind");
        }
    }

    /** A little-endian classic TIFF with one 16-bit grey IFD whose single strip is `strip`. */
    private static byte[] classicTiff(int width, int height, int compression, byte[] strip, int nextIfd) {
        int[][] entries = {
            {256, 4, width},
            {257, 4, height},
            {258, 3, 16},
            {259, 3, compression},
            {262, 3, 1},
            {273, 4, 0},
            {277, 3, 1},
            {278, 4, height},
            {279, 4, strip.length}
        };
        int dataOffset = 8 + 2 + entries.length * 12 + 4;
        ByteBuffer b = ByteBuffer.allocate(dataOffset + strip.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {'I', 'I', 42, 0}).putInt(8).putShort((short) entries.length);
        for (int[] e : entries) {
            int value = e[0] == 273 ? dataOffset : e[2];
            b.putShort((short) e[0]).putShort((short) e[1]).putInt(1);
            if (e[1] == 3) b.putShort((short) value).putShort((short) 0);
            else b.putInt(value);
        }
        b.putInt(nextIfd).put(strip);
        return b.array();
    }

    @Test
    void hostileInputsEndInCleanErrorsAndTheJvmCarriesOn() throws Exception {
        File dir =
                Files.createTempDirectory(NativeTestSupport.folder(), "hostile").toFile();
        File model = NativeTestSupport.model();
        File out = new File(dir, "out");
        File denoisedName = new File(out, "bad-denoised.tif");

        // A FIFO (opening it would block) and a device that never ends, as movie and as model.
        File fifo = new File(dir, "fifo.tif");
        assertTrue(new ProcessBuilder("mkfifo", fifo.getPath()).start().waitFor() == 0);
        expectCleanFailure(
                "FIFO as movie",
                fifo.getPath(),
                java.util.Collections.<File>emptyList(),
                Arrays.asList(new File(out, "fifo-denoised.tif")),
                DenoiseFilesCommand.class,
                "input_path",
                fifo,
                "output_folder",
                out,
                "model_file",
                model,
                "device",
                "cpu");
        expectCleanFailure(
                "/dev/zero as model",
                "/dev/zero",
                java.util.Collections.<File>emptyList(),
                java.util.Collections.<File>emptyList(),
                ModelInfoCommand.class,
                "model_file",
                new File("/dev/zero"));

        // An IFD chain that loops on itself, and a 64 MB deflate stream claiming a 60000² frame (7.2 GB).
        File loop = new File(dir, "bad.tif");
        Files.write(loop.toPath(), classicTiff(1, 1, 1, new byte[2], 8));
        expectCleanFailure(
                "IFD loop",
                loop.getPath(),
                Arrays.asList(loop),
                Arrays.asList(denoisedName),
                DenoiseFilesCommand.class,
                "input_path",
                loop,
                "output_folder",
                out,
                "model_file",
                model,
                "device",
                "cpu");
        Deflater deflater = new Deflater(Deflater.BEST_COMPRESSION);
        ByteArrayOutputStream zlib = new ByteArrayOutputStream();
        byte[] zeros = new byte[1 << 20];
        byte[] buffer = new byte[1 << 16];
        for (int i = 0; i < 64; i++) {
            deflater.setInput(zeros);
            while (!deflater.needsInput()) zlib.write(buffer, 0, deflater.deflate(buffer));
        }
        deflater.finish();
        while (!deflater.finished()) zlib.write(buffer, 0, deflater.deflate(buffer));
        File bomb = new File(dir, "bomb.tif");
        Files.write(bomb.toPath(), classicTiff(60000, 60000, 8, zlib.toByteArray(), 0));
        expectCleanFailure(
                "decompression bomb",
                bomb.getPath(),
                Arrays.asList(bomb),
                Arrays.asList(new File(out, "bomb-denoised.tif")),
                DenoiseFilesCommand.class,
                "input_path",
                bomb,
                "output_folder",
                out,
                "model_file",
                model,
                "device",
                "cpu");

        // A checkpoint whose pickle would run `touch` through os.system.
        File marker = new File(dir, "pwned");
        File evil = new File(dir, "evil.pth");
        try (ZipOutputStream zip = new ZipOutputStream(Files.newOutputStream(evil.toPath()))) {
            zip.putNextEntry(new ZipEntry("archive/data.pkl"));
            zip.write(("cos\nsystem\n(S'touch " + marker.getPath() + "'\ntR.").getBytes(StandardCharsets.UTF_8));
        }
        ImagePlus movie =
                TestMovies.sixteenBit("hostile movie", TestMovies.simulate(TestMovies.FRAMES, 5)[1], TestMovies.FRAMES);
        expectCleanFailure(
                "hostile pickle",
                evil.getPath(),
                Arrays.asList(evil),
                Arrays.asList(marker),
                DenoiseCommand.class,
                "input",
                movie,
                "model_file",
                evil,
                "device",
                "cpu");

        // A named pipe at the output file, replacing allowed: never replaced (the engine's output rules).
        File pipe = new File(dir, "pipe.tif");
        assertTrue(new ProcessBuilder("mkfifo", pipe.getPath()).start().waitFor() == 0, "mkfifo");
        expectCleanFailure(
                "FIFO as output file",
                pipe.getPath(),
                Arrays.<File>asList(),
                Arrays.<File>asList(),
                DenoiseCommand.class,
                "input",
                movie,
                "model",
                ModelChoice.BUILT_IN,
                "device",
                "cpu",
                "output_file",
                pipe.getPath(),
                "replace_existing",
                true);
        assertTrue(
                Files.isRegularFile(pipe.toPath()) == false && pipe.exists(),
                "the FIFO at the output path is still a FIFO, not a file");

        // 4096² frames under a 64 MB budget (DeepCAD settings): refused with the size they need,
        // never an allocation that takes the JVM down.
        CommandService commands = NativeTestSupport.context().service(CommandService.class);
        commands.run(
                        SettingsCommand.class,
                        true,
                        "device",
                        "auto",
                        "threads",
                        0,
                        "memory_mb",
                        64,
                        "library_path",
                        new File(""))
                .get();
        try {
            ij.ImageStack stack = new ij.ImageStack(4096, 4096);
            for (int t = 0; t < 4; t++) stack.addSlice(new ij.process.ShortProcessor(4096, 4096));
            expectCleanFailure(
                    "4096² frames over the budget",
                    "memory budget",
                    java.util.Collections.<File>emptyList(),
                    java.util.Collections.<File>emptyList(),
                    DenoiseCommand.class,
                    "input",
                    new ImagePlus("huge frames", stack),
                    "model",
                    ModelChoice.BUILT_IN,
                    "device",
                    "cpu");
        } finally {
            commands.run(
                            SettingsCommand.class,
                            true,
                            "device",
                            "auto",
                            "threads",
                            0,
                            "memory_mb",
                            0,
                            "library_path",
                            new File(""))
                    .get();
        }

        System.out.printf(
                "hostile inputs through JNI: %d cases, %d clean errors naming the culprit, %d problems (JVM alive)%n",
                cases, clean, problems.size());
        assertTrue(problems.isEmpty(), String.join("\n", problems));
    }
}
