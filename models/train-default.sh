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
# shellcheck source=training-movies.sh
source models/training-movies.sh
cargo build --release --bin deepcad
deepcad="$root/target/release/deepcad"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
simulate_movies "$deepcad" "$work/movies" 1001 plain_movies

cd "$work"
"$deepcad" train movies -o "$work/default.safetensors" --normalization per-movie --init random \
  --epochs 24 --patches-per-epoch 200 --seed 0 "$@"
# Only the best epoch is shipped; it appears under its final name complete or not at all.
cp "$work/default.best.safetensors" "$out.partial"
mv "$out.partial" "$out"
echo "wrote $out"
