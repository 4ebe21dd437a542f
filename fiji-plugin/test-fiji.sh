#!/usr/bin/env bash
# Tests the DeepCAD plugin where Fiji users run it: a real ImageJ2 + imagej-legacy runtime (patched
# ImageJ 1.54p, the macro interpreter, SciJava's --run, the macro recorder, the Swing UI under Xvfb).
#
# It assembles a Fiji.app-style folder from nothing in $DEEPCAD_FIJI_TEST_DIR (default
# fiji-plugin/target/fiji-test):
#   Fiji.app/jars/          the Fiji core: the 18 source-built artifacts of ../shared/fiji-stack plus
#                           their Maven Central dependencies (fiji-test/pom.xml, the stack README's recipe)
#   Fiji.app/jars/deepcad-fiji.jar, Fiji.app/lib/linux64/...
#                           our overlay, copied exactly as fiji-plugin/build.sh lays it out
#   Fiji.app/jars/deepcad-fiji-testkit.jar
#                           test-only: the launcher main (what net.imagej.Main does) and the GUI driver
# and starts it like Fiji's launcher does (class path jars/*.jar and plugins/*.jar, java.library.path
# = lib/linux64, no LD_LIBRARY_PATH, no deepcad.* property). Each test asserts on results: pixels
# (compared with the CLI's output for the same model and input), files, image titles, dimensions,
# calibration and log lines. Every process it starts is stopped by its PID.
#
# Usage: fiji-plugin/test-fiji.sh        (DEEPCAD_PROFILE=release to test the release build)
#        DEEPCAD_FIJI_ONLY="omitted exit" fiji-plugin/test-fiji.sh   runs only those parts (development;
#        parts: install macros run omitted channels shutdown pixels site gui; pixels needs macros, run, channels;
#        site: the Fiji update site built by build.sh --update-site, installed and upgraded with the real
#        ImageJ updater into fresh Fiji.app folders, see fiji-test/site-test.sh)
#        DEEPCAD_PROFILE=release DEEPCAD_FIJI_ONLY=speed fiji-plugin/test-fiji.sh   times Denoise in Fiji
#        against the CLI (a benchmark, never run by default: it wants a quiet machine)
# Needs: ../shared/fiji-stack (or DEEPCAD_FIJI_STACK), Maven Central, a JDK 11+. The GUI part needs
# Xvfb (installed with apt-get when missing and possible; otherwise reported as SKIPPED).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=/dev/null
source scripts/env.sh
profile="${DEEPCAD_PROFILE:-debug}"
here="$root/fiji-plugin/fiji-test"
work="${DEEPCAD_FIJI_TEST_DIR:-$root/fiji-plugin/target/fiji-test}"
stack="${DEEPCAD_FIJI_STACK:-$root/../shared/fiji-stack}"
app="$work/Fiji.app"
data="$work/data"
logs="$work/logs"
started="$(date +%s)"

wanted() { [ -z "${DEEPCAD_FIJI_ONLY:-}" ] || asked "$1"; }
asked() { [[ " ${DEEPCAD_FIJI_ONLY:-} " == *" $1 "* ]]; }

passed=()
failed=()
skipped=()
pass() { passed+=("$1"); echo "  PASS    $1"; }
fail() { failed+=("$1"); echo "  FAIL    $1${2:+: $2}"; }
skip() { skipped+=("$1"); echo "  SKIPPED $1${2:+: $2}"; }

# Every background process this script starts, stopped by PID on exit.
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

summary() {
    echo "== Fiji runtime: ${#passed[@]} passed, ${#failed[@]} failed, ${#skipped[@]} skipped ($(( $(date +%s) - started )) s; logs in $logs)"
    local name
    for name in "${failed[@]+"${failed[@]}"}"; do echo "   FAILED: $name"; done
    for name in "${skipped[@]+"${skipped[@]}"}"; do echo "   SKIPPED: $name"; done
    [ "${#failed[@]}" -eq 0 ]
}

if [ ! -f "$stack/vendor-repo.tar.gz" ]; then
    skip "Fiji runtime tests" "the vendored Fiji core ($stack/vendor-repo.tar.gz) is absent; set DEEPCAD_FIJI_STACK"
    summary
    exit 0
fi

echo "== Fiji runtime: assembling Fiji.app in $work"
rm -rf "$logs" "$data" "$work/vendor-repo" "$work/macros" "$work/artifacts" "$work/prefs"
mkdir -p "$work" "$logs"
mkdir -p "$data" "$work/macros"

# 1. The Fiji core: vendored artifacts + Maven Central (the stack README's recipe).
tar xzf "$stack/vendor-repo.tar.gz" -C "$work"
cat > "$work/settings.xml" <<XML
<settings>
  <mirrors><mirror><id>vendored-mirror</id><mirrorOf>*,!central,!vendored</mirrorOf>
    <url>file://$work/vendor-repo</url></mirror></mirrors>
  <profiles><profile><id>vendored</id><repositories><repository><id>vendored</id>
    <url>file://$work/vendor-repo</url></repository></repositories></profile></profiles>
  <activeProfiles><activeProfile>vendored</activeProfile></activeProfiles>
</settings>
XML
rm -rf "$work/core"
mvn -B -q -s "$work/settings.xml" -f "$here/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$work/core" -DincludeScope=runtime > "$logs/core.log" 2>&1 \
    || { cat "$logs/core.log" >&2; echo "test-fiji: could not resolve the Fiji core" >&2; exit 1; }

