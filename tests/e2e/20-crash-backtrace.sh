#!/usr/bin/env bash
# A fault inside Atlas prints a libunwind backtrace, then the process dies of
# the signal as it would without Atlas; a fault in the host prints nothing of ours.
set -uo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { echo "ok - crash: $*"; }
bad() { echo "not ok - crash: $*"; }

cc -O0 -g -o "$tmp/crash" tests/e2e/progs/crash.c || { bad "cannot build the test program"; exit 1; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
	-keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

run() { # run MODE: the program under the shim; sets status and err
	timeout 20 ./atlas-preload.sh --cert "$tmp/cert.pem" --key "$tmp/key.pem" --ports "$port" \
		-- "$tmp/crash" "$port" "$1" 2>"$tmp/err.$1" >/dev/null
	status=$?
	err=$(cat "$tmp/err.$1")
}

run shim
[ "$status" -eq 139 ] && ok "a fault inside Atlas still ends the process with SIGSEGV (status $status)" ||
	bad "a fault inside Atlas ended with status $status, expected 139"
grep -q '^atlas: fatal: signal 11 (SEGV) inside Atlas TLS; backtrace:$' <<<"$err" &&
	ok "the report names the signal" || bad "no report line; stderr was: $err"
# The first frame is the faulting function of Atlas's, then the hook, then the program's main.
frames=$(grep -E '^atlas:   #[0-9]+ ' <<<"$err")
grep -qE '^atlas:   #0 0x[0-9a-f]+ (send_iov|iov_total|next_chunk|atlas_engine_send)\+' <<<"$frames" &&
	ok "frame #0 is the Atlas function that faulted" || bad "frame #0 is not in Atlas: $frames"
grep -qE ' main\+0x' <<<"$frames" && ok "the backtrace reaches the host's main()" ||
	bad "the backtrace does not reach main(): $frames"

run host
[ "$status" -eq 139 ] && ok "a fault in the host ends it with SIGSEGV as before (status $status)" ||
	bad "a fault in the host ended with status $status, expected 139"
! grep -q 'atlas: fatal' <<<"$err" && ok "a fault outside Atlas prints no Atlas report" ||
	bad "Atlas reported a fault that was not its own: $err"
