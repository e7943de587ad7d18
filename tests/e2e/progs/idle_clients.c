/*
 * idle_clients: opens N connections to a server and holds them idle, to
 * measure what each idle connection costs the server (tests/e2e/idle-lib.sh).
 *
 *   idle_clients --port PORT [--host 127.0.0.1] [-n N] [--plain] [--tls 1.2|1.3]
 *       [--cipher NAME] [--ca FILE] [--request PATH] [--timeout SECONDS] [--signal]
 *       [--keylog FILE]
 *
 * Each connection completes its TLS handshake (none with --plain) and, with
 * --request, one HTTP/1.1 keep-alive request whose whole response is read
 * (Content-Length), so the server has finished with it and sits idle. When all
 * N are up it prints "ready N" on stdout and holds them until stdin reaches end
 * of file or a line arrives, or SIGTERM/SIGINT (with --signal, only a signal);
 * then it sends close_notify on each, closes them all, prints "closed N" and
 * exits 0. Any failure: one line on stderr, exit 1. Blocking sockets with a
 * receive and send timeout: bounded. --keylog appends every session's secrets
 * to FILE as NSS key log lines (what SSLKEYLOGFILE does for curl).
 * --cipher is a TLS 1.2 cipher list or a TLS 1.3 suite, depending on --tls.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

struct opts {
	const char *host;
	int port;
	int n;
	int plain;
	int tls; /* 0: any, 12, 13 */
	const char *cipher;
	const char *ca;
	const char *request;
	int timeout;
	int wait_signal;
	const char *keylog;
};

static FILE *keylog_file;

static void keylog_line(const SSL *ssl, const char *line)
{
	(void)ssl;
	fprintf(keylog_file, "%s\n", line);
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: idle_clients --port PORT [--host 127.0.0.1] [-n N] [--plain] "
			"[--tls 1.2|1.3] [--cipher NAME] [--ca FILE] [--request PATH] "
			"[--timeout SECONDS] [--signal] [--keylog FILE]\n");
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .host = "127.0.0.1", .n = 1000, .timeout = 20 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--plain") == 0) {
			o->plain = 1;
			continue;
		}
		if (strcmp(a, "--signal") == 0) {
			o->wait_signal = 1;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--port") == 0)
			o->port = atoi(v);
		else if (strcmp(a, "--host") == 0)
			o->host = v;
		else if (strcmp(a, "-n") == 0)
			o->n = atoi(v);
		else if (strcmp(a, "--tls") == 0)
			o->tls = strcmp(v, "1.2") == 0 ? 12 : strcmp(v, "1.3") == 0 ? 13 : -1;
		else if (strcmp(a, "--cipher") == 0)
			o->cipher = v;
		else if (strcmp(a, "--ca") == 0)
			o->ca = v;
		else if (strcmp(a, "--request") == 0)
			o->request = v;
		else if (strcmp(a, "--timeout") == 0)
			o->timeout = atoi(v);
		else if (strcmp(a, "--keylog") == 0)
			o->keylog = v;
		else
			usage();
	}
	if (o->port <= 0 || o->port > 65535 || o->n <= 0 || o->tls < 0 || o->timeout <= 0)
		usage();
}

static void die(const char *what, int i)
{
	unsigned long e = ERR_get_error();

	fprintf(stderr, "idle_clients: connection %d: %s%s%s%s%s\n", i, what, errno ? ": " : "",
		errno ? strerror(errno) : "", e ? ": " : "",
		e ? ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "?" : "");
	exit(1);
}

/* Room for n connections and a few more fds. */
static void raise_nofile(int n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= (rlim_t)n + 64)
		return;
	rl.rlim_cur = (rlim_t)n + 64;
	if (rl.rlim_max < rl.rlim_cur)
		rl.rlim_max = rl.rlim_cur; /* root may raise the hard limit */
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		fprintf(stderr, "idle_clients: cannot raise RLIMIT_NOFILE to %d: %s\n", n + 64,
			strerror(errno));
		exit(1);
	}
}

static SSL_CTX *make_ctx(const struct opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (o->tls == 12) {
		SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
		if (o->cipher && SSL_CTX_set_cipher_list(ctx, o->cipher) != 1)
			return NULL;
	} else if (o->tls == 13) {
		SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
		if (o->cipher && SSL_CTX_set_ciphersuites(ctx, o->cipher) != 1)
			return NULL;
	}
	if (o->keylog) {
		keylog_file = fopen(o->keylog, "a");
		if (keylog_file == NULL)
			return NULL;
		SSL_CTX_set_keylog_callback(ctx, keylog_line);
	}
	if (o->ca) {
		if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1)
			return NULL;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	return ctx;
}

