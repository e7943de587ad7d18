#!/usr/bin/env bash
# 33: ./atlas-preload.sh --ktls require, and a kernel that cannot take a cipher,
# inside User-Mode Linux (two boots), with tests/e2e/progs/sendfile_srv.c and
# tests/e2e/progs/tlsclient.c:
#   - the full kTLS kernel: under --ktls require every TLS 1.2 and 1.3 suite Atlas
#     offers is served, with path kernel (TX and RX);
#   - a kernel booted without crypto/chacha20poly1305.ko (tests/uml/run.sh
#     --without-module): the tls ULP is there but setsockopt(TLS_TX/TLS_RX) cannot
#     allocate ChaCha20-Poly1305. A ChaCha20 connection under --ktls require is
#     refused (the client gets no response, Atlas logs ATLAS_KTLS=require) while
#     AES-GCM is still served; under --ktls auto it falls back to userspace with
#     the reason in its log line (what strace shows setsockopt returned), serves
#     the right bytes, and /proc/net/tls_stat does not move.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/ktls-lib.sh"

ktls_setup

SUITES="1.2:ECDHE-ECDSA-AES128-GCM-SHA256 1.2:ECDHE-ECDSA-AES256-GCM-SHA384 1.2:ECDHE-ECDSA-CHACHA20-POLY1305
1.3:TLS_AES_128_GCM_SHA256 1.3:TLS_AES_256_GCM_SHA384 1.3:TLS_CHACHA20_POLY1305_SHA256"

# ---- boot 1: the whole kernel, --ktls require -----------------------------------------

IN1=$T/inner-33-full.sh
ktls_inner "$IN1"
printf 'SUITES=%q\n' "$SUITES" >>"$IN1"
cat >>"$IN1" <<'EOF'
REQ=8443
srv_start req $REQ --ktls require -- "$BIN/sendfile_srv" $REQ http "$WWW"
if grep -q "listening with TLS on port $REQ; ATLAS_KTLS=require; path kernel" "$T/req.log"; then
	pass "--ktls require: the listener's log line says ATLAS_KTLS=require, path kernel"
else
	fail "--ktls require: the listener's log line does not say ATLAS_KTLS=require, path kernel"
	note_out "$T/req.log"
