#!/usr/bin/env bash
# atlas-preload.sh: run a plaintext server with Atlas TLS terminating TLS on some of its ports.
#
#   ./atlas-preload.sh --cert CERT.pem --key KEY.pem --ports 8443[,8444...] \
#       [--ktls auto|off|require] [--handshake-timeout MS] [--log-level LEVEL] -- COMMAND [ARGS...]
#   ./atlas-preload.sh --check
#
# --check prints what kernel TLS can do on this machine (the tls ULP, which
# ciphers the kernel takes in each direction, what --ktls auto will do) and
# exits 0 when the kernel can offload, 1 when it cannot.
#
# Every flag may instead come from the environment (ATLAS_CERT, ATLAS_KEY,
# ATLAS_PORTS, ATLAS_KTLS, ATLAS_HANDSHAKE_TIMEOUT_MS, ATLAS_LOG_LEVEL); a flag
# wins over the variable. Everything is checked, the key against the
# certificate included, before COMMAND runs: any problem is one line on stderr
# and exit status 2, and nothing is served.
set -euo pipefail

me=atlas-preload.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lib="${ATLAS_LIBRARY:-$here/build/libatlas.so}"

die() {
	printf '%s: %s\n' "$me" "$*" >&2
	exit 2
}

usage() {
	cat <<USAGE
usage: $me --cert CERT.pem --key KEY.pem --ports PORT[,PORT...] [--ktls auto|off|require]
          [--handshake-timeout MS] [--log-level error|warn|info|debug] -- COMMAND [ARGS...]
       $me --check
USAGE
}

# Takes "--flag value" and "--flag=value"; $2 is the rest of the command line.
need_value() {
	[ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--cert) need_value "$@"; ATLAS_CERT=$2; shift 2 ;;
	--cert=*) ATLAS_CERT=${1#*=}; shift ;;
	--key) need_value "$@"; ATLAS_KEY=$2; shift 2 ;;
	--key=*) ATLAS_KEY=${1#*=}; shift ;;
	--ports) need_value "$@"; ATLAS_PORTS=$2; shift 2 ;;
	--ports=*) ATLAS_PORTS=${1#*=}; shift ;;
	--ktls) need_value "$@"; ATLAS_KTLS=$2; shift 2 ;;
	--ktls=*) ATLAS_KTLS=${1#*=}; shift ;;
	--handshake-timeout) need_value "$@"; ATLAS_HANDSHAKE_TIMEOUT_MS=$2; shift 2 ;;
	--handshake-timeout=*) ATLAS_HANDSHAKE_TIMEOUT_MS=${1#*=}; shift ;;
	--log-level) need_value "$@"; ATLAS_LOG_LEVEL=$2; shift 2 ;;
	--log-level=*) ATLAS_LOG_LEVEL=${1#*=}; shift ;;
	-h | --help) usage; exit 0 ;;
	--check)
		[ -x "$here/build/atlas-check" ] || die "$here/build/atlas-check is missing: run make first"
		exec "$here/build/atlas-check" ;;
	--) shift; break ;;
	*) die "unknown option '$1' (see --help)" ;;
	esac
done

[ $# -gt 0 ] || die "no command given: put it after --, e.g. -- python3 -m http.server 8443"

# The same rules as the library's own parser (shim/config.c), so both refuse alike.
: "${ATLAS_PORTS:=}" "${ATLAS_CERT:=}" "${ATLAS_KEY:=}"
: "${ATLAS_KTLS:=auto}" "${ATLAS_HANDSHAKE_TIMEOUT_MS:=10000}" "${ATLAS_LOG_LEVEL:=warn}"

[ -n "$ATLAS_PORTS" ] || die "no TLS port given: use --ports 8443 (or ATLAS_PORTS)"
IFS=, read -r -a port_list <<<"$ATLAS_PORTS"
[ "${ATLAS_PORTS: -1}" != , ] || die "--ports: '$ATLAS_PORTS' ends with a comma"
for p in "${port_list[@]}"; do
	[[ "$p" =~ ^[0-9]{1,5}$ ]] && [ "$((10#$p))" -ge 1 ] && [ "$((10#$p))" -le 65535 ] ||
		die "--ports: '$p' is not a port number from 1 to 65535"
done
case "$ATLAS_KTLS" in auto | off | require) ;; *) die "--ktls: '$ATLAS_KTLS' is not one of auto, off, require" ;; esac
if [ "$ATLAS_KTLS" = require ] && ! grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null; then
	die "--ktls require: this kernel has no tls ULP (see $me --check)"
