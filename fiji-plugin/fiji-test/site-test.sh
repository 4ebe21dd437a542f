# The update-site part of fiji-plugin/test-fiji.sh (sourced there: its helpers, $work, $logs, $data, $deepcad).
# DeepCAD installed and upgraded as a Fiji user gets it, with the real ImageJ updater (imagej-updater
# 2.0.1, its command line: what `fiji --update ...` runs) and a file:// update site:
#   1. the site that `build.sh --update-site` wrote (test-fiji.sh step 2): its db.xml.gz lists exactly
#      the overlay's files; a second build publishes nothing (same bytes) and gives identical files;
#   2. a fresh Fiji.app holding only the stack's jars: add the site, update, restart, "Denoise with DeepCAD
#      model" headless with the built-in model, pixels identical to `deepcad denoise --model default`;
#   3. a new release (changed jar, changed libdeepcad.so, one library dropped): update downloads the two
#      changed files only, removes the dropped one, and the new version runs;
#   4. conflicts: another libtorch_cpu.so, libc10.so and libgomp.so.1 already in lib/linux64 (and on
#      LD_LIBRARY_PATH, as the old ImageJ launcher set it): ours still load and give the same pixels, theirs
#      stay untouched; a libtorch another plugin loaded first is refused naming the file; a libgomp it
#      loaded first is shared and named in the log;
#   5. deactivating the site: after Fiji's restart no DeepCAD file or command is left, and Fiji starts cleanly.
# "Restart" is what Fiji's launcher does before starting Java: it applies Fiji.app/update/ (a file there is
# moved into place, an empty one deletes its target: Jaunch's apply-update, src/commonMain/kotlin/main.kt),
# done here by launcher_apply_update; the real launcher is not part of the stack.
# No network host is contacted: every updater and Fiji process runs in an empty network namespace
# (unshare -n) where that is allowed, and with HTTP(S) proxies on a closed local port in any case.

echo "== Fiji update site: publish with the ImageJ updater, install into a fresh Fiji.app, upgrade, conflicts, deactivate"
site_started="$(date +%s)"
site="$work/site"
rm -rf "$work/site-prefs"
updater_jar="$(ls "$work/core"/imagej-updater-*.jar 2> /dev/null | head -n 1)"
no_network=()
if unshare -n true 2> /dev/null; then no_network=(unshare -n)
elif unshare -rn true 2> /dev/null; then no_network=(unshare -rn)
fi
[ "${#no_network[@]}" -gt 0 ] && echo "  (updater and Fiji run in an empty network namespace: ${no_network[*]})" \
    || echo "  (unshare -n is not allowed here: the updater's HTTP(S) proxy on 127.0.0.1:9 keeps it off the network)"
offline_props="-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=9 -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=9"

