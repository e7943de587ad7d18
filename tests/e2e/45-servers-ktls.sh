#!/usr/bin/env bash
# 45: the real servers on the kernel path inside User-Mode Linux, first half:
# python3 http.server (127.0.0.1 and ::1), nginx, lighttpd. See servers-ktls.sh.
SV_UML_SERVERS="python python6 nginx lighttpd"
. "$(dirname "$0")/servers-ktls.sh"
