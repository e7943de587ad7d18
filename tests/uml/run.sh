#!/usr/bin/env bash
# tests/uml/run.sh: run one command inside a User-Mode Linux kernel that has kTLS.
#
#   tests/uml/run.sh [--timeout SECONDS] [--verbose] [--keep] [--mem SIZE] [--cwd DIR] \
#       [--without-module MODULE]... -- COMMAND [ARGS...]
#
# The host kernel has no kTLS (CONFIG_TLS is not set), so anything that must
# exercise kernel TLS runs here: linux.uml (Debian package user-mode-linux,
# kernel 6.1, CONFIG_TLS=m) boots with the host's own filesystem as its root
# (hostfs, read-write), loads the crypto and tls modules, brings lo up and runs
# COMMAND as root inside it, in DIR (default: the repository), with stdin from
# /dev/null, then powers off. About 2 s of boot and shutdown on top of COMMAND.
#
# Needs the Debian packages user-mode-linux (linux.uml and its modules), kmod
# (insmod) and iproute2 (ip, to bring lo up), besides procps (ps) and util-linux
# (setsid, setpriv, findmnt): run.sh installs nothing, `make deps-check` does.
#
# Output and exit status
#   COMMAND's stdout and stderr (one stream, in order) are printed on stdout once
#   it is done, and run.sh exits with COMMAND's exit status. Otherwise:
#   125  UML did not boot, crashed, or COMMAND outlived --timeout (default 300 s,
#        boot included): one line on stderr says which, and where the logs were
#        kept (the run directory is left behind then, for a post-mortem).
#   77   this machine cannot run it (linux.uml, its modules, insmod or ip missing):
#        one line on stderr says what to install.
#   The kernel's console goes to a log file in the run directory; --verbose
#   streams it (and the init script's log) to stderr as well. --keep keeps the
#   run directory even on success.
#
# Inside UML
#   - One CPU, --mem of RAM (default 1G), only the loopback interface (127.0.0.1;
#     the ipv6 module is not loaded, so ::1 does not exist: bind servers to
#     127.0.0.1). Loaded modules: gf128mul ghash-generic ctr gcm libchacha
#     chacha_generic libpoly1305 poly1305_generic chacha20poly1305 tls, so
#     /proc/sys/net/ipv4/tcp_available_ulp lists "tls" and /proc/net/tls_stat exists.
#     --without-module MODULE (repeatable) leaves one of them out, named by its
#     path under the modules' kernel/ directory as in the list in this script
#     (e.g. crypto/chacha20poly1305.ko): a kernel that has kTLS but cannot
#     allocate that cipher, for tests of what happens then. The kernel cannot
#     load it on demand either: its modprobe finds no /lib/modules for UML's
#     version. Leaving out tls.ko gives a kernel without the tls ULP.
#   - The whole host filesystem is visible and writable, through hostfs, with
#     the host permissions of whoever ran run.sh. /proc, /sys and /dev (devtmpfs)
#     are the UML kernel's own.
#   - COMMAND gets a clean environment: PATH (the usual system directories, so
#     python3 is /usr/bin/python3 and never a pyenv shim), HOME and TMPDIR (both
#     in a tmpfs private to this run, gone at power-off), TERM=dumb,
#     LANG=C.UTF-8 and ATLAS_UML=1. Pass anything else with `env NAME=VALUE CMD`.
#   - /tmp is the host's /tmp (hostfs), not a private tmpfs: that is on purpose,
#     so COMMAND can use files that a test made in its own mktemp directory on the
#     host, and leave results there for the host to check. Each run has its own
#     run directory (mktemp -d) for its init script, logs and private tmpfs, and
#     its own UML instance id, so runs may overlap. A network port inside UML
#     never collides with the host's or another run's: every UML has its own stack.
#
# How it works
#   A generated init script (run directory/init) is the UML's PID 1: it mounts,
#   loads the modules, runs COMMAND with output into run directory/output, writes
#   COMMAND's exit status into run directory/status (the exit status of init
#   itself never reaches the host: an init that exits panics the kernel and
#   linux.uml aborts), syncs and powers off with `echo o > /proc/sysrq-trigger`.
#   The host side waits for linux.uml with a deadline and reads those files.
#
# Surprises found while building this (Debian 12, user-mode-linux 6.1um4)
#   - linux.uml forks helper processes (one per UML address space, plus I/O
#     helpers). SIGKILL on the main process alone leaves the I/O helpers running
#     forever. SIGTERM on the main process makes UML kill all of them and exit at
#     once, so: SIGTERM first, then SIGKILL what is left of its process group
#     (linux.uml runs under setsid, so the group is exactly UML's). linux.uml also
#     gets a parent-death signal (setpriv --pdeathsig TERM), so it stops even if
#     run.sh itself is SIGKILLed; and init powers off by itself after --timeout s.
#   - When UML crashes (kernel panic: linux.uml aborts, status 134) its helpers
#     are left as zombies until PID 1 reaps them (about 1 s here): run.sh waits
#     (at most 5 s) for the group to be empty, so `pgrep -f linux.uml` right
#     after run.sh finds nothing. bash's own "PID Aborted linux.uml ..." job
#     report is silenced: run.sh says it in its one line instead.
#   - UML backs its RAM with a file in $TMPDIR (or $TMP, $TEMP) if set, else in
#     /dev/shm if that is a tmpfs, else /tmp. Where /dev/shm is mounted noexec
#     (Docker's default) linux.uml exits at boot ("/dev/shm must be not mounted
#     noexec"); where it is small (Docker's 64 MB) UML dies of SIGBUS ("the host
#     /dev/shm or /tmp mount likely just ran out of space") once it touches more:
#     run.sh picks an exec-able directory with room for --mem and hands it to
#     linux.uml as TMPDIR. (Both seen, in a mount namespace, on this machine.)
#   - The console is con0=null,fd:1 with fd 1 a log file and stdin /dev/null:
#     UML never reads or writes a terminal, so it runs the same with stdin a tty,
#     /dev/null or closed, and its console noise stays out of the caller's output
#     ("epollctl add err fd 1" in that log is UML failing to poll a regular file:
#     harmless; so is "Failed to initialize ubd device 0": there is no disk).
#   - Unknown kernel command-line words (mem=, uml_dir=...) end up in init's
#     environment; COMMAND gets a clean one instead (env -i).
#   - The kernel's own `poweroff` path (sysrq o) does not sync: init syncs first.
#   - The exit status of linux.uml says nothing about COMMAND (0 after any clean
#     power-off): only the status file does.
set -uo pipefail

