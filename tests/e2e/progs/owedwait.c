/*
 * owedwait PORT MODE: one connection on a non-blocking socket with an 8 KiB send
 * buffer, for tests/e2e/29-two-writers.sh. The server writes until the socket is
 * full (so that, under Atlas, the last write's record waits in Atlas, counted as
 * written), then waits as MODE says, and prints one line for the test to compare:
 *
 *   oneshot      an EPOLLONESHOT registration for EPOLLIN has fired once (the
 *                client's first bytes); the server reads "go", writes, then waits 4 s without
 *                arming it again while the client sends more: "oneshot: 0 events"
 *                (the kernel keeps a fired one-shot registration disarmed);
 *   splice-read  poll() for POLLIN, and on each wake-up a non-blocking splice()
 *                from the socket: "splice-read: N wake-ups, wrote W" (a few, not
 *                hundreds of thousands: a wait that reports room for Atlas's
 *                bytes as the host's readiness must let the host's next read send
 *                them);
 *   shut-splice  the same after shutdown(SHUT_WR) with close_notify waiting;
 *   et-inout     registered for EPOLLIN|EPOLLOUT|EPOLLET before it writes (as nginx
 *                registers every connection), then waiting 4 s for a request that
 *                does not come, ignoring EPOLLOUT (it has nothing more to write):
 *                "et-inout: wrote W" (the bytes counted must arrive meanwhile: room
 *                for them shows to the host only as an EPOLLOUT it does not act on);
 *   et-many      the same with 20 connections in one epoll set, their room coming
 *                back in one epoll_wait: "et-many: wrote W" (all of them);
 *   et-shut      et-inout with shutdown(SHUT_WR) after the writes, waiting for the
 *                client's close as nginx's lingering close does: "et-shut: wrote W"
 *                (the close_notify and FIN that waited behind the bytes must follow
 *                them, though the host makes no call on the connection);
 *   et-thread    et-shut with the epoll loop in a thread of its own, waiting in
 *                epoll_wait before the main thread writes and shuts down: "et-thread:
 *                wrote W" (the room comes to a wait that began while nothing waited
 *                for it);
 *   et-late      et-thread without the shutdown, run under tests/e2e/progs/slowsend.c,
 *                which holds the send that meets the full socket for 1.5 s while the
 *                client reads: the room's edge reaches the epoll thread before the
 *                bytes that did not fit begin to wait for it; the server writes
 *                nothing after that write (the one that took over a second):
 *                "et-late: wrote W";
 *   cork-block   the fd made blocking, TCP_CORK on, a blocking write of 100 bytes
 *                (gathered), TCP_CORK off: "cork-block: little CPU, wrote W" (the
 *                write waits for room for what waited before it, and must not spin
 *                while its own bytes wait for the uncork).
 *
 * The client (the test) sends "go\n", for oneshot "more" 0.3 s and 1.3 s later,
 * reads nothing for a second, then reads to the end or a 2 s silence and says how
 * many bytes came.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * Writes 16 KiB pieces until the socket is full (at most max pieces), or after a
 * write that took over a second when slow says so: what was counted.
 */
static long fill_until(int fd, int max, int slow)
{
	static char piece[16384];
	long wrote = 0;

	memset(piece, 'a', sizeof(piece));
	for (int i = 0; i < max; i++) {
		double t0 = now();
		ssize_t n = write(fd, piece, sizeof(piece));

		if (n < 0)
			break;
		wrote += n;
		if (slow && now() - t0 > 1)
			break;
	}
	return wrote;
}

static long fill(int fd, int max)
{
	return fill_until(fd, max, 0);
}

/* Waits (poll, 100 ms at a time) until the client's first line has come, and reads it. */
static void read_go(int fd)
{
	char buf[64];
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (read(fd, buf, sizeof(buf)) < 0 && errno == EAGAIN)
		poll(&p, 1, 100);
}

static int oneshot(int fd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.fd = fd }, out[4];
	int ep = epoll_create1(0), n;

	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	if (epoll_wait(ep, out, 4, 10000) != 1) {
		printf("oneshot: the first event never came\n");
		return 1;
	}
	read_go(fd); /* the event may have been the handshake's: Atlas ran it on */
	fill(fd, 1000);
	n = epoll_wait(ep, out, 4, 4000);
	printf("oneshot: %d events\n", n);
	return 0;
}

static int splice_read(int fd, int shut)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	long wakeups = 0, wrote;
	int pp[2];
	double t0;

	read_go(fd);
	wrote = fill(fd, shut ? 100 : 1000);
	if (shut)
		shutdown(fd, SHUT_WR);
	if (pipe(pp) < 0)
		return 1;
	t0 = now();
	while (now() - t0 < 3 && poll(&p, 1, 3000) > 0) {
		ssize_t r = splice(fd, NULL, pp[1], NULL, 4096, SPLICE_F_NONBLOCK);

		wakeups++;
		if (r == 0 || (r < 0 && errno != EAGAIN))
			break;
	}
	printf("%s: %s wake-ups, wrote %ld\n", shut ? "shut-splice" : "splice-read",
	       wakeups <= 10 ? "a few" : "too many", wrote);
	fprintf(stderr, "owedwait: %ld wake-ups\n", wakeups);
	return 0;
}

