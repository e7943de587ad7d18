#!/usr/bin/env bash
# 32: kernel TLS with real servers, and with kTLS turned off, inside User-Mode
# Linux (one boot), under ./atlas-preload.sh --log-level info:
#   - nginx (sendfile on; master and one worker) serves a 1 MiB file intact over
#     TLS 1.2 and 1.3 with path kernel (TX and RX), its worker's own sendfile(2)
#     goes to the TLS socket (strace), and a KeyUpdate between two keep-alive
#     requests ends the connection cleanly;
#   - python3 -m http.server, fetched with curl: intact, path kernel (TX and RX);
#   - --ktls off: the same bytes through OpenSSL in userspace, path userspace
#     (ATLAS_KTLS=off), and /proc/net/tls_stat does not move;
#   - a connection handed to another process (tests/e2e/progs/fdsrv.c handoff,
#     TLS 1.3 and 1.2): the acceptor passes the socket to a worker over
#     SCM_RIGHTS and closes its copy first; the worker's answer arrives, then its
#     close_notify (an acceptor that still owned the session would have ended it
#     before the answer), Atlas logs the worker's adoption, and TlsCurrTxSw and
#     TlsCurrRxSw are back where they were once both have exited;
#   - 28-shutdown-race's rounds (tests/e2e/progs/shutrace.c): shutdown(SHUT_WR)
#     racing a corked writer and a poller, on the kernel path;
#   - shutdown(SHUT_WR) racing the handshake that puts the connection on the
#     kernel path (tests/e2e/progs/hsshut.c), TLS 1.3 and 1.2;
#   - a close (tests/e2e/closer.py, as in 28): with the socket full, close_notify
#     still follows the bytes; an abortive one (SO_LINGER 0 s) sends none, and a
#     shutdown(SHUT_WR) on such a socket sends the FIN without it.
#   - a close or shutdown(SHUT_WR) from one thread while another is in a blocking
#     write or sendfile to a client that does not read yet (tests/e2e/progs/txrace.c):
#     the close returns at once and close_notify follows every byte; the shutdown
#     returns after a second, and the FIN alone ends the cut-short stream.
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/ktls-lib.sh"

ktls_setup
for prog in /usr/sbin/nginx curl; do
	command -v "$prog" >/dev/null || {
		fail "$SCENARIO: $prog missing (apt-get install ${prog##*/})"
		exit 1
	}
done
head -c 8388608 /dev/urandom >"$T/eight.bin" # txrace's sendfile
IN=$T/inner-32.sh
ktls_inner "$IN"
cat >>"$IN" <<'EOF'
NGINX=8446 PYTHON=8447 OFF=8448 PLAIN=8449 HANDOFF13=8450 HANDOFF12=8451 RACE=8452 RACE_ROUNDS=100
HSSHUT=8453 HSSHUT_N=150 CLOSEFULL=8454 CLOSEABORT=8455 CLOSESHUT=8456 CLOSESTALL=8457 TXRACE=8458

# get_ok LABEL OUT: tlsclient's GET of /big.bin was intact and closed by close_notify.
get_ok() {
	if [ "$RC" = 0 ] && [ "$(field "$2" get sha256)" = "$BIG_SHA" ] &&
		[ "$(field "$2" get length)" = "$BIG_LEN" ] && grep -qx 'end: close_notify' "$T/$2.out"; then
		pass "$1: GET /big.bin (1 MiB) arrives intact (sha256), then the server's close_notify"
	else
		fail "$1: GET /big.bin did not arrive intact (tlsclient exit $RC)"
		note_out "$T/$2.out"
	fi
}

# line_ok LABEL SERVER ERE: the connection's log line matches.
line_ok() {
	local line
	line=$(conn_line "$2")
	if grep -Eq -- "$3" <<<"$line"; then
		pass "$1: Atlas logs '${line#*: TLSv}'"
	else
		fail "$1: the connection's log line does not match /$3/"
		note "got: ${line:-nothing}"
		note_out "$T/$2.log"
	fi
}

# ---- nginx ----------------------------------------------------------------------------