me=tests/uml/run.sh
exec 3>&2 # the caller's stderr, for messages while fd 2 is redirected
warn() { echo "$me: $*" >&3; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

# The modules kTLS needs, in dependency order, relative to .../modules/VERSION/kernel.
modules=(
	crypto/gf128mul.ko crypto/ghash-generic.ko crypto/ctr.ko crypto/gcm.ko
	lib/crypto/libchacha.ko crypto/chacha_generic.ko lib/crypto/libpoly1305.ko
	crypto/poly1305_generic.ko crypto/chacha20poly1305.ko net/tls/tls.ko
)
inside_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

usage() {
	cat <<USAGE
usage: $me [--timeout SECONDS] [--verbose] [--keep] [--mem SIZE] [--cwd DIR]
          [--without-module MODULE]... -- COMMAND [ARGS...]
Runs COMMAND as root inside User-Mode Linux (kernel with kTLS), prints its output,
exits with its status (125: UML failed or timed out; 77: UML is not installed).
USAGE
}

die_usage() {
	echo "$me: $*" >&2
	usage >&2
	exit 2
}

timeout=300
verbose=0
keep=0
mem=1G
cwd=$repo
without=()
while [ $# -gt 0 ]; do
	case "$1" in
	--timeout) [ $# -ge 2 ] || die_usage "--timeout needs a value"; timeout=$2; shift 2 ;;
	--timeout=*) timeout=${1#*=}; shift ;;
	--mem) [ $# -ge 2 ] || die_usage "--mem needs a value"; mem=$2; shift 2 ;;
	--mem=*) mem=${1#*=}; shift ;;
	--cwd) [ $# -ge 2 ] || die_usage "--cwd needs a value"; cwd=$2; shift 2 ;;
	--cwd=*) cwd=${1#*=}; shift ;;
	--without-module) [ $# -ge 2 ] || die_usage "--without-module needs a value"; without+=("$2"); shift 2 ;;
	--without-module=*) without+=("${1#*=}"); shift ;;
	-v | --verbose) verbose=1; shift ;;
	--keep) keep=1; shift ;;
	-h | --help) usage; exit 0 ;;
	--) shift; break ;;
	-*) die_usage "unknown option '$1'" ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || die_usage "no command given"
