#!/usr/bin/env bash
# Kernel TLS as this machine's kernel allows it, checked from outside UML:
# --check on the host and inside UML, the per-connection log line's reason,
# and --ktls require refused (by the wrapper and by the library) on a kernel
# without the tls ULP.
source "$(dirname "$0")/lib.sh"
make_certs
cd "$ROOT" || exit 1

host_has_ulp=false
grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null && host_has_ulp=true
note "host kernel $(uname -r): tls ULP available: $host_has_ulp"

# --check on the host: it must agree with the kernel's own list.
out=$(./atlas-preload.sh --check 2>&1)
status=$?
if $host_has_ulp; then
	is_eq "--check exits 0 where the kernel has the tls ULP" "$status" 0
	is_match "--check lists the ciphers it tried" "$out" 'TLS 1.3 +AES-128-GCM +TX (yes|no) RX (yes|no)'
else
	is_eq "--check exits 1 where the kernel has no tls ULP" "$status" 1
	is_match "--check says the tls ULP is missing" "$out" '^tls ULP: not available'
	is_match "--check says what auto will do" "$out" '^ATLAS_KTLS=auto: every connection uses the userspace path'
fi

# --check inside UML, whose kernel has kTLS: every pair offloadable both ways.
if command -v linux.uml >/dev/null; then
	out=$(tests/uml/run.sh --timeout 120 -- ./atlas-preload.sh --check 2>&1)
	status=$?
	is_eq "--check inside UML exits 0" "$status" 0
	is_match "--check inside UML finds the tls ULP" "$out" '^tls ULP: available$'
	n=$(grep -cE '^  TLS 1\.[23] +[A-Za-z0-9-]+ +TX yes RX yes$' <<<"$out")
	is_eq "--check inside UML: all 6 version/cipher pairs offload both ways" "$n" 6
else
	fail "linux.uml is missing (install user-mode-linux): cannot check --check inside UML"
fi

if $host_has_ulp; then
	note "the rest needs a kernel without the tls ULP: the UML scenarios cover this kernel"
	exit 0
fi

# The wrapper refuses --ktls require at once, with one line.
port=$(free_port)
out=$(./atlas-preload.sh --cert "$EC_CERT" --key "$EC_KEY" --ports "$port" --ktls require \
	-- "$PY" -c 'open("'"$T"'/ran", "w")' 2>&1)
status=$?
is_eq "--ktls require without a tls ULP: the wrapper exits 2" "$status" 2
is_eq "--ktls require without a tls ULP: one line on stderr" "$(wc -l <<<"$out")" 1
is_match "--ktls require without a tls ULP: the line names the problem" "$out" 'require.*no tls ULP'
check "--ktls require without a tls ULP: the command never ran" test ! -e "$T/ran"

# Loaded by hand with ATLAS_KTLS=require: the TLS port refuses, with one error line.
port=$(free_port)
start_server req "$port" -- env LD_PRELOAD="$ROOT/build/libatlas.so" ATLAS_PORTS="$port" \
	ATLAS_CERT="$EC_CERT" ATLAS_KEY="$EC_KEY" ATLAS_KTLS=require \
	"$PY" -m http.server --bind 127.0.0.1 "$port"
body=$(curl -sS --max-time 5 --cacert "$CA" "https://localhost:$port/" 2>&1)
is_no_match "ATLAS_KTLS=require by hand: the TLS port serves nothing" "$body" 'Directory listing'
wait_log req 'atlas: error: .*ATLAS_KTLS=require but this kernel has no tls ULP' 5 &&
	pass "ATLAS_KTLS=require by hand: the error line names the missing tls ULP" ||
	fail "ATLAS_KTLS=require by hand: no error line naming the missing ULP: $(grep atlas: "${SERVER_LOG[req]}")"
stop_server req

# auto on this kernel: served in userspace, and the log line says why.
port=$(free_port)
start_server auto "$port" -- ./atlas-preload.sh --cert "$EC_CERT" --key "$EC_KEY" --ports "$port" \
	--log-level info -- "$PY" -m http.server --bind 127.0.0.1 "$port"
body=$(hcurl "$port" "" 2>&1)
is_match "ATLAS_KTLS=auto without a tls ULP: served over TLS in userspace" "$body" 'Directory listing'
wait_log auto 'path userspace \(the kernel has no tls ULP\)' 5 &&
	pass "ATLAS_KTLS=auto without a tls ULP: the log line says why the path is userspace" ||
	fail "no 'path userspace (the kernel has no tls ULP)' line: $(grep atlas: "${SERVER_LOG[auto]}")"