# The updater's command line on a Fiji.app ($1), output in $logs/$2.log, exit status in $upd_rc.
upd() {
    local fiji_app="$1" name="$2"
    shift 2
    upd_rc=0
    # shellcheck disable=SC2086
    "${no_network[@]+"${no_network[@]}"}" java -Dimagej.dir="$fiji_app" $offline_props \
        -cp "$fiji_app/jars/*" net.imagej.updater.CommandLine "$@" > "$logs/$name.log" 2>&1 || upd_rc=$?
}
expect_upd() { # test, Fiji.app, log name, updater command...
    local test="$1"
    shift
    upd "$@"
    if [ "$upd_rc" = 0 ]; then pass "$test"; else fail "$test" "exit $upd_rc, see $logs/$2.log"; fi
}
# The CHECK lines of a site_denoise.ijm run ($1 = its log), which must have run to its end.
denoise_results() {
    local line
    while IFS= read -r line; do
        case "$line" in
            CHECK-OK\ *) pass "$1: ${line#CHECK-OK }" ;;
            CHECK-FAIL\ *) fail "$1: ${line#CHECK-FAIL }" ;;
        esac
    done < "$logs/$1.log"
    grep -q "^MACRO-DONE site_denoise" "$logs/$1.log" || fail "$1: the macro ran to its end" "see $logs/$1.log"
}
launcher_apply_update() {
    local fiji_app="$1" file rel
    [ -d "$fiji_app/update" ] || return 0
    while IFS= read -r file; do
        rel="${file#"$fiji_app/update/"}"
        if [ -s "$file" ]; then mkdir -p "$(dirname "$fiji_app/$rel")" && mv "$file" "$fiji_app/$rel"
        else rm -f "$fiji_app/$rel" "$file"; fi
    done < <(find "$fiji_app/update" -type f)
    find "$fiji_app/update" -depth -type d -empty -delete
}
# Fiji (headless -macro) started on another Fiji.app: only its jars on the class path, plus the test
# kit's launcher main from outside it. $1 log, $2 limit, $3 Fiji.app, $4 LD_LIBRARY_PATH ("" = unset), rest: args.
site_fiji() {
    local name="$1" limit="$2" fiji_app="$3" ld="$4"
    shift 4
    launcher_apply_update "$fiji_app"
    FIJI_APP="$fiji_app" FIJI_EXTRA_CP="$work/testkit-classes" FIJI_LD_LIBRARY_PATH="$ld" FIJI_PREFS="$work/site-prefs" \
        FIJI_PREFIX="${no_network[*]}" FIJI_JVM_ARGS="-Djava.awt.headless=true $offline_props" \
        fiji "$name" "$limit" --headless "$@"
}
# The current files of a site, "filename size", from the db.xml.gz the updater wrote.
site_files() {
    python3 - "$1/db.xml.gz" <<'PY'
import gzip, sys, xml.etree.ElementTree as ET
for p in ET.fromstring(gzip.open(sys.argv[1]).read()).iter("plugin"):
    for v in p.findall("version"):
        print(p.get("filename"), v.get("filesize"))
PY
}
same_pixels() { # test, a.tif, b.tif: deepcad compare exits 0 when identical, 3 when they differ
    local rc=0
    "$deepcad" compare "$2" "$3" > "$logs/compare-$(basename "$2" .tif).log" 2>&1 || rc=$?
    if [ "$rc" = 0 ]; then pass "$1"; else fail "$1" "deepcad compare exit $rc: $(tail -n 2 "$logs/compare-$(basename "$2" .tif).log" | tr '\n' ' ')"; fi
}
loaded_ours() { # test, log, Fiji.app: the library and libtorch both came from that Fiji.app
    expect_log "$1" "$2" "loaded from $3/lib/linux64/libdeepcad.so, libtorch from $3/lib/linux64/deepcad;"
}
cat "$here/macros/lib.ijm" "$here/macros/site_denoise.ijm" > "$work/macros/site_denoise.ijm"
cat "$here/macros/lib.ijm" "$here/macros/site_absent.ijm" > "$work/macros/site_absent.ijm"

if [ -z "$updater_jar" ] || [ ! -f "$site/db.xml.gz" ]; then
    fail "update site: the site and the updater are there" "no $site/db.xml.gz or no imagej-updater jar in $work/core (see $logs/overlay.log)"