[[ "$timeout" =~ ^[0-9]+$ ]] && [ "$timeout" -ge 1 ] || die_usage "--timeout: '$timeout' is not a number of seconds"
[[ "$mem" =~ ^[0-9]+[KkMmGg]$ ]] || die_usage "--mem: '$mem' is not a size such as 512M or 1G"
cwd=$(cd "$cwd" 2>/dev/null && pwd) || die_usage "--cwd: no such directory"
for w in "${without[@]}"; do
	kept=()
	for m in "${modules[@]}"; do
		[ "$m" = "$w" ] || kept+=("$m")
	done
	[ "${#kept[@]}" -lt "${#modules[@]}" ] ||
		die_usage "--without-module: '$w' is not one of the modules loaded: ${modules[*]}"
	modules=("${kept[@]}")
done

# ---- can this machine run UML? -------------------------------------------------

unavailable() {
	echo "$me: $*" >&2
	exit 77
}

uml=${ATLAS_UML_BINARY:-$(command -v linux.uml 2>/dev/null || echo /usr/bin/linux.uml)}
[ -x "$uml" ] || unavailable "linux.uml missing (install user-mode-linux)"
[ -x /usr/sbin/insmod ] || [ -x /sbin/insmod ] || unavailable "insmod missing (install kmod)"
[ -x /usr/sbin/ip ] || [ -x /usr/bin/ip ] || [ -x /sbin/ip ] || [ -x /bin/ip ] ||
	unavailable "ip missing (install iproute2)"
uml_version=$("$uml" --version 2>/dev/null | head -n 1)
moddir=
if [ -n "$uml_version" ] && [ -d "/usr/lib/uml/modules/$uml_version/kernel" ]; then
	moddir=/usr/lib/uml/modules/$uml_version/kernel
else
	# Not the version linux.uml reports: take the only one there is.
	versions=$(ls /usr/lib/uml/modules/ 2>/dev/null)
	[ "$(printf '%s\n' "$versions" | grep -c .)" -eq 1 ] && moddir=/usr/lib/uml/modules/$versions/kernel
fi
[ -n "$moddir" ] && [ -r "$moddir/net/tls/tls.ko" ] ||
	unavailable "no UML kernel modules for linux.uml ${uml_version:-?} in /usr/lib/uml/modules (reinstall user-mode-linux)"

# linux.uml 6.1 panics as its first process starts on hosts whose XSAVE area is larger
# than the one it sizes its buffers for (AMX): tests/uml/xstate-fix.c pads its
# ptrace(PTRACE_SETREGSET) to the host's size. Built once, into build/uml/.
xstate_fix=$repo/build/uml/xstate-fix.so
if [ ! -f "$xstate_fix" ] || [ "$here/xstate-fix.c" -nt "$xstate_fix" ]; then
	mkdir -p "${xstate_fix%/*}" &&
		cc -shared -fPIC -O2 -Wall -o "$xstate_fix.$$" "$here/xstate-fix.c" -ldl &&
		mv -f "$xstate_fix.$$" "$xstate_fix" ||
		unavailable "cannot build $here/xstate-fix.c (install gcc)"
fi

# ---- the run directory -----------------------------------------------------------

# Its path goes on the kernel command line (init=...), which splits at spaces.
base=${TMPDIR:-/tmp}
[[ "$base" =~ ^/[A-Za-z0-9._/+-]*$ ]] && [ -d "$base" ] && [ -w "$base" ] || base=/tmp
run=$(mktemp -d "$base/atlas-uml.XXXXXX") || {
	echo "$me: cannot create a run directory in $base" >&2
	exit 125
}
chmod 755 "$run"
umid=${run##*/}
console=$run/console.log
uml_pid=
tail_pid=

# UML's RAM is a file (mapped PROT_EXEC) in TMPDIR: an exec-able directory with room for it.
mem_kb=${mem%?}
case "$mem" in
*[Kk]) ;;
*[Mm]) mem_kb=$((mem_kb * 1024)) ;;
*[Gg]) mem_kb=$((mem_kb * 1024 * 1024)) ;;
esac
memdir=
best_kb=-1
for d in /dev/shm "$base" "$run"; do
	[ -d "$d" ] && [ -w "$d" ] || continue
	findmnt -no OPTIONS -T "$d" 2>/dev/null | tr , '\n' | grep -qx noexec && continue
	avail=$(df -Pk "$d" 2>/dev/null | awk 'NR == 2 { print $4 }')
	[ -n "$avail" ] || continue
	if [ "$avail" -ge "$mem_kb" ]; then
		memdir=$d
		break
	fi
	[ "$avail" -gt "$best_kb" ] && best_kb=$avail && memdir=$d
