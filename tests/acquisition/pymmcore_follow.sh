#!/usr/bin/env bash
# A real acquisition engine drives `deepcad denoise --follow`: Micro-Manager's core from PyPI
# (pymmcore-plus, its pure-Python UniMMCore with a Python camera; no device-adapter binaries) runs a
# multi-dimensional acquisition whose TensorStoreHandler writes a Zarr v3 array as frames land
# (shape set up front, one chunk per frame, written asynchronously), while deepcad follows it.
# Checks: the follow ends by its idle rule with every frame, and its output equals the offline
# denoise of the finished array, voxel for voxel (`deepcad compare`).
#
# Skips (exit 0, printing why) when pymmcore-plus cannot be installed. Environment:
#   DEEPCAD          the deepcad binary (default: target/debug/deepcad, then target/release/deepcad)
#   PYMMCORE_VENV    the virtual environment to use or create (default: target/pymmcore-venv)
#   FRAMES, INTERVAL_MS  the acquisition (default 240 frames every 20 ms)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
deepcad="${DEEPCAD:-}"
for candidate in "$root/target/debug/deepcad" "$root/target/release/deepcad"; do
    [[ -z "$deepcad" && -x "$candidate" ]] && deepcad="$candidate"
done
[[ -x "$deepcad" ]] || { echo "pymmcore_follow: no deepcad binary (build it, or set DEEPCAD)" >&2; exit 1; }
venv="${PYMMCORE_VENV:-$root/target/pymmcore-venv}"
frames="${FRAMES:-240}"
interval="${INTERVAL_MS:-20}"

skip() { echo "pymmcore_follow: SKIPPED: $*"; exit 0; }
if ! "$venv/bin/python" -c "import pymmcore_plus, tensorstore, useq" 2>/dev/null; then
    python3 -m venv "$venv" 2>/dev/null || skip "python3 -m venv failed (install python3-venv)"
    # Pinned: the handler used here is deprecated upstream in favour of ome-writers.
    "$venv/bin/pip" install -q "pymmcore-plus==0.18.1" >"$venv.install.log" 2>&1 \
        || skip "pip install pymmcore-plus==0.18.1 failed (no network or no wheel for this platform): see $venv.install.log"
fi
python="$venv/bin/python"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# acquire ARRAY FRAMES INTERVAL_MS (log in ARRAY.log)
acquire() { "$python" -W ignore "$here/pymmcore_acquire.py" "$@" >"$1.log" 2>&1; }
started=$(date +%s.%N)

# A small model with fixed normalisation (a per-movie model measures live statistics on a warm-up
# window, which differs from the finished movie's), trained briefly on a first acquisition.
acquire "$work/calibration.zarr" 64 5
"$deepcad" convert "$work/calibration.zarr" -o "$work/calibration.tif" --quiet
"$deepcad" train "$work/calibration.tif" -o "$work/model.safetensors" --epochs 1 --patches-per-epoch 4 \
    --patch-t 16 --patch-xy 32 --base-width 4 --normalization fixed --precision float32 --device cpu --quiet

# The acquisition and the follow run side by side; the array does not exist yet when the follow starts.
acquire "$work/acquisition.zarr" "$frames" "$interval" &
writer=$!
"$deepcad" denoise --follow "$work/acquisition.zarr" -m "$work/model.safetensors" -o "$work/live.tif" \
    --device cpu --behind queue --max-behind 100000 --follow-idle 3s 2>"$work/follow.log" || {
    cat "$work/follow.log" >&2; echo "pymmcore_follow: FAILED: the follow did not succeed" >&2; exit 1; }
wait "$writer" || { cat "$work/acquisition.zarr.log" >&2; echo "pymmcore_follow: FAILED: the acquisition failed" >&2; exit 1; }

written=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['frames'])" "$work/live.tif.done")
[[ "$written" == "$frames" ]] || { cat "$work/follow.log" >&2; echo "pymmcore_follow: FAILED: $written of $frames frames followed" >&2; exit 1; }
tile=$(grep -a -o 'tile \[[0-9, ]*\]' "$work/live.tif" | head -1 | tr -d 'tile[] ')
"$deepcad" denoise "$work/acquisition.zarr" -m "$work/model.safetensors" -o "$work/offline.tif" \
    --device cpu --tile "$tile" --quiet
if ! "$deepcad" compare "$work/live.tif" "$work/offline.tif"; then
    echo "pymmcore_follow: FAILED: the followed output differs from the finished array's denoise" >&2
    exit 1
fi
delay=$("$python" -c "import json,sys; d=json.load(open(sys.argv[1]))['delay_seconds']; print(f\"median {d['median']:.2f} s, max {d['max']:.2f} s\")" "$work/live.tif.done")
echo "pymmcore_follow: ok: $frames frames acquired by pymmcore-plus $("$python" -c 'import pymmcore_plus; print(pymmcore_plus.__version__)') (UniMMCore, Python camera, TensorStoreHandler zarr3) and followed; identical to the offline denoise; delay $delay; $(awk "BEGIN{printf \"%.0f\", $(date +%s.%N) - $started}") s in all"