# 2. Our overlay, built exactly as users get it. DEEPCAD_FIJI_REUSE_NATIVE=1 (development only) keeps
#    the native libraries of the last overlay and CLI and rebuilds just the jar.
reuse="${DEEPCAD_FIJI_REUSE_NATIVE:-0}"
if [ "$reuse" = 1 ] && [ -f "$work/overlay/Fiji.app/lib/linux64/libdeepcad.so" ]; then
    mvn -B -q -f java/pom.xml -DskipTests package > "$logs/overlay.log" 2>&1 || { cat "$logs/overlay.log" >&2; exit 1; }
    cp java/target/deepcad-fiji.jar "$work/overlay/Fiji.app/jars/deepcad-fiji.jar"
    echo "  (reusing the native libraries of $work/overlay)"
else
    # With the site part, the same one command also publishes the overlay as a file:// update site.
    rm -rf "$work/site" "$work/site".*
    site_args=()
    wanted site && site_args=(--update-site "$work/site")
    DEEPCAD_PROFILE="$profile" DEEPCAD_UPDATER_JARS="$work/core" fiji-plugin/build.sh "${site_args[@]+"${site_args[@]}"}" "$work/overlay" \
        > "$logs/overlay.log" 2>&1 || { cat "$logs/overlay.log" >&2; exit 1; }
fi
if [ "$reuse" = 1 ] && wanted site; then
    rm -rf "$work/site" "$work/site".*
    DEEPCAD_UPDATER_JARS="$work/core" fiji-plugin/publish-site.sh "$work/overlay/Fiji.app" "$work/site" >> "$logs/overlay.log" 2>&1 \
        || { cat "$logs/overlay.log" >&2; exit 1; }
fi