done
[ -n "$memdir" ] || memdir=$run

# ---- the init script -----------------------------------------------------------------

q() { printf '%q' "$1"; }
{
	cat <<-EOF
		#!/bin/bash
		# Generated by $me: PID 1 of one User-Mode Linux run.
		run=$(q "$run")
		cwd=$(q "$cwd")
		moddir=$(q "$moddir")
		timeout=$timeout
		modules=(${modules[*]})
		inside_path=$inside_path
		cmd=($(printf '%q ' "$@"))
	EOF
	cat <<-'EOF'
		exec >>"$run/init.log" 2>&1 </dev/null
		export PATH=$inside_path
		say() { echo "uml-init: $*"; }
		poweroff() {
			sync
			echo o >/proc/sysrq-trigger
			while :; do sleep 1; done
		}
		echo booted >"$run/booted"
		mount -t proc proc /proc || say "warning: cannot mount /proc"
		mount -t sysfs sys /sys || say "warning: cannot mount /sys"
		mount -t tmpfs -o mode=0755 tmpfs "$run/private" || say "warning: cannot mount a tmpfs on $run/private"
		mkdir -p "$run/private/home" "$run/private/tmp"
		chmod 1777 "$run/private/tmp"
		[ "$(uname -r)" = "$(basename "$(dirname "$moddir")")" ] ||
			say "warning: kernel $(uname -r) with modules from $moddir"
		for m in "${modules[@]}"; do
			name=$(basename "$m" .ko)
			[ -d "/sys/module/${name//-/_}" ] && continue
			insmod "$moddir/$m" || say "warning: insmod $m failed"
		done
		ip link set lo up || say "warning: cannot bring lo up"
		# A safety net if the host side is gone: power off at the deadline anyway.
		(
			sleep "$timeout"
			say "COMMAND still running after $timeout s: powering off"
			echo "$timeout" >"$run/timed-out"
			poweroff
		) &
		cd "$cwd" || say "warning: cannot cd to $cwd"
		say "running: ${cmd[*]}"
		env -i PATH="$PATH" HOME="$run/private/home" TMPDIR="$run/private/tmp" TERM=dumb \
			LANG=C.UTF-8 ATLAS_UML=1 "${cmd[@]}" >"$run/output" 2>&1 </dev/null
		status=$?
		echo "$status" >"$run/status.new" && mv -f "$run/status.new" "$run/status"
		say "exit status $status"
		poweroff
	EOF
} >"$run/init"
chmod 755 "$run/init"
mkdir "$run/private"

# ---- run it ----------------------------------------------------------------------------

# stop_uml: SIGTERM linux.uml (UML then kills its helpers and exits), then
# SIGKILL whatever of its process group is left.
stop_uml() {
	local _
	[ -n "$uml_pid" ] || return 0
	kill -TERM "$uml_pid" 2>/dev/null
	for _ in $(seq 30); do
		kill -0 "$uml_pid" 2>/dev/null || break
		sleep 0.1
	done
	uml_group_kill
	wait "$uml_pid" 2>/dev/null
	uml_pid=
}

# The live members of UML's process group that are this UML (the group outlives
# linux.uml while a helper lives, so its id is not reused; check the umid anyway).
uml_group() {
	ps -e -o pid=,pgid=,args= 2>/dev/null |
		awk -v g="$uml_pid" -v id="umid=$umid" '$2 == g && index($0, id) { print $1 }'
}

# Any member at all, zombies included.
uml_group_any() {
	ps -e -o pgid= 2>/dev/null | awk -v g="$uml_pid" '$1 == g { f = 1 } END { exit !f }'
}

