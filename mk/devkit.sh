#!/bin/sh
# Gather, on a machine with Debian's package registry, what a GPU machine
# that reaches no registry needs to build pipetrace and run its GPU checks
# (tests/gpu-check.sh): the .deb files of the libraries pipetrace builds
# against that a CUDA image may lack (SQLite, yajl, zlib, cmocka). They go to
# .devkit/debs, which git ignores through .git/info/exclude (they are
# Debian's files, not the project's); tests/gpu-check.sh unpacks them there
# into a private root, touching nothing of the machine's own.
#
#   sh mk/devkit.sh            then carry .devkit to the GPU machine
set -eu
cd "$(dirname "$0")/.."
pkgs="libsqlite3-0 libsqlite3-dev libyajl2 libyajl-dev zlib1g zlib1g-dev libcmocka0 libcmocka-dev"
dir=.devkit/debs
mkdir -p "$dir"
exclude=$(git rev-parse --git-path info/exclude 2>/dev/null || true)
if [ -n "$exclude" ] && ! grep -qx '/.devkit/' "$exclude" 2>/dev/null; then
	mkdir -p "$(dirname "$exclude")"
	echo '/.devkit/' >>"$exclude"
fi
rm -f "$dir"/*.deb
# shellcheck disable=SC2086
if ! (cd "$dir" && apt-get download -qq $pkgs >/dev/null 2>&1); then
	echo "mk/devkit.sh: apt-get download failed; updating the package lists once" >&2
	apt-get update -qq
	(cd "$dir" && apt-get download -qq $pkgs)
fi
n=$(ls "$dir"/*.deb | wc -l)
echo "mk/devkit.sh: $n packages in $dir ($(du -sh "$dir" | cut -f1)); carry .devkit and run tests/gpu-check.sh there"
