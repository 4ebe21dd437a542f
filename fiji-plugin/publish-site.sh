#!/usr/bin/env bash
# Publishes the files of a Fiji.app-style folder (jars/, lib/...) as a Fiji update site in a local folder,
# with the ImageJ updater's own upload path (net.imagej.updater.CommandLine, what `fiji --update` runs):
# the site's db.xml.gz and its timestamped files are written by the updater, never by hand.
#
# Usage: fiji-plugin/publish-site.sh [--name NAME] FOLDER SITE_DIR      (NAME default: DeepCAD)
#   FOLDER    exactly the files the site must hold, laid out as in Fiji.app (e.g. build.sh's overlay)
#   SITE_DIR  the site (created when absent). Publishing again to the same site uploads only the files
#             whose checksum changed and marks the files FOLDER no longer has as obsolete, so users'
#             updaters download the changes only and remove the obsolete files.
#        fiji-plugin/publish-site.sh [--name NAME] --url URL --host HOST [--upload-dir DIR] FOLDER
#             the same upload to a hosted site, e.g. --url https://sites.imagej.net/DeepCAD/
#             --host webdav:DeepCAD (the updater asks for the password; CI scripts pass webdav:USER:PASSWORD)
#             with DEEPCAD_UPDATER_JARS=/path/to/Fiji.app/jars (a Fiji's jars hold the WebDAV uploader).
#             Contacts that host, of course; not run by any test.
# The updater: DEEPCAD_UPDATER_JARS=/path/to/Fiji.app/jars (any folder with imagej-updater-*.jar and its
# dependencies), else the one fiji-plugin/fiji-test/pom.xml resolves from ../shared/fiji-stack (or
# DEEPCAD_FIJI_STACK) and Maven Central, kept in fiji-plugin/target/updater-jars.
# No network host is contacted: the updater runs in an empty network namespace where `unshare -n` is
# allowed, and with its HTTP(S) proxy set to a closed local port in any case (a fresh updater always
# tries the default ImageJ site first; offline it logs UnknownHostException and carries on).
# Prints the site's files and sizes (what a user downloads) from the site's db.xml.gz.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
name=DeepCAD
url=""
host=""
upload_dir="."
while [ $# -gt 0 ]; do
    case "$1" in
        --name) name="$2"; shift 2 ;;
        --url) url="$2"; shift 2 ;;
        --host) host="$2"; shift 2 ;;
        --upload-dir) upload_dir="$2"; shift 2 ;;
        *) break ;;
    esac
