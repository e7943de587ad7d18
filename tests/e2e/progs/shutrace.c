/*
 * shutrace PORT: a thread-per-connection server on blocking sockets for
 * tests/e2e/28-shutdown-race.sh. On each connection one thread writes (mostly
 * corked: several writes, then an uncork), a second polls the socket without
 * reading (so that its waits flush corked bytes), and the connection's own
 * thread, after a pause, calls shutdown(SHUT_WR) while the writer is in the
 * middle of it. What TCP promises there must hold, whoever holds the bytes
 * (the kernel, or Atlas's corked record and OpenSSL's pending one):
 *   - every byte a write counted as written reaches the client, before the end;
 *   - the end (the FIN; close_notify over TLS) reaches the client: a shutdown
 *     never leaves it waiting behind bytes that could not go out at once;
 *   - a write begun after shutdown() returned fails with EPIPE;
 *   - the connection can still be read from.
 *
 * The client (shutrace.py) sends "go SEED\n", reads to the end of the stream
 * and answers "got N\n"; the server compares N with what its writer counted.
 * SEED chooses the pause before the shutdown, the send buffer (tiny or the
 * default), the sizes of the writes and which are corked, so that one round
 * can be replayed. Bodies are pattern bytes: byte i of the stream is i % 251.
 *
 * "go SEED stall": the client reads nothing for 3 s. The writer (uncorked, a
 * tiny send buffer) soon waits for room; the shutdown comes 200 ms in and must
 * release it within 2 s (the kernel's does at once; Atlas gives the write a
 * second to finish the record it began), and with EPIPE, not EAGAIN, even when
 * the socket has a send timeout (SO_SNDTIMEO of 500 ms, odd seeds) that passes
 * meanwhile. No count comes back then: over TLS the stream may end cut short,
 * and the connection with it.
 *
 * Every problem the server sees is one line on stderr starting "shutrace: ".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WRITE_CAP (16u << 20) /* a writer the shutdown has not stopped by then stops */

struct round {
	int fd;
	unsigned seed;
	int shut_done; /* shutdown() has returned (atomic) */
	int stop;      /* the poller may end (atomic) */
	int stall;     /* the client reads nothing for 3 s: no cork */
	size_t wrote;  /* what the writer's writes counted as written */
};

/* A small deterministic generator (xorshift32): the same SEED replays the same round. */
static unsigned next_rand(unsigned *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void fill(unsigned char *p, size_t n, size_t from)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((from + i) % 251);
}

static void cork(int fd, int on)
{
	if (setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)) < 0)
		fprintf(stderr, "shutrace: setsockopt TCP_CORK %d: %s\n", on, strerror(errno));
}

static void *writer(void *arg)
{
	struct round *r = arg;
	unsigned char buf[6000];
	unsigned s = r->seed * 2654435761u | 1;

	while (r->wrote < WRITE_CAP) {
		int corked = !r->stall && next_rand(&s) % 4 != 0;
		int writes = 1 + (int)(next_rand(&s) % 6);

		if (corked)
			cork(r->fd, 1);
		for (int i = 0; i < writes; i++) {
			size_t len = 1 + next_rand(&s) % sizeof(buf);
			int after = __atomic_load_n(&r->shut_done, __ATOMIC_ACQUIRE);
			ssize_t n;

			fill(buf, len, r->wrote);
			n = write(r->fd, buf, len);
			if (n < 0) {
				if (errno != EPIPE)
					fprintf(stderr, "shutrace: seed %u: a write failed: %s\n",
						r->seed, strerror(errno));
				return NULL;
			}
			if (after)
				fprintf(stderr,
					"shutrace: seed %u: a write begun after shutdown() "
					"returned "
					"wrote %zd bytes\n",
					r->seed, n);
			r->wrote += (size_t)n;
		}
		if (corked)
			cork(r->fd, 0);
	}
	return NULL;
}

/* Waits on the socket without reading: every wait flushes what is corked. */
static void *poller(void *arg)
{
	struct round *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd pfd = { .fd = r->fd, .events = 0 };

		poll(&pfd, 1, 1);
	}
	return NULL;
}

/* Reads one line into buf (without its newline); false on EOF, error or timeout. */
static int read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n < size - 1) {
		ssize_t got = read(fd, buf + n, 1);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return 0;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return 1;
}

static void *conn_main(void *arg)
{
	struct round r = { .fd = (int)(long)arg };
	struct timeval tv = { .tv_sec = 20 };
	struct timespec pause;
	pthread_t w, p;
	char line[64], word[16] = "";
	struct timespec t0, t1;
	unsigned s;
	size_t got;

	setsockopt(r.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!read_line(r.fd, line, sizeof(line)) || sscanf(line, "go %u %15s", &r.seed, word) < 1) {
		fprintf(stderr, "shutrace: no \"go SEED\" line\n");
		close(r.fd);
		return NULL;
	}
	r.stall = strcmp(word, "stall") == 0;
	s = r.seed | 1;
	if (next_rand(&s) % 2 || r.stall) {
		int size = 1; /* the kernel's minimum: the writer soon waits for the client */

		setsockopt(r.fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	}
	if (r.stall && r.seed % 2) {
		struct timeval snd = { .tv_usec = 500000 };

		setsockopt(r.fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
	}
	pause.tv_sec = 0;
	pause.tv_nsec = r.stall ? 200000000 : (long)(next_rand(&s) % 4000) * 1000; /* 0 to 4 ms */
	pthread_create(&w, NULL, writer, &r);
	pthread_create(&p, NULL, poller, &r);
	nanosleep(&pause, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (shutdown(r.fd, SHUT_WR) < 0)
		fprintf(stderr, "shutrace: seed %u: shutdown: %s\n", r.seed, strerror(errno));
	__atomic_store_n(&r.shut_done, 1, __ATOMIC_RELEASE);
	pthread_join(w, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(p, NULL);
	if (r.stall) {
		double secs =
			(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

		if (secs > 2.0)
			fprintf(stderr,
				"shutrace: seed %u: the writer returned %.1f s after shutdown() "
				"began, with the client not reading\n",
				r.seed, secs);
		close(r.fd);
		return NULL;
	}
	if (!read_line(r.fd, line, sizeof(line)) || sscanf(line, "got %zu", &got) != 1)
		fprintf(stderr, "shutrace: seed %u: wrote %zu bytes; no \"got N\" line came back\n",
			r.seed, r.wrote);
	else if (got != r.wrote)
		fprintf(stderr, "shutrace: seed %u: wrote %zu bytes, the client got %zu\n", r.seed,
			r.wrote, got);
	close(r.fd);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int l, one = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: shutrace PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	a.sin_port = htons((unsigned short)atoi(argv[1]));
	l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 16) < 0) {
		perror("shutrace");
		return 2;
	}
	for (;;) {
		int c = accept(l, NULL, NULL);
		pthread_t t;

		if (c < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				fprintf(stderr, "shutrace: accept: %s\n", strerror(errno));
			continue;
		}
		if (pthread_create(&t, NULL, conn_main, (void *)(long)c) != 0) {
			fprintf(stderr, "shutrace: pthread_create failed\n");
			close(c);
			continue;
		}
		pthread_detach(t);
	}
}
