/*
 * sendfile_srv: a tiny single-threaded server on 127.0.0.1 for the kernel TLS
 * end-to-end tests, run under atlas-preload.sh. It knows nothing of TLS.
 *
 *   sendfile_srv [--max-conns N] PORT http DIR
 *       Answers each GET with the file DIR/PATH the way static file servers
 *       do: open, fstat, the head with write(2), the body with a sendfile(2)
 *       loop. A request with "Connection: keep-alive" keeps the connection
 *       for the next one (HTTP/1.1); otherwise the connection closes after
 *       the response (HTTP/1.0).
 *   sendfile_srv [--max-conns N] PORT echo|splice-echo|echo-write
 *       Writes back every byte it reads (a read/write loop), until end of file
 *       or an error. splice-echo moves the bytes with splice(2) instead, socket
 *       to pipe and pipe to socket, and at the end splices once more (the end
 *       must stay the end). echo-write writes one byte after the end or the
 *       read's failure (after a shutdown, Atlas's or the server's, it must
 *       fail with EPIPE).
 *
 * One line per connection on stderr (unbuffered), for the tests to check:
 *   sendfile_srv: conn I: GET /PATH 200 N bytes (C sendfile calls)
 *   sendfile_srv: conn I: echo: end of file after N bytes
 *   sendfile_srv: conn I: echo: end of file after N bytes; splice again: 0|ERRNO
 *   sendfile_srv: conn I: echo: end of file after N bytes; write after it: 1|ERRNO
 *   sendfile_srv: conn I: echo: read failed after N bytes: ERRNO; write after it: 1|ERRNO
 *   sendfile_srv: conn I: echo: read failed after N bytes: ERRNO (strerror)
 * With --max-conns N it exits 0 after its Nth connection (for strace runs).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static long conn_no;

static void say(const char *fmt, ...)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "sendfile_srv: conn %ld: ", conn_no);
	va_list ap;

	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(2, line, (size_t)n) < 0)
		return;
}

static const char *errno_name(int e)
{
	switch (e) {
	case ECONNRESET:
		return "ECONNRESET";
	case EBADMSG:
		return "EBADMSG";
	case EIO:
		return "EIO";
	case EPIPE:
		return "EPIPE";
	case EAGAIN:
		return "EAGAIN";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EINVAL:
		return "EINVAL";
	case ENOTCONN:
		return "ENOTCONN";
	default:
		return "E?";
	}
}

static bool write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

enum echo_mode { ECHO_RW, ECHO_SPLICE, ECHO_WRITE_AFTER };

/* Reads up to len bytes into buf (ECHO_SPLICE: into the pipe pp) and writes them back. */
static ssize_t echo_in(int s, enum echo_mode m, const int *pp, char *buf, size_t len)
{
	if (m == ECHO_SPLICE)
		return splice(s, NULL, pp[1], NULL, len, 0);
	return read(s, buf, len);
}

