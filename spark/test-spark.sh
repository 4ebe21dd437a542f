#!/usr/bin/env bash
# Spark test of the cluster door (issue #11) with real executor JVMs: Spark 3.5.9 from the PyPI
# pyspark wheel as SPARK_HOME (spark-home.sh installs it into ~/.cache/deepcad when absent), then
#   1. simulates a small movie, converts it to Zarr, and denoises it in a single CLI process
#      (the reference, whole.zarr, one thread);
#   2. spark-submit --master local-cluster[2,1,1024] (a master, two workers, two executor JVMs of
#      one core each) runs DenoiseBlocks in 4 blocks with libdeepcad.so shipped by --files; the
#      output must be complete (`deepcad status`), bit-identical to the reference (`deepcad compare`),
#      and the blocks must have run in two different executor processes;
#   3. the same with the library from --conf spark.deepcad.library, and one executor JVM killed
#      (SIGKILL, by its PID) while it denoises a block: Spark must report the lost task, re-run it
#      (the master starts a new executor) and end with a complete output identical to the reference.
# Every launch runs under `timeout`; whatever it started is stopped by PID on any exit, and the
# workers' folders of its applications ($SPARK_HOME/work/app-*) are removed.
# Skips (prints "SKIPPED: <reason>", exit 0) only when pyspark cannot be installed.
# Environment: DEEPCAD / DEEPCAD_LIBRARY (the CLI and libdeepcad.so; default target/debug, built
#   first), DEEPCAD_SPARK_JAR (default spark/target/deepcad-spark.jar, built when absent),
#   DEEPCAD_SPARK_TIMEOUT (seconds per spark-submit, 300), DEEPCAD_SPARK_FRAMES (200),
#   DEEPCAD_SPARK_KILL_AFTER (seconds a block runs before its executor is killed, 1),
#   DEEPCAD_SPARK_KEEP=1 keeps the temp dir.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
skip() { echo "SKIPPED: $*"; exit 0; }
say() { echo "spark-test: $*"; }
cd "$root"

# shellcheck source=/dev/null
source scripts/env.sh
if [ -z "${DEEPCAD:-}" ] || [ -z "${DEEPCAD_LIBRARY:-}" ]; then
    cargo build -q --lib --bin deepcad
fi
deepcad=${DEEPCAD:-$root/target/debug/deepcad}
library=${DEEPCAD_LIBRARY:-$root/target/debug/libdeepcad.so}
jar=${DEEPCAD_SPARK_JAR:-$root/spark/target/deepcad-spark.jar}
[ -f "$jar" ] || mvn -B -q -f spark/pom.xml package -DskipTests
# shellcheck source=/dev/null
source spark/spark-home.sh || skip "$DEEPCAD_SPARK_UNAVAILABLE"
timeout_s=${DEEPCAD_SPARK_TIMEOUT:-300}
frames=${DEEPCAD_SPARK_FRAMES:-200}
kill_after=${DEEPCAD_SPARK_KILL_AFTER:-1}

work="$(mktemp -d /tmp/deepcad-spark.XXXXXX)"
token="deepcad-spark-test-$$-$RANDOM" # marks our executor JVMs' command lines
launched=() # PIDs of the spark-submit launches (timeout's), for cleanup
ok=0

app_dirs() { # the workers' folders of our applications
    local d
    for d in "$SPARK_HOME"/work/app-*; do
        [ -d "$d" ] && grep -qs -- "$token" "$d"/*/stderr "$d"/*/stdout 2>/dev/null && echo "$d"
    done
    return 0
}
our_executors() { pgrep -f -- "-Ddeepcad.run=$token" || true; }

cleanup() {
    local rc=$? pid d
    trap - EXIT INT TERM
    for pid in "${launched[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${launched[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    for pid in $(our_executors); do
        say "stopping leftover executor JVM $pid"
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "$ok" != 1 ]; then
        say "FAILED (exit $rc); temp dir $work"
        for f in "$work"/*.log; do
            [ -f "$f" ] || continue
            echo "----- $f (last 40 lines)"
            tail -n 40 "$f"
        done
        for d in $(app_dirs); do
            for f in "$d"/*/stderr; do
                echo "----- $f (last 20 lines)"
                tail -n 20 "$f"
            done
        done
    fi
    for d in $(app_dirs); do rm -rf "$d"; done
    if [ "$ok" = 1 ] && [ "${DEEPCAD_SPARK_KEEP:-0}" != 1 ]; then rm -rf "$work"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# spark-submit for DenoiseBlocks in the background; its PID (timeout's) in $submitted.
submit() { # log, then spark-submit options and DenoiseBlocks arguments
    local log=$1
    shift
    timeout "$timeout_s" "$SPARK_HOME/bin/spark-submit" --master 'local-cluster[2,1,1024]' \
        --conf spark.ui.enabled=false --conf "spark.executor.extraJavaOptions=-Ddeepcad.run=$token" \
        "$@" >"$log" 2>&1 &
    submitted=$!
    launched+=("$submitted")
}
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

