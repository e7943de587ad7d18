#!/usr/bin/env bash
# tests/deps.sh PKG...: make sure these Debian packages are installed.
# As root, installs the missing ones (apt-get update first); otherwise prints
# the one apt-get line that would, and fails.
set -euo pipefail

missing=()
for pkg in "$@"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "atlas: missing Debian packages; as root, run: apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "atlas: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
