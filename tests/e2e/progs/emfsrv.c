/*
 * emfsrv PORT PLAIN_PORT: a one-thread poll() server for the fd-limit scenario
 * (tests/e2e/13-emfile.sh), run with a low RLIMIT_NOFILE.
 *
 * It listens on PORT (TLS under Atlas) and PLAIN_PORT (never TLS), accepts
 * with accept4(SOCK_NONBLOCK) and holds every connection until it sends a
 * request head (up to an empty line), which it answers with
 * "fd=N port=P" and a close. Idle connections are held until the client
 * closes them. When accept fails, it prints one line per episode,
 *   emfsrv: accept on port P failed: EMFILE (Too many open files)
 * (the errno's name, from glibc), stops polling that listener for 100 ms (as
 * servers do, rather than spin on a backlog it cannot take), and prints
 *   emfsrv: accepting again on port P after N failed calls
 * at its next success. Each answer is also logged: "emfsrv: answered fd=N port=P".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4096
#define HEAD_MAX  4096

struct conn {
	int fd;
	unsigned port;
	size_t got;
	char head[HEAD_MAX];
};

static struct conn *conns[MAX_CONNS];
static int nconns;

static int listen_on(unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((unsigned short)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 128) < 0) {
		perror("emfsrv: bind/listen");
		exit(2);
	}
	return l;
}

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

struct listener {
	int fd;
	unsigned port;
	long failures;	      /* failed accept calls in the current episode */
	long long paused_til; /* not polled before this (ms), after a failure */
};

static void accept_one(struct listener *l)
{
	int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK);
	struct conn *c;

	if (fd < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED ||
		    errno == EINTR)
			return;
		if (l->failures++ == 0)
			printf("emfsrv: accept on port %u failed: %s (%s)\n", l->port,
			       strerrorname_np(errno), strerror(errno));
		l->paused_til = now_ms() + 100;
		return;
	}
	if (l->failures > 0) {
		printf("emfsrv: accepting again on port %u after %ld failed calls\n", l->port,
		       l->failures);
		l->failures = 0;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || nconns == MAX_CONNS) {
		free(c);
		close(fd);
		return;
	}
	c->fd = fd;
	c->port = l->port;
	conns[nconns++] = c;
}

/* Reads what is there; answers a complete head. 1 while the connection stays. */
static int serve(struct conn *c)
{
	char body[64], out[160];
	ssize_t n = read(c->fd, c->head + c->got, sizeof(c->head) - 1 - c->got);
	int bl, ol;

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 1;
	if (n <= 0)
		return 0;
	c->got += (size_t)n;
	c->head[c->got] = '\0';
	if (strstr(c->head, "\r\n\r\n") == NULL)
		return c->got < sizeof(c->head) - 1;
	bl = snprintf(body, sizeof(body), "fd=%d port=%u\n", c->fd, c->port);
	ol = snprintf(out, sizeof(out),
		      "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
		      "Connection: close\r\n\r\n%s",
		      bl, body);
	for (int off = 0; off < ol;) {
		ssize_t w = write(c->fd, out + off, (size_t)(ol - off));

		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			struct pollfd p = { .fd = c->fd, .events = POLLOUT };
			poll(&p, 1, 1000);
			continue;
		}
		if (w <= 0)
			return 0;
		off += (int)w;
	}
	printf("emfsrv: answered fd=%d port=%u\n", c->fd, c->port);
	return 0;
}

int main(int argc, char **argv)
{
	struct listener ls[2];
	static struct pollfd pfd[MAX_CONNS + 2];

	if (argc != 3) {
		fprintf(stderr, "usage: emfsrv PORT PLAIN_PORT\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < 2; i++) {
		ls[i].port = (unsigned)atoi(argv[1 + i]);
		ls[i].fd = listen_on(ls[i].port);
		ls[i].failures = 0;
		ls[i].paused_til = 0;
	}
	printf("emfsrv: listening on %u and %u\n", ls[0].port, ls[1].port);
	for (;;) {
		long long now = now_ms();
		int n = 0, timeout = -1;

		for (int i = 0; i < 2; i++) {
			bool paused = ls[i].paused_til > now;

			pfd[n++] =
				(struct pollfd){ .fd = paused ? -1 : ls[i].fd, .events = POLLIN };
			if (paused && (timeout < 0 || ls[i].paused_til - now < timeout))
				timeout = (int)(ls[i].paused_til - now);
		}
		for (int i = 0; i < nconns; i++)
			pfd[n++] = (struct pollfd){ .fd = conns[i]->fd, .events = POLLIN };
		if (poll(pfd, (nfds_t)n, timeout) < 0)
			continue;
		for (int i = 0; i < nconns; i++) {
			if (!pfd[2 + i].revents || serve(conns[i]))
				continue;
			close(conns[i]->fd);
			free(conns[i]);
			conns[i] = conns[--nconns];
			pfd[2 + i] = pfd[2 + nconns];
			i--;
		}
		for (int i = 0; i < 2; i++)
			if (pfd[i].revents & POLLIN)
				accept_one(&ls[i]);
	}
}
