# tests/bench/flavours.sh: the servers `make bench` compares, and how their CPU is counted.
# shellcheck shell=bash
#
# Sourced after tests/e2e/lib.sh (start_server, stop_server, free_port...), on the
# host by tests/bench/run.sh and inside User-Mode Linux by tests/bench/uml-inner.sh.
# Needs: T (a temp dir), WWW (the document root), CERT, KEY (the chain, leaf
# first, and its key), BENCH_TLS (13: TLS 1.3 only; 12: TLS 1.2 only), and
# ATLAS (the wrapper).
#
#   flavour_start NAME PORT   start flavour NAME serving $WWW on 127.0.0.1:PORT
#                             (https or http: flavour_scheme NAME); sets FLAV_GROUPS,
#                             the process groups whose CPU counts for it
#   flavour_stop              stop every process of the flavour
#   flavour_cpu_ticks         utime+stime (+cutime+cstime) of every process of the
#                             flavour, in clock ticks
#   flavour_scheme NAME       https or http
#
# Every TLS flavour is configured for the same version and suite (BENCH_TLS: TLS 1.3
# with TLS_AES_128_GCM_SHA256, or TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256) and the
# same certificate; the clients are held to the same by bench_client_conf, and
# run.sh checks what each flavour really negotiates.

FLAV_GROUPS=()
FLAV_NAMES=()

# The flavours, and what each is (run.sh prints it).
# shellcheck disable=SC2034
declare -A FLAVOUR_DESC=(
	[nginx-plain]="nginx, plain HTTP, sendfile on (no TLS)"
	[nginx-tls]="nginx's own TLS (OpenSSL, userspace)"
	[nginx-ktls]="nginx's own TLS with kTLS (ssl_conf_command Options KTLS)"
	[stunnel]="stunnel4 in front of plain nginx"
	[haproxy]="haproxy (mode tcp, ssl bind) in front of plain nginx"
	[hitch]="hitch in front of plain nginx"
	[atlas]="plain nginx under Atlas"
	[atlas-ktls]="plain nginx under Atlas, --ktls require"
	[atlas-noport]="plain nginx with Atlas loaded, no TLS port (HTTP)"
	[py-plain]="python3 -m http.server, plain HTTP"
	[py-stunnel]="python3 -m http.server behind stunnel4"
	[py-atlas]="python3 -m http.server under Atlas"
)

flavour_scheme() {
	case $1 in
	nginx-plain | atlas-noport | py-plain) echo http ;;
	*) echo https ;;
	esac
}

# The OpenSSL configuration every client loads (OPENSSL_CONF): one version, one suite.
bench_client_conf() {
	local f=$1
	{
		echo 'openssl_conf = bench_conf'
		echo '[bench_conf]'
		echo 'ssl_conf = bench_ssl'
		echo '[bench_ssl]'
		echo 'system_default = bench_sys'
		echo '[bench_sys]'
		if [ "$BENCH_TLS" = 12 ]; then
			echo 'MinProtocol = TLSv1.2'
			echo 'MaxProtocol = TLSv1.2'
			echo 'CipherString = ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256'
		else
			echo 'MinProtocol = TLSv1.3'
			echo 'MaxProtocol = TLSv1.3'
			echo 'Ciphersuites = TLS_AES_128_GCM_SHA256'
		fi
	} >"$f"
}

# The suite the flavours must negotiate, as openssl s_client names it.
bench_want_cipher() {
	if [ "$BENCH_TLS" = 12 ]; then
		case $CERT in *rsa*) echo ECDHE-RSA-AES128-GCM-SHA256 ;; *) echo ECDHE-ECDSA-AES128-GCM-SHA256 ;; esac
	else
		echo TLS_AES_128_GCM_SHA256
	fi
}
bench_want_version() { if [ "$BENCH_TLS" = 12 ]; then echo TLSv1.2; else echo TLSv1.3; fi; }

# curl's options for the one version: curl sets its own minimum and maximum version,
# which override MinProtocol and MaxProtocol from OPENSSL_CONF (curl 7.88 against a
# server that allows TLS 1.3 negotiates TLS 1.3 under bench_client_conf's TLS 1.2).
# Its suites (CipherString, Ciphersuites) do come from OPENSSL_CONF.
bench_curl_tls() { if [ "$BENCH_TLS" = 12 ]; then echo --tlsv1.2 --tls-max 1.2; else echo --tlsv1.3 --tls-max 1.3; fi; }

