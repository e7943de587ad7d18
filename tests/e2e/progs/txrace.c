/*
 * txrace PORT FILE: a plaintext server for tests/e2e/32-ktls-apps.sh (run under Atlas,
 * inside User-Mode Linux) whose shutdown or close comes from one thread while another
 * is still in a blocking send on the same connection: on the kernel path, kTLS lets
 * one sender in at a time and keeps a blocked one in until the client reads, and a
 * sendfile lets other senders in between its pages. Each connection sends one line,
 * its mode; the socket's send buffer is 64 KiB, so the send below blocks while the
 * client does not read:
 *
 *   write-close     a thread writes 8 MiB in one blocking write(); 300 ms later the
 *                   main thread closes the fd;
 *   sendfile-close  the same with sendfile() of FILE (8 MiB);
 *   write-shut      the same write, and shutdown(SHUT_WR) instead of the close;
 *   sendfile-shut   the same sendfile, and shutdown(SHUT_WR) instead of the close;
 *   dup-write-close, dup-sendfile-close  the send goes on a dup() of the fd, and the
 *                   main thread closes that dup, then the fd (N: both closes);
 *   write-cancel    the writing thread is cancelled (pthread_cancel) in its write and
 *                   joined, then the main thread closes the fd (N: the close).
 *
 * Prints "txrace: MODE took N ms, the send returned R" on stdout once the sending
 * thread has returned (R: -1 for a cancelled one).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SEND_BYTES (8 << 20)

struct sender {
	int fd;
	int file; /* -1: write() */
	const char *buf;
	ssize_t result;
};

static void *send_all(void *arg)
{
	struct sender *s = arg;

	if (s->file >= 0)
		s->result = sendfile(s->fd, s->file, NULL, SEND_BYTES);
	else
		s->result = write(s->fd, s->buf, SEND_BYTES);
	if (s->result < 0)
		s->result = -errno;
	return NULL;
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void serve(int fd, const char *path, const char *buf)
{
	struct sender s = { .fd = fd, .file = -1, .buf = buf };
	char mode[32] = "";
	int sndbuf = 64 * 1024;
	pthread_t t;
	double t0, took;
	bool shut, cancel;
	ssize_t n;

	n = read(fd, mode, sizeof(mode) - 1);
	if (n <= 0) {
		close(fd);
		return;
	}
	mode[n] = '\0';
	mode[strcspn(mode, "\r\n")] = '\0';
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	shut = strstr(mode, "-shut") != NULL;
	cancel = strcmp(mode, "write-cancel") == 0;
	if (strstr(mode, "sendfile-") != NULL && (s.file = open(path, O_RDONLY)) < 0) {
		perror(path);
		close(fd);
		return;
	}
	if (strncmp(mode, "dup-", 4) == 0)
		s.fd = dup(fd);
	s.result = -1;
	pthread_create(&t, NULL, send_all, &s);
	usleep(300 * 1000);
	if (cancel) {
		pthread_cancel(t);
		pthread_join(t, NULL);
	}
	t0 = now_ms();
	if (shut) {
		shutdown(fd, SHUT_WR);
	} else {
		if (s.fd != fd)
			close(s.fd);
		close(fd);
	}
	took = now_ms() - t0;
	if (!cancel)
		pthread_join(t, NULL);
	if (shut)
		close(fd);
	if (s.file >= 0)
		close(s.file);
	printf("txrace: %s took %.0f ms, the send returned %zd\n", mode, took, s.result);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int one = 1, ls;
	/* Filled before any connection: page faults are slow under User-Mode Linux. */
	char *buf = malloc(SEND_BYTES);

	if (buf == NULL)
		return 1;
	signal(SIGPIPE,
	       SIG_IGN); /* a send cut short by the shutdown fails with EPIPE, as servers expect */
	memset(buf, 'w', SEND_BYTES);
	if (argc != 3) {
		fprintf(stderr, "usage: txrace PORT FILE\n");
		return 2;
	}
	a.sin_port = htons((unsigned short)atoi(argv[1]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 8) < 0) {
		perror("txrace: listen");
		return 1;
	}
	fprintf(stderr, "txrace: listening on 127.0.0.1:%s\n", argv[1]);
	for (;;) {
		int fd = accept(ls, NULL, NULL);

		if (fd >= 0)
			serve(fd, argv[2], buf);
	}
}
