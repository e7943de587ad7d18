#!/usr/bin/env bash
# 04: files through Atlas, checked by sha256: a small file, odd sizes around a
# TLS record, and 64 MiB of random data, on two data paths:
#   - python3 -m http.server, which copies files with write() (shutil.copyfileobj);
#   - tests/e2e/serve.py files, whose GET handler sends bodies with os.sendfile,
#     with an offset and from the file position, so Atlas's sendfile emulation
#     carries them (a plaintext sendfile would break every TLS record).
# Also keep-alive (several requests, one connection, one log line), uploads
# through the read path, and clients that hang up mid-download.
. "$(dirname "$0")/lib.sh"

make_certs
W=$T/www
mkdir -p "$W"
printf 'small file %s\n' "$(openssl rand -hex 20)" >"$W/small.txt"
: >"$W/empty.bin"
head -c 16384 /dev/urandom >"$W/record.bin"   # exactly one full TLS record
head -c 16385 /dev/urandom >"$W/record1.bin"  # one record and one byte
head -c 100003 /dev/urandom >"$W/odd.bin"
head -c $((64 * 1024 * 1024)) /dev/urandom >"$W/big.bin"
ln "$W/big.bin" "$W/big.pos" # served by sendfile from the file position
ln "$W/odd.bin" "$W/odd.pos"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$T/upload.bin"
declare -A SHA
for f in small.txt empty.bin record.bin record1.bin odd.bin big.bin big.pos odd.pos; do
	SHA[$f]=$(sha256_of "$W/$f")
done

# fetch_ok SERVER PORT FILE LABEL [CURL ARGS...]: the file arrives intact.
fetch_ok() {
	local name=$1 port=$2 f=$3 label=$4 t0 t1 got
	shift 4
	rm -f "$T/got"
	t0=$(now_ms)
	hcurl "$port" "/$f" -o "$T/got" "$@" 2>"$T/curl.err"
	t1=$(now_ms)
	got=$( [ -f "$T/got" ] && sha256_of "$T/got" || echo "no file")
	if [ "$got" = "${SHA[$f]}" ]; then
		pass "$label: $f ($(stat -c %s "$W/$f") bytes) arrives intact (sha256), $((t1 - t0)) ms"
	else
		fail "$label: $f ($(stat -c %s "$W/$f") bytes) arrives intact (sha256)"
		note "got $(stat -c %s "$T/got" 2>/dev/null || echo 0) bytes; curl: $(cat "$T/curl.err")"
		note_file "$(server_log "$name")" 8
	fi
}

# ---- write() path: python3 -m http.server ---------------------------------------------
PA=$(free_port)
if start_server copy "$PA" -- "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$PA" --log-level info -- \
	"$PY" -m http.server -p HTTP/1.1 -b 127.0.0.1 -d "$W" "$PA"; then
	for f in small.txt empty.bin record.bin record1.bin odd.bin big.bin; do
		fetch_ok copy "$PA" $f "write path (http.server)"
	done
	fetch_ok copy "$PA" big.bin "write path (http.server), TLS 1.2 AES-256-GCM" --tlsv1.2 --tls-max 1.2 \
		--ciphers ECDHE-ECDSA-AES256-GCM-SHA384
	fetch_ok copy "$PA" big.bin "write path (http.server), TLS 1.3 ChaCha20" --tlsv1.3 \
		--tls13-ciphers TLS_CHACHA20_POLY1305_SHA256
	small_records_ok "write path (http.server)" copy "$PA" /big.bin "${SHA[big.bin]}"

	# Keep-alive: three URLs, one curl, one connection.
	before=$(grep -c "port $PA: TLSv1" "$(server_log copy)")
	out=$(curl -sS --max-time 30 --cacert "$CA" --resolve "localhost:$PA:127.0.0.1" \
		-w '%{num_connects}\n' -o "$T/k1" -o "$T/k2" -o "$T/k3" \
		"https://localhost:$PA/small.txt" "https://localhost:$PA/odd.bin" "https://localhost:$PA/small.txt" \
		-v 2>"$T/curl.err")
	is_eq "keep-alive (write path): curl opens one connection for three requests (num_connects 1 0 0)" \
		"$(echo $out)" "1 0 0"
	check "keep-alive (write path): curl says it re-used the connection" grep -q 'Re-using existing connection' "$T/curl.err"
	is_eq "keep-alive (write path): the three bodies are intact" \
		"$(sha256_of "$T/k1") $(sha256_of "$T/k2") $(sha256_of "$T/k3")" \
		"${SHA[small.txt]} ${SHA[odd.bin]} ${SHA[small.txt]}"
	after=$(grep -c "port $PA: TLSv1" "$(server_log copy)")
	is_eq "keep-alive (write path): the server logged one TLS connection for the three requests" \
		"$((after - before))" 1

	# A client that hangs up mid-download: the server survives and serves the next one.
	hcurl "$PA" /big.bin 2>/dev/null | head -c 1000000 >/dev/null
	fetch_ok copy "$PA" small.txt "write path: after a client hung up mid-download, the next request"
	check "write path: the server is still running after the hang-up" server_alive copy
	stop_server copy