done
usage="usage: fiji-plugin/publish-site.sh [--name NAME] FOLDER SITE_DIR | [--name NAME] --url URL --host HOST FOLDER"
if [ -n "$url" ]; then
    [ $# -eq 1 ] && [ -n "$host" ] || { echo "$usage" >&2; exit 2; }
    folder="$(cd "$1" && pwd)"
    site="$(mktemp -d)/$name"
else
    [ $# -eq 2 ] || { echo "$usage" >&2; exit 2; }
    folder="$(cd "$1" && pwd)"
    mkdir -p "$2"
    site="$(cd "$2" && pwd)"
    url="file://$site/"
    host="file:localhost"
    upload_dir="$site/"
fi
stage="$site.stage"
log="$site.publish.log"

# The updater's class path.
jars="${DEEPCAD_UPDATER_JARS:-}"
if [ -z "$jars" ]; then
    jars="$root/fiji-plugin/target/updater-jars"
    if ! ls "$jars"/imagej-updater-*.jar > /dev/null 2>&1; then
        stack="${DEEPCAD_FIJI_STACK:-$root/../shared/fiji-stack}"
        [ -f "$stack/vendor-repo.tar.gz" ] || { echo "publish-site.sh: no updater: set DEEPCAD_UPDATER_JARS to a Fiji.app/jars folder, or provide $stack/vendor-repo.tar.gz" >&2; exit 1; }
        work="$root/fiji-plugin/target/updater-resolve"
        rm -rf "$work" "$jars"
        mkdir -p "$work"
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
        mvn -B -q -s "$work/settings.xml" -f "$root/fiji-plugin/fiji-test/pom.xml" dependency:copy-dependencies \
            -DoutputDirectory="$jars" -DincludeScope=runtime > "$work/resolve.log" 2>&1 \
            || { cat "$work/resolve.log" >&2; echo "publish-site.sh: could not resolve the ImageJ updater" >&2; exit 1; }
    fi
fi
ls "$jars"/imagej-updater-*.jar > /dev/null 2>&1 || { echo "publish-site.sh: no imagej-updater-*.jar in $jars" >&2; exit 1; }

no_network=()
offline=(-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=9 -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=9)
if [ "$host" != file:localhost ]; then offline=()
elif unshare -n true 2> /dev/null; then no_network=(unshare -n)
elif unshare -rn true 2> /dev/null; then no_network=(unshare -rn)
fi
# The updater's command line on an app folder ($1); its output goes to the log.
updater() {
    local app="$1" rc=0
    shift
    echo "\$ updater [$app] $*" >> "$log"
    "${no_network[@]+"${no_network[@]}"}" java -Dimagej.dir="$app" "${offline[@]+"${offline[@]}"}" \
        -cp "$jars/*" net.imagej.updater.CommandLine "$@" >> "$log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || { echo "publish-site.sh: the updater failed (exit $rc): $*; see $log" >&2; tail -n 20 "$log" >&2; exit 1; }
}

# A staging app folder holding exactly FOLDER's files (hard links where possible), with its own
# updater database: the updater uploads from an app folder. ImageJ's default site is deactivated so that
# the complete-site upload concerns this site's files only (the site is added first: an updater with no
# active site fails on every command, an upstream bug).
rm -rf "$stage"
mkdir -p "$stage"
(cd "$folder" && find . -type f ! -name db.xml.gz ! -name .checksums ! -path './update/*' | sort) > "$site.files"
[ -s "$site.files" ] || { echo "publish-site.sh: $folder holds no files" >&2; exit 1; }
while IFS= read -r file; do
    mkdir -p "$stage/$(dirname "$file")"
    ln "$folder/$file" "$stage/$file" 2> /dev/null || cp -p "$folder/$file" "$stage/$file"
done < "$site.files"
: > "$log"
updater "$stage" add-update-site "$name" "$url" "$host" "$upload_dir"
updater "$stage" deactivate-update-site ImageJ
# Deactivating runs the updater's installer, which fetches into the stage the site's current files that
# FOLDER no longer has: removed again, so that the complete-site upload marks them obsolete.
rm -rf "$stage/update"
(cd "$stage" && find . -type f ! -name db.xml.gz ! -name .checksums | sort) | comm -23 - "$site.files" | while IFS= read -r file; do
    rm "$stage/$file"
done
updater "$stage" upload-complete-site --platforms linux64 "$name"
rm -rf "$stage"
grep -E '^\[INFO\] (Uploading|Nothing to upload)' "$log" | sed "s|^\[INFO\] |publish-site.sh: $name: |"
if [ "$host" != file:localhost ]; then echo "publish-site.sh: published to $url (log: $log)"; exit 0; fi
[ -f "$site/db.xml.gz" ] || { echo "publish-site.sh: the updater wrote no $site/db.xml.gz; see $log" >&2; exit 1; }

# What the site offers now: its current files, from the db.xml.gz the updater wrote.
python3 - "$site/db.xml.gz" "$name" <<'PY'
import gzip, sys, xml.etree.ElementTree as ET
root = ET.fromstring(gzip.open(sys.argv[1]).read())
current = [(p.get("filename"), int(v.get("filesize"))) for p in root.iter("plugin") for v in p.findall("version")]
obsolete = [p.get("filename") for p in root.iter("plugin") if p.find("version") is None]
for filename, size in sorted(current):
    print(f"{size / 1e6:10.1f} MB  {filename}")
print(f"{sum(s for _, s in current) / 1e6:10.1f} MB  in {len(current)} files: what a new user of update site '{sys.argv[2]}' downloads"
      + (f" ({len(obsolete)} obsolete files recorded for removal)" if obsolete else ""))
PY