static bool echo_out(int s, enum echo_mode m, const int *pp, const char *buf, size_t len)
{
	while (m == ECHO_SPLICE && len > 0) {
		ssize_t n = splice(pp[0], NULL, s, NULL, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		len -= (size_t)n;
	}
	return m == ECHO_SPLICE || write_all(s, buf, len);
}

/* "0" or the errno's name, of a call's result n. */
static const char *result_name(ssize_t n, char *out, size_t outlen)
{
	if (n < 0)
		return errno_name(errno);
	snprintf(out, outlen, "%zd", n);
	return out;
}

static void echo(int s, enum echo_mode m)
{
	char buf[65536], again[32];
	long total = 0;
	int pp[2] = { -1, -1 };

	if (m == ECHO_SPLICE && pipe(pp) < 0) {
		say("echo: pipe: %s", strerror(errno));
		return;
	}
	for (;;) {
		ssize_t n = echo_in(s, m, pp, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 && m == ECHO_RW) {
			say("echo: end of file after %ld bytes", total);
			return;
		}
		if (n == 0 && m == ECHO_SPLICE) {
			n = splice(s, NULL, pp[1], NULL, sizeof(buf), SPLICE_F_NONBLOCK);
			say("echo: end of file after %ld bytes; splice again: %s", total,
			    result_name(n, again, sizeof(again)));
			close(pp[0]);
			close(pp[1]);
			return;
		}
		if (n == 0) {
			n = write(s, "x", 1);
			say("echo: end of file after %ld bytes; write after it: %s", total,
			    result_name(n, again, sizeof(again)));
			return;
		}
		if (n < 0 && m == ECHO_WRITE_AFTER) {
			int e = errno;

			n = write(s, "x", 1);
			say("echo: read failed after %ld bytes: %s; write after it: %s", total,
			    errno_name(e), result_name(n, again, sizeof(again)));
			return;
		}
		if (n < 0) {
			int e = errno;

			say("echo: read failed after %ld bytes: %s (%s)", total, errno_name(e),
			    strerror(e));
			if (pp[0] >= 0) {
				close(pp[0]);
				close(pp[1]);
			}
			return;
		}
		if (!echo_out(s, m, pp, buf, (size_t)n)) {
			int e = errno;

			say("echo: write failed after %ld bytes: %s (%s)", total, errno_name(e),
			    strerror(e));
			return;
		}
		total += n;
	}
}

/* One response; true if the connection stays open for another request. */
static bool respond(int s, const char *dir, const char *req)
{
	char path[PATH_MAX], head[512], target[1024] = "";
	bool keep = strcasestr(req, "\r\nConnection: keep-alive") != NULL;
	const char *proto = keep ? "HTTP/1.1" : "HTTP/1.0";
	struct stat st;
	off_t off = 0;
	long calls = 0;
	int f = -1, n;

	if (sscanf(req, "GET %1023s ", target) != 1 || target[0] != '/' ||
	    strstr(target, "..") != NULL) {
		n = snprintf(head, sizeof(head),
			     "%s 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			     proto);
		write_all(s, head, (size_t)n);
		say("bad request");
		return false;
	}
	snprintf(path, sizeof(path), "%s%s", dir, target);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0 || fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
		n = snprintf(head, sizeof(head), "%s 404 Not Found\r\nContent-Length: 0\r\n%s\r\n",
			     proto, keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
		if (f >= 0)
			close(f);
		say("GET %s 404", target);
		return write_all(s, head, (size_t)n) && keep;
	}
	n = snprintf(head, sizeof(head),
		     "%s 200 OK\r\nContent-Type: application/octet-stream\r\n"
		     "Content-Length: %lld\r\nConnection: %s\r\n\r\n",
		     proto, (long long)st.st_size, keep ? "keep-alive" : "close");
	if (!write_all(s, head, (size_t)n)) {
		int e = errno;

		say("GET %s: writing the head failed: %s (%s)", target, errno_name(e), strerror(e));
		close(f);
		return false;
	}
	while (off < st.st_size) {
		ssize_t r = sendfile(s, f, &off, (size_t)(st.st_size - off));

		calls++;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = errno;

			say("GET %s: sendfile failed at %lld: %s (%s)", target, (long long)off,
			    errno_name(e), strerror(e));
			close(f);
			return false;
		}
	}
	close(f);
	say("GET %s 200 %lld bytes (%ld sendfile calls)", target, (long long)st.st_size, calls);
	return keep;
}

static void http(int s, const char *dir)
{
	char buf[8192];
	size_t used = 0;

	for (;;) {
		char *eoh;
		size_t len;

		buf[used] = '\0';
		while ((eoh = strstr(buf, "\r\n\r\n")) == NULL) {
			ssize_t n;

			if (used >= sizeof(buf) - 1) {
				say("request head too long");
				return;
			}
			n = read(s, buf + used, sizeof(buf) - 1 - used);
			if (n < 0 && errno == EINTR)
				continue;
			if (n == 0) {
				if (used > 0)
					say("end of file inside a request");
				return;
			}
			if (n < 0) {
				int e = errno;

				say("read failed: %s (%s)", errno_name(e), strerror(e));
				return;
			}
			used += (size_t)n;
			buf[used] = '\0';
		}
		eoh[2] = '\0'; /* the head keeps its last line's CRLF */
		if (!respond(s, dir, buf))
			return;
		len = (size_t)(eoh + 4 - buf);
		memmove(buf, eoh + 4, used - len);
		used -= len;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	long max_conns = -1;
	const char *mode, *dir = NULL;
	enum echo_mode em = ECHO_RW;
	int l, one = 1, argi = 1;

	if (argc > 2 && strcmp(argv[1], "--max-conns") == 0) {
		max_conns = atol(argv[2]);
		argi = 3;
	}
	if (argc - argi < 2)
		goto usage;
	mode = argv[argi + 1];
	if (strcmp(mode, "http") == 0 && argc - argi == 3)
		dir = argv[argi + 2];
	else if (argc - argi == 2 && strcmp(mode, "splice-echo") == 0)
		em = ECHO_SPLICE;
	else if (argc - argi == 2 && strcmp(mode, "echo-write") == 0)
		em = ECHO_WRITE_AFTER;
	else if (strcmp(mode, "echo") != 0 || argc - argi != 2)
		goto usage;
	signal(SIGPIPE, SIG_IGN);
	a.sin_port = htons((unsigned short)atoi(argv[argi]));
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 16) < 0) {
		perror("sendfile_srv: bind/listen");
		return 2;
	}
	fprintf(stderr, "sendfile_srv: listening on 127.0.0.1:%s (%s)\n", argv[argi], mode);
	while (max_conns < 0 || conn_no < max_conns) {
		struct timeval tv = { .tv_sec = 30 };
		int s = accept(l, NULL, NULL);

		if (s < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				perror("sendfile_srv: accept");
			continue;
		}
		conn_no++;
		/* A client that stalls must not hold the only thread forever. */
		setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (dir != NULL)
			http(s, dir);
		else
			echo(s, em);
		close(s);
	}
	return 0;
usage:
	fprintf(stderr, "usage: sendfile_srv [--max-conns N] PORT http DIR\n"
			"       sendfile_srv [--max-conns N] PORT echo|splice-echo|echo-write\n");
	return 2;
}