# uml_group_kill: SIGKILL the helpers left (after a crash, or SIGKILL), then wait
# (at most 5 s) until the group is empty: a helper whose parent died is a zombie
# until PID 1 reaps it, and a caller checking `pgrep linux.uml` right after us
# should not find it.
uml_group_kill() {
	local _ pids
	for _ in $(seq 50); do
		pids=$(uml_group)
		[ -n "$pids" ] || break
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null
		sleep 0.1
	done
	[ -z "$(uml_group)" ] || warn "linux.uml processes still there: $(uml_group | tr '\n' ' ')"
	for _ in $(seq 50); do
		uml_group_any || return 0
		sleep 0.1
	done
}

cleanup() {
	{ stop_uml; } 2>/dev/null
	if [ -n "$tail_pid" ]; then
		kill "$tail_pid" 2>/dev/null
		wait "$tail_pid" 2>/dev/null
	fi
	tail_pid=
}

on_signal() {
	trap - INT TERM HUP
	cleanup
	[ "$keep" = 1 ] || rm -rf "$run"
	warn "interrupted"
	exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP
trap cleanup EXIT

: >"$console"
start=$SECONDS
# setsid: UML gets its own session and process group (no terminal, and a group
# that stop_uml can kill whole); it execs without forking, so $! is linux.uml.
# setpriv: linux.uml gets SIGTERM if run.sh dies first.
env -u TMP -u TEMP TMPDIR="$memdir" LD_PRELOAD="$xstate_fix" setsid setpriv --pdeathsig TERM \
	"$uml" mem="$mem" umid="$umid" uml_dir="$run" \
	root=/dev/root rootfstype=hostfs rootflags=/ rw init="$run/init" \
	con=null con0=null,fd:1 ssl=null \
	</dev/null >>"$console" 2>&1 3>&- &
uml_pid=$!
if [ "$verbose" = 1 ]; then
	tail -n +1 -s 0.2 -f --pid="$uml_pid" "$console" >&3 3>&- &
	tail_pid=$!
fi

# Wait, with stderr to /dev/null: bash reports a background job that died of a
# signal ("line N: PID Aborted linux.uml ...") on stderr; a crash is reported below.
deadline=$((start + timeout))
timed_out=0
uml_status=
{
	while kill -0 "$uml_pid" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			timed_out=1
			break
		fi
		sleep 0.1
	done
	if [ "$timed_out" = 1 ]; then
		stop_uml
	else
		wait "$uml_pid"
		uml_status=$?
		# A clean power-off leaves nothing; sweep anyway (a crash may leave helpers).
		uml_group_kill
		uml_pid=
	fi
} 2>/dev/null
if [ -n "$tail_pid" ]; then
	wait "$tail_pid" 2>/dev/null
	tail_pid=
	echo "--- $run/init.log" >&2
	cat "$run/init.log" >&2 2>/dev/null
fi

[ -f "$run/output" ] && cat "$run/output"
grep -h '^uml-init: warning' "$run/init.log" 2>/dev/null | sed "s|^uml-init: warning: |$me: warning: inside UML: |" >&2

if [ -f "$run/status" ]; then
	status=$(cat "$run/status")
	if [ "$keep" = 1 ]; then
		warn "run directory kept: $run"
	else
		rm -rf "$run"
	fi
	exit "$status"
fi

# No status: say why in one line, keep the logs. The console's most telling line:
# a kernel panic's reason, else its last line.
why=$(grep -m 1 -E 'Kernel panic|Bus error' "$console" 2>/dev/null)
[ -n "$why" ] || why=$(grep -v '^[[:space:]]*$' "$console" 2>/dev/null | tail -n 1)
why=$(printf '%s' "$why" | tr -s '[:space:]' ' ' | sed 's/^ //' | cut -c1-160)
if [ "$timed_out" = 1 ] || [ -f "$run/timed-out" ]; then
	warn "timed out after $timeout s (COMMAND did not finish; logs in $run)"
elif [ ! -f "$run/booted" ]; then
	warn "UML failed to boot (linux.uml exit status ${uml_status:-?}: ${why:-no console output}; logs in $run)"
else
	warn "UML stopped before COMMAND finished (linux.uml exit status ${uml_status:-?}: ${why:-no console output}; logs in $run)"
fi
exit 125
