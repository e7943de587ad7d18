#!/usr/bin/env bash
# tests/bench/idle-rss.sh: memory per idle TLS connection, as a small markdown table.
#
#   tests/bench/idle-rss.sh [-n N] [--no-uml]      (after make; as root: it raises RLIMIT_NOFILE)
#
# nginx (one worker, epoll) holds N (1000) idle keep-alive TLS 1.3 connections
# (tests/e2e/progs/idle_clients.c, one request each): plain nginx with plaintext
# clients (what nginx itself costs), nginx under Atlas, and nginx's own TLS
# (listen ... ssl) for comparison, on the userspace path (this host) and on the
# kernel path (inside User-Mode Linux, one boot; --no-uml leaves it out).
# RSS is the sum over nginx's processes (smaps_rollup), before and with the N
# connections; "per connection" is (growth - plain nginx's growth) / N.
# The table goes to stdout, progress to stderr. Exit 0 when every row was measured.
# The e2e tests 26-idle-memory.sh and 36-ktls-idle-memory.sh check the same figures
# against bounds. Needs nginx, user-mode-linux (make deps-check installs both).
N=1000
UML=1
while [ $# -gt 0 ]; do
	case $1 in
	-n) N=$2; shift 2 ;;
	--no-uml) UML=0; shift ;;
	*) echo "usage: tests/bench/idle-rss.sh [-n N] [--no-uml]" >&2; exit 2 ;;
	esac
done
# lib.sh's own lines (and its summary at exit) go to stderr; the table to the real stdout.
exec 3>&1 1>&2
. "$(dirname "$0")/../e2e/lib.sh"
. "$E2E_DIR/idle-lib.sh"

make_certs
IDLE_WWW=$T/www
mkdir -p "$IDLE_WWW"
echo "hello from nginx" >"$IDLE_WWW/index.html"
idle_build "$T/bin" || {
	echo "idle-rss.sh: tests/e2e/progs/idle_clients.c does not build:" >&2
	cat "$T/bin/cc-idle_clients.log" >&2
	exit 1
}
ROWS=$T/rows
: >"$ROWS"

# The measuring loop, sourced on the host and inside UML: one "row PATH MODE BEFORE WITH" per mode.
cat >"$T/measure.sh" <<'MEASURE'
for mode in plain atlas nginx-ssl; do
	echo "measuring $IDLE_PATH $mode ($N connections)" >&2
	if idle_measure "$mode" "$mode" "$N" --tls 1.3; then
		echo "row $IDLE_PATH $mode $IDLE_BEFORE $IDLE_WITH"
	else
		echo "$IDLE_PATH $mode: $IDLE_ERR" >&2
	fi
done
MEASURE

# shellcheck disable=SC2034 # read by measure.sh
IDLE_PATH=userspace
# shellcheck source=/dev/null
. "$T/measure.sh" >>"$ROWS"

if [ "$UML" = 1 ]; then
	{
		printf '. %q\n. %q\n' "$E2E_DIR/lib.sh" "$E2E_DIR/idle-lib.sh"
		printf 'CA=%q EC_CERT=%q EC_KEY=%q IDLE_WWW=%q IDLE_CLIENTS=%q N=%q\n' \
			"$CA" "$EC_CERT" "$EC_KEY" "$IDLE_WWW" "$IDLE_CLIENTS" "$N"
		echo 'START_SECS=60 IDLE_READY_SECS=300 IDLE_WARM=5 IDLE_PORT=8600 SERVER_LIFETIME=900 IDLE_PATH=kernel ATLAS_ENV=(ATLAS_KTLS=require)'
		printf '. %q\n' "$T/measure.sh"
		echo 'trap - EXIT; stop_all; exit 0'
	} >"$T/inner.sh"
	"$ROOT/tests/uml/run.sh" --timeout 900 -- bash "$T/inner.sh" >"$T/uml.out" 2>&1 ||
		echo "idle-rss.sh: the UML run failed (tests/uml/run.sh status $?)" >&2
	grep '^row ' "$T/uml.out" >>"$ROWS"
	grep -v '^row ' "$T/uml.out" >&2
fi

kib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
{
	echo "Memory per idle connection: nginx, 1 worker, $N idle keep-alive TLS 1.3 connections (RSS, sum over nginx's processes)"
	echo
	echo "| path | server | RSS plain (before -> with $N) | RSS with Atlas (before -> with $N) | Atlas per connection | nginx's own TLS per connection |"
	echo "|---|---|---|---|---|---|"
} >&3
rc=0
for path in userspace kernel; do
	[ "$path" = kernel ] && [ "$UML" = 0 ] && continue
	read -r _ _ _ pb pw < <(grep "^row $path plain " "$ROWS")
	read -r _ _ _ ab aw < <(grep "^row $path atlas " "$ROWS")
	read -r _ _ _ sb sw < <(grep "^row $path nginx-ssl " "$ROWS")
	if [ -z "${pw:-}" ] || [ -z "${aw:-}" ]; then
		echo "| $path | nginx | not measured | | | |" >&3
		rc=1
		continue
	fi
	own="not measured"
	[ -n "${sw:-}" ] && own="$(idle_per_conn "$sb" "$sw" "$pb" "$pw" "$N") B"
	where=$([ "$path" = kernel ] && echo "kernel (UML)" || echo "userspace (host)")
	echo "| $where | nginx 1 worker | $(kib "$pb") -> $(kib "$pw") | $(kib "$ab") -> $(kib "$aw") | $(idle_per_conn "$ab" "$aw" "$pb" "$pw" "$N") B | $own |" >&3
	unset pb pw ab aw sb sw
done
exit "$rc"
