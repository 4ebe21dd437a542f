#!/usr/bin/env bash
# Runs the Fiji door's tests: builds the native library (cargo, debug), lays out a test overlay
# with it (java/target/overlay/Fiji.app, for the fresh-JVM test), then `mvn test`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=/dev/null
source scripts/env.sh
log="$(mktemp)"
DEEPCAD_PROFILE=debug fiji-plugin/build.sh "$root/java/target/overlay" > "$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; exit 1; }
tail -n 9 "$log"
rm -f "$log"
mvn -B -f java/pom.xml test \
    -Ddeepcad.library.path="$root/target/debug/libdeepcad.so" \
    -Ddeepcad.overlay.dir="$root/java/target/overlay/Fiji.app"
