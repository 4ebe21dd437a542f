#!/usr/bin/env bash
# Builds the DeepCAD Fiji overlay, and optionally its Fiji update site, in one command:
#   <dest>/Fiji.app/jars/deepcad-fiji.jar                 the plugin (a reproducible jar: same sources, same bytes)
#   <dest>/Fiji.app/lib/linux64/libdeepcad.so             the engine (JNI), stripped
#   <dest>/Fiji.app/lib/linux64/deepcad/                  DeepCAD's private copy of the libtorch 2.11.0 CPU
#       libtorch_cpu.so libc10.so libgomp.so.1            libraries it loads, stripped of symbols
#       libcudart.so.13 libcupti.so.13                    (libtorch_cpu.so needs both at load time)
# libdeepcad.so's run path is exactly "$ORIGIN/deepcad", made a DT_RPATH (searched before LD_LIBRARY_PATH),
# so it loads these copies and never a libtorch_cpu.so or libgomp.so.1 that another update site put in
# lib/linux64, nor the build machine's libtorch; libtorch's own libraries find each other through $ORIGIN.
# The build fails unless every library of the folder is loaded by libdeepcad.so and every one it loads
# resolves inside the folder (ldd, no LD_LIBRARY_PATH).
#
# Usage: fiji-plugin/build.sh [--cuda] [--update-site SITE_DIR] [dest]      (default dest: fiji-plugin/dist)
#   --update-site SITE_DIR  also publishes the overlay as the Fiji update site "DeepCAD" in SITE_DIR with
#     the ImageJ updater's own upload (fiji-plugin/publish-site.sh): db.xml.gz and the files, written
#     by the updater. Publishing again to the same folder uploads only the files that changed.
#   --cuda  the GPU overlay: also libtorch_cuda.so, libc10_cuda.so (and libtorch's other CUDA parts) and the
#     CUDA 13 libraries they load, in lib/linux64/deepcad (≈ 3 GB). libtorch_cpu.so is the same file in the
#     CPU and CUDA sets (same wheel), so the library is not rebuilt; the CUDA set is installed by
#     `source scripts/env.sh --cuda`. With --update-site, SITE_DIR becomes the separate site "DeepCAD-CUDA"
#     holding only these additions, so a CPU user never downloads CUDA; GPU users enable both sites.
#   DEEPCAD_PROFILE=debug fiji-plugin/build.sh ...   uses the debug library (tests; no release build)
#   DEEPCAD_CUDA_LIBTORCH=.../site-packages/torch      takes the CUDA set from an existing torch 2.11.0 install
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cuda=0
site_dir=""
positional=()
while [ $# -gt 0 ]; do
    case "$1" in
        --cuda) cuda=1 ;;
        --update-site) site_dir="${2:?--update-site needs a folder}"; shift ;;
        --update-site=*) site_dir="${1#--update-site=}" ;;
        -*) echo "build.sh: unknown option $1 (usage: build.sh [--cuda] [--update-site SITE_DIR] [dest])" >&2; exit 2 ;;
        *) positional+=("$1") ;;
    esac
    shift
done
set -- "${positional[@]+"${positional[@]}"}"
dest="${1:-$root/fiji-plugin/dist}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
[ -z "$site_dir" ] || { mkdir -p "$site_dir" && site_dir="$(cd "$site_dir" && pwd)"; }
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

cpu_set=(libtorch_cpu.so libc10.so libgomp.so.1 libcudart.so.13 libcupti.so.13)
app="$dest/Fiji.app"
lib="$app/lib/linux64"
private="$lib/deepcad"
rm -rf "$app"
mkdir -p "$app/jars" "$private"
cp "$jar" "$app/jars/deepcad-fiji.jar"
# Copies are stripped of symbols (the originals stay untouched; strip is deterministic, so rebuilds give
# the same bytes): libtorch_cpu.so 451 -> 358 MB. A file strip cannot shrink is copied as it is.
install_stripped() {
    local from="$1" to="$2"
    cp -L "$from" "$to.tmp"
    chmod u+w "$to.tmp"
    strip --strip-unneeded "$to.tmp" 2>/dev/null || true
    if [ "$(stat -c %s "$to.tmp")" -lt "$(stat -c %s "$from")" ]; then mv "$to.tmp" "$to"; else rm "$to.tmp"; cp -L "$from" "$to"; fi
    chmod 755 "$to"
}
install_stripped "$library" "$lib/libdeepcad.so"
python3 fiji-plugin/elf_runpath.py "$lib/libdeepcad.so" --rpath '$ORIGIN/deepcad'
for name in "${cpu_set[@]}"; do
    install_stripped "$(find_lib "$name")" "$private/$name"