t0=$SECONDS
say "Spark: $SPARK_HOME; jar: $jar; library: $library"
"$deepcad" simulate -o "$work/movie.tif" --width 96 --height 96 --frames "$frames" --seed 11 -q
"$deepcad" convert "$work/movie.tif" -o "$work/movie.zarr" -q
timeout "$timeout_s" "$deepcad" denoise "$work/movie.zarr" --model default -o "$work/whole.zarr" --threads 1 -q
say "reference denoised in one process ($((SECONDS - t0)) s so far)"

# 2. Two executor JVMs, library shipped with --files.
t1=$SECONDS
submit "$work/files.log" --files "$library" --class org.deepcad.spark.DenoiseBlocks "$jar" \
    "$work/movie.zarr" default "$work/files.zarr" 4 --summary "$work/files.json"
rc=0
wait "$submitted" || rc=$?
[ "$rc" = 0 ] || { say "spark-submit (--files) exited $rc"; exit 1; }
pids=$(json "$work/files.json" "len({b['pid'] for b in d['blocks']})")
[ "$pids" = 2 ] || { say "expected the 4 blocks in 2 executor JVMs, got $pids"; exit 1; }
shipped=$(json "$work/files.json" "all('/work/app-' in b['library'] for b in d['blocks'])")
[ "$shipped" = True ] || { say "executors did not load the library shipped by --files"; exit 1; }
"$deepcad" status "$work/files.zarr" >"$work/files-status.log" || { say "status: blocks missing"; cat "$work/files-status.log"; exit 1; }
"$deepcad" compare "$work/whole.zarr" "$work/files.zarr" || { say "Spark blocks differ from the single process"; exit 1; }
say "local-cluster, --files: 4 blocks in 2 executor JVMs, bit-identical to the single process ($((SECONDS - t1)) s)"

# 3. An executor JVM killed while it denoises a block.
t2=$SECONDS
submit "$work/kill.log" --conf "spark.deepcad.library=$library" --class org.deepcad.spark.DenoiseBlocks "$jar" \
    "$work/movie.zarr" default "$work/kill.zarr" 4 --summary "$work/kill.json"
victim=""
deadline=$((SECONDS + timeout_s))
while [ -z "$victim" ] && [ $SECONDS -lt $deadline ] && kill -0 "$submitted" 2>/dev/null; do
    for pid in $(our_executors); do
        # A JVM that has just exited has no cmdline any more: skip it quietly.
        args=$( { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) || continue
        app=$(sed -n 's/.*--app-id \([^ ]*\).*/\1/p' <<<"$args")
        id=$(sed -n 's/.*--executor-id \([^ ]*\).*/\1/p' <<<"$args")
        err="$SPARK_HOME/work/$app/$id/stderr"
        [ -f "$err" ] || continue
        running=$(grep -c "Executor: Running task" "$err" || true)
        finished=$(grep -c "Executor: Finished task" "$err" || true)
        if [ "$running" -gt "$finished" ]; then
            sleep "$kill_after"
            kill -0 "$pid" 2>/dev/null || continue
            [ "$(grep -c "Executor: Finished task" "$err" || true)" = "$finished" ] || continue
            victim=$pid
            task=$(grep "Executor: Running task" "$err" | tail -n 1 | sed 's/.*Running task \([^ ]*\).*/\1/')
            kill -KILL "$pid"
            say "killed executor $id (pid $pid) while it ran task $task"
            # The task's partition is its block (one block per partition, in order).
            block=${task%%.*}
            "$deepcad" status --json "$work/kill.zarr" >"$work/kill-status-mid.json" 2>&1 || true
            unfinished=$(json "$work/kill-status-mid.json" "$block in d['missing']")
            [ "$unfinished" = True ] || { say "block $block was already finished when its executor was killed"; exit 1; }
            break
        fi
    done
    [ -n "$victim" ] || sleep 0.2
done
[ -n "$victim" ] || { say "never saw an executor running a block to kill"; exit 1; }
rc=0
wait "$submitted" || rc=$?
[ "$rc" = 0 ] || { say "spark-submit (executor killed) exited $rc"; exit 1; }
configured=$(json "$work/kill.json" "all(b['library'] == sys.argv[3] for b in d['blocks'])" "$library")
[ "$configured" = True ] || { say "executors did not load the library named by spark.deepcad.library"; exit 1; }
grep -q "ExecutorLostFailure" "$work/kill.log" || { say "Spark did not report the killed executor's task as lost"; exit 1; }
"$deepcad" status "$work/kill.zarr" >"$work/kill-status.log" || { say "status: blocks missing"; cat "$work/kill-status.log"; exit 1; }
"$deepcad" compare "$work/whole.zarr" "$work/kill.zarr" || { say "output after the kill differs from the single process"; exit 1; }
say "local-cluster, executor killed in block $block: task re-run, output complete and bit-identical ($((SECONDS - t2)) s)"
say "passed in $((SECONDS - t0)) s"
ok=1
