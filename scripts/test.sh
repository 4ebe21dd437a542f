#!/usr/bin/env bash
# Sets everything up from nothing (libtorch 2.11 in ~/.cache/deepcad, Rust crates, Maven artifacts)
# and runs every test: the Rust engine and CLI (unit + integration, incl. the end-to-end
# simulate → train → denoise check), the Fiji door (JUnit in a SciJava context) and the plugin in a
# real ImageJ2 + imagej-legacy runtime (macros, --headless --run, recorder, GUI under Xvfb).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=/dev/null
source scripts/env.sh
command -v cargo >/dev/null || { echo "deepcad: cargo not found; install Rust (https://rustup.rs) first" >&2; exit 1; }
command -v mvn >/dev/null || { echo "deepcad: installing Maven and a JDK (Debian packages)" >&2; apt-get update -qq && apt-get install -y -qq maven default-jdk-headless >/dev/null; }
echo "== Rust engine and CLI"
cargo test --lib --test integration --bins 2>&1
echo "== Fiji door (JNI + SciJava commands)"
java/run-tests.sh
echo "== Fiji runtime (ImageJ2 + imagej-legacy: macros, --run, recorder, GUI)"
fiji-plugin/test-fiji.sh
