/*
 * duowrite PORT: two threads write one connection at once, for
 * tests/e2e/29-two-writers.sh. A thread per connection reads "go SEED\n", then
 * starts two writers. Writer t (0 or 1) writes its own stream, in which byte i
 * is 2 * (i % 128) + t: the client tells the two apart by the lowest bit, and
 * what TCP promises two writers must hold whoever encrypts:
 *   - each writer's bytes arrive in its own order, none twice, none missing;
 *   - every byte a write counted as written arrives, and nothing else.
 * (Two writers' bytes may interleave anywhere: a blocking write that waits for
 * room lets another thread's write in before the rest of its own.)
 *
 * SEED chooses, so that a round can be replayed: a tiny send buffer or the
 * default; blocking writers, or non-blocking ones that wait with poll() after
 * EAGAIN and then write a different length from the same place (a socket lets
 * its owner write whatever it likes after EAGAIN; OpenSSL's SSL_write does
 * not); and the sizes of the writes (1 byte to 40 KB).
 *
 * When both writers are done the thread shuts the connection down for writes;
 * the client reads to the end and answers "got N0 N1", each writer's count,
 * which the thread compares with what the writes counted. Every problem is one
 * line on stderr starting "duowrite: ".
 */
#define _GNU_SOURCE
#include <fcntl.h>

#include "rounds.h"

#define STREAM_LEN (256u << 10) /* each writer's stream */
#define WRITE_MAX  40000

struct writer {
	int fd;
	int t;
	int nonblock;
	unsigned seed;
	size_t wrote;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	static __thread unsigned char buf[WRITE_MAX];
	unsigned s = (w->seed * 2654435761u) ^ (unsigned)(w->t + 1) * 40503u;

	s |= 1;
	while (w->wrote < STREAM_LEN) {
		size_t len = 1 + next_rand(&s) % WRITE_MAX;
		ssize_t n;

		if (len > STREAM_LEN - w->wrote)
			len = STREAM_LEN - w->wrote;
		for (size_t i = 0; i < len; i++)
			buf[i] = (unsigned char)(2 * ((w->wrote + i) % 128) + (size_t)w->t);
		n = write(w->fd, buf, len);
		if (n < 0 && w->nonblock && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = w->fd, .events = POLLOUT };

			if (poll(&pfd, 1, 10000) != 1) {
				fprintf(stderr, "duowrite: seed %u: writer %d: no room for 10 s\n",
					w->seed, w->t);
				return NULL;
			}
			continue; /* a new length from the same place */
		}
		if (n <= 0) {
			fprintf(stderr, "duowrite: seed %u: writer %d: write: %s\n", w->seed, w->t,
				n < 0 ? strerror(errno) : "returned 0");
			return NULL;
		}
		w->wrote += (size_t)n;
	}
	return NULL;
}

static void *conn_main(void *arg)
{
	int fd = (int)(long)arg;
	struct timeval tv = { .tv_sec = 20 };
	struct writer w[2];
	pthread_t th[2];
	char line[64];
	size_t got[2];
	unsigned seed, s;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!read_line(fd, line, sizeof(line)) || sscanf(line, "go %u", &seed) != 1) {
		fprintf(stderr, "duowrite: no \"go SEED\" line\n");
		close(fd);
		return NULL;
	}
	s = seed | 1;
	if (next_rand(&s) % 2) {
		int size = 1; /* the kernel's minimum: the writers soon wait for the client */

		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	}
	int nonblock = next_rand(&s) % 2;

	if (nonblock)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	for (int t = 0; t < 2; t++) {
		w[t] = (struct writer){ .fd = fd, .t = t, .nonblock = nonblock, .seed = seed };
		pthread_create(&th[t], NULL, writer_main, &w[t]);
	}
	for (int t = 0; t < 2; t++)
		pthread_join(th[t], NULL);
	if (shutdown(fd, SHUT_WR) < 0)
		fprintf(stderr, "duowrite: seed %u: shutdown: %s\n", seed, strerror(errno));
	if (!read_line(fd, line, sizeof(line)) ||
	    sscanf(line, "got %zu %zu", &got[0], &got[1]) != 2)
		fprintf(stderr,
			"duowrite: seed %u: wrote %zu and %zu bytes; no \"got\" line came back\n",
			seed, w[0].wrote, w[1].wrote);
	else if (got[0] != w[0].wrote || got[1] != w[1].wrote)
		fprintf(stderr,
			"duowrite: seed %u: wrote %zu and %zu bytes, the client got %zu and %zu\n",
			seed, w[0].wrote, w[1].wrote, got[0], got[1]);
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	return serve_rounds("duowrite", argc, argv, conn_main);
}
