#!/usr/bin/env bash
# Real-SLURM test of the cluster door (issue #11): on this machine, as root and without systemd, it
# installs Debian's SLURM and MUNGE when absent, starts its own munged, slurmctld and slurmd on
# localhost (one node with this machine's cores, everything under a fresh temp dir, free ports), then
#   1. runs a trivial 4-task array (the daemons and the scheduler work at all),
#   2. denoises a simulated movie in a single process (the reference, whole.zarr, all cores),
#   3. submits cluster/slurm/denoise.sbatch as a 4-task array (-c1) into blocks.zarr and
#      cluster/slurm/check.sbatch after it (--dependency=afterany); block 3 gets SIGTERM mid-run as at a
#      time limit: it must end with exit 130 and the check must fail with exit 3 (block 3 missing),
#   4. re-submits blocks 3 and 0 (0 is finished: re-running it must change nothing) and a check after
#      them, which must pass; then `deepcad status` exit 0 and `deepcad compare whole.zarr blocks.zarr`
#      exit 0 (bit-identical to the single process).
# Every wait is bounded; on failure it prints the daemon logs and job outputs and keeps the temp dir.
# The daemons it started are stopped by the PIDs in their pid files on every exit (also on failure).
# Skips (prints "SKIPPED: <reason>", exit 0) only when not root or when the packages cannot be installed.
# Environment: DEEPCAD (binary; default target/debug/deepcad, built first), DEEPCAD_SLURM_KEEP=1 keeps
#   the temp dir, DEEPCAD_SLURM_TIMEOUT (seconds allowed per array, 900), DEEPCAD_SLURM_FRAMES (800;
#   a block must outlast the moment its SIGTERM is sent),
#   DEEPCAD_SLURM_INTERRUPT_AFTER (seconds after block 3's first line until its SIGTERM, 0.5).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
skip() { echo "SKIPPED: $*"; exit 0; }
say() { echo "slurm-test: $*"; }

[ "$(id -u)" = 0 ] || skip "not root (this test starts munged, slurmctld and slurmd as root)"
# Debian 12 packages: slurmctld/slurmd/slurm-client 22.05, munge 0.5.15.
if ! command -v munged >/dev/null || ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null; then
    command -v apt-get >/dev/null || skip "SLURM/MUNGE not installed and no apt-get to install them"
    say "installing slurmctld slurmd slurm-client munge (apt-get)"
    t0=$SECONDS
    if ! { timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 \
        apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge; } >/tmp/deepcad-slurm-apt.log 2>&1; then
        tail -20 /tmp/deepcad-slurm-apt.log
        skip "apt-get could not install slurmctld slurmd slurm-client munge (log above)"
    fi
    say "installed in $((SECONDS - t0)) s"
fi

deepcad=${DEEPCAD:-$root/target/debug/deepcad}
if [ -z "${DEEPCAD:-}" ]; then
    # shellcheck source=/dev/null
    (cd "$root" && source scripts/env.sh && cargo build -q --bin deepcad)
fi
grep -q -- '--block' <<<"$("$deepcad" denoise --help)" || { echo "slurm-test: $deepcad has no denoise --block" >&2; exit 1; }
export DEEPCAD="$deepcad" # what the sbatch scripts run (sbatch passes the environment on)
frames=${DEEPCAD_SLURM_FRAMES:-800}
interrupt_after=${DEEPCAD_SLURM_INTERRUPT_AFTER:-0.5}
timeout_s=${DEEPCAD_SLURM_TIMEOUT:-900}

work="$(mktemp -d /tmp/deepcad-slurm.XXXXXX)"
chmod 755 "$work"  # munged wants its socket reachable by all (x on every parent)
mkdir -m 755 "$work"/{munge,state,spool,jobs}
export SLURM_CONF="$work/slurm.conf"
jobs_submitted=()
ok=0