# nginx_conf DIR PORT [plain|tls|ktls] [single]: a config with 2 workers (single: one
# process, no master), sendfile on, no access log, keep-alive without a request limit
# (wrk's connections stay up for the whole run).
nginx_conf() {
	local d=$1 port=$2 mode=${3:-plain} listen ssl="" procs="master_process on; worker_processes 2;"
	[ "${4:-}" = single ] && procs="master_process off; worker_processes 1;"
	mkdir -p "$d"
	listen="listen 127.0.0.1:$port"
	if [ "$mode" != plain ]; then
		listen="$listen ssl"
		ssl="ssl_certificate $CERT; ssl_certificate_key $KEY; ssl_session_cache off;"
		if [ "$BENCH_TLS" = 12 ]; then
			ssl="$ssl ssl_protocols TLSv1.2; ssl_ciphers $(bench_want_cipher);"
		else
			ssl="$ssl ssl_protocols TLSv1.3; ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;"
		fi
		[ "$mode" = ktls ] && ssl="$ssl ssl_conf_command Options KTLS;"
	fi
	cat >"$d/nginx.conf" <<-EOF
		daemon off;
		$procs
		worker_rlimit_nofile 8192;
		pid $d/nginx.pid;
		error_log stderr warn;
		events { use epoll; worker_connections 4096; }
		http {
			access_log off;
			sendfile on;
			tcp_nopush on;
			keepalive_timeout 120s;
			keepalive_requests 100000000;
			client_body_temp_path $d/body;
			proxy_temp_path $d/proxy;
			fastcgi_temp_path $d/fastcgi;
			uwsgi_temp_path $d/uwsgi;
			scgi_temp_path $d/scgi;
			default_type application/octet-stream;
			server {
				$listen;
				$ssl
				root $WWW;
			}
		}
	EOF
}

# start_group NAME PORT -- CMD...: start_server, and count its process group.
# The whole group runs on BENCH_SERVER_CPUS when run.sh pins (taskset execs the command,
# so the process group and the listener are the same as without it).
start_group() {
	local name=$1 port=$2 pin=()
	shift 2
	[ "${1:-}" = -- ] && shift
	[ -n "${BENCH_SERVER_CPUS:-}" ] && pin=(taskset -c "$BENCH_SERVER_CPUS")
	FLAV_NAMES+=("$name")
	start_server "$name" "$port" -- "${pin[@]}" "$@" || return 1
	FLAV_GROUPS+=("${SERVER_PGID[$name]}")
}

start_nginx() { # NAME PORT MODE [ATLAS ARGS... --]
	local name=$1 port=$2 mode=$3 d=$T/$1
	shift 3
	nginx_conf "$d" "$port" "$mode"
	start_group "$name" "$port" -- "$@" /usr/sbin/nginx -p "$d" -c "$d/nginx.conf" -e stderr
}

start_python() { # NAME PORT [ATLAS ARGS... --]
	local name=$1 port=$2
	shift 2
	start_group "$name" "$port" -- "$@" /usr/bin/python3 -m http.server --bind 127.0.0.1 \
		--directory "$WWW" "$port"
}

pem_combined() { # the chain then the key, in one file (haproxy, hitch)
	[ -f "$T/combined.pem" ] || cat "$CERT" "$KEY" >"$T/combined.pem"
	echo "$T/combined.pem"
}

start_stunnel() { # NAME PORT BACKEND_PORT
	local name=$1 port=$2 back=$3 d=$T/$1 ver
	mkdir -p "$d"
	if [ "$BENCH_TLS" = 12 ]; then ver="sslVersion = TLSv1.2
ciphers = $(bench_want_cipher)"; else ver="sslVersion = TLSv1.3
ciphersuites = TLS_AES_128_GCM_SHA256"; fi
	cat >"$d/stunnel.conf" <<-EOF
		foreground = yes
		pid =
		syslog = no
		debug = 3
		[https]
		accept = 127.0.0.1:$port
		connect = 127.0.0.1:$back
		cert = $CERT
		key = $KEY
		$ver
	EOF
	start_group "$name" "$port" -- /usr/bin/stunnel4 "$d/stunnel.conf"
}

