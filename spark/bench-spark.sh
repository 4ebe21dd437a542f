#!/usr/bin/env bash
# Benchmark (not a test) of the Spark door: the same simulated movie denoised by
#   - one CLI process, one libtorch thread (`deepcad denoise --threads 1`): the reference work;
#   - spark-submit --master local-cluster[1,1,1024]: one executor JVM, one core, one thread;
#   - spark-submit --master local-cluster[2,1,1024]: two executor JVMs, one core and thread each;
# in BLOCKS time blocks. Prints wall times (whole spark-submit, and the job itself from planning to
# the final status: what a long-running cluster pays), per-block times, speed-up and efficiency of
# 2 executors over 1, and the overhead of Spark against the single process doing the same work.
# Every output is checked bit-identical to the single process.
# Spark waits for all its executors before the job starts (spark.cores.max with
# minRegisteredResourcesRatio 1), so the job's wall time excludes executor start-up; the whole
# spark-submit time includes it. The default movie has 8 time tiles: 2 per block, none idle.
# Environment: DEEPCAD_BENCH_SIZE (128: frames are SIZE x SIZE), DEEPCAD_BENCH_FRAMES (2200),
#   DEEPCAD_BENCH_BLOCKS (4), DEEPCAD_PROFILE (release), DEEPCAD_BENCH_KEEP=1 keeps the temp dir.
# Machine load skews everything: run it on an otherwise idle machine with at least 2 cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
say() { echo "spark-bench: $*"; }
size=${DEEPCAD_BENCH_SIZE:-128}
frames=${DEEPCAD_BENCH_FRAMES:-2200}
blocks=${DEEPCAD_BENCH_BLOCKS:-4}
profile=${DEEPCAD_PROFILE:-release}

# shellcheck source=/dev/null
source scripts/env.sh
if [ "$profile" = release ]; then cargo build -q --release --lib --bin deepcad; else cargo build -q --lib --bin deepcad; fi
deepcad=$root/target/$profile/deepcad
library=$root/target/$profile/libdeepcad.so
jar=$root/spark/target/deepcad-spark.jar
[ -f "$jar" ] || mvn -B -q -f spark/pom.xml package -DskipTests
# shellcheck source=/dev/null
source spark/spark-home.sh || { echo "spark-bench: $DEEPCAD_SPARK_UNAVAILABLE" >&2; exit 1; }

