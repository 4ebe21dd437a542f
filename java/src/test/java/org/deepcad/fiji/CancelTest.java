package org.deepcad.fiji;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.lang.reflect.Field;
import org.deepcad.fiji.commands.TrainCommand;
import org.junit.jupiter.api.Test;

/** Cancelling a training command stops the engine promptly and keeps the last finished epoch's model. */
class CancelTest {
    private static void set(Object command, String field, Object value) throws Exception {
        Field f = command.getClass().getDeclaredField(field);
        f.setAccessible(true);
        f.set(command, value);
    }

    @Test
    void cancelDuringTrainingKeepsTheLastFinishedEpoch() throws Exception {
        File bundle =
                NativeTestSupport.folder().resolve("cancelled.safetensors").toFile();
        TrainCommand command = new TrainCommand();
        command.setContext(NativeTestSupport.context());
        set(
                command,
                "input",
                TestMovies.sixteenBit("c", TestMovies.simulate(TestMovies.FRAMES, 9)[1], TestMovies.FRAMES));
        set(command, "model_file", bundle);
        set(command, "epochs", 50);
        set(command, "patch_t", 16);
        set(command, "patch_xy", 16);
        set(command, "base_width", 4);
        set(command, "patches_per_epoch", 8);
        set(command, "device", "cpu");
        Thread training = new Thread(command, "training");
        training.start();
        long deadline = System.currentTimeMillis() + 240_000;
        while (!bundle.isFile() && training.isAlive() && System.currentTimeMillis() < deadline) Thread.sleep(20);
        assertTrue(bundle.isFile(), "the first epoch's bundle appears");
        command.cancel("test cancels");
        long cancelledAt = System.currentTimeMillis();
        training.join(120_000);
        System.out.printf("training stopped %d ms after the cancel%n", System.currentTimeMillis() - cancelledAt);
        assertTrue(!training.isAlive(), "training stopped");
        assertTrue(command.isCanceled());
        assertNull(command.report());
        int epochs = NativeTestSupport.json(DeepCadNative.modelInfoJson(bundle.getPath()))
                .getAsJsonObject("training")
                .get("epochs_completed")
                .getAsInt();
        assertTrue(epochs >= 1 && epochs < 50, "epochs in the kept bundle: " + epochs);
        assertEquals(
                "4",
                NativeTestSupport.json(DeepCadNative.modelInfoJson(bundle.getPath()))
                        .get("base_width")
                        .getAsString());
    }
}