else
    overlay="$work/overlay/Fiji.app"
    expected="$(cd "$overlay" && find . -type f | sed 's|^\./||' | sort)"
    listed="$(site_files "$site" | cut -d' ' -f1 | sort)"
    [ "$listed" = "$expected" ] && pass "site: db.xml.gz (written by the updater's upload) lists exactly the overlay's $(wc -l <<< "$expected") files" \
        || fail "site: db.xml.gz lists exactly the overlay's files" "listed: $(echo $listed); overlay: $(echo $expected)"
    echo "  the site (a new CPU user downloads these):"
    site_files "$site" | awk '{ printf "    %9.1f MB  %s\n", $2 / 1e6, $1; total += $2 } END { printf "    %9.1f MB  in all\n", total / 1e6 }'
    [ -z "$(find "$site" -type f ! -name 'db.xml.gz*' | grep -vE -- '-[0-9]{14}$')" ] \
        && pass "site: every file is stored under the updater's timestamped name" || fail "site: every file is stored under the updater's timestamped name" "$(find "$site" -type f | head -n 3)"

    # 1b. Rebuilding gives the same bytes, so publishing the rebuild uploads nothing and users download nothing.
    #     (Should cargo have rebuilt libdeepcad.so from changed sources in between, exactly that file may change.)
    cargo_lib="$root/target/$profile/libdeepcad.so"
    cargo_before="$(sha1sum "$cargo_lib" | cut -c1-40)"
    rebuild_started="$(date +%s)"
    DEEPCAD_PROFILE="$profile" DEEPCAD_UPDATER_JARS="$work/core" fiji-plugin/build.sh --update-site "$site" "$work/rebuild" > "$logs/rebuild.log" 2>&1 \
        || fail "rebuild: build.sh --update-site a second time" "see $logs/rebuild.log"
    allowed=""
    [ "$(sha1sum "$cargo_lib" | cut -c1-40)" = "$cargo_before" ] || { allowed="lib/linux64/libdeepcad.so"; echo "  (cargo rebuilt libdeepcad.so from changed sources between the two builds: that file may differ)"; }
    differing="$(cd "$overlay" && find . -type f | sed 's|^\./||' | sort | while read -r f; do cmp -s "$f" "$work/rebuild/Fiji.app/$f" || echo "$f"; done | grep -vxF "${allowed:-none}" || true)"
    [ -z "$differing" ] && pass "rebuild: every file of a second build (jar included) is byte-identical to the first ($(( $(date +%s) - rebuild_started )) s)" \
        || fail "rebuild: every file of a second build is byte-identical to the first" "differ: $differing"
    if [ -z "$allowed" ]; then
        expect_log "rebuild: publishing it to the site uploads nothing (the updater: 'Nothing to upload')" rebuild "DeepCAD: Nothing to upload"
    else
        expect_log "rebuild: publishing it uploads only libdeepcad.so" rebuild "DeepCAD: Uploading 1 (removing 0)"
    fi

    # Release 1 = the build now on the site plus one more library (libtorch_global_deps.so from the same
    # libtorch wheel, which libdeepcad.so does not need), so that release 2 can drop it.
    release1="$work/release1/Fiji.app"
    on_site="$work/rebuild/Fiji.app"
    [ -f "$on_site/lib/linux64/libdeepcad.so" ] || on_site="$overlay"
    rm -rf "$work/release1" "$work/release2"
    mkdir -p "$work/release1"
    cp -al "$on_site" "$release1"
    cp -L "$LIBTORCH/lib/libtorch_global_deps.so" "$release1/lib/linux64/deepcad/"
    DEEPCAD_UPDATER_JARS="$work/core" fiji-plugin/publish-site.sh "$release1" "$site" > "$logs/publish-release1.log" 2>&1 \
        || fail "release 1 published" "see $logs/publish-release1.log"
    expect_log "release 1: the updater uploads the one new file" publish-release1 "DeepCAD: Uploading 1 (removing 0)"

    # 2. A user's fresh Fiji.app: the stack's jars only (ImageJ2, imagej-legacy, the updater ...).
    user="$work/user/Fiji.app"
    rm -rf "$work/user"
    mkdir -p "$user/jars"
    cp "$work/core"/*.jar "$user/jars/"
    expect_upd "install: updater add-update-site DeepCAD file://$site/" "$user" site_add add-update-site DeepCAD "file://$site/"
    # ImageJ's own site cannot be reached here (no network): deactivated, so that update concerns DeepCAD only.
    expect_upd "install: updater deactivate-update-site ImageJ" "$user" site_deactivate_imagej deactivate-update-site ImageJ
    expect_upd "install: updater update" "$user" site_update1 update
    upd "$user" site_uptodate1 list-uptodate
    installed="$(grep -c '(INSTALLED)' "$logs/site_uptodate1.log" || true)"
    [ "$installed" = 8 ] && pass "install: the updater lists the release's 8 files as INSTALLED" || fail "install: 8 files INSTALLED" "$installed, see $logs/site_uptodate1.log"
    differing="$(cd "$release1" && find . -type f | sed 's|^\./||' | while read -r f; do cmp -s "$f" "$user/$f" || echo "$f"; done)"
    [ -z "$differing" ] && pass "install: each installed file is identical to the released one" || fail "install: installed files identical" "differ: $differing"
    [ -x "$user/lib/linux64/deepcad/libtorch_cpu.so" ] && pass "install: native libraries keep their executable bit" || fail "install: native libraries keep their executable bit" "$(ls -l "$user/lib/linux64/deepcad/libtorch_cpu.so")"

    "$deepcad" denoise -q "$data/bright.tif" --model default --device cpu -o "$data/cli-site.tif" --overwrite
    site_fiji site_run1 300 "$user" "" -macro "$work/macros/site_denoise.ijm" "$data/bright.tif|$data/site-release1.tif"
    denoise_results site_run1
    expect_status "release 1 runs after the restart (exit 0)" site_run1 0
    loaded_ours "release 1: libdeepcad.so and libtorch come from the installed Fiji.app (lib/linux64, lib/linux64/deepcad)" site_run1 "$user"
    expect_no_log "release 1: the DeepCAD command is registered (the check used after deactivation can see it)" site_run1 "DEEPCAD-COMMAND []"
    same_pixels "release 1: Denoise with the built-in model = deepcad denoise --model default, pixel for pixel" "$data/site-release1.tif" "$data/cli-site.tif"
    rc=0; "$deepcad" compare "$data/bright.tif" "$data/cli-site.tif" > /dev/null 2>&1 || rc=$?
    [ "$rc" = 3 ] && pass "control: the comparison tells the raw movie from the denoised one (exit 3)" || fail "control: raw vs denoised differ" "deepcad compare exit $rc"

    # 3. Release 2: a changed jar, a changed libdeepcad.so, libtorch_global_deps.so dropped.
    release2="$work/release2/Fiji.app"
    mkdir -p "$work/release2"
    cp -al "$release1" "$release2"
    rm "$release2/lib/linux64/deepcad/libtorch_global_deps.so" "$release2/jars/deepcad-fiji.jar" "$release2/lib/linux64/libdeepcad.so"
    mkdir -p "$work/release2-jar"
    echo "DeepCAD release 2 (update-site test)" > "$work/release2-jar/deepcad-release.txt"
    cp "$release1/jars/deepcad-fiji.jar" "$release2/jars/deepcad-fiji.jar"
    jar uf "$release2/jars/deepcad-fiji.jar" -C "$work/release2-jar" deepcad-release.txt
    objcopy --add-section .deepcad_release="$work/release2-jar/deepcad-release.txt" "$release1/lib/linux64/libdeepcad.so" "$release2/lib/linux64/libdeepcad.so"
    for name in libtorch_cpu.so libgomp.so.1; do stat -c '%i %Y' "$user/lib/linux64/deepcad/$name"; done > "$work/inodes-before"
    DEEPCAD_UPDATER_JARS="$work/core" fiji-plugin/publish-site.sh "$release2" "$site" > "$logs/publish-release2.log" 2>&1 \
        || fail "release 2 published" "see $logs/publish-release2.log"
    expect_log "release 2: the updater uploads the 2 changed files and marks 1 obsolete" publish-release2 "DeepCAD: Uploading 2 (removing 1)"
    [ "$(find "$site/lib/linux64/deepcad" -name 'libtorch_cpu.so-*' | wc -l)" = 1 ] \
        && pass "release 2: the site still holds one libtorch_cpu.so (unchanged files are not uploaded again)" \
        || fail "release 2: one libtorch_cpu.so on the site" "$(find "$site" -name 'libtorch_cpu.so-*')"
    upd "$user" site_updateable list-updateable
    updateable="$(grep -oE '^[^[:space:]]+[[:space:]]+\(UPDATEABLE\)' "$logs/site_updateable.log" | awk '{print $1}' | sort | tr '\n' ' ')"
    [ "$updateable" = "jars/deepcad-fiji.jar lib/linux64/libdeepcad.so " ] \
        && pass "upgrade: the updater offers exactly the changed jar and libdeepcad.so" || fail "upgrade: offers exactly the 2 changed files" "'$updateable', see $logs/site_updateable.log"
    expect_upd "upgrade: updater update" "$user" site_update2 update
    expect_log "upgrade: the updater removes the dropped library" site_update2 "Removing lib/linux64/deepcad/libtorch_global_deps.so"
    launcher_apply_update "$user"
    [ -z "$(find "$user/lib" -name 'libtorch_global_deps.so*')" ] && pass "upgrade: after the restart no copy of the dropped library is left (.old included)" \
        || fail "upgrade: the dropped library is gone" "$(find "$user/lib" -name 'libtorch_global_deps.so*')"
    cmp -s "$release2/jars/deepcad-fiji.jar" "$user/jars/deepcad-fiji.jar" && cmp -s "$release2/lib/linux64/libdeepcad.so" "$user/lib/linux64/libdeepcad.so" \
        && pass "upgrade: the jar and libdeepcad.so are release 2's" || fail "upgrade: the jar and libdeepcad.so are release 2's" "differ"
    for name in libtorch_cpu.so libgomp.so.1; do stat -c '%i %Y' "$user/lib/linux64/deepcad/$name"; done > "$work/inodes-after"
    cmp -s "$work/inodes-before" "$work/inodes-after" && pass "upgrade: unchanged libraries were not downloaded or rewritten (same inode and time)" \
        || fail "upgrade: unchanged libraries untouched" "$(paste "$work/inodes-before" "$work/inodes-after" | tr '\n' ' ')"
    site_fiji site_run2 300 "$user" "" -macro "$work/macros/site_denoise.ijm" "$data/bright.tif|$data/site-release2.tif"
    denoise_results site_run2
    expect_status "release 2 runs after the restart (exit 0)" site_run2 0
    same_pixels "release 2: same pixels as the CLI" "$data/site-release2.tif" "$data/cli-site.tif"

    # 4. Conflicting copies in lib/linux64 before DeepCAD is installed (another update site's, or put there
    #    by hand): a libtorch_cpu.so and libc10.so of "another libtorch" (stand-ins built here with those
    #    sonames) and the system's libgomp.so.1 (GCC's, another build than libtorch's).
    other="$work/other/Fiji.app"
    rm -rf "$work/other"
    mkdir -p "$other/jars" "$other/lib/linux64"
    cp "$work/core"/*.jar "$other/jars/"
    system_gomp="$(ldconfig -p 2> /dev/null | awk '/libgomp\.so\.1 .*x86-64/ {print $NF; exit}')"
    if ! command -v cc > /dev/null || [ -z "$system_gomp" ]; then
        skip "conflicting libtorch/libgomp copies" "needs a C compiler (cc) and a system libgomp.so.1 to make the conflicting copies"
    else
        printf 'int other_libtorch_version(void) { return 212; }\n' > "$work/other/other.c"
        for name in libtorch_cpu.so libc10.so; do cc -shared -fPIC -Wl,-soname,$name -o "$other/lib/linux64/$name" "$work/other/other.c"; done
        cp -L "$system_gomp" "$other/lib/linux64/libgomp.so.1"
        (cd "$other/lib/linux64" && sha1sum libtorch_cpu.so libc10.so libgomp.so.1) > "$work/other/theirs.sha1"
        upd "$other" other_add add-update-site DeepCAD "file://$site/"
        upd "$other" other_deactivate deactivate-update-site ImageJ
        expect_upd "conflict: DeepCAD installs over a Fiji.app whose lib/linux64 has other libtorch_cpu.so, libc10.so, libgomp.so.1" "$other" other_update update
        (cd "$other/lib/linux64" && sha1sum -c --quiet "$work/other/theirs.sha1") > /dev/null 2>&1 \
            && pass "conflict: the other copies in lib/linux64 are left untouched" || fail "conflict: the other copies are untouched" "changed"
        # As the old ImageJ launcher started Fiji: lib/linux64 on LD_LIBRARY_PATH (our run path is searched first).
        site_fiji other_run 300 "$other" "$other/lib/linux64" -macro "$work/macros/site_denoise.ijm" "$data/bright.tif|$data/site-other.tif"
        denoise_results other_run
        expect_status "conflict: Denoise runs (exit 0), also with lib/linux64 on LD_LIBRARY_PATH" other_run 0
        loaded_ours "conflict: ... loading DeepCAD's own libtorch from lib/linux64/deepcad" other_run "$other"
        same_pixels "conflict: ... and gives the CLI's pixels" "$data/site-other.tif" "$data/cli-site.tif"
        # Another plugin loaded its libtorch first: refused, naming the file and what to do.
        site_fiji other_preloaded_torch 300 "$other" "" -macro "$work/macros/site_denoise.ijm" "$data/bright.tif|$data/site-preloaded.tif|$other/lib/linux64/libtorch_cpu.so"
        expect_log "conflict: a libtorch_cpu.so another plugin loaded first is refused, naming that file" other_preloaded_torch \
            "DeepCAD: Another copy of libtorch_cpu.so is already loaded in this Fiji, from $other/lib/linux64/libtorch_cpu.so"
        expect_log "conflict: ... saying which copy DeepCAD needs and what to do" other_preloaded_torch \
            "DeepCAD needs its own copy, $other/lib/linux64/deepcad/libtorch_cpu.so (libtorch 2.11.0). Two libtorch copies of one name cannot be used in one Java process, so DeepCAD did not load. What to do: restart Fiji and run a DeepCAD command before using that other plugin"
        expect_no_log "conflict: ... and the macro stops there" other_preloaded_torch "AFTER-DENOISE"
        expect_status "conflict: ... and Fiji exits 1" other_preloaded_torch 1
        # Another plugin loaded its libgomp first: shared (C symbols are versioned), named in the log, same pixels.
        site_fiji other_preloaded_gomp 300 "$other" "" -macro "$work/macros/site_denoise.ijm" "$data/bright.tif|$data/site-gomp.tif|$other/lib/linux64/libgomp.so.1"
        denoise_results other_preloaded_gomp
        expect_status "conflict: with another libgomp.so.1 loaded first, Denoise runs (exit 0)" other_preloaded_gomp 0
        expect_log "conflict: ... and the log names the shared library" other_preloaded_gomp "Sharing libraries another plugin loaded first: libgomp.so.1 from $other/lib/linux64/libgomp.so.1"
        same_pixels "conflict: ... with the CLI's pixels" "$data/site-gomp.tif" "$data/cli-site.tif"
    fi

    # 5. Deactivating the site, then restarting Fiji.
    expect_upd "deactivate: updater deactivate-update-site DeepCAD" "$user" site_deactivate deactivate-update-site DeepCAD
    launcher_apply_update "$user"
    left="$(find "$user" -type f -ipath '*deepcad*' || true)"
    [ -z "$left" ] && pass "deactivate: after the restart no DeepCAD file is left in Fiji.app" || fail "deactivate: no DeepCAD file left" "$left"
    site_fiji site_absent 300 "$user" "" -macro "$work/macros/site_absent.ijm"
    macro_results site_absent
    expect_status "deactivate: Fiji starts and runs a macro cleanly (exit 0)" site_absent 0
    errors="$(grep -E 'Exception|\[ERROR\]|Error:' "$logs/site_absent.log" | head -n 3 || true)"
    [ -z "$errors" ] && pass "deactivate: no error or exception in Fiji's log" || fail "deactivate: no error in Fiji's log" "$errors"
fi
echo "== Fiji update site: $(( $(date +%s) - site_started )) s"
