#!/bin/sh
# Install the Debian packages a make target needs, and only those missing.
#
#   mk/deps.sh build     compiler, SQLite, yajl, zlib, OpenBLAS: what `make` needs
#   mk/deps.sh test      build + cmocka, sqlite3 shell, protoc, python3, OpenMPI, xmllint
#   mk/deps.sh browser   Chromium and Node.js, for the HTML report's browser tests
#
# Runs `apt-get update` at most once per call, and only when something is
# missing. As a non-root user it prints the command to run instead of failing
# halfway. PIPETRACE_NO_INSTALL=1 turns installing off (the check still runs).
set -eu

pkgs_build="gcc make pkg-config libsqlite3-dev libyajl-dev zlib1g-dev libopenblas-pthread-dev"
pkgs_test="$pkgs_build libcmocka-dev sqlite3 protobuf-compiler python3 libopenmpi-dev openmpi-bin libxml2-utils"
pkgs_browser="chromium nodejs npm"

want=""
for group in "$@"; do
	case "$group" in
	build) want="$want $pkgs_build" ;;
	test) want="$want $pkgs_test" ;;
	browser) want="$want $pkgs_browser" ;;
	*) echo "mk/deps.sh: unknown group '$group' (build, test, browser)" >&2; exit 2 ;;
	esac
done

missing=""
for p in $want; do
	case " $missing " in *" $p "*) continue ;; esac
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		# python3 may come from elsewhere (pyenv, a venv): a working one is enough.
		if [ "$p" = python3 ] && command -v python3 >/dev/null 2>&1; then continue; fi
		# so may Node.js (NodeSource's nodejs bundles npm and conflicts with Debian's npm)
		if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
		if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
		missing="$missing $p"
	fi
done

[ -z "$missing" ] && exit 0

if [ "${PIPETRACE_NO_INSTALL:-0}" = 1 ]; then
	echo "mk/deps.sh: missing Debian packages:$missing (PIPETRACE_NO_INSTALL=1: not installing)" >&2
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "mk/deps.sh: missing Debian packages:$missing" >&2
	echo "mk/deps.sh: run as root: apt-get update && apt-get install -y$missing" >&2
	exit 1
fi
echo "mk/deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