fi
for v in $SUITES; do
	ver=${v%%:*} cipher=${v#*:}
	mark req
	snap
	client get --port $REQ --tls "$ver" --cipher "$cipher" --get /big.bin
	line=$(conn_line req)
	if [ "$RC" = 0 ] && [ "$(field get get sha256)" = "$BIG_SHA" ] &&
		grep -Eq ": TLSv$ver $cipher, handshake [0-9.]+ ms, path kernel \\(TX and RX\\)\$" <<<"$line" &&
		[ "$(delta TlsTxSw) $(delta TlsRxSw)" = "1 1" ]; then
		pass "--ktls require TLS $ver $cipher: served intact, path kernel (TX and RX), TlsTxSw and TlsRxSw +1"
	else
		fail "--ktls require TLS $ver $cipher: not served intact with path kernel (TX and RX) (tlsclient exit $RC)"
		note "log line: ${line:-nothing}"
		note_out "$T/get.out"
		note_out "$T/req.log"
	fi
done
inner_done
EOF
ktls_uml require -- "$IN1"

# ---- boot 2: no chacha20poly1305 module ---------------------------------------------------

IN2=$T/inner-33-nochacha.sh
ktls_inner "$IN2"
cat >>"$IN2" <<'EOF'
REQ=8443 AUTO=8444
if grep -q '^chacha20poly1305 ' /proc/modules; then
	fail "no-chacha kernel: chacha20poly1305 is loaded although run.sh was told to leave it out"
else
	pass "no-chacha kernel: the chacha20poly1305 module is not loaded (tls is: $(grep -c '^tls ' /proc/modules))"
fi
srv_start req $REQ --ktls require -- "$BIN/sendfile_srv" $REQ http "$WWW"
# Under strace: what setsockopt really returns for the cipher the kernel cannot allocate.
srv_start auto $AUTO -- strace -f -qq -e trace=setsockopt -o "$T/auto.trace" \
	"$BIN/sendfile_srv" $AUTO http "$WWW"

for v in 1.3:TLS_CHACHA20_POLY1305_SHA256 1.2:ECDHE-ECDSA-CHACHA20-POLY1305; do
	ver=${v%%:*} cipher=${v#*:}
	tag="no-chacha kernel, TLS $ver $cipher"

	mark req
	snap
	client req --port $REQ --tls "$ver" --cipher "$cipher" --get /big.bin
	if [ "$RC" != 0 ] && ! grep -q 'status=200' "$T/req.out"; then
		pass "$tag, --ktls require: the connection is refused, the client gets no response ($(grep -E '^(handshake|get|end):' "$T/req.out" | tr '\n' ' '))"
	else
		fail "$tag, --ktls require: the connection was served although the kernel cannot take the cipher (tlsclient exit $RC)"
		note_out "$T/req.out"
	fi
	if wait_since req 'ATLAS_KTLS=require' 10; then
		pass "$tag, --ktls require: Atlas logs the refusal: $(since req | grep -m 1 'ATLAS_KTLS=require' | sed 's/^atlas: info: fd [0-9]* peer [0-9.:]* port [0-9]*: //')"
	else
		fail "$tag, --ktls require: no log line with ATLAS_KTLS=require"
		note_out "$T/req.log"
	fi
	is "$tag, --ktls require: TlsTxSw and TlsRxSw do not move" "$(delta TlsTxSw) $(delta TlsRxSw)" "0 0"

	mark auto
	snap
	trace0=$(wc -l <"$T/auto.trace")
	client auto --port $AUTO --tls "$ver" --cipher "$cipher" --get /big.bin
	if [ "$RC" = 0 ] && [ "$(field auto get sha256)" = "$BIG_SHA" ]; then
		pass "$tag, --ktls auto: served intact through userspace TLS"
	else
		fail "$tag, --ktls auto: not served intact (tlsclient exit $RC)"
		note_out "$T/auto.out"
	fi
	line=$(conn_line auto)
	if grep -Eq ": TLSv$ver $cipher, handshake [0-9.]+ ms, path userspace \\(.+\\)\$" <<<"$line"; then
		pass "$tag, --ktls auto: Atlas logs path userspace with the reason: ${line#*path }"
	else
		fail "$tag, --ktls auto: the log line does not say path userspace (why)"
		note "got: ${line:-nothing}"
	fi
	is "$tag, --ktls auto: TlsTxSw and TlsRxSw do not move" "$(delta TlsTxSw) $(delta TlsRxSw)" "0 0"
	# What the kernel said, and whether the log line tells it right.
	calls=$(tail -n "+$((trace0 + 1))" "$T/auto.trace" | grep -E 'SOL_TCP, TCP_ULP|SOL_TLS, TLS_[RT]X' |
		sed -E 's/.*(TCP_ULP|TLS_[RT]X),.*\) = (-1 [A-Z]+|[0-9]+).*/\1 = \2/' | paste -sd ';' | sed 's/;/; /g')
	note "$tag: strace: setsockopt $calls"
	if grep -q 'has no tls ULP' <<<"$line"; then
		fail "$tag, --ktls auto: the reason blames a missing tls ULP, but the kernel has it (setsockopt $calls): ENOENT from TLS_TX/TLS_RX means the cipher cannot be allocated (its crypto module is missing)"
	else
		pass "$tag, --ktls auto: the reason does not blame the tls ULP, which the kernel has (setsockopt $calls)"
	fi
done

mark req
client req --port $REQ --tls 1.3 --cipher TLS_AES_128_GCM_SHA256 --get /big.bin
line=$(conn_line req)
if [ "$RC" = 0 ] && [ "$(field req get sha256)" = "$BIG_SHA" ] &&
	grep -q 'path kernel (TX and RX)$' <<<"$line"; then
	pass "no-chacha kernel, --ktls require: after the refusals, an AES-128-GCM connection is served with path kernel (TX and RX)"
else
	fail "no-chacha kernel, --ktls require: an AES-128-GCM connection is not served after the refusals (tlsclient exit $RC)"
	note "log line: ${line:-nothing}"
	note_out "$T/req.out"
fi
inner_done
EOF
ktls_uml no-chacha --without-module crypto/chacha20poly1305.ko -- "$IN2"
finish
