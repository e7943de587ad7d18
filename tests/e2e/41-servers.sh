#!/usr/bin/env bash
# 41: more real servers under Atlas on the host (the userspace path), through
# the same checks as 40-servers.sh (tests/e2e/servers-lib.sh):
#   - node's http module (tests/e2e/progs/files-server.js: fs.createReadStream,
#     keep-alive), the TLS port and a plaintext port in one process;
#   - busybox httpd -f: fork per connection, one port per process (a second
#     instance serves the plaintext port); it has no keep-alive;
#   - socat as a generic TCP service: an echo (EXEC:/bin/cat, fork per
#     connection), checked with openssl s_client, large payloads and 32 clients
#     at once, and a second socat on a plaintext port;
#   - python3 -m http.server --cgi: the CGI script cannot have the connection on
#     this path (TLS state cannot follow exec): a clear log line, and the client
#     gets an error, never the script's output in plaintext.
# SV_ONLY="node socat" runs only those (node busybox socat cgi).
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/servers-lib.sh"

for prog in curl wrk /usr/bin/node busybox socat; do
	command -v "$prog" >/dev/null || {
		fail "$SCENARIO: $prog missing (apt-get install ${prog##*/})"
		exit 1
	}
done
make_certs
sv_www "$T/www"

for s in ${SV_ONLY:-node busybox socat cgi}; do
	case $s in
	node) sv_node ;;
	busybox) sv_busybox ;;
	socat) sv_socat ;;
	cgi) sv_python_cgi refused ;;
	*) fail "$SCENARIO: SV_ONLY: no server '$s' here" ;;
	esac
	note "$s done at $(awk -v s="$SCENARIO_START" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s"
done

finish
