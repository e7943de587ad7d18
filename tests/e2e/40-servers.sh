#!/usr/bin/env bash
# 40: real servers from Debian under Atlas on the host (the userspace path: the
# host kernel has no kTLS), each through the common check of
# tests/e2e/servers-lib.sh (small.txt and a 64 MiB file by sha256, keep-alive,
# 32 concurrent clients, wrk -t2 -c32 -d5s with zero errors, plain HTTP refused
# on the TLS port, a plaintext port of the same server untouched) and its
# weak-spot probes (a request larger than the server's first read, pipelining,
# a dripping handshake beside idle clients), then its Atlas log lines:
#   - python3 -m http.server (threaded, -p HTTP/1.1), on 127.0.0.1 and on ::1;
#   - nginx: sendfile on, epoll, master and 2 workers forked after listen, one
#     listen on the TLS port and one on a plaintext port;
#   - lighttpd -D: server.port the TLS port, a $SERVER["socket"] plaintext port.
# 41-servers.sh has node, busybox httpd, socat and python3 -m http.server --cgi;
# 45-servers-ktls.sh and 46-servers-ktls.sh run them all inside User-Mode Linux, on the kernel path.
# SV_ONLY="python nginx" runs only those (python python6 nginx lighttpd).
. "$(dirname "$0")/lib.sh"
. "$E2E_DIR/servers-lib.sh"

for prog in curl wrk /usr/sbin/nginx /usr/sbin/lighttpd; do
	command -v "$prog" >/dev/null || {
		fail "$SCENARIO: $prog missing (apt-get install ${prog##*/})"
		exit 1
	}
done
make_certs
sv_www "$T/www"

for s in ${SV_ONLY:-python python6 nginx lighttpd}; do
	case $s in
	python) sv_python 127.0.0.1 ;;
	python6) sv_python ::1 ;;
	nginx) sv_nginx ;;
	lighttpd) sv_lighttpd ;;
	*) fail "$SCENARIO: SV_ONLY: no server '$s' here" ;;
	esac
	note "$s done at $(awk -v s="$SCENARIO_START" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s"
done

finish