else
	fail "write path: python3 -m http.server starts under Atlas"
fi

# ---- sendfile path: serve.py files --------------------------------------------------------
PB=$(free_port)
if start_server sendfile "$PB" -- "$ATLAS" --cert "$RSA_CERT" --key "$RSA_KEY" --ports "$PB" --log-level info -- \
	"$PY" "$SERVE" files --port "$PB" --dir "$W"; then
	LOGB=$(server_log sendfile)
	for f in small.txt record.bin record1.bin odd.bin big.bin; do
		fetch_ok sendfile "$PB" $f "sendfile with offset"
	done
	check "sendfile with offset: the server really used sendfile for all 64 MiB" \
		grep -q "sendfile sent 67108864 of 67108864 bytes of /big.bin (offset)" "$LOGB"
	for f in odd.pos big.pos; do
		fetch_ok sendfile "$PB" $f "sendfile from the file position"
	done
	check "sendfile from the file position: the server really used sendfile for all 64 MiB" \
		grep -q "sendfile sent 67108864 of 67108864 bytes of /big.pos (file position)" "$LOGB"
	is_no_match "sendfile from the file position: the file position ends at the end of the file" \
		"$(cat "$LOGB")" 'left the file position'
	fetch_ok sendfile "$PB" big.bin "sendfile with offset, TLS 1.2" --tlsv1.2 --tls-max 1.2
	small_records_ok "sendfile with offset" sendfile "$PB" /big.bin "${SHA[big.bin]}"

	out=$(curl -sS --max-time 30 --cacert "$CA" --resolve "localhost:$PB:127.0.0.1" \
		-w '%{num_connects}\n' -o "$T/k1" -o "$T/k2" -o "$T/k3" \
		"https://localhost:$PB/odd.bin" "https://localhost:$PB/big.bin" "https://localhost:$PB/small.txt" 2>&1)
	is_eq "keep-alive (sendfile path): one connection for three requests (num_connects 1 0 0)" "$(echo $out)" "1 0 0"
	is_eq "keep-alive (sendfile path): the three bodies are intact" \
		"$(sha256_of "$T/k1") $(sha256_of "$T/k2") $(sha256_of "$T/k3")" \
		"${SHA[odd.bin]} ${SHA[big.bin]} ${SHA[small.txt]}"

	# Uploads: the read path, 16 MiB, hashed by the server.
	res=$(hcurl "$PB" /upload --data-binary @"$T/upload.bin" -H 'Content-Type: application/octet-stream' 2>&1)
	is_eq "upload: 16 MiB POSTed through TLS reach the server intact (length and sha256)" \
		"$res" "$((16 * 1024 * 1024)) $(sha256_of "$T/upload.bin")"
	res=$(hcurl "$PB" /upload --data-binary @"$T/upload.bin" -H 'Content-Type: application/octet-stream' \
		--tlsv1.2 --tls-max 1.2 2>&1)
	is_eq "upload: the same over TLS 1.2" "$res" "$((16 * 1024 * 1024)) $(sha256_of "$T/upload.bin")"

	hcurl "$PB" /big.bin 2>/dev/null | head -c 1000000 >/dev/null
	fetch_ok sendfile "$PB" small.txt "sendfile path: after a client hung up mid-download, the next request"
	check "sendfile path: the server is still running after the hang-up" server_alive sendfile
	is_no_match "sendfile path: no atlas error in the log" "$(cat "$LOGB")" '^atlas: error'
	stop_server sendfile
else
	fail "sendfile path: serve.py starts under Atlas"
fi

finish
