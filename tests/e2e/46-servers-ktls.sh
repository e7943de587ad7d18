#!/usr/bin/env bash
# 46: the real servers on the kernel path inside User-Mode Linux, second half:
# node, busybox httpd, socat, python3 http.server --cgi. See servers-ktls.sh.
SV_UML_SERVERS="node busybox socat cgi"
. "$(dirname "$0")/servers-ktls.sh"