# 3. Fiji.app = core + overlay (copied over it, as the README says) + the test kit.
rm -rf "$app"
mkdir -p "$app/jars" "$app/plugins" "$app/macros"
cp "$work/core"/*.jar "$app/jars/"
cp -r "$work/overlay/Fiji.app/." "$app/"
rm -rf "$work/testkit-classes"
mkdir -p "$work/testkit-classes"
javac -nowarn -source 8 -target 8 -Xlint:-options -d "$work/testkit-classes" -cp "$app/jars/*" \
    "$here"/testkit/org/deepcad/fijitest/*.java > "$logs/testkit.log" 2>&1 || { cat "$logs/testkit.log" >&2; exit 1; }
jar cf "$app/jars/deepcad-fiji-testkit.jar" -C "$work/testkit-classes" .

# 4. The CLI (same profile) for reference outputs and test movies.
if [ "$reuse" != 1 ]; then
    if [ "$profile" = release ]; then cargo build --release --bin deepcad; else cargo build --bin deepcad; fi > "$logs/cli.log" 2>&1 \
        || { cat "$logs/cli.log" >&2; exit 1; }
fi
deepcad="$root/target/$profile/deepcad"
"$deepcad" simulate -q -o "$data/bright.tif" --width 48 --height 40 --frames 64 --neurons 5 --photons 50 --seed 4

for name in compare macro_train_denoise macro_omitted macro_first_run macro_files_info macro_missing macro_types macro_settings macro_channels speed; do
    cat "$here/macros/lib.ijm" "$here/macros/$name.ijm" > "$work/macros/$name.ijm"
done

# Starts the runtime as Fiji's launcher does (config/jaunch/fiji.toml): class path, library path,
# app-directory properties, --add-opens on Java 9+. $1 = log name, $2 = time limit (s), rest = args.
# Saved settings (java.util.prefs) go to $work/prefs, not to the user's own. The site part starts other
# Fiji.app folders: FIJI_APP (default $app), FIJI_EXTRA_CP (the test kit from outside that folder),
# FIJI_LD_LIBRARY_PATH (set as the old ImageJ launcher did), FIJI_PREFIX (e.g. unshare -n) and FIJI_PREFS
# (a user's saved settings: none). The core holds the ImageJ updater, as Fiji does; its automatic
# up-to-date check at GUI start-up (which would look up update.imagej.net) is switched off with its own
# property: the tests contact no network host.
fiji_start() {
    local name="$1" limit="$2" fiji_app="${FIJI_APP:-$app}"
    shift 2
    # shellcheck disable=SC2086
    ${FIJI_PREFIX:-} env -u LD_LIBRARY_PATH -u DEEPCAD_LIBRARY_PATH ${FIJI_LD_LIBRARY_PATH:+LD_LIBRARY_PATH=$FIJI_LD_LIBRARY_PATH} \
        timeout --kill-after=10 "$limit" \
        java -Xmx2g --add-opens=java.base/java.lang=ALL-UNNAMED \
        -Dplugins.dir="$fiji_app" -Dimagej.dir="$fiji_app" -Dij.dir="$fiji_app" -Dfiji.dir="$fiji_app" \
        -Dscijava.app.name=Fiji -Dscijava.app.directory="$fiji_app" -Dscijava.context.strict=false \
        -Djava.library.path="$fiji_app/lib/linux64" -Djna.library.path="$fiji_app/lib/linux64" \
        -Djava.util.prefs.userRoot="${FIJI_PREFS:-$work/prefs}" -Dimagej.updater.disableAutocheck=true \
        -cp "$fiji_app/jars/*:$fiji_app/plugins/*${FIJI_EXTRA_CP:+:$FIJI_EXTRA_CP}" ${FIJI_JVM_ARGS:-} org.deepcad.fijitest.FijiMain "$@" \
        > "$logs/$name.log" 2>&1 &
    fiji_pid=$!
    pids+=("$fiji_pid")
}
# SciJava's context start-up failed once in about 40 starts here ("Context already injected", before
# any plugin code ran); such a start is retried once, and said so. Once in a loaded run a headless
# --run start exited 0 having printed nothing at all: the command never started (every DeepCAD
# command logs its library first), so that start is retried too; a retry must then pass every check.
startup_flake() { grep -q 'Context already injected' "$logs/$1.log" 2>/dev/null; }
# The process's exit status is left in $fiji_rc.
fiji() {
    local name="$1" limit="$2" rc=0
    fiji_start "$@"
    wait "$fiji_pid" || rc=$?
    if startup_flake "$name" || { [ "$rc" -eq 0 ] && [ ! -s "$logs/$name.log" ]; }; then
        echo "  (runtime $name: SciJava start-up failed ('Context already injected' or nothing printed); starting it again)"
        cp "$logs/$name.log" "$logs/$name.failed-start.log"
        rc=0
        fiji_start "$@"
        wait "$fiji_pid" || rc=$?
    fi
    [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || echo "  (runtime $name stopped after its ${limit} s limit)"
    fiji_rc=$rc
    return 0
}
# A saved DeepCAD setting (java.util.prefs under $work/prefs) has this value.
saved_setting() {
    local file="$work/prefs/.java/.userPrefs/org/deepcad/fiji/DeepCadSettings/prefs.xml"
    grep -q "key=\"$1\" value=\"$2\"" "$file" 2>/dev/null
}
headless() { local name="$1" limit="$2"; shift 2; FIJI_JVM_ARGS="-Djava.awt.headless=true" fiji "$name" "$limit" --headless "$@"; }

# The CHECK-OK / CHECK-FAIL lines of a test macro's log, each a test; "MACRO-DONE" must appear.
macro_results() {
    local name="$1" line
    while IFS= read -r line; do
        case "$line" in
            CHECK-OK\ *) pass "$name: ${line#CHECK-OK }" ;;
            CHECK-FAIL\ *) fail "$name: ${line#CHECK-FAIL }" ;;
        esac
    done < "$logs/$name.log"
    grep -q "^MACRO-DONE $name" "$logs/$name.log" || fail "$name: the macro ran to its end" "see $logs/$name.log"
}
# A log contains a text (fixed string): pass, else fail with the log's name.
expect_log() {
    local test="$1" log="$2" text="$3"
    if grep -qF -- "$text" "$logs/$log.log"; then pass "$test"; else fail "$test" "'$text' not in $logs/$log.log"; fi
}
expect_no_log() {
    local test="$1" log="$2" text="$3"
    if grep -qF -- "$text" "$logs/$log.log"; then fail "$test" "'$text' in $logs/$log.log"; else pass "$test"; fi
}
count_log() { grep -cF -- "$2" "$logs/$1.log" || true; }
# The exit status of the last runtime started with fiji/headless ($fiji_rc); a failed DeepCAD command
# exits 1 and says so in its last log line, which is how a batch script detects it.
exit_line="exiting with status 1."
expect_status() {
    local test="$1" log="$2" want="$3"
    if [ "$fiji_rc" != "$want" ]; then fail "$test" "exit status $fiji_rc, expected $want (see $logs/$log.log)"
    elif [ "$want" = 1 ] && ! grep -q "^\[ERROR\] DeepCAD: .*$exit_line\$" "$logs/$log.log"; then fail "$test" "no '[ERROR] DeepCAD: ... $exit_line' line in $logs/$log.log"
    elif [ "$want" = 0 ] && grep -qF "$exit_line" "$logs/$log.log"; then fail "$test" "'$exit_line' in $logs/$log.log"
    else pass "$test"; fi
}

if wanted install; then
    echo "== Fiji runtime: installation"
    core_files="$(cd "$work/core" && ls | sed 's|^|./jars/|')"
    ours="$(cd "$app" && find . -type f | sort | grep -vxF -e ./jars/deepcad-fiji-testkit.jar $(printf -- '-e %s ' $core_files) || true)"
    expected="$(cd "$work/overlay/Fiji.app" && find . -type f | sort)"
    if [ -n "$ours" ] && [ "$ours" = "$expected" ] && ! grep -vx -e './jars/deepcad-fiji\.jar' -e './lib/linux64/libdeepcad\.so' -e './lib/linux64/deepcad/[^/]*' <<< "$ours" | grep -q .; then
        pass "install: ours are exactly jars/deepcad-fiji.jar, lib/linux64/libdeepcad.so and lib/linux64/deepcad/* (build.sh's overlay)"
    else
        fail "install: ours are exactly jars/deepcad-fiji.jar, lib/linux64/libdeepcad.so and lib/linux64/deepcad/* (build.sh's overlay)" "found: $(echo $ours)"
    fi
fi

if wanted macros; then
    echo "== Fiji runtime: headless macros (--headless -macro)"
    headless macro_train_denoise 600 -macro "$work/macros/macro_train_denoise.ijm" "$data"
    macro_results macro_train_denoise
    expect_status "exit status: a headless -macro whose commands all succeed exits 0" macro_train_denoise 0
    expect_log "native library found through java.library.path in Fiji.app/lib/linux64" macro_train_denoise "loaded from $app/lib/linux64/libdeepcad.so"
    expect_no_log "training prints no raw JSON report" macro_train_denoise '"history":'
    if [ -f "$data/macro-model.safetensors" ]; then
        "$deepcad" info --json "$data/macro-model.safetensors" > "$logs/macro-model-info.log" 2>&1 || true
        expect_log "a model trained in a macro records the Fiji door as its origin" macro-model-info '"origin": "fiji (started from the built-in model)"'
        expect_log "... and its source as the image's title and the file it was opened from" macro-model-info "\"path\": \"image 'cells' from $data/bright.tif\""
        "$deepcad" denoise -q "$data/bright.tif" --model "$data/macro-model.safetensors" --device cpu -o "$data/cli-macro.tif"
        headless macro_files_info 300 -macro "$work/macros/macro_files_info.ijm" "$data,$data/macro-model.safetensors"
        macro_results macro_files_info
        [ "$(count_log macro_files_info '"epochs_completed"')" = 1 ] && pass "model info (macro): printed once" \
            || fail "model info (macro): printed once" "$(count_log macro_files_info '"epochs_completed"') times in $logs/macro_files_info.log"
    fi
    headless macro_omitted 300 -macro "$work/macros/macro_omitted.ijm" "$data"
    macro_results macro_omitted
    headless macro_types 300 -macro "$work/macros/macro_types.ijm" "$data"
    macro_results macro_types
    # First run (no model chosen, no settings saved) and the device spellings of older macros.
    headless macro_first_run 300 -macro "$work/macros/macro_first_run.ijm" "$data"
    macro_results macro_first_run
    # With -batch at the end, as Fiji's launcher adds it to headless runs (ImageJ then calls System.exit(0)).
    headless macro_missing 120 -macro "$work/macros/macro_missing.ijm" "$data" -batch
    expect_log "macro with input_path missing: stops with a message naming it" macro_missing "No input: set input_path"
    expect_log "macro with input_path missing: reported as a macro error at the run(...) line" macro_missing "Macro Error: DeepCAD: No input"
    expect_no_log "macro with input_path missing: the next line never runs" macro_missing "AFTER-MISSING-INPUT"
    expect_status "exit status: a headless -macro ... -batch with a failed command exits 1, saying so" macro_missing 1
fi

if wanted run; then
    echo "== Fiji runtime: headless commands (--headless --run)"
    train_args='epochs=1,time_limit_minutes=0,patch_t=16,patch_xy=32,base_width=16,start_from_built_in=true,patches_per_epoch=4,learning_rate=0.001,device="cpu",replace_existing=false'
    headless run_train 600 --run "Train DeepCAD model" "input_path=\"$data/bright.tif\",model_file=\"$data/run-model.safetensors\",$train_args"
    [ -f "$data/run-model.safetensors" ] && pass "--run train: model file written" || fail "--run train: model file written" "see $logs/run_train.log"
    expect_log "--run train: says where the model went" run_train "trained 1 epoch(s); model written to $data/run-model.safetensors"
    expect_status "exit status: a headless --run that succeeds exits 0" run_train 0
    "$deepcad" info --json "$data/run-model.safetensors" > "$logs/run-model-info.log" 2>&1 || true
    expect_log "a model trained on files by --run records the Fiji door and the file" run-model-info '"origin": "fiji (started from the built-in model)"'
    headless run_train_exists 300 --run "Train DeepCAD model" "input_path=\"$data/bright.tif\",model_file=\"$data/run-model.safetensors\",$train_args"
    expect_log "--run train onto an existing model file: refused, saying how to allow it" run_train_exists "DeepCAD: $data/run-model.safetensors"
    mkdir -p "$data/out-run"
    headless run_denoise_files 300 --run "Denoise files with DeepCAD model" \
        "input_path=\"$data/bright.tif\",output_folder=\"$data/out-run\",model=\"Model file\",model_file=\"$data/run-model.safetensors\",device=\"cpu\",output_type=\"Automatic\""
    [ -f "$data/out-run/bright-denoised.tif" ] && pass "--run denoise files: bright-denoised.tif written" \
        || fail "--run denoise files: bright-denoised.tif written" "see $logs/run_denoise_files.log"
    if [ -f "$data/run-model.safetensors" ]; then
        "$deepcad" denoise -q "$data/bright.tif" --model "$data/run-model.safetensors" --device cpu -o "$data/cli-run.tif"
    fi
    headless run_info 120 --run "DeepCAD model info" "model_file=\"$data/run-model.safetensors\""
    expect_log "--run model info: shows the bundle (1 epoch)" run_info '"epochs_completed": 1'
    [ "$(count_log run_info '"epochs_completed"')" = 1 ] && pass "--run model info: printed once" \
        || fail "--run model info: printed once" "$(count_log run_info '"epochs_completed"') times in $logs/run_info.log"
    headless run_missing_input 120 --run "Denoise files with DeepCAD model" "output_folder=\"$data\",model=\"Built-in general model\",device=\"cpu\""
    expect_log "--run denoise files without input_path: fails loudly naming it" run_missing_input "DeepCAD: No input: set input_path"
    expect_status "exit status: a headless --run whose command fails exits 1, saying so" run_missing_input 1
    headless run_missing_model 120 --run "Train DeepCAD model" "input_path=\"$data/bright.tif\",$train_args"
    expect_log "--run train without model_file: fails loudly naming it" run_missing_model "DeepCAD: No model file: set model_file"
    headless run_no_image 120 --run "Denoise with DeepCAD model" 'model="Built-in general model",device="cpu"'
    # An older macro's device=cuda:0 reaches the engine as before the choice list: on a machine without
    # CUDA it fails with the engine's reason (on a GPU machine it runs).
    mkdir -p "$data/out-cuda"
    if "$deepcad" info --devices 2>/dev/null | grep -q '^cuda:0: '; then
        headless run_cuda_device 300 --run "Denoise files with DeepCAD model" \
            "input_path=\"$data/bright.tif\",output_folder=\"$data/out-cuda\",model=\"Built-in general model\",device=\"cuda:0\""
        expect_status "--run with device=cuda:0 on a GPU machine: runs" run_cuda_device 0
    else
        headless run_cuda_device 120 --run "Denoise files with DeepCAD model" \
            "input_path=\"$data/bright.tif\",output_folder=\"$data/out-cuda\",model=\"Built-in general model\",device=\"cuda:0\""
        expect_log "--run with an older macro's device=cuda:0 and no GPU: the engine's reason" run_cuda_device "device 'cuda:0' requested but CUDA is not usable"
        expect_status "... and exits 1" run_cuda_device 1
    fi
    expect_log "--run denoise (image) headless without an image: says so" run_no_image "DeepCAD: No image"
    headless run_wrong_model 120 --run "Denoise files with DeepCAD model" \
        "input_path=\"$data/bright.tif\",output_folder=\"$data\",model=\"Model file\",model_file=\"$data/absent.safetensors\",device=\"cpu\""
    expect_log "--run with a model file that does not exist: names the file" run_wrong_model "DeepCAD: $data/absent.safetensors"
    [ ! -e "$data/bright-denoised.tif" ] && pass "--run with a model file that does not exist: writes nothing" \
        || fail "--run with a model file that does not exist: writes nothing" "$data/bright-denoised.tif exists"
fi

if wanted omitted; then
    echo "== Fiji runtime: optional keys left out (no file chooser, no silent cancel)"
    headless macro_settings 120 -macro "$work/macros/macro_settings.ijm" "$data"
    [ "$(count_log macro_settings "DeepCAD devices:")" = 2 ] && pass "macro: DeepCAD settings without library_path runs, twice (devices listed)" \
        || fail "macro: DeepCAD settings without library_path runs, twice (devices listed)" "$(count_log macro_settings "DeepCAD devices:") runs in $logs/macro_settings.log"
    expect_log "macro: ... and the macro carries on" macro_settings "AFTER-SETTINGS-2"
    saved_setting memory_mb 1600 && saved_setting device cpu && pass "macro: settings saved; a key left out (device) keeps its setting" \
        || fail "macro: settings saved; a key left out (device) keeps its setting" "see $work/prefs"
    expect_log "macro: DeepCAD model info without model_file stops the macro naming the key" macro_settings "Macro Error: DeepCAD: No model file: set model_file"
    expect_no_log "macro: ... and the next line never runs" macro_settings "AFTER-INFO-WITHOUT-MODEL"
    expect_status "macro: ... and Fiji exits 1" macro_settings 1
    headless run_settings 120 --run "DeepCAD settings" 'threads=0,memory_mb=1700'
    expect_log "--run DeepCAD settings without library_path (or device) runs" run_settings "DeepCAD devices:"
    expect_status "--run DeepCAD settings: exits 0" run_settings 0
    saved_setting memory_mb 1700 && saved_setting device cpu && pass "--run settings: memory saved, device kept" \
        || fail "--run settings: memory saved, device kept" "see $work/prefs"
    headless run_info_missing 120 --run "DeepCAD model info"
    expect_log "--run DeepCAD model info without model_file fails naming the key" run_info_missing "DeepCAD: No model file: set model_file"
    expect_status "--run DeepCAD model info without model_file: exits 1" run_info_missing 1
fi

if wanted channels; then
    echo "== Fiji runtime: channels (Denoise and Denoise files agree with each other and with the CLI)"
    headless macro_channels 300 -macro "$work/macros/macro_channels.ijm" "$data"
    macro_results macro_channels
    expect_log "a folder with a two-channel movie and none chosen: the movie is skipped, naming the channels" macro_channels "the file has 2 channels"
    expect_log "... the run fails naming how many (as the CLI does)" macro_channels "1 of 2 movies could not be denoised"
    expect_no_log "... and stops the macro" macro_channels "AFTER-MIXED-FOLDER"
    expect_status "... and Fiji exits 1" macro_channels 1
    [ -f "$data/mixed-out/one-denoised.tif" ] && pass "... after writing the one-channel movie" || fail "... after writing the one-channel movie" "no mixed-out/one-denoised.tif"
    headless run_channels_missing 120 --run "Denoise files with DeepCAD model" \
        "input_path=\"$data/two-channels.tif\",output_folder=\"$data/files-none\",model=\"Built-in general model\",device=\"cpu\""
    expect_log "--run denoise files, two-channel file, no channel: fails saying to choose the channel" run_channels_missing "the file has 2 channels; choose the channel"
    expect_status "... and exits 1" run_channels_missing 1
    cli_rc=0
    "$deepcad" denoise -q "$data/two-channels.tif" --model default --device cpu -o "$data/cli-none.tif" > "$logs/cli_channels_missing.log" 2>&1 || cli_rc=$?
    [ "$cli_rc" = 2 ] && grep -qF "the file has 2 channels; choose the channel" "$logs/cli_channels_missing.log" \
        && pass "the CLI refuses the same file the same way (exit 2, same message)" || fail "the CLI refuses the same file the same way" "exit $cli_rc, see $logs/cli_channels_missing.log"
    "$deepcad" denoise -q "$data/two-channels.tif" --model default --device cpu --channel 1 --output-type float32 -o "$data/cli-c2.tif"
fi

if wanted pixels; then
    echo "== Fiji runtime: pixels against the CLI (same model, same input)"
    pairs=""
    [ -f "$data/cli-macro.tif" ] && pairs="$pairs;$data/macro-denoised.tif|$data/cli-macro.tif;$data/files-macro/bright-denoised.tif|$data/cli-macro.tif;!$data/bright.tif|$data/cli-macro.tif"
    [ -f "$data/cli-run.tif" ] && pairs="$pairs;$data/out-run/bright-denoised.tif|$data/cli-run.tif"
    [ -f "$data/cli-c2.tif" ] && pairs="$pairs;$data/files-c2/two-channels-denoised.tif|$data/cli-c2.tif;$data/two-image-c2.tif|$data/cli-c2.tif"
    if [ -n "$pairs" ]; then
        headless compare 300 -macro "$work/macros/compare.ijm" "${pairs#;}"
        macro_results compare
    else
        fail "pixels against the CLI" "no model was trained, nothing to compare"
    fi
fi

if wanted site; then
    # shellcheck source=fiji-test/site-test.sh
    source "$here/site-test.sh"
fi

if wanted gui; then
    echo "== Fiji runtime: GUI under Xvfb (menus, recorder and playback, loss plot, Esc)"
    if ! command -v Xvfb > /dev/null && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        echo "  installing Xvfb (apt-get)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb; } > "$logs/apt.log" 2>&1 || true
    fi
    if ! command -v Xvfb > /dev/null; then
        skip "GUI tests (menus, recorder, playback, loss plot, screenshot)" "Xvfb is not installed and could not be installed (see $logs/apt.log)"
    else
        n=71
        while [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ]; do n=$((n + 1)); done
        Xvfb ":$n" -screen 0 1280x1024x24 -nolisten tcp > "$logs/xvfb.log" 2>&1 &
        xvfb_pid=$!
        pids+=("$xvfb_pid")
        for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X$n" ] && break; sleep 0.2; done
        results="$data/gui-results.txt"
        # A first run: no DeepCAD settings saved (the other parts saved some in $work/prefs).
        rm -rf "$work/prefs-gui"
        for attempt in 1 2; do
            DISPLAY=":$n" FIJI_PREFS="$work/prefs-gui" fiji_start gui 500 --run org.deepcad.fijitest.GuiChecks "data=\"$data\""
            for _ in $(seq 480); do
                grep -q '^done:' "$results" 2>/dev/null && break
                kill -0 "$fiji_pid" 2>/dev/null || break
                sleep 1
            done
            kill "$fiji_pid" 2>/dev/null || true
            wait "$fiji_pid" 2>/dev/null || true
            [ "$attempt" = 1 ] && [ ! -f "$results" ] && startup_flake gui || break
            echo "  (GUI runtime: SciJava start-up failed, 'Context already injected'; starting it again)"
            cp "$logs/gui.log" "$logs/gui.failed-start.log"
        done
        kill "$xvfb_pid" 2>/dev/null || true
        gui() { sed -n "s/^$1: //p" "$results" 2>/dev/null | head -n 1; }
        expect_gui() { # test, key, expected value (exact)
            local got
            got="$(gui "$2")"
            if [ "$got" = "$3" ]; then pass "$1"; else fail "$1" "$2 = '${got:-<none>}', expected '$3'"; fi
        }
        expect_gui_match() { # test, key, extended regular expression
            local got
            got="$(gui "$2")"
            if grep -qE -- "$3" <<< "$got"; then pass "$1"; else fail "$1" "$2 = '${got:-<none>}'"; fi
        }
        if [ ! -f "$results" ]; then
            fail "GUI: the driver ran" "no $results; see $logs/gui.log"
        else
            expect_gui "GUI: ImageJ main window is up" ui "ImageJ window up"
            expect_gui "GUI: Plugins > DeepCAD lists each command once, in the README's order" menu \
                "Train DeepCAD model|Denoise with DeepCAD model|Denoise files with DeepCAD model|DeepCAD model info|DeepCAD settings"
            if [ "$(gui 'menu screenshot')" = "$data/gui-menu.png" ] && [ -f "$data/gui-menu.png" ]; then
                mkdir -p "$work/artifacts"
                cp "$data/gui-menu.png" "$work/artifacts/gui-menu.png"
                pass "GUI: screenshot of Plugins > DeepCAD opened with the keyboard kept (artifact, looked at, not checked): $work/artifacts/gui-menu.png"
            else
                fail "GUI: Plugins > DeepCAD opened and photographed" "$(gui 'menu screenshot')"
            fi
            expect_gui_match "GUI: the first-run Denoise dialog (Movie = the active image) offers the built-in model, the Automatic device, seamless tiling, the engine's official overlap and automatic event restoration; Cancel cancels, no image" \
                "dialog denoise" '^labels=\[Model, Model file, Device, Output type, Output file \(optional\), Tiling, Official pipeline patch \(t,y,x\), Official pipeline overlap, Restore fast events, Replace an existing output file\] browse=1 choices=\[Built-in general model, Automatic, Automatic, Seamless \(DeepCAD\), Automatic\] numbers=\[0\.6\] then Cancel: cancelled, images added 0$'
            cuda_choices="$("$deepcad" info --devices 2>/dev/null | sed -n 's/^\(cuda:[0-9]*\): \([^,]*\),.*/|\1 (\2)/p' | tr -d '\n')"
            expect_gui "GUI: ... its Device is a choice of this machine's devices (Automatic, CPU, each CUDA device deepcad info --devices lists), not a text field" \
                "dialog denoise lists" "Model file|Built-in general model / Automatic|CPU$cuda_choices / Automatic|Same as input|32-bit float / Seamless (DeepCAD)|DeepCAD-RT official pipeline|DeepCAD-RT 2021 official pipeline / Automatic|Always|Never"
            expect_gui "GUI: ... the official pipeline's patch and overlap sit under a heading saying they are not used with seamless tiling" \
                "dialog denoise heading" "DeepCAD-RT official pipelines only (not used with Seamless (DeepCAD)):"
            expect_gui "GUI: ... choosing the official tiling in the dialog rewrites the heading: its fields now apply" \
                "dialog denoise heading official" "DeepCAD-RT official pipeline: its patch and overlap"
            expect_gui "GUI: ... typing a model file into its field switches Model to 'Model file'" \
                "dialog denoise model after typing a file" "Model file"
            expect_gui_match "GUI: the Train dialog offers its fields, three file choosers, the device list and the engine's defaults; Cancel cancels" \
                "dialog train" '^labels=\[Input file or folder, Model file to write, Epochs, Time limit \(minutes\), .*Continue from model\] browse=3 choices=\[interlaced, Automatic\] numbers=\[10, 0\.0, 64, 64, 16, 200, 0\.001\] then Cancel: cancelled, images added 0$'
            # The dialog's training defaults (from the engine) are the command line's, option by option.
            cli_help="$("$deepcad" train --help 2>/dev/null | tr '\n' ' ' | tr -s ' ')"
            cli_default() { grep -oE -- "--$1 <[A-Z_]+> [^[]{0,200}(\[default: [0-9.e-]+|default [0-9]+)" <<< "$cli_help" | grep -oE '[0-9.e-]+$'; }
            IFS=', ' read -r d_epochs _ d_patch_t d_patch_xy d_width d_patches d_rate <<< "$(gui 'dialog train' | sed -n 's/.* numbers=\[\([^]]*\)\].*/\1/p')"
            for pair in "epochs $d_epochs" "patch-t $d_patch_t" "patch-xy $d_patch_xy" "base-width $d_width" "patches-per-epoch $d_patches" "learning-rate $d_rate"; do
                read -r option shown <<< "$pair"
                cli="$(cli_default "$option")"
                if [ -n "$cli" ] && [ -n "${shown:-}" ] && awk -v a="$cli" -v b="$shown" 'BEGIN { exit !(a + 0 == b + 0) }'; then
                    pass "GUI: ... the Train dialog's $option default ($shown) is the command line's"
                else
                    fail "GUI: ... the Train dialog's $option default is the command line's" "dialog '${shown:-}', deepcad train --help '$cli'"
                fi
            done
            expect_gui "GUI: Denoise run from the menu (module service) succeeds" "ran Denoise with DeepCAD model" ok
            expect_gui "GUI: its result is the image '<title>-denoised', 16-bit, 64 frames" "denoise output" "rec movie-denoised 16-bit 64"
            expect_gui_match "recorder: Denoise recorded as run(\"Denoise with DeepCAD model\", ...) with its keys (the device as its choice)" "recorded denoise" \
                '^run\("Denoise with DeepCAD model", ".*model=\[Model file\] model_file=[^ ]*macro-model\.safetensors device=CPU output_type=Automatic'
            expect_gui_match "recorder: the first-run choices (built-in model, Automatic) with the official tiling recorded with its keys, without the heading" "recorded first run" \
                '^run\("Denoise with DeepCAD model", "model=\[Built-in general model\] device=Automatic output_type=Automatic .*tiling=\[DeepCAD-RT official pipeline\] official_patch=32,32,32 official_overlap=0\.5 (restore_events=Automatic )?replace_existing=false"\);$'
            first_line="$(gui 'recorded first run')"
            [ -n "$first_line" ] && [[ "$first_line" != *official_heading* && "$first_line" != *model_file* ]] \
                && pass "recorder: ... without the heading and without a model file key" \
                || fail "recorder: ... without the heading and without a model file key" "$first_line"
            expect_gui "GUI: the first-run choices denoise the active movie (result '<title>-denoised')" "first run output" "rec movie-denoised"
            expect_gui "recorder: ... played back on the same movie" "replay first run output" "rec movie-denoised"
            expect_gui "recorder: ... played back, identical pixels" "replay first run max difference" 0.0
            expect_gui "recorder: playing the recorded Denoise line back adds one image" "replay images added" 1
            expect_gui "recorder: ... with the same title, bit depth and frames" "replay output" "rec movie-denoised 16-bit 64"
            expect_gui "recorder: ... and identical pixels" "replay max difference" 0.0
            expect_gui_match "recorder: Denoise files recorded with input_path and output_folder" "recorded files" \
                '^run\("Denoise files with DeepCAD model", "input_path=[^ ]*bright\.tif output_folder=[^ ]*gui-files .*model_file='
            expect_gui "recorder: the recorded Denoise files line, played back, writes the file again" "replay files" written
            expect_gui "recorder: ... with identical pixels" "replay files max difference" 0.0
            expect_gui_match "recorder: Model info recorded" "recorded info" '^run\("DeepCAD model info", "model_file=[^ ]*macro-model\.safetensors"\);$'
            expect_gui_match "recorder: Train recorded with every setting" "recorded train" \
                '^run\("Train DeepCAD model", "model_file=[^ ]*gui-model\.safetensors epochs=2 .*patch_t=16 patch_xy=32 .*device=CPU'
            expect_gui "GUI: the README's macro line with optional keys left out runs without a dialog" \
                "gui macro with optional keys omitted" "finished, images added: 1"
            expect_gui "GUI: training adds no image (the loss plot is not an image window)" "train images added" 0
            expect_gui "GUI: the live loss plot shows one point per finished epoch (2)" "loss plot points" 2
            expect_gui "GUI: a Denoise from the menu with an absent model file fails" "ran Denoise with DeepCAD model (absent model)" "failed as expected"
            expect_gui "GUI: ... and the Console window shows the one-line 'DeepCAD: <file>: ...' message" "error shown" "window 'Console'"
            expect_gui_match "GUI: training shows its progress in ImageJ's status bar" "status bar while training" '^DeepCAD train(ing)?: epoch [0-9]+/100'
            expect_gui_match "GUI: Esc on the ImageJ window cancels a running training" "esc cancel" '^cancelled: Training was cancelled; .*gui-cancel\.safetensors holds the last finished epoch'
            expect_gui_match "GUI: ... which stops within 30 s" "esc cancel stopped within 30 s" '^true '
            expect_gui_match "GUI: ... and keeps the finished epochs' model (1 to 99 of 100 epochs)" "esc cancel kept epochs" '^[1-9][0-9]?$'
            expect_gui "recorder: a training cancelled with Esc is not recorded" "esc cancel recorded lines" 0
            mkdir -p "$work/artifacts"
            if [ -f "$data/gui-screenshot.png" ]; then
                cp "$data/gui-screenshot.png" "$work/artifacts/gui-screenshot.png"
                pass "GUI: screenshot kept: $work/artifacts/gui-screenshot.png"
            else
                fail "GUI: screenshot kept" "$(gui screenshot)"
            fi
            for shot in gui-dialog.png gui-error.png; do [ ! -f "$data/$shot" ] || cp "$data/$shot" "$work/artifacts/$shot"; done
            for shot in gui-dialog-devices.png gui-dialog-official.png; do
                if [ -f "$data/$shot" ]; then
                    cp "$data/$shot" "$work/artifacts/$shot"
                    pass "GUI: first-run dialog screenshot kept (looked at, not checked): $work/artifacts/$shot"
                else
                    fail "GUI: first-run dialog screenshot kept" "no $data/$shot"
                fi
            done
            [ -z "$(gui error)" ] || fail "GUI: the driver finished without an error" "$(gui error)"
        fi
    fi