N=$T/nginx
mkdir -p "$N"
cat >"$N/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 1;
pid $N/nginx.pid;
error_log stderr info;
events { worker_connections 64; }
http {
	access_log off;
	sendfile on;
	keepalive_timeout 10s;
	client_body_temp_path $N/body;
	proxy_temp_path $N/proxy;
	fastcgi_temp_path $N/fastcgi;
	uwsgi_temp_path $N/uwsgi;
	scgi_temp_path $N/scgi;
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:$NGINX;
		listen 127.0.0.1:$PLAIN;
		root $WWW;
	}
}
CONF
if srv_start nginx $NGINX -- strace -f -qq -e trace=accept,accept4,sendfile,writev -o "$T/nginx.trace" \
	/usr/sbin/nginx -p "$N" -c "$N/nginx.conf" -e stderr; then
	for v in 1.3:TLS_AES_256_GCM_SHA384 1.2:ECDHE-ECDSA-AES128-GCM-SHA256; do
		ver=${v%%:*} cipher=${v#*:}
		mark nginx
		snap
		client ngx --port $NGINX --tls "$ver" --cipher "$cipher" --get /big.bin
		get_ok "nginx TLS $ver $cipher" ngx
		line_ok "nginx TLS $ver $cipher" nginx ": TLSv$ver $cipher, handshake [0-9.]+ ms, path kernel \\(TX and RX\\)\$"
		is "nginx TLS $ver $cipher: TlsTxSw and TlsRxSw rose by exactly 1 each" \
			"$(delta TlsTxSw) $(delta TlsRxSw)" "1 1"
	done
	# The worker's sendfile() calls on the sockets it accepted: the bytes it sent itself.
	sent=$(awk '
		{ line = $0; sub(/^[0-9]+ +/, "", line) }
		line ~ /^accept4?\(/ && $NF ~ /^[0-9]+$/ { fds[$NF] = 1; next }
		line ~ /^sendfile\(/ { fd = line; sub(/^sendfile\(/, "", fd); sub(/,.*/, "", fd)
			if ((fd in fds) && $NF ~ /^[0-9]+$/) bytes += $NF }
		END { print bytes + 0 }' "$T/nginx.trace")
	if [ "$sent" -ge $((2 * BIG_LEN)) ]; then
		pass "nginx: strace shows the worker's own sendfile() on the TLS sockets ($sent bytes for 2 responses)"
	else
		fail "nginx: strace shows $sent bytes of sendfile() on the TLS sockets, not $((2 * BIG_LEN))"
		note_out "$T/nginx.trace"
	fi

	mark nginx
	client ngxku --port $NGINX --tls 1.3 --get /big.bin --keyupdate
	if [ "$RC" = 0 ] && [ "$(field ngxku get sha256)" = "$BIG_SHA" ] &&
		grep -q '^keyupdate: after=get status=-1 length=0 result=close_notify$' "$T/ngxku.out"; then
		pass "nginx TLS 1.3 keep-alive: after a KeyUpdate the next request gets a clean close (close_notify), no response"
	else
		fail "nginx TLS 1.3 keep-alive: a KeyUpdate between two requests did not end in a clean close (tlsclient exit $RC)"
		note_out "$T/ngxku.out"
	fi
	if wait_since nginx '^atlas: info: .*KeyUpdate' 10; then
		pass "nginx TLS 1.3 keep-alive: Atlas logs the KeyUpdate"
	else
		fail "nginx TLS 1.3 keep-alive: no KeyUpdate line in the log"
		note_out "$T/nginx.log"
	fi
	client ngxnext --port $NGINX --get /big.bin
	if [ "$RC" = 0 ] && [ "$(field ngxnext get sha256)" = "$BIG_SHA" ]; then
		pass "nginx: the next client is served after a KeyUpdate"
	else
		fail "nginx: the next client is not served after a KeyUpdate (tlsclient exit $RC)"
		note_out "$T/ngxnext.out"
	fi
	# A keep-alive connection that the client ends: nginx reads end of file and logs
	# "client ... closed keepalive connection" with errno. The baseline: the same on
	# nginx's plaintext port (no Atlas there), which a curl ends with a TCP close.
	mark nginx
	curl -sS --max-time 30 -o /dev/null "http://127.0.0.1:$PLAIN/big.bin" >"$T/plain.err" 2>&1
	wait_since nginx 'closed keepalive connection' 10
	plain=$(since nginx | grep -m 1 'closed keepalive connection' | sed 's/^.*\*[0-9]* //')
	note "nginx's plaintext port (no TLS), a curl's TCP close: '${plain:-nothing logged}'"
	for how in no-close-notify close-notify; do
		mark nginx
		client ngxclose --port $NGINX --tls 1.3 --get /big.bin --requests 2 --$how
		if [ "$RC" = 0 ] && [ "$(field ngxclose get sha256)" = "$BIG_SHA" ]; then
			pass "nginx TLS 1.3 keep-alive, 2 requests, then the client's --$how: intact ($(sed -n 's/^close: //p' "$T/ngxclose.out"))"
		else
			fail "nginx TLS 1.3 keep-alive, 2 requests, then the client's --$how failed (tlsclient exit $RC)"
			note_out "$T/ngxclose.out"
		fi
		wait_since nginx 'closed keepalive connection' 10
		got=$(since nginx | grep -m 1 'closed keepalive connection' | sed 's/^.*\*[0-9]* //')
		if [ -n "$got" ] && ! grep -q 'Input/output error' <<<"$got"; then
			pass "nginx TLS 1.3: the client's --$how reads as a plain end of file in nginx ('$got')"
		else
			fail "nginx TLS 1.3: the client's --$how does not read as a plain end of file in nginx: '${got:-nothing logged}' (plaintext baseline: '${plain:-nothing logged}')"
		fi
	done

	bad=$(grep -E '^atlas: (error|warn)' "$T/nginx.log")
	[ -z "$bad" ] && pass "nginx: Atlas logged no error or warning" || fail "nginx: Atlas logged: $bad"
	srv_stop nginx
fi

# ---- python3 http.server, curl ----------------------------------------------------------

if srv_start python $PYTHON -- /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$WWW" $PYTHON; then
	mark python
	snap
	curl -sS --max-time 30 --cacert "$CA" --resolve "localhost:$PYTHON:127.0.0.1" \
		-o "$T/curl.body" "https://localhost:$PYTHON/big.bin" >"$T/curl.err" 2>&1
	RC=$?
	if [ "$RC" = 0 ] && [ "$(sha256sum <"$T/curl.body" | cut -d' ' -f1)" = "$BIG_SHA" ]; then
		pass "python3 http.server: curl fetches /big.bin (1 MiB) intact"
	else
		fail "python3 http.server: curl did not fetch /big.bin intact (curl exit $RC)"
		note_out "$T/curl.err"
		note_out "$T/python.log"
	fi
	wait_since python 'TLSv1\.' 10
	line_ok "python3 http.server" python ": TLSv1\\.3 [A-Z0-9_]+, handshake [0-9.]+ ms, path kernel \\(TX and RX\\)\$"
	is "python3 http.server: TlsTxSw and TlsRxSw rose by exactly 1 each" "$(delta TlsTxSw) $(delta TlsRxSw)" "1 1"
	srv_stop python
fi

# ---- a close: with the socket full, and abortive (tests/e2e/closer.py) -----------------

# The server writes until the socket is full (EAGAIN, and still after 0.2 s; the client
# waits 2 s before reading) and closes: close_notify must follow the bytes through kTLS
# once there is room (linger.c; 3eda4fa dropped it: the client saw a FIN without it),
# within 3 s: a client that reads nothing for 5 s gets the FIN alone. An abortive close must reach the client as a reset or a bare FIN: a close_notify
# before the reset would make the bytes before it look complete.
for mode in full full-stall abort abort-shut; do
	case $mode in
	full) port=$CLOSEFULL ;;
	full-stall) port=$CLOSESTALL ;;
	abort) port=$CLOSEABORT ;;
	*) port=$CLOSESHUT ;;
	esac
	# Under strace: python sends with sendto(2); Atlas's records that are not data go with
	# sendmsg(2) (the session tickets before the response, close_notify after it).
	srv_start close$mode $port -- strace -f -qq -e trace=sendto,sendmsg -o "$T/close$mode.trace" \
		/usr/bin/python3 "$ROOT/tests/e2e/closer.py" serve $port $mode || continue
	mark close$mode
	snap
	got=$(timeout 60 /usr/bin/python3 "$ROOT/tests/e2e/closer.py" fetch $port "$CA" $mode 2>&1)
	if [ $mode = full ]; then
		wait_for 10 grep -q '^closer: wrote ' "$T/close$mode.log"
		is "close with the socket full: every byte, then close_notify through kTLS" "$got" \
			"got $(sed -n 's/^closer: wrote //p' "$T/close$mode.log"), close_notify"
	elif [ $mode = full-stall ]; then
		# A client that reads nothing for 5 s: Atlas keeps the closed socket 3 s for
		# close_notify alone (as nginx's SSL_shutdown waits), then lets it go.
		wait_for 10 grep -q '^closer: wrote ' "$T/close$mode.log"
		is "close with the socket full, the client silent 5 s: every byte, then the FIN alone (close_notify waited 3 s)" \
			"$got" "got $(sed -n 's/^closer: wrote //p' "$T/close$mode.log"), eof"
	elif [ $mode = abort-shut ]; then
		# The host's shutdown(SHUT_WR) on its own SO_LINGER 0 socket: its FIN, at once
		# (78936e1 sent nothing, and both ends waited for each other).
		is "shutdown(SHUT_WR) on a socket set to close abortively: the bytes, then the FIN" \
			"$got" "got 1000, eof"
	elif grep -Eq ', (reset|eof)$' <<<"$got"; then
		pass "an abortive close reaches the client as a reset or a bare FIN ($got)"
	else
		fail "an abortive close reached the client as: $got"
	fi
	# On loopback the reset usually overtakes an unread close_notify; the trace tells.
	if [ "${mode#abort}" != "$mode" ]; then
		sent=$(awk '/sendto\(/ { n = 0 } /sendmsg\(/ { n++ } END { print n + 0 }' "$T/close$mode.trace")
		is "$mode: Atlas sends no close_notify (no sendmsg after the response)" "$sent" 0
	fi
	wait_since close$mode 'TLSv1\.' 10
	line_ok "closer $mode" close$mode ": TLSv1\\.3 [A-Z0-9_]+, handshake [0-9.]+ ms, path kernel \\(TX and RX\\)\$"
	bad=$(grep -E '^atlas: (fatal|error|warn)' "$T/close$mode.log")
	[ -z "$bad" ] && pass "closer $mode: Atlas logged no error or warning" || fail "closer $mode: Atlas logged: $bad"
	srv_stop close$mode
done

# ---- a close or a shutdown while another thread's send waits (tests/e2e/progs/txrace.c) ----

# kTLS lets one sender in at a time and keeps a blocked one in until the client reads;
# a sendfile lets others in between its pages. close_notify must keep out of the host's
# sends in flight, on whichever fd of the connection they came (dup-: 7a903ad counted
# per fd number, and a close of the dup then of the fd took 1.1 s, or ended sendfile's
# stream early with a clean close_notify). At b8a31dd the close waited until the client
# read (858 ms after it), and sendfile's stream ended at 196608 bytes with a clean
# close_notify. The shutdowns
# (with a slow reader) passed there too: the socket's room never showed while the send
# waited, so close_notify was not tried; they check that the wait for the send in flight
# keeps the bound of a second, and that the cut-short stream ends with the FIN alone.
if srv_start txrace $TXRACE -- "$BIN/txrace" $TXRACE "$T/eight.bin"; then
	for mode in write-close sendfile-close dup-write-close dup-sendfile-close write-cancel \
		write-shut sendfile-shut; do
		got=$(timeout 60 /usr/bin/python3 "$ROOT/tests/e2e/closer.py" fetch $TXRACE "$CA" $mode 2>&1)
		wait_for 10 grep -q "^txrace: $mode took" "$T/txrace.log"
		took=$(sed -n "s/^txrace: $mode took \([0-9]*\) ms.*/\1/p" "$T/txrace.log")
		if [ $mode = write-cancel ]; then
			# The cancelled write's count goes with its thread (7a903ad kept it for ever,
			# and every later connection on the fd's number lost close_notify).
			if grep -Eq '^got [0-9]+, close_notify$' <<<"$got" && [ "${took:-99999}" -lt 200 ]; then
				pass "txrace write-cancel: after the writer's cancellation the close took $took ms and sent close_notify ($got)"
			else
				fail "txrace write-cancel: the close took ${took:-?} ms, the client got: $got"
			fi
		elif [ "${mode%-shut}" = "$mode" ]; then
			is "txrace $mode: all 8 MiB, then close_notify" "$got" "got 8388608, close_notify"
			if [ "${took:-99999}" -lt 200 ]; then
				pass "txrace $mode: the close returned in $took ms, the send in flight"
			else
				fail "txrace $mode: the close took ${took:-?} ms (the client read after 700 ms)"
			fi
		else
			n=$(sed -n 's/^got \([0-9]*\), eof$/\1/p' <<<"$got")
			if [ -n "$n" ] && [ "$n" -lt 8388608 ]; then
				pass "txrace $mode: the stream cut short by the shutdown ends with the FIN alone ($got)"
			else
				fail "txrace $mode: the client got: $got (expected fewer than 8 MiB, then a FIN without close_notify)"
			fi
			if [ "${took:-0}" -ge 900 ] && [ "$took" -lt 1500 ]; then
				pass "txrace $mode: the shutdown returned after $took ms (up to a second for the send to end)"
			else
				fail "txrace $mode: the shutdown took ${took:-?} ms (expected about 1000)"
			fi
		fi
	done
	bad=$(grep -E '^atlas: (fatal|error|warn)' "$T/txrace.log")
	[ -z "$bad" ] && pass "txrace: Atlas logged no error or warning" || fail "txrace: Atlas logged: $bad"
	srv_stop txrace
fi

# ---- --ktls off ------------------------------------------------------------------------------

if srv_start off $OFF --ktls off -- "$BIN/sendfile_srv" $OFF http "$WWW"; then
	if grep -q "listening with TLS on port $OFF; ATLAS_KTLS=off; path userspace (ATLAS_KTLS=off)" "$T/off.log"; then
		pass "--ktls off: the listener's log line says ATLAS_KTLS=off, path userspace"
	else
		fail "--ktls off: the listener's log line does not say ATLAS_KTLS=off, path userspace"
		note_out "$T/off.log"
	fi
	for v in 1.3:TLS_CHACHA20_POLY1305_SHA256 1.2:ECDHE-ECDSA-AES256-GCM-SHA384; do
		ver=${v%%:*} cipher=${v#*:}
		mark off
		snap
		client off --port $OFF --tls "$ver" --cipher "$cipher" --get /big.bin
		get_ok "--ktls off TLS $ver $cipher" off
		line_ok "--ktls off TLS $ver $cipher" off ": TLSv$ver $cipher, handshake [0-9.]+ ms, path userspace \\(ATLAS_KTLS=off\\)\$"
		is "--ktls off TLS $ver $cipher: TlsTxSw, TlsRxSw, TlsCurrTxSw, TlsCurrRxSw do not move" \
			"$(delta TlsTxSw) $(delta TlsRxSw) $(delta TlsCurrTxSw) $(delta TlsCurrRxSw)" "0 0 0 0"
	done
	srv_stop off
fi

# ---- a connection handed to a worker process over SCM_RIGHTS ---------------------------------

# fdsrv handoff serves one connection: the acceptor reads the request (the handshake,
# keys into the kernel), passes the socket to a worker forked before accept, and closes
# its own copy before the worker answers. The answer has a Content-Length, so the
# client tells the worker's close_notify after it from an acceptor's before it.
HANDOFF_BODY='handoff: served by the worker'
HANDOFF_SHA=$(printf '%s\n' "$HANDOFF_BODY" | sha256sum | cut -d' ' -f1)
for v in 1.3:TLS_AES_256_GCM_SHA384:$HANDOFF13 1.2:ECDHE-ECDSA-AES128-GCM-SHA256:$HANDOFF12; do
	ver=${v%%:*} cipher=${v#*:} port=${v##*:}
	cipher=${cipher%:*} name=handoff${ver/./} tag="handoff TLS $ver"
	snap
	srv_start "$name" "$port" -- "$BIN/fdsrv" "$port" handoff || continue
	client "$name" --port "$port" --tls "$ver" --cipher "$cipher" --get /
	if [ "$RC" = 0 ] && [ "$(field "$name" get status)" = 200 ] &&
		[ "$(field "$name" get sha256)" = "$HANDOFF_SHA" ] && grep -qx 'end: close_notify' "$T/$name.out"; then
		pass "$tag: the worker's answer arrives ('$HANDOFF_BODY'), then the worker's close_notify"
	else
		fail "$tag: not the worker's answer, then its close_notify (tlsclient exit $RC)"
		note_out "$T/$name.out"
		note_out "$T/$name.log"
	fi
	# The acceptor exits with its worker's status, once the worker has closed the fd.
	if wait_for 10 eval "! srv_alive $name"; then
		wait "${SRV_PID[$name]}"
		status=$?
		SRV_PID[$name]=
	else
		status="still running after 10 s"
		srv_stop "$name"
	fi
	is "$tag: the acceptor and its worker exit 0" "$status" 0
	line_ok "$tag" "$name" ": TLSv$ver $cipher, handshake [0-9.]+ ms, path kernel \\(TX and RX\\)\$"
	got=$(since "$name" | grep -E '^atlas: info: fd [0-9]+ peer .*: received over SCM_RIGHTS, path kernel \(TX and RX\)$')
	peer=$(conn_line "$name" | grep -o ' peer [^ ]*')
	if [ -n "$got" ] && [ -n "$peer" ] && [ "$(printf '%s\n' "$got" | grep -o ' peer [^ ]*')" = "$peer" ]; then
		pass "$tag: Atlas logs that the worker took the connection: '${got#atlas: info: }'"
	else
		fail "$tag: no log line of the worker receiving that connection (${peer# }) over SCM_RIGHTS"
		note_out "$T/$name.log"
	fi
	is "$tag: TlsTxSw and TlsRxSw rose by 1; TlsCurrTxSw and TlsCurrRxSw are back where they were" \
		"$(delta TlsTxSw) $(delta TlsRxSw) $(delta TlsCurrTxSw) $(delta TlsCurrRxSw)" "1 1 0 0"
	bad=$(grep -E '^atlas: (error|warn)' "$T/$name.log")
	[ -z "$bad" ] && pass "$tag: Atlas logged no error or warning" || fail "$tag: Atlas logged: $bad"
done

# 28-shutdown-race's rounds on the kernel path: shutdown(SHUT_WR) in one thread while
# another writes (its TCP_CORK goes to the kernel) and a third polls. Every byte a write
# counted must arrive, then close_notify (Atlas's, through kTLS) and the FIN; no write
# may succeed after shutdown() returned; with the client not reading, the shutdown must
# release a waiting writer within 2 s. The server's stderr says what it saw go wrong.
if srv_start race $RACE --ktls require -- "$BIN/shutrace" $RACE; then
	snap
	out=$(timeout 600 /usr/bin/python3 "$ROOT/tests/e2e/shutrace.py" $RACE "$CA" $RACE_ROUNDS 2>&1)
	is "shutdown racing writes, kernel path: every byte counted, then close_notify and the FIN" \
		"$(head -n 1 <<<"$out")" "$RACE_ROUNDS rounds: every byte, then the end of the stream"
	[ "$(head -n 1 <<<"$out")" = "$RACE_ROUNDS rounds: every byte, then the end of the stream" ] ||
		note "$out"
	is "shutdown racing writes: every round on kernel TX (TlsTxSw rose by $RACE_ROUNDS)" \
		"$(delta TlsTxSw)" "$RACE_ROUNDS"
	# The client reads nothing for 3 s: the shutdown must release the waiting writer
	# within 2 s. kTLS lets one sender in at a time: a close_notify sent then would wait
	# behind the writer, which only the real shutdown's FIN releases, so the end may come
	# without close_notify here (on the userspace path it may not: 28-shutdown-race).
	out=$(timeout 600 /usr/bin/python3 "$ROOT/tests/e2e/shutrace.py" $RACE "$CA" 3 1 --stall-cut-ok 2>&1)
	is "shutdown racing writes, the client stalled: right bytes, then the end" \
		"$(head -n 1 <<<"$out")" "3 rounds: every byte, then the end of the stream"
	bad=$(grep -E '^(shutrace: |atlas: (error|warn))' "$T/race.log")
	[ -z "$bad" ] && pass "shutdown racing writes: the server saw nothing wrong, Atlas logged no error or warning" ||
		fail "shutdown racing writes: $(head -n 5 <<<"$bad")"
	srv_alive race && pass "shutdown racing writes: the server is still running" ||
		fail "shutdown racing writes: the server is still running"
fi

# shutdown(SHUT_WR) in one thread while another's read() runs the handshake, 0 to 8 ms
# after accept(): before, during, as and after the handshake puts the connection on the
# kernel path. Each client sees an end (close_notify; the FIN alone, which a client
# in its handshake sees as EOF or a reset, when the shutdown came first), never data
# and never a wait; the server serves them all and lives (3b49141 died: a shutdown
# taken on the userspace path went on with OpenSSL's state after the handshake had
# freed it for the kernel path).
for v in 1.3 1.2; do
	tag="shutdown racing the handshake, TLS $v"
	srv_start hsshut$v $HSSHUT --ktls require -- "$BIN/hsshut" $HSSHUT $HSSHUT_N || continue
	snap
	out=$(timeout 300 /usr/bin/python3 - $HSSHUT "$CA" $HSSHUT_N $v <<'PYEOF' 2>&1
import collections, socket, ssl, sys
port, ca, n, v = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
# Debian's python 3.11 sets this by default: a FIN without close_notify would read as b"".
ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
if v == "1.2":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ends = collections.Counter()
for i in range(n):
    # Closed before the next: the server's reader waits for this one's end.
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        with ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as s:
            ends["close_notify" if s.recv(100) == b"" else "data"] += 1
    except ssl.SSLZeroReturnError:
        ends["close_notify"] += 1
    except (ssl.SSLEOFError, ConnectionResetError):
        ends["fin"] += 1
    except (socket.timeout, TimeoutError):
        ends["a wait"] += 1
    except ssl.SSLError as e:
        # A FIN in the handshake: OpenSSL says "unexpected eof while reading" there too.
        ends["fin" if "UNEXPECTED_EOF" in str(e.reason).upper() else f"SSLError {e.reason}"] += 1
    except OSError as e:
        ends[type(e).__name__] += 1
    raw.close()
bad = {k: c for k, c in ends.items() if k not in ("close_notify", "fin")}
print(f"{n} connections: {'each ended' if not bad else bad}; close_notify {ends['close_notify']}")
PYEOF
	)
	is "$tag: each client sees an end, not data or a wait" "${out%%;*}" "$HSSHUT_N connections: each ended"
	is_n=${out##*close_notify }
	[ "${is_n:-0}" -gt 0 ] 2>/dev/null && pass "$tag: $is_n of them got close_notify (TlsTxSw rose by $(delta TlsTxSw))" ||
		fail "$tag: no close_notify at all: $out"
	wait_for 20 grep -q "^hsshut: $HSSHUT_N connections" "$T/hsshut$v.log" &&
		pass "$tag: the server served all $HSSHUT_N without dying" ||
		{ fail "$tag: the server did not serve all $HSSHUT_N"; note_out "$T/hsshut$v.log"; }
	bad=$(grep -E '^atlas: (fatal|error|warn)' "$T/hsshut$v.log")
	[ -z "$bad" ] && pass "$tag: Atlas logged no error or warning" || fail "$tag: Atlas logged: $(head -n 5 <<<"$bad")"
	srv_stop hsshut$v
done

inner_done
EOF

ktls_uml apps -- "$IN"
finish
