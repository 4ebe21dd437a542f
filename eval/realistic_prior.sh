#!/usr/bin/env bash
# Experiment (issue 29): does a realistic stage make the built-in model better on real movies?
# Fine-tunes a built-in-style bundle (default: the shipped one) on 16 more simulated movies, 12 of
# them realistic scenes (`simulate --realistic`: dendrites, puncta, lobed and overlapping somata,
# vessel shadows, bleaching, drift and motion; two also one-photon-like, two with a fast indicator)
# and 4 plain ones like the built-in model's own, 5 epochs of 200 patches, seed 0. The simulation
# seeds (2001…) differ from the built-in model's (1001…) and the harness's (1, 2).
# Result and verdict: docs/evaluation/experiments.md ("A realistic stage for the built-in model").
#
#   eval/realistic_prior.sh OUT.safetensors [START.safetensors] [extra deepcad train arguments]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(realpath -m "$1")"
start="$(realpath "${2:-$root/models/default.safetensors}")"
shift $(($# >= 2 ? 2 : 1))
cd "$root"
# shellcheck source=/dev/null
source scripts/env.sh >/dev/null
cargo build --release --bin deepcad
deepcad="$root/target/release/deepcad"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
cp "$start" "$work/stage1.best.safetensors"
mkdir "$work/realistic"
# photons  width height frames frame-rate gain offset read-noise neurons extra-simulate-flags
realistic=(
  "0.3  160 160 512 30   2   100  2 40 --realistic"
  "0.5  144 144 512 15   1   50   1 35 --realistic"
  "0.7  160 128 512 7.5  2   0    2 30 --realistic"
  "1    176 176 512 30   3   100  2 50 --realistic"
  "1.5  128 160 512 60   2   100  0 30 --realistic"
  "2    160 160 512 15   4   300  3 45 --realistic"
  "3    144 144 512 30   1   1000 1 40 --realistic"
  "5    176 144 512 7.5  2   100  2 35 --realistic"
  "10   160 160 512 30   6   200  4 50 --realistic"
  "30   144 176 512 60   2   100  2 40 --realistic"
  "1    160 160 512 15   2   100  2 40 --realistic --one-photon"
  "5    144 144 512 30   2   100  2 35 --realistic --one-photon"
  "2    144 144 512 30   2   100  2 35 --realistic --indicator fast"
  "8    128 128 512 60   3   100  2 30 --realistic --indicator fast"
  "1    144 144 512 30   2   100  2 35"
  "12   160 144 512 7.5  3   0    2 40"
)
seed=2001
for spec in "${realistic[@]}"; do
  read -r photons width height frames rate gain offset read_noise neurons extra <<<"$spec"
  kind="$(echo "${extra:-plain}" | tr -d ' -' | sed 's/indicatorfast/fast/')"
  name="sim-$seed-${photons}photons-${width}x${height}x${frames}-${rate}Hz-gain${gain}-offset${offset}-read${read_noise}-${neurons}cells-${kind}.tif"
  # shellcheck disable=SC2086 # the extra flags are words
  "$deepcad" simulate -q -o "$work/realistic/$name" --photons "$photons" --width "$width" \
    --height "$height" --frames "$frames" --frame-rate "$rate" --gain "$gain" --offset "$offset" \
    --read-noise "$read_noise" --neurons "$neurons" --seed "$seed" ${extra:-}
  seed=$((seed + 1))
done
"$deepcad" train realistic -o "$work/default.safetensors" --resume "$work/stage1.best.safetensors" \
  --epochs 5 --patches-per-epoch 200 --seed 0 "$@"
cp "$work/default.best.safetensors" "$out.partial"
mv "$out.partial" "$out"
echo "wrote $out"
