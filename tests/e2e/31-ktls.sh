#!/usr/bin/env bash
# 31: kernel TLS end to end, inside User-Mode Linux (one boot), with
# tests/e2e/progs/sendfile_srv.c (a static file server that answers with
# sendfile(2), and an echo server) under ./atlas-preload.sh --log-level info,
# and tests/e2e/progs/tlsclient.c as the client:
#   - {TLS 1.2, TLS 1.3} x {AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305}: a 1 MiB
#     file arrives intact, the connection's log line says path kernel (TX and RX)
#     with that version and cipher, and /proc/net/tls_stat TlsTxSw and TlsRxSw
#     rise by exactly 1 per connection; 256 KiB echoed back intact (the kernel
#     decrypts what the client sends), the client's close_notify reads as end of
#     file and the client gets the server's close_notify;
#   - a bare TCP close from the client reads as end of file;
#   - a fatal alert from the client (bad_record_mac, sent by OpenSSL itself),
#     a TLS 1.2 renegotiation ClientHello, a TLS 1.3 KeyUpdate (echo and
#     keep-alive HTTP) and a flipped ciphertext byte: what the server and the
#     client see, Atlas's log line, TlsDecryptError, and that the next client
#     is served; after the KeyUpdate, the server's read fails with ECONNRESET
#     and its write with EPIPE;
#   - an echo server that moves the bytes with splice(2) (sendfile_srv
#     splice-echo): intact, the client's close_notify is end of file to splice
#     (and stays so), a fatal alert ECONNRESET;
#   - strace: the server's own sendfile(2) goes to the TLS socket, and a
#     keep-alive connection with 4 requests makes exactly the same non-data
#     system calls on the socket as one with 1 request (nothing per write).
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/ktls-lib.sh"

ktls_setup
IN=$T/inner-31.sh
ktls_inner "$IN"
cat >>"$IN" <<'EOF'
HTTP=8443 ECHO=8444 STRACED=8445 SPLICE=8446 EWRITE=8447
srv_start http $HTTP -- "$BIN/sendfile_srv" $HTTP http "$WWW"
srv_start echo $ECHO -- "$BIN/sendfile_srv" $ECHO echo
srv_start splice $SPLICE -- "$BIN/sendfile_srv" $SPLICE splice-echo
srv_start ewrite $EWRITE -- "$BIN/sendfile_srv" $EWRITE echo-write

# echoed_ok OUT BYTES: tlsclient's echo of BYTES came back intact, with close_notify both ways.
echoed_ok() {
	[ "$RC" = 0 ] && grep -qx "echo: sent=$2 received=$2 match=yes" "$T/$1.out" &&
		grep -qx 'close: sent=close_notify peer=close_notify' "$T/$1.out"
}

# next_ok LABEL: the echo server still serves a normal client.
next_ok() {
	client next --port $ECHO --echo 5000 --close-notify
	if [ "$RC" = 0 ] && srv_alive echo; then
		pass "$1: the echo server is up and serves the next client"
	else
		fail "$1: the echo server does not serve the next client (tlsclient exit $RC)"
		note_out "$T/next.out"
		note_out "$T/echo.log"
	fi
}

# atlas_quiet NAME LABEL: no Atlas error, warning or broken connection since the mark.
atlas_quiet() {
	local bad
	bad=$(since "$1" | grep -E '^atlas: (error|warn)|connection broken|refused')
	if [ -z "$bad" ]; then
		pass "$2: Atlas logged nothing bad"
	else
		fail "$2: Atlas logged: $bad"
	fi
}

# ---- the variant matrix --------------------------------------------------------------

