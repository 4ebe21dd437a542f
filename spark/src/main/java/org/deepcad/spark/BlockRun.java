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
    public final String reportJson;

    public BlockRun(int index, String executor, long pid, String library, double seconds, String reportJson) {
        this.library = library;
        this.index = index;
        this.executor = executor;
        this.pid = pid;
        this.seconds = seconds;
        this.reportJson = reportJson;
    }

    @Override
    public String toString() {
        return String.format("block %d on executor %s (pid %d): %.2f s %s", index, executor, pid, seconds, reportJson);
    }
}
