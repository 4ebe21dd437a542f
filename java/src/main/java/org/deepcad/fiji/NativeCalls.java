package org.deepcad.fiji;

/**
 * The long native calls (denoise, train) running now, so that a JVM that is exiting stops them before
 * it ends. When the JVM exits (Fiji quits, {@code System.exit}, the last non-daemon thread ends) while
 * a call is still computing on another thread, the process's exit runs libtorch's and oneDNN's static
 * destructors under that thread: seen once as a SIGSEGV in {@code dnnl_primitive_execute}. The
 * shutdown hook {@link NativeLibrary} installs with the library asks every running call to stop (its
 * progress listener answers "stop" at the engine's next safe point: a tile, a band, a training step)
 * and waits for them to return, at most {@link #WAIT_MILLIS} ms; a call started after that is refused.
 */
final class NativeCalls {
    /** How long an exiting JVM waits for running calls to stop (a tile or training step is seconds). */
    static final long WAIT_MILLIS = 30_000;

    private static final Object LOCK = new Object();
    private static int running;
    private static volatile boolean exiting;

    private NativeCalls() {}

    /** One native call: close it (try-with-resources) when the native method has returned. */
    static final class Call implements AutoCloseable {
        private boolean closed;

        /** The listener to hand to the engine: the caller's, or none, plus "stop" once the JVM exits. */
        ProgressListener listener(ProgressListener caller) {
            return (phase, done, total, message, trainLoss, validationLoss) -> !exiting
                    && (caller == null || caller.onEvent(phase, done, total, message, trainLoss, validationLoss));
        }

        @Override
        public void close() {
            synchronized (LOCK) {
                if (closed) return;
                closed = true;
                running--;
                LOCK.notifyAll();
            }
        }
    }

    /** Registers a call about to enter native code; refused once the JVM is exiting. */
    static Call enter() {
        synchronized (LOCK) {
            if (exiting) {
                throw new DeepCadException(
                        "cancelled", "Java is shutting down: the DeepCAD computation was not started.");
            }
            running++;
        }
        return new Call();
    }

    /** Calls running now. */
    static int running() {
        synchronized (LOCK) {
            return running;
        }
    }

    /** The shutdown hook's work: stop every running call and wait for all to return (bounded). */
    static void stopAllAndWait(long waitMillis) {
        exiting = true;
        long start = System.nanoTime();
        long deadline = start + waitMillis * 1_000_000L;
        synchronized (LOCK) {
            if (running == 0) return;
            System.err.println("DeepCAD: Java is exiting; stopping " + running + " running computation(s) first.");
            while (running > 0) {
                long left = (deadline - System.nanoTime()) / 1_000_000L;
                if (left <= 0) {
                    System.err.println("DeepCAD: " + running + " computation(s) still running after " + waitMillis
                            + " ms; exiting anyway.");
                    return;
                }
                try {
                    LOCK.wait(left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
            System.err.println(String.format(
                    java.util.Locale.ROOT,
                    "DeepCAD: the running computations stopped (in %.1f s); Java exits.",
                    (System.nanoTime() - start) / 1e9));
        }
    }

    static void installShutdownHook() {
        Runtime.getRuntime()
                .addShutdownHook(new Thread(() -> stopAllAndWait(WAIT_MILLIS), "DeepCAD: stop native calls at exit"));
    }
}