for v in 1.2:ECDHE-ECDSA-AES128-GCM-SHA256 1.2:ECDHE-ECDSA-AES256-GCM-SHA384 \
	1.2:ECDHE-ECDSA-CHACHA20-POLY1305 1.3:TLS_AES_128_GCM_SHA256 \
	1.3:TLS_AES_256_GCM_SHA384 1.3:TLS_CHACHA20_POLY1305_SHA256; do
	ver=${v%%:*} cipher=${v#*:}
	tag="TLS $ver $cipher"
	want_line=": TLSv$ver $cipher, handshake [0-9.]+ ms, path kernel \\(TX and RX\\)\$"

	mark http
	snap
	client get --port $HTTP --tls "$ver" --cipher "$cipher" --get /big.bin
	dtx=$(delta TlsTxSw) drx=$(delta TlsRxSw)
	if [ "$RC" = 0 ] && [ "$(field get get sha256)" = "$BIG_SHA" ] &&
		[ "$(field get get length)" = "$BIG_LEN" ] &&
		[ "$(field get handshake cipher)" = "$cipher" ] && grep -qx 'end: close_notify' "$T/get.out"; then
		pass "$tag: GET /big.bin (1 MiB by sendfile) arrives intact (sha256), then the server's close_notify"
	else
		fail "$tag: GET /big.bin did not arrive intact and closed by close_notify (tlsclient exit $RC)"
		note_out "$T/get.out"
		note_out "$T/http.log"
	fi
	line=$(conn_line http)
	if grep -Eq -- "$want_line" <<<"$line"; then
		pass "$tag: sendfile server: Atlas logs path kernel (TX and RX) for TLSv$ver $cipher"
	else
		fail "$tag: sendfile server: no log line '...TLSv$ver $cipher, ..., path kernel (TX and RX)'"
		note "got: ${line:-nothing}"
		note_out "$T/http.log"
	fi
	is "$tag: sendfile server: TlsTxSw and TlsRxSw rose by exactly 1 each" "$dtx $drx" "1 1"

	mark echo
	snap
	client echo --port $ECHO --tls "$ver" --cipher "$cipher" --echo 262144 --close-notify
	dtx=$(delta TlsTxSw) drx=$(delta TlsRxSw)
	if echoed_ok echo 262144; then
		pass "$tag: 256 KiB echoed back intact (kernel RX decrypts, kernel TX encrypts); the client's close_notify is answered by the server's (SSL_ERROR_ZERO_RETURN)"
	else
		fail "$tag: echo of 256 KiB with close_notify both ways failed (tlsclient exit $RC)"
		note_out "$T/echo.out"
		note_out "$T/echo.log"
	fi
	if wait_since echo 'echo: end of file after 262144 bytes' 10; then
		pass "$tag: the client's close_notify reads as end of file in the server, after all 262144 bytes"
	else
		fail "$tag: the echo server did not read end of file after 262144 bytes"
		note_out "$T/echo.log"
	fi
	line=$(conn_line echo)
	if grep -Eq -- "$want_line" <<<"$line"; then
		pass "$tag: echo server: Atlas logs path kernel (TX and RX)"
	else
		fail "$tag: echo server: no log line '...TLSv$ver $cipher, ..., path kernel (TX and RX)'"
		note "got: ${line:-nothing}"
	fi
	is "$tag: echo server: TlsTxSw and TlsRxSw rose by exactly 1 each" "$dtx $drx" "1 1"
	atlas_quiet echo "$tag: echo with close_notify both ways"
done

# ---- a bare TCP close ------------------------------------------------------------------

for ver in 1.2 1.3; do
	mark echo
	client bare --port $ECHO --tls $ver --echo 3000 --no-close-notify
	if [ "$RC" = 0 ] && wait_since echo 'echo: end of file after 3000 bytes' 10; then
		pass "TLS $ver: a client's TCP close without close_notify reads as end of file in the server"
	else
		fail "TLS $ver: a client's TCP close without close_notify: no end of file in the server (tlsclient exit $RC)"
		note_out "$T/bare.out"
		note_out "$T/echo.log"
	fi
	atlas_quiet echo "TLS $ver: a bare TCP close"
done

# ---- a fatal alert from the client -------------------------------------------------------

for ver in 1.2 1.3; do
	mark echo
	client alert --port $ECHO --tls $ver --echo 1000 --alert
	if [ "$RC" = 0 ] && grep -q '^alert: sent=20 level=2 flipped=1 ' "$T/alert.out"; then
		pass "TLS $ver: the client sent a fatal bad_record_mac alert (OpenSSL's own, under the current keys)"
	else
		fail "TLS $ver: the client could not send its alert (tlsclient exit $RC)"
		note_out "$T/alert.out"
	fi
	if wait_since echo 'echo: read failed after 2000 bytes: ECONNRESET' 10; then
		pass "TLS $ver: the alert is a connection error in the server: read() fails with ECONNRESET"
	else
		fail "TLS $ver: the server did not see ECONNRESET after the client's alert"
		note_out "$T/echo.log"
	fi
	if since_has echo 'the client sent alert 20 \(level 2\): connection closed'; then
		pass "TLS $ver: Atlas logs the client's alert (20, level 2)"
	else
		fail "TLS $ver: Atlas did not log 'the client sent alert 20 (level 2)'"
		note_out "$T/echo.log"
	fi
	next_ok "TLS $ver: after a client's fatal alert"
done

# ---- TLS 1.2 renegotiation: a ClientHello on a kernel-RX socket ----------------------------

mark echo
client reneg --port $ECHO --tls 1.2 --echo 1000 --renegotiate
if [ "$RC" = 0 ] && grep -q '^renegotiate: result=' "$T/reneg.out"; then
	pass "TLS 1.2: a renegotiation attempt fails in the client ($(sed -n 's/^renegotiate: //p' "$T/reneg.out"))"
else
	fail "TLS 1.2: a renegotiation attempt did not fail (tlsclient exit $RC)"
	note_out "$T/reneg.out"
fi
if wait_since echo 'echo: read failed after 1000 bytes: ECONNRESET' 10 &&
	since_has echo 'unexpected handshake message 1 after the handshake'; then
	pass "TLS 1.2: a renegotiation ClientHello is a connection error in the server (ECONNRESET), and Atlas logs it"
else
	fail "TLS 1.2: a renegotiation ClientHello: no ECONNRESET in the server or no Atlas log line"
	note_out "$T/echo.log"
fi
next_ok "TLS 1.2: after a renegotiation attempt"

# ---- TLS 1.3 KeyUpdate ----------------------------------------------------------------------

mark echo
client ku --port $ECHO --tls 1.3 --echo 1000 --keyupdate
if [ "$RC" = 0 ] && grep -qx 'keyupdate: after=echo echoed=0 result=close_notify' "$T/ku.out"; then
	pass "TLS 1.3 echo: after the client's KeyUpdate the client sees a clean close (close_notify), no data"
else
	fail "TLS 1.3 echo: after the client's KeyUpdate the client did not see a clean close (tlsclient exit $RC)"
	note_out "$T/ku.out"
fi
# The server's read fails with ECONNRESET after the 1000 bytes before the KeyUpdate: the
# client's stream went on, so an end of file (3eda4fa) would pass a cut-short upload.
if wait_since echo 'echo: read failed after 1000 bytes: ECONNRESET' 10 &&
	since_has echo '^atlas: info: .*KeyUpdate'; then
	pass "TLS 1.3 echo: Atlas logs the KeyUpdate, and the server's read fails with ECONNRESET after the 1000 bytes before it"
else
	fail "TLS 1.3 echo: no KeyUpdate log line, or the server's read did not fail with ECONNRESET after 1000 bytes"
	note_out "$T/echo.log"
fi
next_ok "TLS 1.3: after a KeyUpdate"

# After the KeyUpdate Atlas has shut the socket down: kTLS in Linux 6.1 would take a
# write, count it and never send it (3eda4fa: the server's write returned 1).
mark ewrite
client kuw --port $EWRITE --tls 1.3 --echo 1000 --keyupdate
if wait_since ewrite 'echo: read failed after 1000 bytes: ECONNRESET; write after it: ' 10 &&
	since_has ewrite 'write after it: EPIPE$'; then
	pass "TLS 1.3: after a KeyUpdate ends the stream, the server's write fails with EPIPE"
else
	fail "TLS 1.3: after a KeyUpdate ends the stream, the server's write did not fail with EPIPE"
	note_out "$T/ewrite.log"
fi

# ---- splice(2) from a kernel-RX socket ------------------------------------------------------

# The server echoes with splice, socket to pipe and back. At a record that is not data
# Linux 6.1 fails the splice with EINVAL and puts the record back (a read gets EIO):
# Atlas must make it what a read gets (3eda4fa: EINVAL at close_notify), and the end
# must stay the end (a second splice returns 0 at once).
for ver in 1.2 1.3; do
	mark splice
	snap
	client spl --port $SPLICE --tls $ver --echo 262144 --close-notify
	if echoed_ok spl 262144; then
		pass "TLS $ver splice echo: 256 KiB back intact, close_notify both ways"
	else
		fail "TLS $ver splice echo: not intact, or no close_notify back (tlsclient exit $RC)"
		note_out "$T/spl.out"
	fi
	if wait_since splice 'echo: end of file after 262144 bytes; splice again: 0$' 10; then
		pass "TLS $ver: the client's close_notify is end of file to the server's splice, and stays so"
	else
		fail "TLS $ver: the server's splice did not read the client's close_notify as end of file"
		note_out "$T/splice.log"
	fi
	is "TLS $ver splice echo: TlsTxSw and TlsRxSw rose by exactly 1 each" "$(delta TlsTxSw) $(delta TlsRxSw)" "1 1"
	mark splice
	client spla --port $SPLICE --tls $ver --echo 1000 --alert
	if wait_since splice 'echo: read failed after 2000 bytes: ECONNRESET' 10; then
		pass "TLS $ver: a client's fatal alert fails the server's splice with ECONNRESET"
	else
		fail "TLS $ver: a client's fatal alert did not fail the server's splice with ECONNRESET"
		note_out "$T/splice.log"
	fi
done

mark http
client kuget --port $HTTP --tls 1.3 --get /big.bin --keyupdate
if [ "$RC" = 0 ] && [ "$(field kuget get sha256)" = "$BIG_SHA" ] &&
	grep -q '^keyupdate: after=get status=-1 length=0 result=close_notify$' "$T/kuget.out"; then
	pass "TLS 1.3 keep-alive HTTP: the first response is intact; after a KeyUpdate the next request gets a clean close, no response"
else
	fail "TLS 1.3 keep-alive HTTP: KeyUpdate between two requests did not end in a clean close (tlsclient exit $RC)"
	note_out "$T/kuget.out"
fi
if wait_since http '^atlas: info: .*KeyUpdate' 10; then
	pass "TLS 1.3 keep-alive HTTP: Atlas logs the KeyUpdate"
else
	fail "TLS 1.3 keep-alive HTTP: no KeyUpdate line in the log"
	note_out "$T/http.log"
fi
client afterku --port $HTTP --get /big.bin
if [ "$RC" = 0 ] && [ "$(field afterku get sha256)" = "$BIG_SHA" ]; then
	pass "TLS 1.3 keep-alive HTTP: the sendfile server serves the next client after a KeyUpdate"
else
	fail "TLS 1.3 keep-alive HTTP: the next client is not served after a KeyUpdate (tlsclient exit $RC)"
	note_out "$T/afterku.out"
fi

# ---- a flipped ciphertext byte ------------------------------------------------------------

for v in 1.2:ECDHE-ECDSA-AES128-GCM-SHA256 1.3:TLS_AES_128_GCM_SHA256 1.3:TLS_CHACHA20_POLY1305_SHA256; do
	ver=${v%%:*} cipher=${v#*:}
	tag="TLS $ver $cipher"
	mark echo
	snap
	client tamper --port $ECHO --tls "$ver" --cipher "$cipher" --echo 1000 --tamper
	if [ "$RC" = 0 ] && grep -q '^tamper: flipped=1 echoed=0 ' "$T/tamper.out"; then
		pass "$tag: a flipped ciphertext byte: nothing comes back to the client ($(sed -n 's/^tamper: .*\(peer=.*\)/\1/p' "$T/tamper.out"))"
	else
		fail "$tag: a flipped ciphertext byte: the client got data back, or the flip did not happen (tlsclient exit $RC)"
		note_out "$T/tamper.out"
	fi
	if wait_since echo 'echo: read failed after 0 bytes: EBADMSG' 10; then
		pass "$tag: a flipped ciphertext byte: the server's read() fails with EBADMSG and returns no byte"
	else
		fail "$tag: a flipped ciphertext byte: the server's read() did not fail with EBADMSG before any byte"
		note_out "$T/echo.log"
	fi
	is "$tag: a flipped ciphertext byte: TlsDecryptError rose by 1" "$(delta TlsDecryptError)" 1
	next_ok "$tag: after a flipped ciphertext byte"
done

# ---- strace: the host's own system calls go to the kernel ------------------------------------

# fd_calls TRACE: the system calls made on the accepted socket, "name=count ..." for the
# whole connection and (after "|") for the part after Atlas logged the handshake done
# (its "atlas: info: fd N peer ..." line on fd 2), and the bytes sendfile() sent on it.
fd_calls() {
	awk '
	{ line = $0; sub(/^[0-9]+ +/, "", line) }
	fd == "" && line ~ /^accept4?\(/ && $NF ~ /^[0-9]+$/ { fd = $NF; next }
	fd == "" { next }
	index(line, "write(2, \"atlas: info: fd " fd " peer") == 1 { hs_done = n; next }
	{
		name = line; sub(/\(.*/, "", name)
		arg = line; sub(/^[a-z0-9_]+\(/, "", arg); sub(/[,)].*/, "", arg)
		if (name == "poll" || name == "ppoll") { if (index(line, "{fd=" fd ",") == 0) next }
		else if (arg != fd) next
		n++; names[n] = name
		if (name == "sendfile" && $NF ~ /^[0-9]+$/) bytes += $NF
	}
	END {
		for (i = 1; i <= n; i++) { all[names[i]]++; if (hs_done != "" && i > hs_done) after[names[i]]++ }
		for (k in all) s = s " " k "=" all[k]
		for (k in after) a = a " " k "=" after[k]
		print "fd " fd " handshake_done_at " hs_done " bytes " bytes + 0
		print "all" s
		print "after" a
	}' "$1"
}

# without NAMES LIST: "name=count" words of LIST whose name is not in NAMES, sorted.
without() { tr ' ' '\n' <<<"$2" | grep '=' | grep -Ev "^($1)=" | sort | tr '\n' ' '; }
count_of() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

for ver in 1.3 1.2; do
	for k in 1 4; do
		srv_start "st$ver-$k" $STRACED -- strace -f -qq -o "$T/st$ver-$k.trace" \
			"$BIN/sendfile_srv" --max-conns 1 $STRACED http "$WWW" || continue
		client "st$ver-$k" --port $STRACED --tls $ver --get /big.bin --requests $k
		[ "$RC" = 0 ] || { fail "TLS $ver strace: the GETs through the straced server failed"; note_out "$T/st$ver-$k.out"; }
		wait_for 10 eval "! kill -0 ${SRV_PID[st$ver-$k]}"
		srv_stop "st$ver-$k"
		fd_calls "$T/st$ver-$k.trace" >"$T/st$ver-$k.calls"
	done
	c1=$T/st$ver-1.calls c4=$T/st$ver-4.calls
	[ -s "$c1" ] && [ -s "$c4" ] || { fail "TLS $ver strace: no trace"; continue; }
	note "TLS $ver, 1 request, on the socket:  $(sed -n 2p "$c1")" \
		"TLS $ver, 4 requests, on the socket: $(sed -n 2p "$c4")" \
		"TLS $ver, 4 requests, after the handshake: $(sed -n 3p "$c4")"
	all4=$(sed -n 's/^all//p' "$c4")
	after1=$(sed -n 's/^after//p' "$c1") after4=$(sed -n 's/^after//p' "$c4")
	bytes4=$(awk 'NR == 1 { print $6 }' "$c4")
	if [ "$bytes4" = $((4 * BIG_LEN)) ] && [ "$(count_of sendfile "$after4")" -ge 4 ]; then
		pass "TLS $ver strace: the server's own sendfile() calls go to the TLS socket itself, all $bytes4 bytes of 4 responses"
	else
		fail "TLS $ver strace: the server's sendfile() on the TLS socket sent '$bytes4' bytes, not $((4 * BIG_LEN))"
	fi
	is "TLS $ver strace: one write() per response head on the socket, nothing added (4 requests)" \
		"$(count_of write "$all4")" 4
	is "TLS $ver strace: after the handshake, the non-data system calls on the socket are the same for 1 and 4 requests (nothing per request or per write)" \
		"$(without 'read|write|sendfile' "$after4")" "$(without 'read|write|sendfile' "$after1")"
	# The first read() finishes the handshake inside Atlas, which then reads the request
	# with recvmsg() instead of it; later reads are the host's own read(). At the close,
	# one getsockopt (SO_LINGER: an abortive close sends no close_notify) and a sendmsg.
	is "TLS $ver strace: after the handshake, besides read/write/sendfile, only the first read's recvmsg, at the close one getsockopt (SO_LINGER) and one sendmsg (close_notify), and close on the socket" \
		"$(without 'read|write|sendfile' "$after4")" "close=1 getsockopt=1 recvmsg=1 sendmsg=1 "
	is "TLS $ver strace: the host's own read() for requests 2 to 4" "$(count_of read "$after4")" 3
done

# ---- at the end ----------------------------------------------------------------------------

srv_stop http
srv_stop echo
if wait_for 5 eval '[ "$(tls_stat TlsCurrTxSw) $(tls_stat TlsCurrRxSw)" = "0 0" ]'; then
	pass "no kTLS socket is left open once the servers stopped (TlsCurrTxSw 0, TlsCurrRxSw 0)"
else
	fail "kTLS sockets left open: TlsCurrTxSw $(tls_stat TlsCurrTxSw), TlsCurrRxSw $(tls_stat TlsCurrRxSw)"
fi
note "tls_stat at the end: $(tr -s ' \n' '= ' </proc/net/tls_stat)"
inner_done
EOF

ktls_uml ktls -- "$IN"
finish