work="$(mktemp -d /tmp/deepcad-spark-bench.XXXXXX)"
token="deepcad-spark-bench-$$-$RANDOM"
running=""
cleanup() {
    local rc=$? d pid
    trap - EXIT INT TERM
    [ -n "$running" ] && kill -TERM "$running" 2>/dev/null && wait "$running" 2>/dev/null
    for pid in $(pgrep -f -- "-Ddeepcad.run=$token" || true); do kill -KILL "$pid" 2>/dev/null || true; done
    for d in "$SPARK_HOME"/work/app-*; do
        [ -d "$d" ] && grep -qs -- "$token" "$d"/*/stderr && rm -rf "$d"
    done
    if [ "${DEEPCAD_BENCH_KEEP:-0}" != 1 ]; then rm -rf "$work"; else say "kept $work"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "movie ${size}x${size}x${frames}, $blocks blocks, $profile build, $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$deepcad" simulate -o "$work/movie.tif" --width "$size" --height "$size" --frames "$frames" --seed 5 -q
"$deepcad" convert "$work/movie.tif" -o "$work/movie.zarr" -q

elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$EPOCHREALTIME"; }
TIMEFORMAT='%R %U %S'
{ time timeout 3600 "$deepcad" denoise "$work/movie.zarr" --model default -o "$work/cli.zarr" --threads 1 2>"$work/cli.log"; } 2>"$work/cli.time"
read -r cli_s cli_user cli_sys <"$work/cli.time"
cli_cpu=$(python3 -c "import sys; print(float(sys.argv[1]) + float(sys.argv[2]))" "$cli_user" "$cli_sys")
say "single CLI process, 1 thread: $cli_s s ($cli_cpu s CPU); $(grep -o 'tile \[.*' "$work/cli.log" | head -n 1)"

spark_run() { # executors
    local n=$1 start rc=0
    start=$EPOCHREALTIME
    timeout 3600 "$SPARK_HOME/bin/spark-submit" --master "local-cluster[$n,1,1024]" \
        --conf spark.ui.enabled=false --conf "spark.executor.extraJavaOptions=-Ddeepcad.run=$token" \
        --conf "spark.cores.max=$n" --conf spark.scheduler.minRegisteredResourcesRatio=1.0 \
        --conf "spark.deepcad.library=$library" --class org.deepcad.spark.DenoiseBlocks "$jar" \
        "$work/movie.zarr" default "$work/spark$n.zarr" "$blocks" --threads 1 --summary "$work/spark$n.json" \
        >"$work/spark$n.log" 2>&1 &
    running=$!
    wait "$running" || rc=$?
    running=""
    [ "$rc" = 0 ] || { tail -n 40 "$work/spark$n.log"; say "spark-submit with $n executors exited $rc"; exit 1; }
    elapsed "$start" >"$work/spark$n.wall"
    "$deepcad" compare "$work/cli.zarr" "$work/spark$n.zarr" >/dev/null || { say "$n executors: output differs"; exit 1; }
}
spark_run 1
spark_run 2

python3 - "$work" "$cli_s" "$cli_cpu" <<'PY'
import json, sys
work, cli, cli_cpu = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
runs = {}
for n in (1, 2):
    d = json.load(open(f"{work}/spark{n}.json"))
    d["submit"] = float(open(f"{work}/spark{n}.wall").read())
    runs[n] = d
print(f"{'':16}{'submit':>8}{'job':>8}{'plan':>7}{'blocks':>8}{'block sum':>11}{'mean':>7}{'min':>7}{'max':>7}  executors")
for n, d in runs.items():
    secs = [b["seconds"] for b in d["blocks"]]
    execs = sorted({b["executor"] for b in d["blocks"]})
    print(f"{str(n) + ' executor(s)':16}{d['submit']:7.1f}s{d['wall_seconds']:7.1f}s{d['plan_seconds']:6.1f}s{d['blocks_seconds']:7.1f}s"
          f"{sum(secs):10.1f}s{sum(secs)/len(secs):6.1f}s{min(secs):6.1f}s{max(secs):6.1f}s  {','.join(execs)}")
for n, d in runs.items():
    print(f"  {n} executor(s), per block: " + ", ".join(f"#{b['index']} {b['seconds']:.1f}s (exec {b['executor']})" for b in d["blocks"]))
plan = runs[1]["plan"]
print(f"blocks' plan: tile {plan['tile']}, halo {plan['halo']}, frames per block "
      + ", ".join(f"{b['frames'][1] - b['frames'][0]} ({b['time_tiles'][1] - b['time_tiles'][0]} tiles)" for b in plan["blocks"]))
one, two = runs[1], runs[2]
speed_job = one["wall_seconds"] / two["wall_seconds"]
speed_submit = one["submit"] / two["submit"]
print("(submit: whole spark-submit; job: plan + blocks + status, executors already up; plan: driver's planning and")
print(" output preparation; blocks: the Spark job of the blocks; block sum: engine calls inside the tasks)")
print(f"single CLI process (1 thread): {cli:.1f} s, {cli_cpu:.1f} s CPU")
print(f"speed-up 2 vs 1 executor: job {speed_job:.2f} (efficiency {speed_job/2:.2f}); whole spark-submit {speed_submit:.2f} (efficiency {speed_submit/2:.2f})")
blocks_sum = sum(b["seconds"] for b in one["blocks"])
print(f"overhead vs the single process, 1 executor: job {100*(one['wall_seconds']/cli-1):+.1f} %, "
      f"whole spark-submit {100*(one['submit']/cli-1):+.1f} %, engine block calls alone {100*(blocks_sum/cli-1):+.1f} % "
      f"(per-block model load, planning and I/O)")
for n, d in runs.items():
    cpu = sum(b["cpu_seconds"] for b in d["blocks"])
    print(f"CPU of the block calls, {n} executor(s): {cpu:.1f} s, {100*(cpu/cli_cpu-1):+.1f} % against the single process's CPU "
          "(load-independent: what Spark's blocks cost in work)")
PY
