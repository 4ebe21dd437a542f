#!/usr/bin/env bash
# Builds the DeepCAD Fiji overlay in one command:
#   <dest>/Fiji.app/jars/deepcad-fiji.jar
#   <dest>/Fiji.app/lib/linux64/libdeepcad.so + the libtorch CPU libraries it loads
#     (libtorch_cpu.so, libc10.so, libgomp.so.1, libcudart.so.13, libcupti.so.13)
# Copy <dest>/Fiji.app over a Fiji installation. libdeepcad.so's run path starts with $ORIGIN, so
# the system loader finds libtorch in the same folder; nothing needs LD_LIBRARY_PATH.
#
# Usage: fiji-plugin/build.sh [dest]          (default dest: fiji-plugin/dist)
#   DEEPCAD_PROFILE=debug fiji-plugin/build.sh ...   uses the debug library (tests; no release build)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$root/fiji-plugin/dist}"
profile="${DEEPCAD_PROFILE:-release}"
cd "$root"
# shellcheck source=/dev/null
source scripts/env.sh

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

echo "DeepCAD Fiji overlay ($profile): $app"
du -sh "$app"
(cd "$dest" && find Fiji.app -type f -exec ls -l {} + | awk '{print $5, $9}')
