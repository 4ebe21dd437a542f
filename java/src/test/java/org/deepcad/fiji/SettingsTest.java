package org.deepcad.fiji;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.deepcad.fiji.commands.SettingsCommand;
import org.junit.jupiter.api.Test;
import org.scijava.command.CommandService;
import org.scijava.prefs.PrefService;

/** What "DeepCAD settings" saves is what the other commands read. */
class SettingsTest {
    @Test
    void theMemoryBudgetSavedBySettingsIsTheOneCommandsUse() throws Exception {
        PrefService prefs = NativeTestSupport.context().service(PrefService.class);
        CommandService commands = NativeTestSupport.context().service(CommandService.class);
        try {
            org.scijava.command.CommandModule module = commands.run(
                            SettingsCommand.class,
                            true,
                            "device",
                            "cpu",
                            "threads",
                            0,
                            "memory_mb",
                            300,
                            "library_path",
                            new java.io.File(""))
                    .get();
            org.junit.jupiter.api.Assertions.assertFalse(module.isCanceled(), module.getCancelReason());
            assertEquals(300L << 20, DeepCadSettings.memoryBytes(prefs));
            assertEquals("cpu", DeepCadSettings.device(prefs));
        } finally {
            commands.run(
                            SettingsCommand.class,
                            true,
                            "device",
                            DeepCadSettings.DEFAULT_DEVICE,
                            "threads",
                            0,
                            "memory_mb",
                            0,
                            "library_path",
                            new java.io.File(""))
                    .get();
        }
    }
}
