#!/usr/bin/env bash
# Builds the DeepCAD Fiji overlay in one command:
#   <dest>/Fiji.app/jars/deepcad-fiji.jar
#   <dest>/Fiji.app/lib/linux64/libdeepcad.so + the libtorch CPU libraries it loads
#     (libtorch_cpu.so, libc10.so, libgomp.so.1, libcudart.so.13, libcupti.so.13)
# Copy <dest>/Fiji.app over a Fiji installation. libdeepcad.so's run path starts with $ORIGIN, so
# the system loader finds libtorch in the same folder; nothing needs LD_LIBRARY_PATH.
#
# Usage: fiji-plugin/build.sh [--cuda] [dest]          (default dest: fiji-plugin/dist)
#   DEEPCAD_PROFILE=debug fiji-plugin/build.sh ...   uses the debug library (tests; no release build)
#   --cuda: the GPU overlay: also libtorch_cuda.so, libc10_cuda.so and every CUDA 13 library they
#     load (cuBLAS, cuDNN with its engine libraries, cuFFT, cuSPARSE(Lt), cuRAND, cuSOLVER, NCCL,
#     NVRTC...), flattened into lib/linux64 where libtorch_cuda.so's $ORIGIN run path finds them
#     (≈ 3 GB). libtorch_cpu.so is the same file in the CPU and CUDA sets (same wheel), so the
#     library is not rebuilt; the CUDA set is installed by `source scripts/env.sh --cuda`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cuda=0
positional=()
for arg in "$@"; do
    case "$arg" in
        --cuda) cuda=1 ;;
        *) positional+=("$arg") ;;
    esac
done
set -- "${positional[@]+"${positional[@]}"}"
dest="${1:-$root/fiji-plugin/dist}"
profile="${DEEPCAD_PROFILE:-release}"
cd "$root"
# shellcheck source=/dev/null
source scripts/env.sh ""

if [ "$profile" = release ]; then
    cargo build --lib --release
else
    cargo build --lib
fi
library="$root/target/$profile/libdeepcad.so"
[ -f "$library" ] || { echo "build.sh: $library was not built" >&2; exit 1; }

mvn -B -q -f java/pom.xml -DskipTests package
jar="$root/java/target/deepcad-fiji.jar"

torch_lib="$LIBTORCH/lib"
site_packages="$(dirname "$LIBTORCH")"
find_lib() {
    local name="$1" found
    found="$(find "$torch_lib" "$site_packages/nvidia" -name "$name" 2>/dev/null | head -n 1)"
    [ -n "$found" ] || { echo "build.sh: $name not found under $torch_lib or $site_packages/nvidia" >&2; exit 1; }
    echo "$found"
}

app="$dest/Fiji.app"
rm -rf "$app"
mkdir -p "$app/jars" "$app/lib/linux64"
cp "$jar" "$app/jars/deepcad-fiji.jar"
# Copies are stripped (symbols only; the originals stay untouched): ~430 MB becomes ~340 MB.
install_stripped() {
    cp -L "$1" "$app/lib/linux64/$2"
    chmod u+w "$app/lib/linux64/$2"
    strip --strip-unneeded "$app/lib/linux64/$2" 2>/dev/null || true
}
install_stripped "$library" libdeepcad.so
for name in libtorch_cpu.so libc10.so libgomp.so.1 libcudart.so.13 libcupti.so.13; do
    install_stripped "$(find_lib "$name")" "$name"
done

if [ "$cuda" = 1 ]; then
    cuda_torch="$(bash -c 'source scripts/env.sh --cuda >&2 && echo "$LIBTORCH"')"
    cmp -s "$cuda_torch/lib/libtorch_cpu.so" "$torch_lib/libtorch_cpu.so" \
        || { echo "build.sh: the CUDA set's libtorch_cpu.so differs from the one libdeepcad.so was built with" >&2; exit 1; }
    for name in libtorch_cuda.so libc10_cuda.so libtorch_cuda_linalg.so libtorch_nvshmem.so libcaffe2_nvrtc.so; do
        install_stripped "$cuda_torch/lib/$name" "$name"
    done
    # Every shared library of the nvidia wheels (cuDNN opens its engine libraries by name at run time,
    # so the loader's view of libtorch_cuda.so is not the whole set).
    find "$(dirname "$cuda_torch")/nvidia" -path '*/lib/*.so*' -type f | while read -r found; do
        cp -L "$found" "$app/lib/linux64/$(basename "$found")"
    done
    missing="$(cd "$app/lib/linux64" && env -u LD_LIBRARY_PATH ldd ./libtorch_cuda.so | grep 'not found' || true)"
    [ -z "$missing" ] || { echo "build.sh: the GPU overlay misses libraries: $missing" >&2; exit 1; }
fi

echo "DeepCAD Fiji overlay ($profile$( [ "$cuda" = 1 ] && echo ", CUDA 13")): $app"
du -sh "$app"
(cd "$dest" && find Fiji.app -type f -exec ls -l {} + | awk '{print $5, $9}')
