#!/usr/bin/env bash
# Trains the built-in general model, models/default.safetensors, from nothing but the simulator:
# 16 simulated two-photon movies spread over photon levels (0.3–50 per pixel at a bright soma),
# frame sizes, frame rates (7.5–60 Hz: a transient lasts 4–60 frames), detector gains, offsets,
# read noise and cell densities; per-movie normalisation, so the model meets any brightness.
#
# Reproducible: every movie and the training are seeded; the epoch count is fixed (no time budget).
# With --precision float32 (pass it as an extra argument) the bundle is bit-identical run to run;
# the default (mixed bfloat16 on CPUs with native bf16) is about 2× faster.
# The simulation seeds (1001…) differ from the evaluation harness's (1, 2), so its movies stay held out.
#
#   models/train-default.sh [OUT.safetensors] [extra deepcad train arguments]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/models/default.safetensors}"
shift || true
cd "$root"
# shellcheck source=/dev/null
source scripts/env.sh >/dev/null
cargo build --release --bin deepcad
deepcad="$root/target/release/deepcad"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/movies"
# photons  width height frames frame-rate gain offset read-noise neurons
movies=(
  "0.3  160 160 640 30   2   100  2 40"
  "0.5  128 128 640 15   1   50   1 30"
  "0.5  192 144 512 60   4   200  3 50"
  "0.7  144 144 640 7.5  2   0    2 30"
  "1    128 128 768 30   3   100  2 30"
  "1    176 176 512 15   8   500  5 60"
  "1.5  160 128 640 60   2   100  0 35"
  "2    128 128 640 30   1   1000 1 20"
  "3    144 176 640 7.5  4   100  4 45"
  "5    128 128 640 30   2   100  2 30"
  "5    192 192 512 60   6   300  3 70"
  "8    160 160 640 15   2   100  2 40"
  "12   128 160 640 30   3   0    2 30"
  "20   144 144 640 7.5  2   100  2 35"
  "30   176 144 512 30   1   200  1 50"
  "50   128 128 640 60   2   100  2 25"
)
seed=1001
for spec in "${movies[@]}"; do
  read -r photons width height frames rate gain offset read_noise neurons <<<"$spec"
  # The name records the recipe (the bundle lists its training movies by name).
  name="sim-$seed-${photons}photons-${width}x${height}x${frames}-${rate}Hz-gain${gain}-offset${offset}-read${read_noise}-${neurons}cells.tif"
  "$deepcad" simulate -q -o "$work/movies/$name" --photons "$photons" --width "$width" \
    --height "$height" --frames "$frames" --frame-rate "$rate" --gain "$gain" --offset "$offset" \
    --read-noise "$read_noise" --neurons "$neurons" --seed "$seed"
  seed=$((seed + 1))
done

cd "$work"
"$deepcad" train movies -o "$work/default.safetensors" --normalization per-movie --init random \
  --epochs 24 --patches-per-epoch 200 --seed 0 "$@"
# Only the best epoch is shipped; it appears under its final name complete or not at all.
cp "$work/default.best.safetensors" "$out.partial"
mv "$out.partial" "$out"
echo "wrote $out"