start_haproxy() { # NAME PORT BACKEND_PORT
	local name=$1 port=$2 back=$3 d=$T/$1 opts
	mkdir -p "$d"
	if [ "$BENCH_TLS" = 12 ]; then
		opts="ssl-default-bind-options ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2
			ssl-default-bind-ciphers $(bench_want_cipher)"
	else
		opts="ssl-default-bind-options ssl-min-ver TLSv1.3
			ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256"
	fi
	cat >"$d/haproxy.cfg" <<-EOF
		global
			maxconn 8192
			$opts
		defaults
			mode tcp
			timeout connect 5s
			timeout client 120s
			timeout server 120s
		frontend tls
			bind 127.0.0.1:$port ssl crt $(pem_combined)
			default_backend plain
		backend plain
			server nginx 127.0.0.1:$back
	EOF
	start_group "$name" "$port" -- /usr/sbin/haproxy -db -f "$d/haproxy.cfg"
}

start_hitch() { # NAME PORT BACKEND_PORT
	local name=$1 port=$2 back=$3 d=$T/$1 opts
	mkdir -p "$d"
	if [ "$BENCH_TLS" = 12 ]; then
		opts="tls-protos = TLSv1.2
ciphers = \"$(bench_want_cipher)\""
	else
		opts="tls-protos = TLSv1.3
ciphersuites = \"TLS_AES_128_GCM_SHA256\""
	fi
	cat >"$d/hitch.conf" <<-EOF
		frontend = "[127.0.0.1]:$port"
		backend = "[127.0.0.1]:$back"
		pem-file = "$(pem_combined)"
		workers = 2
		daemon = off
		user = "nobody"
		ocsp-dir = "$d"
		$opts
	EOF
	start_group "$name" "$port" -- /usr/sbin/hitch --config="$d/hitch.conf"
}

# flavour_start NAME PORT
flavour_start() {
	local name=$1 port=$2 back
	FLAV_GROUPS=()
	FLAV_NAMES=()
	local atlas=("$ATLAS" --cert "$CERT" --key "$KEY" --ports "$port" --)
	case $name in
	nginx-plain) start_nginx "$name" "$port" plain ;;
	nginx-tls) start_nginx "$name" "$port" tls ;;
	nginx-ktls) start_nginx "$name" "$port" ktls ;;
	atlas) start_nginx "$name" "$port" plain "${atlas[@]}" ;;
	atlas-ktls)
		start_nginx "$name" "$port" plain "$ATLAS" --cert "$CERT" --key "$KEY" --ports "$port" \
			--ktls require --log-level info --
		;;
	atlas-noport)
		# Atlas loaded and configured, but its one TLS port is one nothing listens on.
		start_nginx "$name" "$port" plain "$ATLAS" --cert "$CERT" --key "$KEY" \
			--ports "$(free_port)" --
		;;
	stunnel | haproxy | hitch)
		back=$(free_port)
		start_nginx "$name-backend" "$back" plain && "start_$name" "$name" "$port" "$back"
		;;
	py-plain) start_python "$name" "$port" ;;
	py-atlas) start_python "$name" "$port" "${atlas[@]}" ;;
	py-stunnel)
		back=$(free_port)
		start_python "$name-backend" "$back" && start_stunnel "$name" "$port" "$back"
		;;
	*)
		note "unknown flavour $name"
		return 1
		;;
	esac
}

flavour_stop() {
	local n
	for n in "${FLAV_NAMES[@]}"; do
		stop_server "$n"
	done
	FLAV_GROUPS=()
	FLAV_NAMES=()
}

# flavour_pids: every live process of the flavour's groups.
flavour_pids() {
	local g
	for g in "${FLAV_GROUPS[@]}"; do
		pgrep -g "$g"
	done
}

# flavour_cpu_ticks: CPU ticks of the flavour so far. Fields 14-17 of /proc/PID/stat
# (utime, stime, cutime, cstime; after the ")" that ends the command name, which may hold
# spaces, they are fields 12-15). A process's own fields cover all its threads, live or
# ended; cutime/cstime hold the children it has reaped, which are no longer in the group,
# so nothing counts twice, and a worker that exits and is reaped between two samples
# (an nginx worker, a hitch child, a stunnel helper) still counts: as long as the
# process that reaps it belongs to the flavour, which start_server's process group
# guarantees. The delta between two samples is then exact, to the tick.
flavour_cpu_ticks() {
	local pid files=()
	for pid in $(flavour_pids); do
		files+=("/proc/$pid/stat")
	done
	[ ${#files[@]} -gt 0 ] || { echo 0; return; }
	cat "${files[@]}" 2>/dev/null | awk '{ sub(/^.*\) /, ""); t += $12 + $13 + $14 + $15 } END { print t + 0 }'
}

flavour_nprocs() { flavour_pids | grep -c .; }
