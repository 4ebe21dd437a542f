# Source me: pins libtorch 2.11.0 (the version tch 0.24 expects) in a per-user cache and exports LIBTORCH.
# The minimal CPU set: torch without its CUDA wheels, plus the two small CUDA runtime wheels that
# libtorch_cpu.so needs at load time (see shared toolchain notes). Created from nothing when absent.
DEEPCAD_TORCH_VERSION=2.11.0
DEEPCAD_CACHE="${DEEPCAD_CACHE:-$HOME/.cache/deepcad}"
DEEPCAD_VENV="$DEEPCAD_CACHE/libtorch-$DEEPCAD_TORCH_VERSION"
if [ ! -f "$DEEPCAD_VENV/.complete" ]; then
    echo "deepcad: installing libtorch $DEEPCAD_TORCH_VERSION into $DEEPCAD_VENV (one time, ~1.3 GB)" >&2
    mkdir -p "$DEEPCAD_CACHE"
    python3 -m venv "$DEEPCAD_VENV" || return 1 2>/dev/null || exit 1
    "$DEEPCAD_VENV/bin/pip" install --quiet --no-deps "torch==$DEEPCAD_TORCH_VERSION" \
        "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cupti==13.0.*" || return 1 2>/dev/null || exit 1
    touch "$DEEPCAD_VENV/.complete"
fi
LIBTORCH="$(echo "$DEEPCAD_VENV"/lib/python3*/site-packages/torch)"
export LIBTORCH
export LIBTORCH_BYPASS_VERSION_CHECK=0
