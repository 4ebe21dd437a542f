#!/usr/bin/env bash
# The evaluation harness in one command: builds the release binary and the throughput benchmark,
# sets up a Python environment with the full PyTorch 2.11 (the reference implementation runs on it;
# ~5 GB with its CUDA wheels, created once in the per-user cache), then runs eval/evaluate.py, which
# writes docs/evaluation/report.md with its plots. Arguments go to eval/evaluate.py (--help lists
# them; --quick checks the harness in ~2 minutes). The standard CPU suite takes under 30 minutes on
# a 2-core machine; run it on an otherwise idle machine, since it reports timings.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --bin deepcad
cargo bench --bench throughput --no-run
EVAL_VENV="$DEEPCAD_CACHE/eval-venv-torch-$DEEPCAD_TORCH_VERSION"
if [ ! -f "$EVAL_VENV/.complete" ]; then
    echo "evaluate: installing PyTorch $DEEPCAD_TORCH_VERSION and plotting tools into $EVAL_VENV (one time)" >&2
    python3 -m venv "$EVAL_VENV"
    "$EVAL_VENV/bin/pip" install --quiet "torch==$DEEPCAD_TORCH_VERSION" numpy tifffile matplotlib scipy safetensors
    touch "$EVAL_VENV/.complete"
fi
exec "$EVAL_VENV/bin/python" eval/evaluate.py "$@"
