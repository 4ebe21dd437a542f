package org.deepcad.spark;

import java.io.Serializable;

/** What one task did with one block: where it ran, how long the engine call took, and the engine's report. */
public final class BlockRun implements Serializable {
    private static final long serialVersionUID = 1L;

    public final int index;
    public final String executor;
    public final long pid;
    public final String library;
    public final double seconds;
    /** CPU seconds the executor process used during the call: the block's own when the executor
     *  runs one task at a time (one core), or -1 where the platform does not tell. */
    public final double cpuSeconds;

    public final String reportJson;

    public BlockRun(
            int index,
            String executor,
            long pid,
            String library,
            double seconds,
            double cpuSeconds,
            String reportJson) {
        this.library = library;
        this.cpuSeconds = cpuSeconds;
        this.index = index;
        this.executor = executor;
        this.pid = pid;
        this.seconds = seconds;
        this.reportJson = reportJson;
    }

    @Override
    public String toString() {
        return String.format(
                "block %d on executor %s (pid %d): %.2f s (%.2f s CPU) %s",
                index, executor, pid, seconds, cpuSeconds, reportJson);
    }
}
