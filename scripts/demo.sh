#!/usr/bin/env bash
# Sets up libtorch (once), builds the CLI, and runs the built-in example: simulate a noisy
# two-photon movie, train briefly, denoise, print SNR before/after and write deepcad-demo/demo.png.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=/dev/null
source scripts/env.sh
cargo build --release --bin deepcad
exec target/release/deepcad demo --out "${1:-deepcad-demo}"