static int dial(const struct opts *o, int i)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o->port) };
	struct timeval tv = { .tv_sec = o->timeout };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (inet_pton(AF_INET, o->host, &a.sin_addr) != 1) {
		fprintf(stderr, "idle_clients: --host %s is not an IPv4 address\n", o->host);
		exit(2);
	}
	if (fd < 0)
		die("socket", i);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connect", i);
	return fd;
}

/* Plain or TLS I/O on one connection. */
static int io_write(SSL *ssl, int fd, const char *buf, int len)
{
	return ssl ? SSL_write(ssl, buf, len) : (int)write(fd, buf, (size_t)len);
}

static int io_read(SSL *ssl, int fd, char *buf, int len)
{
	return ssl ? SSL_read(ssl, buf, len) : (int)read(fd, buf, (size_t)len);
}

/* One GET on a keep-alive connection; reads the whole response by its Content-Length. */
static void request(const struct opts *o, SSL *ssl, int fd, int i)
{
	char req[512], buf[8192];
	int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n",
			   o->request);
	int have = 0;
	long want = -1;

	errno = 0;
	if (io_write(ssl, fd, req, len) != len)
		die("writing the request", i);
	for (;;) {
		char *end, *cl;
		int n = io_read(ssl, fd, buf + have, (int)sizeof(buf) - 1 - have);

		if (n <= 0)
			die("reading the response", i);
		have += n;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end == NULL) {
			if (have >= (int)sizeof(buf) - 1)
				die("response headers too long", i);
			continue;
		}
		if (strncmp(buf, "HTTP/1.1 200", 12) != 0) {
			errno = 0;
			die("the response is not 200", i);
		}
		cl = strcasestr(buf, "\r\nContent-Length:");
		if (cl == NULL || cl > end) {
			errno = 0;
			die("the response has no Content-Length", i);
		}
		want = (end + 4 - buf) + strtol(cl + 17, NULL, 10);
		break;
	}
	while (have < want) {
		int n = io_read(ssl, fd, buf, (int)sizeof(buf));

		if (n <= 0)
			die("reading the response body", i);
		have += n;
	}
}

int main(int argc, char **argv)
{
	struct opts o;
	SSL_CTX *ctx = NULL;
	SSL **ssl;
	int *fds;
	char line[64];
	struct sigaction sa = { .sa_handler = on_signal };

	parse(argc, argv, &o);
	raise_nofile(o.n);
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (!o.plain && (ctx = make_ctx(&o)) == NULL)
		die("cannot set up the TLS context (--cipher, --ca?)", -1);
	ssl = calloc((size_t)o.n, sizeof(*ssl));
	fds = calloc((size_t)o.n, sizeof(*fds));
	if (ssl == NULL || fds == NULL)
		die("out of memory", -1);
	for (int i = 0; i < o.n && !stop; i++) {
		fds[i] = dial(&o, i);
		if (ctx) {
			ssl[i] = SSL_new(ctx);
			if (ssl[i] == NULL || SSL_set_fd(ssl[i], fds[i]) != 1)
				die("SSL_new", i);
			SSL_set_tlsext_host_name(ssl[i], "localhost");
			errno = 0;
			if (SSL_connect(ssl[i]) != 1)
				die("handshake", i);
		}
		if (o.request)
			request(&o, ssl[i], fds[i], i);
	}
	if (stop)
		return 1;
	printf("ready %d\n", o.n);
	fflush(stdout);
	/* Idle until told: a signal, or (without --signal) a line or end of file on stdin. */
	while (!stop) {
		if (o.wait_signal) {
			pause();
			continue;
		}
		errno = 0;
		if (fgets(line, sizeof(line), stdin) != NULL || errno != EINTR)
			break;
		clearerr(stdin);
	}
	for (int i = 0; i < o.n; i++) {
		if (ssl[i]) {
			SSL_shutdown(ssl[i]);
			SSL_free(ssl[i]);
		}
		close(fds[i]);
	}
	if (keylog_file)
		fclose(keylog_file);
	printf("closed %d\n", o.n);
	SSL_CTX_free(ctx);
	free(ssl);
	free(fds);
	return 0;
}
