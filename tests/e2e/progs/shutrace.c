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
 * release it within 2 s (the kernel's and Atlas's do within milliseconds), and
 * with EPIPE or a short count, not EAGAIN, even when the socket has a send
 * timeout (SO_SNDTIMEO of 500 ms, odd seeds). What it counted must still reach
 * the client, once it reads, and then the end: the kernel sends its queue
 * after a shutdown, and Atlas the record the write began.
 *
 * "go SEED stallcut": the same, but the stream may end cut short and no count
 * comes back. For the kernel path: kTLS lets one sender in at a time, so a
 * writer blocked in the kernel holds close_notify back, and only the real
 * shutdown (its FIN) releases that writer.
 *
 * Every problem the server sees is one line on stderr starting "shutrace: ".
 */
#define _GNU_SOURCE
#include <netinet/tcp.h>
#include <time.h>

#include "rounds.h"

#define WRITE_CAP (16u << 20) /* a writer the shutdown has not stopped by then stops */

struct round {
	int fd;
	unsigned seed;
	int shut_done; /* shutdown() has returned (atomic) */
	int stop;      /* the poller may end (atomic) */
	int stall;     /* the client reads nothing for 3 s: no cork */
	int cut_ok;    /* ... and the end may come cut short: no count comes back */
	size_t wrote;  /* what the writer's writes counted as written */
};

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
	r.cut_ok = strcmp(word, "stallcut") == 0;
	r.stall = r.cut_ok || strcmp(word, "stall") == 0;
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
		if (r.cut_ok) {
			close(r.fd);
			return NULL;
		}
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
	return serve_rounds("shutrace", argc, argv, conn_main);
}
