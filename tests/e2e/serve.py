#!/usr/bin/python3
"""Plaintext servers for the Atlas TLS end-to-end scenarios, run under ./atlas-preload.sh.

None of them knows about TLS: that is the point.

  files       ThreadingHTTPServer (HTTP/1.1) serving --dir; GET bodies go out with
              os.sendfile (stock http.server copies with write(): use -m http.server
              for that path); POST bodies are read and answered with their sha256
  two-ports   two ThreadingHTTPServers in one process, on --port and --plain-port
  accept-loop one thread that only accepts and counts, never reads (is accept() lazy?)
  asyncio     an asyncio (non-blocking, epoll) HTTP/1.0 server
  echo        an asyncio echo server that never waits for its writes (drain): what it
              cannot send yet waits in asyncio's buffer while it goes on reading
  send-then   a forked child per connection reads "N sleep|exit\n", sends N pattern
              bytes (byte i is i % 251) with one blocking sendall through a small
              send buffer, then sleeps 10 s holding the socket, or ends at once with
              os._exit: bytes a write counted as written must need nothing more from
              the server to arrive
"""
import argparse
import asyncio
import functools
import hashlib
import http.server
import os
import socket
import sys
import threading


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def copyfile(self, source, outputfile):
        """The body with sendfile(2): with an offset (name ends .pos: from the file position)."""
        self.wfile.flush()
        out_fd, in_fd = self.connection.fileno(), source.fileno()
        size = os.fstat(in_fd).st_size
        sent = 0
        by_position = self.path.endswith(".pos")
        while sent < size:
            if by_position:
                n = os.sendfile(out_fd, in_fd, None, size - sent)
            else:
                n = os.sendfile(out_fd, in_fd, sent, size - sent)
            if n == 0:
                break
            sent += n
        if by_position and source.tell() != size:
            log(f"serve.py: sendfile left the file position at {source.tell()}, not {size}")
        log(f"serve.py: sendfile sent {sent} of {size} bytes of {self.path}"
            f" ({'file position' if by_position else 'offset'})")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        h, left = hashlib.sha256(), length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
        body = f"{length - left} {h.hexdigest()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def httpd(addr, port, directory):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    # socketserver's listen backlog is 5: a burst of clients would be dropped by the kernel
    # before accept(), and never reach the server (nor Atlas) at all.
    cls = type("Server", (http.server.ThreadingHTTPServer,),
               {"address_family": family, "request_queue_size": 128})
    return cls((addr, port), functools.partial(Handler, directory=directory))


def run_files(args):
    srv = httpd(args.bind, args.port, args.dir)
    log(f"serve.py: files on {args.bind} port {args.port}")
    srv.serve_forever()


def run_two_ports(args):
    tls = httpd(args.bind, args.port, args.dir)
    plain = httpd(args.bind, args.plain_port, args.dir)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    log(f"serve.py: two ports in pid {os.getpid()}: {args.port} and {args.plain_port}")
    tls.serve_forever()


def run_accept_loop(args):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.bind, args.port))
    s.listen(128)
    held, n = [], 0
    while True:
        c, _ = s.accept()
        n += 1
        held.append(c)
        print(f"accepted {n}", flush=True)


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return False  # close once the echo is out


async def echo_main(args):
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(Echo, args.bind, args.port, backlog=128)
    log(f"serve.py: echo on {args.bind} port {args.port}")
    async with srv:
        await srv.serve_forever()


def send_then(conn):
    line = b""
    while not line.endswith(b"\n"):
        got = conn.recv(1)
        if not got:
            return
        line += got
    n, then = line.split()
    pattern = bytes(i % 251 for i in range(251)) * (int(n) // 251 + 1)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    conn.sendall(pattern[:int(n)])
    if then == b"sleep":
        threading.Event().wait(10)
    else:
        os._exit(0)


def run_send_then(args):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.bind, args.port))
    s.listen(16)
    while True:
        c, _ = s.accept()
        if os.fork() == 0:  # the child answers and ends (send_then exits or sleeps)
            s.close()
            send_then(c)
            os._exit(0)
        c.close()


async def asyncio_handle(reader, writer):
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        path = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
        body = f"asyncio says hello to {path}\n".encode()
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
    except Exception as e:  # noqa: BLE001 - refused connections end here; keep serving
        log(f"serve.py: asyncio connection ended: {e!r}")
    finally:
        writer.close()


async def asyncio_main(args):
    srv = await asyncio.start_server(asyncio_handle, args.bind, args.port, backlog=128)
    log(f"serve.py: asyncio on {args.bind} port {args.port}")
    async with srv:
        await srv.serve_forever()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("files", "two-ports", "accept-loop", "asyncio", "echo", "send-then"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--plain-port", type=int)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--dir", default=".")
    args = p.parse_args()
    if args.mode == "files":
        run_files(args)
    elif args.mode == "two-ports":
        run_two_ports(args)
    elif args.mode == "accept-loop":
        run_accept_loop(args)
    elif args.mode == "send-then":
        run_send_then(args)
    elif args.mode == "echo":
        asyncio.run(echo_main(args))
    else:
        asyncio.run(asyncio_main(args))


if __name__ == "__main__":
    main()