done

# Every library of the private folder is loaded, and everything loaded resolves inside it.
resolved="$(env -u LD_LIBRARY_PATH ldd "$lib/libdeepcad.so")"
for name in "${cpu_set[@]}"; do
    grep -qF "$name => $private/$name " <<< "$resolved" \
        || { echo "build.sh: libdeepcad.so does not load $name from $private:" >&2; echo "$resolved" >&2; exit 1; }
done
! grep -q 'not found' <<< "$resolved" || { echo "build.sh: libdeepcad.so misses libraries: $resolved" >&2; exit 1; }
unused="$(cd "$private" && for f in *; do grep -q "/deepcad/$f " <<< "$resolved" || echo "$f"; done)"
[ -z "$unused" ] || { echo "build.sh: $private holds libraries libdeepcad.so never loads: $unused" >&2; exit 1; }

if [ "$cuda" = 1 ]; then
    cpu_listing="$(cd "$app" && find . -type f | sort)"
    # DEEPCAD_CUDA_LIBTORCH: the torch folder of an existing torch 2.11.0 + nvidia-* install to take instead.
    cuda_torch="${DEEPCAD_CUDA_LIBTORCH:-$(bash -c 'source scripts/env.sh --cuda >&2 && echo "$LIBTORCH"')}"
    cmp -s "$cuda_torch/lib/libtorch_cpu.so" "$torch_lib/libtorch_cpu.so" \
        || { echo "build.sh: the CUDA set's libtorch_cpu.so differs from the one libdeepcad.so was built with" >&2; exit 1; }
    for name in libtorch_cuda.so libc10_cuda.so libtorch_cuda_linalg.so libtorch_nvshmem.so libcaffe2_nvrtc.so; do
        install_stripped "$cuda_torch/lib/$name" "$private/$name"
    done
    # Every shared library of the nvidia wheels (cuDNN opens its engine libraries by name at run time,
    # so the loader's view of libtorch_cuda.so is not the whole set), except CUPTI's profiling helpers
    # (hardware counters, PC sampling, checkpoints: libtorch never asks for them) and the FFTW and BLAS
    # drop-in shims (for programs written against FFTW/BLAS; libtorch calls cuFFT and cuBLAS directly).
    # libcudart.so.13 and libcupti.so.13 are in the CPU set already and loaded from there.
    find "$(dirname "$cuda_torch")/nvidia" -path '*/lib/*.so*' -type f | sort | while read -r found; do
        name="$(basename "$found")"
        case "$name" in
            libnvperf_host.so | libnvperf_target.so | libpcsamplingutil.so | libcheckpoint.so) continue ;;
            libcufftw.so.* | libnvblas.so.*) continue ;;
        esac
        if [ -e "$private/$name" ]; then
            cmp -s "$found" "$private/$name" || echo "build.sh: note: the CUDA set's $name differs from the CPU set's; the CPU set's copy is used" >&2
            continue
        fi
        cp -L "$found" "$private/$name"
        chmod 755 "$private/$name"
    done
    missing="$(cd "$private" && env -u LD_LIBRARY_PATH ldd ./libtorch_cuda.so | grep 'not found' || true)"
    [ -z "$missing" ] || { echo "build.sh: the GPU overlay misses libraries: $missing" >&2; exit 1; }
fi

echo "DeepCAD Fiji overlay ($profile$( [ "$cuda" = 1 ] && echo ", CUDA 13")): $app"
du -sh "$app"
(cd "$dest" && find Fiji.app -type f -exec ls -l {} + | awk '{print $5, $9}' | sort -k2)

if [ -n "$site_dir" ]; then
    if [ "$cuda" = 1 ]; then
        # The CUDA site: the overlay's files that the CPU site does not have.
        extras="$dest/cuda-site-files/Fiji.app"
        rm -rf "$dest/cuda-site-files"
        (cd "$app" && find . -type f | sort) | grep -vxF -f <(echo "$cpu_listing") | while read -r file; do
            mkdir -p "$extras/$(dirname "$file")"
            ln "$app/$file" "$extras/$file" 2>/dev/null || cp -p "$app/$file" "$extras/$file"
        done
        fiji-plugin/publish-site.sh --name DeepCAD-CUDA "$extras" "$site_dir"
    else
        fiji-plugin/publish-site.sh --name DeepCAD "$app" "$site_dir"
    fi
    echo "Update site written by the ImageJ updater: $site_dir (log: $site_dir.publish.log)"
fi