show_logs() {
    local f
    for f in "$work"/munge/munged.log "$work"/slurmctld.log "$work"/slurmd.log "$work"/jobs/*; do
        [ -f "$f" ] || continue
        echo "----- $f (last 60 lines)"
        tail -n 60 "$f"
    done
    echo "-----"
}

stop_pidfile() { # stop the daemon whose pid is in $1: TERM, up to 15 s, then KILL
    local pidfile=$1 pid i
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    say "$(basename "$pidfile" .pid) (pid $pid) ignored SIGTERM for 15 s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$ok" != 1 ]; then
        say "FAILED (exit $rc); temp dir $work"
        show_logs
    fi
    # Jobs still queued or running (a timeout, Ctrl-C) are cancelled before the daemons go.
    if [ "${#jobs_submitted[@]}" -gt 0 ] && [ -s "$work/slurmctld.pid" ]; then
        timeout 20 scancel "${jobs_submitted[@]}" 2>/dev/null || true
        for _ in $(seq 30); do
            [ -z "$(timeout 10 squeue -h -o %i 2>/dev/null)" ] && break
            sleep 1
        done
    fi
    stop_pidfile "$work/slurmd.pid"
    stop_pidfile "$work/slurmctld.pid"
    stop_pidfile "$work/munge/munged.pid"
    # Last resort after a failure: a job step whose slurmd is gone (slurmstepd and the job's own
    # processes) would linger; they are ours exactly when their cwd or an open file lies in $work.
    local p pid
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" = $$ ] && continue
        if [[ "$(readlink "$p/cwd" 2>/dev/null)/" == "$work/"* ]] \
            || find "$p/fd" -maxdepth 1 -lname "$work/*" 2>/dev/null | grep -q .; then
            say "stopping stray process $pid ($(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-80))"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if [ "$ok" = 1 ] && [ "${DEEPCAD_SLURM_KEEP:-0}" != 1 ]; then
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Two free TCP ports (another SLURM on this machine keeps its 6817/6818).
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 50); do
    ctld_port=$((20000 + RANDOM % 20000))
    slurmd_port=$((ctld_port + 1))
    port_busy "$ctld_port" || port_busy "$slurmd_port" || break
done

# MUNGE: our own key, socket, pid, log and seed, so a system munged (if any) is left alone.
head -c 1024 /dev/urandom >"$work/munge/munge.key"
chmod 400 "$work/munge/munge.key"
socket="$work/munge/munge.socket.2"
munged --key-file="$work/munge/munge.key" --socket="$socket" --pid-file="$work/munge/munged.pid" \
    --log-file="$work/munge/munged.log" --seed-file="$work/munge/munged.seed"
timeout 10 munge -n -S "$socket" | timeout 10 unmunge -S "$socket" >/dev/null \
    || { say "munge round trip failed"; exit 1; }

# One node named "localhost" (slurmd -N below) with this machine's cores. Memory is not a
# consumable (CR_Core), so RealMemory is left out rather than guessed.
node=localhost
cat >"$SLURM_CONF" <<EOF
ClusterName=deepcadci
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=5
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc)
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

wait_file() { # wait up to $2 s for file $1 to be non-empty
    local i
    for i in $(seq $(($2 * 10))); do
        [ -s "$1" ] && return 0
        sleep 0.1
    done
    return 1
}
t_daemons=$SECONDS
timeout 30 slurmctld -i -f "$SLURM_CONF"
wait_file "$work/slurmctld.pid" 20 || { say "slurmctld wrote no pid file"; exit 1; }
timeout 30 slurmd -f "$SLURM_CONF" -N "$node"
wait_file "$work/slurmd.pid" 20 || { say "slurmd wrote no pid file"; exit 1; }
state=""
for _ in $(seq 60); do
    state=$(timeout 10 sinfo -h -n "$node" -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 1
done
[ "$state" = idle ] || { say "node not idle after 60 s: '$state'"; timeout 10 scontrol show node "$node" || true; exit 1; }
say "munged, slurmctld, slurmd up; node idle in $((SECONDS - t_daemons)) s (ports $ctld_port/$slurmd_port)"

wait_job() { # wait up to $2 s until job $1 (all its array tasks) has left the queue
    local deadline=$((SECONDS + $2))
    while [ -n "$(timeout 10 squeue -h -j "$1" -o %i 2>/dev/null)" ]; do
        [ $SECONDS -lt $deadline ] || { say "job $1 still queued/running after $2 s"; timeout 10 squeue || true; return 1; }
        sleep 1
    done
}
job_states() { # "JobState ExitCode" per task of job $1, one a line
    timeout 10 scontrol -o show job "$1" | grep -o 'JobState=[A-Z_]* .*ExitCode=[0-9:]*' \
        | sed -E 's/JobState=([A-Z_]+) .*ExitCode=([0-9:]+)/\1 \2/'
}
all_completed() { # every task of job $1 COMPLETED with exit 0:0
    local s
    s=$(job_states "$1")
    [ -n "$s" ] && ! grep -qv '^COMPLETED 0:0$' <<<"$s"
}

# 1. The scheduler itself: a trivial array, two tasks at a time on two cores.
t_trivial=$SECONDS
# shellcheck disable=SC2016 # expanded by the job, not here
jid=$(timeout 30 sbatch --parsable --array=0-3 -c1 --chdir="$work" -o "$work/jobs/trivial-%A_%a.out" \
    --wrap 'echo "task $SLURM_ARRAY_TASK_ID on $(hostname)"')
jobs_submitted+=("$jid")
wait_job "$jid" 60
all_completed "$jid" || { say "trivial array: $(job_states "$jid" | tr '\n' ' ')"; exit 1; }
[ "$(cat "$work"/jobs/trivial-"$jid"_*.out | grep -c '^task ')" = 4 ] || { say "trivial array: not 4 outputs"; exit 1; }
say "trivial 4-task array ran in $((SECONDS - t_trivial)) s"

# 2. The single-process reference, with every core (the blocks get one thread each: the output must
# not depend on the thread count).
t_ref=$SECONDS
timeout 120 "$deepcad" simulate -q -o "$work/movie.tif" --width 96 --height 96 --frames "$frames" --seed 11
timeout "$timeout_s" "$deepcad" denoise -q "$work/movie.tif" --model default -o "$work/whole.zarr"
say "reference: simulated ${frames} frames of 96x96 and denoised them in one process ($(nproc) threads) in $((SECONDS - t_ref)) s"

# 3. The array, as a lab would submit it. One block gets what SLURM sends at a time limit: one
# SIGTERM to the task's processes (scancel --full --signal=TERM), mid-run (once deepcad has written
# its first line, its handler being in place from the start of main, plus a moment). It is block 3,
# the last to start: while array tasks are still pending, SLURM 22.05's scancel answers "Job can not
# be altered now" and signals the running task again 5 s later, which is not a time limit's behaviour.
t_array=$SECONDS
sub=(timeout 30 sbatch --parsable --chdir="$work" -c1)
jid=$("${sub[@]}" --array=0-3 -o "$work/jobs/denoise-%A_%a.out" "$root/cluster/slurm/denoise.sbatch" \
    "$work/movie.tif" default "$work/blocks.zarr" 4)
jobs_submitted+=("$jid")
cid=$("${sub[@]}" --dependency="afterany:$jid" -o "$work/jobs/check-%j.out" "$root/cluster/slurm/check.sbatch" "$work/blocks.zarr")
jobs_submitted+=("$cid")
deadline=$((SECONDS + timeout_s))
until grep -qs '^deepcad:' "$work/jobs/denoise-${jid}_3.out"; do
    [ $SECONDS -lt $deadline ] || { say "block 3 printed nothing within $timeout_s s"; exit 1; }
    sleep 0.2
done
sleep "$interrupt_after"
[ -n "$(timeout 10 squeue -h -j "${jid}_3" -o %i)" ] || { say "block 3 finished before its SIGTERM (raise DEEPCAD_SLURM_FRAMES)"; exit 1; }
# By its array name: the last task carries the array's own job id, which would signal every task.
timeout 30 scancel --full --signal=TERM "${jid}_3"
wait_job "$jid" "$timeout_s"
wait_job "$cid" 120
s3=$(job_states "${jid}_3")
[ "$s3" = "FAILED 130:0" ] || { say "block 3 after SIGTERM: '$s3', want 'FAILED 130:0' (deepcad's Ctrl-C exit)"; exit 1; }
for i in 0 1 2; do
    all_completed "${jid}_$i" || { say "block $i: $(job_states "${jid}_$i")"; exit 1; }
done
[ "$(job_states "$cid")" = "FAILED 3:0" ] || { say "check with block 3 missing: '$(job_states "$cid")', want 'FAILED 3:0'"; exit 1; }
grep -q 'missing: 3$' "$work/jobs/check-$cid.out" || { say "the check does not name block 3 as missing"; exit 1; }
say "array: blocks 0-2 done, block 3 stopped by SIGTERM (exit 130), check says incomplete (exit 3) after $((SECONDS - t_array)) s"

# 4. Re-run the missing block with a finished one (which must change nothing), then check again.
t_rerun=$SECONDS
rid=$("${sub[@]}" --array=0,3 -o "$work/jobs/rerun-%A_%a.out" "$root/cluster/slurm/denoise.sbatch" \
    "$work/movie.tif" default "$work/blocks.zarr" 4)
jobs_submitted+=("$rid")
cid2=$("${sub[@]}" --dependency="afterok:$rid" -o "$work/jobs/check-%j.out" "$root/cluster/slurm/check.sbatch" "$work/blocks.zarr")
jobs_submitted+=("$cid2")
wait_job "$rid" "$timeout_s"
wait_job "$cid2" 120
all_completed "$rid" || { say "re-run: $(job_states "$rid" | tr '\n' ' ')"; exit 1; }
all_completed "$cid2" || { say "final check: $(job_states "$cid2")"; exit 1; }
say "re-run of blocks 0,3 and the final check passed in $((SECONDS - t_rerun)) s"

timeout 60 "$deepcad" status "$work/blocks.zarr" >/dev/null || { say "deepcad status: exit $?"; exit 1; }
timeout 120 "$deepcad" compare "$work/whole.zarr" "$work/blocks.zarr" \
    || { say "blocks.zarr differs from the single-process whole.zarr (deepcad compare exit $?)"; exit 1; }
say "blocks.zarr (4 SLURM tasks, one interrupted and re-run with a finished one) is bit-identical to whole.zarr"

ok=1
say "PASSED"
