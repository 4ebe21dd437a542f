package org.deepcad.fiji;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.util.concurrent.ExecutionException;
import org.deepcad.fiji.commands.DenoiseFilesCommand;
import org.deepcad.fiji.commands.ModelInfoCommand;
import org.deepcad.fiji.commands.SettingsCommand;
import org.junit.jupiter.api.Test;
import org.scijava.command.CommandModule;
import org.scijava.command.CommandService;
import org.scijava.prefs.PrefService;

/**
 * Headless, with full preprocessing (as --run and macros run commands): an optional File input
 * left out must neither make SciJava's file preprocessor cancel the command silently nor be asked
 * for. The command runs, or fails naming what is missing.
 */
class OmittedInputsTest {
    private static CommandService commands() {
        return NativeTestSupport.context().service(CommandService.class);
    }

    @Test
    void settingsWithoutLibraryPathRunAndKeysLeftOutKeepTheirSetting() throws Exception {
        PrefService prefs = NativeTestSupport.context().service(PrefService.class);
        try {
            CommandModule first = commands()
                    .run(SettingsCommand.class, true, "device", "cpu", "threads", 0, "memory_mb", 300)
                    .get();
            assertFalse(first.isCanceled(), "cancelled: " + first.getCancelReason());
            assertTrue(((String) first.getOutput("devices")).contains("cpu"));
            assertEquals(300L << 20, DeepCadSettings.memoryBytes(prefs));
            assertEquals("cpu", DeepCadSettings.device(prefs));

            CommandModule second = commands()
                    .run(SettingsCommand.class, true, "memory_mb", 400)
                    .get();
            assertFalse(second.isCanceled(), "cancelled: " + second.getCancelReason());
            assertEquals(400L << 20, DeepCadSettings.memoryBytes(prefs));
            assertEquals("cpu", DeepCadSettings.device(prefs), "device left out: the saved device stays");
        } finally {
            commands()
                    .run(
                            SettingsCommand.class,
                            true,
                            "device",
                            DeepCadSettings.DEFAULT_DEVICE,
                            "threads",
                            0,
                            "memory_mb",
                            0,
                            "library_path",
                            new File(""))
                    .get();
        }
    }

    /** The DeepCadException a failed run threw (SciJava wraps it in its own exceptions). */
    private static DeepCadException failure(ExecutionException e) {
        Throwable cause = e.getCause();
        while (!(cause instanceof DeepCadException) && cause != null) cause = cause.getCause();
        return assertInstanceOf(DeepCadException.class, cause, () -> "unexpected " + e.getCause());
    }

    @Test
    void modelInfoWithoutModelFileFailsNamingIt() {
        ExecutionException e = assertThrows(
                ExecutionException.class,
                () -> commands().run(ModelInfoCommand.class, true).get());
        assertTrue(
                failure(e).getMessage().contains("set model_file"), failure(e).getMessage());
    }

    @Test
    void denoiseFilesGivenEveryKeyButTheInputFailsNamingIt() throws Exception {
        ExecutionException e = assertThrows(
                ExecutionException.class,
                () -> commands()
                        .run(
                                DenoiseFilesCommand.class,
                                true,
                                "output_folder",
                                NativeTestSupport.folder().toFile(),
                                "replace_existing",
                                false,
                                "model",
                                ModelChoice.BUILT_IN,
                                "model_file",
                                new File("unused.safetensors"),
                                "device",
                                "cpu",
                                "output_type",
                                OutputChoice.AUTOMATIC)
                        .get());
        assertTrue(
                failure(e).getMessage().contains("set input_path"), failure(e).getMessage());
    }
}
