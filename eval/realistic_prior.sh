#!/usr/bin/env bash
# Experiment (issue 29): does a realistic stage make the built-in model better on real movies?
# Fine-tunes a built-in-style bundle (default: the shipped one) on the realistic table of
# models/training-movies.sh (12 realistic scenes: dendrites, puncta, lobed and overlapping somata,
# vessel shadows, bleaching, drift and motion, two also one-photon-like, two with a fast indicator;
# plus 4 plain ones), seed 0. With MIX=with-plain the 16 plain movies the shipped model learned
# from are trained on too (32 movies), so the stage cannot forget plain scenes; with
# MIX=with-plain-dim also the 5 very dim ones (37 movies).
# EPOCHS (default 5), PATCHES (default 200) and LEARNING_RATE (default 0.001) set the stage's length.
# Results and verdicts: docs/evaluation/experiments.md ("A realistic stage for the built-in model").
#
#   [MIX=with-plain] [EPOCHS=N] eval/realistic_prior.sh OUT.safetensors [START.safetensors] [extra deepcad train arguments]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(realpath -m "$1")"
start="$(realpath "${2:-$root/models/default.safetensors}")"
shift $(($# >= 2 ? 2 : 1))
cd "$root"
# shellcheck source=/dev/null
source scripts/env.sh >/dev/null
# shellcheck source=../models/training-movies.sh
source models/training-movies.sh
cargo build --release --bin deepcad
deepcad="$root/target/release/deepcad"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
cp "$start" "$work/stage1.best.safetensors"
simulate_movies "$deepcad" "$work/movies" 2001 realistic_movies
case "${MIX:-realistic}" in
  realistic) ;;
  with-plain) simulate_movies "$deepcad" "$work/movies" 1001 plain_movies ;;
  with-plain-dim)
    simulate_movies "$deepcad" "$work/movies" 1001 plain_movies
    simulate_movies "$deepcad" "$work/movies" 3001 dim_movies
    ;;
  *) echo "MIX must be realistic, with-plain or with-plain-dim, not '$MIX'" >&2; exit 2 ;;
esac
"$deepcad" train movies -o "$work/default.safetensors" --resume "$work/stage1.best.safetensors" \
  --epochs "${EPOCHS:-5}" --patches-per-epoch "${PATCHES:-200}" \
  --learning-rate "${LEARNING_RATE:-0.001}" --seed 0 "$@"
cp "$work/default.best.safetensors" "$out.partial"
mv "$out.partial" "$out"
echo "wrote $out"
