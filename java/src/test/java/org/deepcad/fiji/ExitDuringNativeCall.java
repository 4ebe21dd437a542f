package org.deepcad.fiji;

import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Test program for {@link ShutdownTest}, run in a JVM of its own: starts a long denoise on a daemon
 * thread and, once the engine is computing, ends the JVM while the call is still running, either
 * with {@code System.exit(0)} ("exit", as Fiji's Quit does) or by returning from main ("return": the
 * daemon thread does not keep the JVM alive). Prints "NATIVE-CALL-ENDED &lt;how&gt;" if the call
 * returned before the JVM ended. Arguments: the native library, "exit" or "return".
 */
public final class ExitDuringNativeCall {
    private ExitDuringNativeCall() {}

    public static void main(String[] args) throws Exception {
        NativeLibrary.load(args[0]);
        int width = 128, height = 128, frames = 2000;
        Random random = new Random(7);
        Object[] planes = new Object[frames];
        for (int t = 0; t < frames; t++) {
            short[] plane = new short[width * height];
            for (int i = 0; i < plane.length; i++) plane[i] = (short) (100 + random.nextInt(50));
            planes[t] = plane;
        }
        CountDownLatch computing = new CountDownLatch(1);
        Thread worker = new Thread(
                () -> {
                    String outcome;
                    try {
                        DeepCadNative.denoise(
                                "default",
                                "cpu",
                                planes,
                                width,
                                height,
                                "u16",
                                null,
                                "auto",
                                (phase, done, total, message, trainLoss, validationLoss) -> {
                                    if (!"info".equals(phase) && !"warning".equals(phase)) computing.countDown();
                                    return true;
                                });
                        outcome = "finished";
                    } catch (DeepCadException e) {
                        outcome = e.kind();
                    }
                    System.out.println("NATIVE-CALL-ENDED " + outcome);
                    System.out.flush();
                },
                "background denoise");
        worker.setDaemon(true);
        worker.start();
        if (!computing.await(300, TimeUnit.SECONDS)) {
            System.out.println("the denoise never started");
            System.exit(3);
        }
        Thread.sleep(500);
        System.out.println("EXITING while the denoise runs");
        System.out.flush();
        if ("exit".equals(args[1])) System.exit(0);
    }
}
