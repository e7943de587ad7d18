/*
 * What tests/e2e/progs/shutrace.c and duowrite.c share: servers that play one
 * seeded round per connection, a thread each, on blocking or non-blocking
 * sockets. Each says what went wrong as one line on stderr starting with its
 * name.
 */
#ifndef ATLAS_TEST_ROUNDS_H
#define ATLAS_TEST_ROUNDS_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A small deterministic generator (xorshift32): the same SEED replays the same round. */
static inline unsigned next_rand(unsigned *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/*
 * Reads one line into buf (without its newline); false on EOF, error or
 * timeout (SO_RCVTIMEO; 20 s of poll on a non-blocking socket).
 */
static inline int read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n < size - 1) {
		ssize_t got = read(fd, buf + n, 1);

		if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };

			if (errno == EAGAIN && poll(&pfd, 1, 20000) != 1)
				return 0;
			continue;
		}
		if (got <= 0)
			return 0;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return 1;
}

/*
 * The server's main: listens on 127.0.0.1:PORT (argv[1]) and runs
 * conn_main((void *)(long)fd) in a detached thread per connection, forever.
 */
static inline int serve_rounds(const char *name, int argc, char **argv, void *(*conn_main)(void *))
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int l, one = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PORT\n", name);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	a.sin_port = htons((unsigned short)atoi(argv[1]));
	l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 16) < 0) {
		perror(name);
		return 2;
	}
	for (;;) {
		int c = accept(l, NULL, NULL);
		pthread_t t;

		if (c < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				fprintf(stderr, "%s: accept: %s\n", name, strerror(errno));
			continue;
		}
		if (pthread_create(&t, NULL, conn_main, (void *)(long)c) != 0) {
			fprintf(stderr, "%s: pthread_create failed\n", name);
			close(c);
			continue;
		}
		pthread_detach(t);
	}
}

#endif
