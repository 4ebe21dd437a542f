#!/usr/bin/env bash
# The evaluation harness in one command: builds the release binary and the throughput benchmark,
# sets up a Python environment with PyTorch 2.11 (the reference implementation runs on it; created
# once in the per-user cache), then runs eval/evaluate.py, which writes docs/evaluation/report.md
# with its plots. Arguments go to eval/evaluate.py (--help lists them; --quick checks the harness in
# a few minutes; --spikes-suite runs the spike-focused movies instead). Run it on an otherwise idle
# machine, since it reports timings. Spike inference uses OASIS (`oasis-deconv`, pinned below), and
# its scoring checks itself on synthetic traces (eval/spikes.py --self-test, seconds) before any run.
#
# The Python environment: with `--device cuda[:N]` among the arguments, the full PyTorch with all its
# CUDA wheels (~5 GB). Otherwise a CPU set in its own folder, like scripts/env.sh's for libtorch:
# torch without its dependencies, the two CUDA runtime wheels libtorch_cpu.so needs at load time and
# torch's pure-Python requirements. Python's `import torch` also needs the CUDA libraries that
# torch/_C links directly (cuDNN, cuBLAS, cuFFT, cuRAND, cuSPARSE(Lt), cuFile, NCCL, NVSHMEM), so
# those come too; triton, NVRTC, NVTX, cuSOLVER and cuda-bindings do not (~3.8 GB in all).
# DEEPCAD_EVAL_SKIP_BUILD=1 skips the cargo builds (uses target/release/deepcad as it is).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

DEVICE=cpu
# OASIS for spike inference (eval/spikes.py): the 0.3 API (tau_d/tau_r; AR(2) auto-estimated).
OASIS="oasis-deconv==0.3.2"
SKIP_SPEED=0
previous=""
for arg in "$@"; do
    case "$previous" in --device) case "$arg" in cuda*) DEVICE=cuda ;; esac ;; esac
    # The spike suite measures no speed, so it needs no benchmark binary either.
    case "$arg" in --device=cuda*) DEVICE=cuda ;; --skip-speed | --spikes-suite) SKIP_SPEED=1 ;; esac
    previous="$arg"
done

if [ "${DEEPCAD_EVAL_SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --bin deepcad
    if [ "$SKIP_SPEED" != 1 ]; then
        cargo bench --bench throughput --no-run
    fi
fi

if [ "$DEVICE" = cuda ]; then
    EVAL_VENV="$DEEPCAD_CACHE/eval-venv-torch-$DEEPCAD_TORCH_VERSION"
else
    EVAL_VENV="$DEEPCAD_CACHE/eval-venv-cpu-torch-$DEEPCAD_TORCH_VERSION"
fi
if [ ! -f "$EVAL_VENV/.complete" ]; then
    echo "evaluate: installing PyTorch $DEEPCAD_TORCH_VERSION ($DEVICE) and plotting tools into $EVAL_VENV (one time)" >&2
    python3 -m venv "$EVAL_VENV"
    if [ "$DEVICE" = cuda ]; then
        "$EVAL_VENV/bin/pip" install --quiet "torch==$DEEPCAD_TORCH_VERSION" numpy tifffile matplotlib scipy safetensors h5py \
            "$OASIS"
    else
        # torch's own pure-Python requirements (from its METADATA), then torch and the CUDA libraries
        # without dependencies (installed last, so that pip does not complain about the ones left out).
        "$EVAL_VENV/bin/pip" install --quiet filelock "typing-extensions>=4.10.0" "setuptools<82" "sympy>=1.13.3" \
            "networkx>=2.5.1" jinja2 "fsspec>=0.8.5" numpy tifffile matplotlib scipy safetensors h5py "$OASIS"
        "$EVAL_VENV/bin/pip" install --quiet --no-deps "torch==$DEEPCAD_TORCH_VERSION" \
            "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cupti==13.0.*" \
            "nvidia-cublas==13.1.0.3.*" "nvidia-cufft==12.0.0.61.*" "nvidia-cufile==1.15.1.6.*" \
            "nvidia-curand==10.4.0.35.*" "nvidia-cusparse==12.6.3.3.*" "nvidia-nvjitlink==13.0.88.*" \
            "nvidia-cudnn-cu13==9.19.0.56" "nvidia-cusparselt-cu13==0.8.0" "nvidia-nccl-cu13==2.28.9" \
            "nvidia-nvshmem-cu13==3.4.5"
    fi
    "$EVAL_VENV/bin/python" -c "import torch; torch.zeros(2)" || {
        echo "evaluate: PyTorch does not load in $EVAL_VENV" >&2
        exit 1
    }
    touch "$EVAL_VENV/.complete"
fi
# Environments made before spike scoring lack OASIS.
if ! "$EVAL_VENV/bin/python" -c "import oasis" 2>/dev/null; then
    echo "evaluate: installing $OASIS into $EVAL_VENV" >&2
    "$EVAL_VENV/bin/pip" install --quiet "$OASIS"
fi
"$EVAL_VENV/bin/python" eval/spikes.py --self-test >/dev/null || {
    echo "evaluate: the spike scoring's self-test failed; run $EVAL_VENV/bin/python eval/spikes.py --self-test" >&2
    exit 1
}
exec "$EVAL_VENV/bin/python" eval/evaluate.py "$@"