fi
case "$ATLAS_LOG_LEVEL" in error | warn | info | debug) ;; *) die "--log-level: '$ATLAS_LOG_LEVEL' is not one of error, warn, info, debug" ;; esac
[[ "$ATLAS_HANDSHAKE_TIMEOUT_MS" =~ ^[0-9]{1,7}$ ]] && [ "$((10#$ATLAS_HANDSHAKE_TIMEOUT_MS))" -ge 1 ] &&
	[ "$((10#$ATLAS_HANDSHAKE_TIMEOUT_MS))" -le 3600000 ] ||
	die "--handshake-timeout: '$ATLAS_HANDSHAKE_TIMEOUT_MS' is not a number of milliseconds from 1 to 3600000"

[ -n "$ATLAS_CERT" ] || die "no certificate given: use --cert CERT.pem (or ATLAS_CERT)"
[ -n "$ATLAS_KEY" ] || die "no private key given: use --key KEY.pem (or ATLAS_KEY)"
[ -r "$ATLAS_CERT" ] || die "--cert: cannot read '$ATLAS_CERT'"
[ -r "$ATLAS_KEY" ] || die "--key: cannot read '$ATLAS_KEY'"
command -v openssl >/dev/null || die "the openssl command is needed to check the certificate: apt-get install openssl"
cert_pub=$(openssl x509 -inform PEM -in "$ATLAS_CERT" -noout -pubkey 2>/dev/null) ||
	die "--cert: '$ATLAS_CERT' is not a PEM certificate"
# Every certificate of the chain must parse, not only the first (openssl x509 reads one).
chain_dir=$(mktemp -d)
trap 'rm -rf "$chain_dir"' EXIT
awk -v dir="$chain_dir" '/-----BEGIN CERTIFICATE-----/ { n++; inside = 1 }
	inside { print > (dir "/" n ".pem") }
	/-----END CERTIFICATE-----/ { inside = 0 }
	END { if (inside) exit 1 }' "$ATLAS_CERT" ||
	die "--cert: '$ATLAS_CERT' ends inside a certificate (a truncated chain)"
for c in "$chain_dir"/*.pem; do
	openssl x509 -inform PEM -in "$c" -noout 2>/dev/null ||
		die "--cert: certificate $(basename "$c" .pem) of the chain in '$ATLAS_CERT' does not parse"
done
rm -rf "$chain_dir"
trap - EXIT
key_pub=$(openssl pkey -inform PEM -in "$ATLAS_KEY" -pubout -passin pass: 2>/dev/null) ||
	die "--key: '$ATLAS_KEY' is not an unencrypted PEM private key"
[ "$cert_pub" = "$key_pub" ] || die "--key: '$ATLAS_KEY' does not match the certificate in '$ATLAS_CERT'"
openssl x509 -in "$ATLAS_CERT" -noout -checkend 0 >/dev/null 2>&1 ||
	printf '%s: warning: the certificate in %s has expired\n' "$me" "$ATLAS_CERT" >&2

[ -r "$lib" ] || die "the library $lib is missing: run make first"

# A private key that group or others may reach: say so once, as ssh would, and go on. The
# library, told by ATLAS_KEY_MODE_WARNED, does not say it again at its first listen.
unset ATLAS_KEY_MODE_WARNED
key_mode=$(stat -L -c %a "$ATLAS_KEY" 2>/dev/null) || key_mode=0
if [ $((8#$key_mode & 8#077)) -ne 0 ]; then
	printf '%s: warning: the private key file %s is accessible to group or others (mode %04o): only its owner should read it (chmod 600)\n' \
		"$me" "$ATLAS_KEY" "$((8#$key_mode))" >&2
	export ATLAS_KEY_MODE_WARNED=1
fi

# Absolute paths: the server may chdir before it reads them... it reads them at load, but
# a relative LD_PRELOAD entry is resolved against each child's own directory.
abs() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
export ATLAS_PORTS ATLAS_KTLS ATLAS_HANDSHAKE_TIMEOUT_MS ATLAS_LOG_LEVEL
export ATLAS_CERT="$(abs "$ATLAS_CERT")" ATLAS_KEY="$(abs "$ATLAS_KEY")"
# ATLAS_PRELOAD_FIRST and ATLAS_PRELOAD_AFTER: libraries to put before and after Atlas in
# LD_PRELOAD, for the sanitizer builds: ASan's runtime (libasan.so.8 for
# build/asan/libatlas.so) must be the first library loaded of all; TSan's goes after Atlas
# (tests/e2e/51-sanitizers.sh says why).
first="" after=""
for f in ${ATLAS_PRELOAD_FIRST:-}; do
	[ -r "$f" ] || die "ATLAS_PRELOAD_FIRST: cannot read '$f'"
	first+="$(abs "$f") "
done
for f in ${ATLAS_PRELOAD_AFTER:-}; do
	[ -r "$f" ] || die "ATLAS_PRELOAD_AFTER: cannot read '$f'"
	after+=" $(abs "$f")"
done
export LD_PRELOAD="$first$(abs "$lib")$after${LD_PRELOAD:+ $LD_PRELOAD}"
exec "$@"
