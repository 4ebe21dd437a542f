# Source me: pins libtorch 2.11.0 (the version tch 0.24 expects) in a per-user cache and exports LIBTORCH.
# Default: the minimal CPU set (~1.3 GB): torch without its CUDA wheels, plus the two small CUDA
# runtime wheels that libtorch_cpu.so needs at load time (see shared toolchain notes).
# `source scripts/env.sh --cuda` (or DEEPCAD_CUDA=1): the full CUDA 13 set (~4.6 GB: torch and the
# nvidia-* wheels it pins) in its own folder. Binaries built with it find libtorch_cuda.so through
# their run path, and libtorch_cuda.so finds cuBLAS, cuDNN... through its own ($ORIGIN/../../nvidia):
# no LD_LIBRARY_PATH. The same binary still runs on CPU-only machines. Switching sets rebuilds tch;
# use a separate CARGO_TARGET_DIR to keep both builds.
# Created from nothing when absent.
DEEPCAD_TORCH_VERSION=2.11.0
DEEPCAD_CACHE="${DEEPCAD_CACHE:-$HOME/.cache/deepcad}"
DEEPCAD_WANT_CUDA="${DEEPCAD_CUDA:-0}"
for deepcad_arg in "$@"; do
    [ "$deepcad_arg" = "--cuda" ] && DEEPCAD_WANT_CUDA=1
done
if [ "$DEEPCAD_WANT_CUDA" = 1 ]; then
    DEEPCAD_VENV="$DEEPCAD_CACHE/libtorch-$DEEPCAD_TORCH_VERSION-cuda"
    if [ ! -f "$DEEPCAD_VENV/.complete" ]; then
        echo "deepcad: installing libtorch $DEEPCAD_TORCH_VERSION with CUDA 13 into $DEEPCAD_VENV (one time, ~4.6 GB)" >&2
        mkdir -p "$DEEPCAD_CACHE"
        python3 -m venv "$DEEPCAD_VENV" || return 1 2>/dev/null || exit 1
        "$DEEPCAD_VENV/bin/pip" install --quiet "torch==$DEEPCAD_TORCH_VERSION" || return 1 2>/dev/null || exit 1
        touch "$DEEPCAD_VENV/.complete"
    fi
else
    DEEPCAD_VENV="$DEEPCAD_CACHE/libtorch-$DEEPCAD_TORCH_VERSION"
    if [ ! -f "$DEEPCAD_VENV/.complete" ]; then
        echo "deepcad: installing libtorch $DEEPCAD_TORCH_VERSION into $DEEPCAD_VENV (one time, ~1.3 GB)" >&2
        mkdir -p "$DEEPCAD_CACHE"
        python3 -m venv "$DEEPCAD_VENV" || return 1 2>/dev/null || exit 1
        "$DEEPCAD_VENV/bin/pip" install --quiet --no-deps "torch==$DEEPCAD_TORCH_VERSION" \
            "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cupti==13.0.*" || return 1 2>/dev/null || exit 1
        touch "$DEEPCAD_VENV/.complete"
    fi
fi
unset deepcad_arg
LIBTORCH="$(echo "$DEEPCAD_VENV"/lib/python3*/site-packages/torch)"
export LIBTORCH
export LIBTORCH_BYPASS_VERSION_CHECK=0