static int et_inout(const int *fd, int nfd, const char *mode, int shut)
{
	struct epoll_event out[64];
	int ep = epoll_create1(0);
	long wrote = 0;
	double t0;

	for (int i = 0; i < nfd; i++) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET,
					  .data.fd = fd[i] };

		epoll_ctl(ep, EPOLL_CTL_ADD, fd[i], &ev);
	}
	for (int i = 0; i < nfd; i++)
		read_go(fd[i]);
	for (int i = 0; i < nfd; i++) {
		wrote += fill(fd[i], 1000);
		if (shut)
			shutdown(fd[i], SHUT_WR);
	}
	usleep(1500000); /* the clients read meanwhile: the room of all comes in one epoll_wait */
	t0 = now();
	while (now() - t0 < 4) {
		int n = epoll_wait(ep, out, 64, 500);
		char buf[64];

		for (int i = 0; i < n; i++)
			if (out[i].events & EPOLLIN)
				while (read(out[i].data.fd, buf, sizeof(buf)) > 0)
					;
	}
	printf("%s: wrote %ld\n", mode, wrote);
	return 0;
}

/*
 * et-thread's epoll loop: reads what comes for 6 s, ignoring EPOLLOUT; got says "go"
 * came. Each wait is long: the one that begins after "go" lasts through the writes
 * (which make no edge until one meets the full socket) until the room comes.
 */
struct reader {
	int ep, fd, got;
};

static void *et_reader(void *arg)
{
	struct reader *r = arg;
	double t0 = now();

	while (now() - t0 < 6) {
		struct epoll_event out[4];
		int n = epoll_wait(r->ep, out, 4, 3000);
		char buf[64];

		for (int i = 0; i < n; i++)
			if (out[i].events & EPOLLIN)
				while (read(r->fd, buf, sizeof(buf)) > 0)
					__atomic_store_n(&r->got, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static int et_thread(int fd, int late)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET, .data.fd = fd };
	struct reader r = { .ep = epoll_create1(0), .fd = fd };
	pthread_t t;
	long wrote;

	epoll_ctl(r.ep, EPOLL_CTL_ADD, fd, &ev);
	if (pthread_create(&t, NULL, et_reader, &r) != 0)
		return 1;
	while (!__atomic_load_n(&r.got, __ATOMIC_ACQUIRE))
		usleep(10000);
	usleep(200000); /* the reader is back in epoll_wait, with nothing waiting for room */
	wrote = fill_until(fd, 1000, late);
	if (!late)
		shutdown(fd, SHUT_WR);
	pthread_join(t, NULL);
	printf("%s: wrote %ld\n", late ? "et-late" : "et-thread", wrote);
	return 0;
}

static int cork_block(int fd)
{
	static const char tail[100] = "the corked tail";
	int on = 1, off = 0;
	clock_t c0;
	long wrote;

	read_go(fd);
	wrote = fill(fd, 1000);
	fcntl(fd, F_SETFL, 0);
	setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
	c0 = clock();
	if (write(fd, tail, sizeof(tail)) == (ssize_t)sizeof(tail))
		wrote += (long)sizeof(tail);
	setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
	printf("cork-block: %s CPU, wrote %ld\n",
	       (double)(clock() - c0) / CLOCKS_PER_SEC < 0.5 ? "little" : "too much", wrote);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int l, fd, one = 1, size = 8192;

	if (argc != 3) {
		fprintf(stderr,
			"usage: owedwait PORT "
			"oneshot|splice-read|shut-splice|cork-block|et-inout|et-many|et-shut|"
			"et-thread|et-late\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	a.sin_port = htons((unsigned short)atoi(argv[1]));
	l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 8) < 0) {
		perror("owedwait");
		return 2;
	}
	fd = accept(l, NULL, NULL);
	if (fd < 0) {
		perror("owedwait: accept");
		return 2;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	if (strcmp(argv[2], "oneshot") == 0)
		return oneshot(fd);
	if (strcmp(argv[2], "cork-block") == 0)
		return cork_block(fd);
	if (strcmp(argv[2], "et-thread") == 0 || strcmp(argv[2], "et-late") == 0)
		return et_thread(fd, strcmp(argv[2], "et-late") == 0);
	if (strcmp(argv[2], "et-inout") == 0 || strcmp(argv[2], "et-shut") == 0)
		return et_inout(&fd, 1, argv[2], strcmp(argv[2], "et-shut") == 0);
	if (strcmp(argv[2], "et-many") == 0) {
		int fds[20];

		fds[0] = fd;
		for (int i = 1; i < 20; i++) {
			fds[i] = accept(l, NULL, NULL);
			setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
			fcntl(fds[i], F_SETFL, O_NONBLOCK);
		}
		return et_inout(fds, 20, argv[2], 0);
	}
	return splice_read(fd, strcmp(argv[2], "shut-splice") == 0);
}