fi

# Speed (a benchmark, only when asked for): the Denoise command in this runtime against the CLI on
# the same 16-bit 128x128x500 movie and the built-in model, both on 2 threads, alternating, three rounds.
# Fiji's time is the command's second run in one session (model load, denoise, output file; the first,
# sharing the cores with the JVM's start-up, is printed too); the CLI's is its process wall time (which
# also reads the movie). Pixels must be identical.
if asked speed; then
    echo "== Fiji runtime: speed, Denoise against deepcad denoise (128x128x500, 16-bit, built-in model, CPU)"
    "$deepcad" simulate -q -o "$data/speed.tif" --width 128 --height 128 --frames 500 --photons 5 --seed 7
    fiji_times=() fiji_first_times=() cli_times=()
    for round in 1 2 3; do
        t0=$(date +%s.%N)
        "$deepcad" denoise -q "$data/speed.tif" --model default --device cpu --threads 2 -o "$data/speed-cli.tif" --overwrite
        cli_times+=("$(echo "$(date +%s.%N) - $t0" | bc)")
        headless speed 600 -macro "$work/macros/speed.ijm" "$data/speed.tif|$data/speed-fiji.tif"
        fiji_times+=("$(sed -n 's/^FIJI-DENOISE-SECONDS //p' "$logs/speed.log")")
        fiji_first_times+=("$(sed -n 's/^FIJI-DENOISE-FIRST-SECONDS //p' "$logs/speed.log")")
        echo "  round $round: Fiji ${fiji_times[-1]} s (first run in a fresh JVM ${fiji_first_times[-1]} s), CLI ${cli_times[-1]} s"
    done
    macro_results speed
    headless compare 300 -macro "$work/macros/compare.ijm" "$data/speed-fiji.tif|$data/speed-cli.tif"
    macro_results compare
    median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
    fiji_median="$(median "${fiji_times[@]}")" cli_median="$(median "${cli_times[@]}")"
    first_median="$(median "${fiji_first_times[@]}")"
    echo "  median: Fiji $fiji_median s, CLI $cli_median s, Fiji/CLI $(echo "scale=3; $fiji_median / $cli_median" | bc)" \
        "(first run in a fresh JVM: $first_median s, $(echo "scale=3; $first_median / $cli_median" | bc))"
fi

# Messages are for Fiji users: none may tell them to use a command-line flag.
flags="$(grep -h 'DeepCAD:' "$logs"/*.log | grep -E -- '(^|[ (`])--[a-z]' || true)"
[ -z "$flags" ] && pass "no DeepCAD message in any run mentions a command-line flag" \
    || fail "no DeepCAD message in any run mentions a command-line flag" "$(head -n 3 <<< "$flags")"

summary
