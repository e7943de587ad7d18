#!/usr/bin/env bash
# 11: a request handler that runs a helper program while it holds a TLS
# connection must still answer through TLS. Python starts programs in several
# ways; subprocess's default is vfork() (the child shares the parent's memory
# until it execs) and, with close_fds=True, close_range() in the child. Each
# way: the page arrives intact, and no plaintext "HTTP/1." crosses the wire
# after the handshake (clients.py wire keeps every raw byte).
. "$(dirname "$0")/lib.sh"

make_certs
cat >"$T/spawner.py" <<'EOF'
import http.server, os, subprocess, sys

def run(how):
    if how == "subprocess":          # vfork + close_range(3, ...) in the child
        subprocess.run(["/bin/true"], check=True)
    elif how == "subprocess-capture":  # the same, with pipes (close_range around them)
        subprocess.run(["/bin/echo", "hi"], capture_output=True, check=True)
    elif how == "popen-shell":        # os.popen: subprocess.Popen(shell=True)
        os.popen("true").close()
    elif how == "fork":               # preexec_fn forces fork() instead of vfork()
        subprocess.run(["/bin/true"], preexec_fn=lambda: None, check=True)
    elif how == "no-close-fds":       # vfork, but the child closes nothing
        subprocess.run(["/bin/true"], close_fds=False, check=True)
    elif how == "posix-spawn":
        os.waitpid(os.posix_spawn("/bin/true", ["true"], os.environ), 0)
    elif how == "system":
        os.system("true")

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        how = self.path.strip("/")
        run(how)
        body = f"answered after {how}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF

P=$(free_port)
if ! start_server spawner "$P" -- "$ATLAS" --cert "$EC_CERT" --key "$EC_KEY" --ports "$P" --log-level info -- \
	"$PY" "$T/spawner.py" "$P"; then
	fail "the server starts under Atlas"
	finish
fi

for how in system posix-spawn fork no-close-fds subprocess subprocess-capture popen-shell; do
	res=$("$PY" "$CLIENTS" wire --port "$P" --ca "$CA" --path "/$how" 2>&1)
	wire=$(sed -n 's/^plaintext_http_on_wire=//p' <<<"$res")
	if [ "$wire" = no ]; then
		pass "$how: no plaintext HTTP on the wire after the handshake"
	else
		fail "$how: no plaintext HTTP on the wire after the handshake"
		note "the server sent, unencrypted: $(sed -n 's/^plaintext=//p' <<<"$res")"
		[ -n "$wire" ] || note "$res"
	fi
	body=$(hcurl "$P" "/$how" 2>&1)
	is_eq "$how: curl gets the page through TLS" "$body" "answered after $how"
done

body=$(hcurl "$P" /system 2>&1)
is_eq "the server still serves through TLS afterwards" "$body" "answered after system"
check "the server is still running" server_alive spawner

finish
