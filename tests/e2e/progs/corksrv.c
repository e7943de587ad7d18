/*
 * corksrv PORT FILE: a one-thread epoll server (non-blocking, level-triggered)
 * that answers one-line commands with TCP_CORK in every way a server uses it,
 * for tests/e2e/25-cork.sh. Bodies are pattern bytes: byte i is i % 251.
 *
 *   ping      "pong\n"
 *   small     cork, write 100 bytes, write 4000, uncork
 *   nocork    the same writes without the cork
 *   sendfile  cork, writev 100 bytes in 2 pieces, sendfile FILE's first 4096, uncork
 *   forget    cork, write 500 bytes, and go back to epoll_wait corked, without a read
 *   full      a tiny send buffer, cork, write 10000 bytes, uncork, wait for the next command
 *   blockfull the same on a blocking fd (the uncork may wait, as the kernel's writes would have)
 *   close     a tiny send buffer, cork, write 10000 bytes, close
 *   shut      a tiny send buffer, cork, write 10000 bytes, shutdown(SHUT_WR), a write
 *             (must fail with EPIPE), read to EOF
 *   getcork   "C1 C0\n": getsockopt(TCP_CORK) after cork, then after uncork
 *
 * The "tiny send buffer" ones leave the socket unable to take the last record
 * while the client does not read: the bytes the server counts as written must
 * still reach it. An event for an fd the server has closed is a bug (the
 * socket may outlive the fd): the server says so and exits 3. What the server
 * sees go wrong on its side it reports on stderr, starting "corksrv: ".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 256

static int file_fd;
static char line[MAX_FDS][64];
static size_t line_len[MAX_FDS];
static unsigned char open_fd[MAX_FDS];

static void fill(unsigned char *p, size_t n, size_t from)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((from + i) % 251);
}

/* Writes all of buf, waiting for POLLOUT on EAGAIN (a test server may block). */
static void write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			poll(&pfd, 1, 1000);
			continue;
		}
		if (w <= 0) {
			perror("write");
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static void cork(int fd, int on)
{
	if (setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)) < 0)
		perror("setsockopt TCP_CORK");
}

static int corked(int fd)
{
	int on = -1;
	socklen_t len = sizeof(on);

	if (getsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, &len) < 0)
		perror("getsockopt TCP_CORK");
	return on;
}

static void tiny_sndbuf(int fd)
{
	int size = 1; /* the kernel's minimum */

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

static void set_blocking(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, on ? fl & ~O_NONBLOCK : fl | O_NONBLOCK);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void close_conn(int ep, int fd)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	open_fd[fd] = 0;
	close(fd);
}

/* Runs one command; false when the connection is closed. */
static int command(int ep, int fd, const char *cmd)
{
	unsigned char buf[10000];
	char reply[32];

	if (strcmp(cmd, "ping") == 0) {
		write_all(fd, "pong\n", 5);
	} else if (strcmp(cmd, "small") == 0 || strcmp(cmd, "nocork") == 0) {
		int c = strcmp(cmd, "small") == 0;

		fill(buf, 4100, 0);
		if (c)
			cork(fd, 1);
		write_all(fd, buf, 100);
		write_all(fd, buf + 100, 4000);
		if (c)
			cork(fd, 0);
	} else if (strcmp(cmd, "sendfile") == 0) {
		struct iovec iov[2] = { { buf, 40 }, { buf + 40, 60 } };
		off_t off = 0;

		fill(buf, 100, 0);
		cork(fd, 1);
		if (writev(fd, iov, 2) != 100)
			perror("writev");
		while (off < 4096) {
			ssize_t n = sendfile(fd, file_fd, &off, 4096 - (size_t)off);

			if (n < 0 && errno == EAGAIN) {
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };
				poll(&pfd, 1, 1000);
			} else if (n <= 0) {
				perror("sendfile");
				break;
			}
		}
		cork(fd, 0);
	} else if (strcmp(cmd, "forget") == 0) {
		fill(buf, 500, 0);
		cork(fd, 1);
		write_all(fd, buf, 500);
	} else if (strcmp(cmd, "full") == 0 || strcmp(cmd, "blockfull") == 0 ||
		   strcmp(cmd, "close") == 0 || strcmp(cmd, "shut") == 0) {
		fill(buf, sizeof(buf), 0);
		tiny_sndbuf(fd);
		if (cmd[0] == 'b')
			set_blocking(fd, 1);
		cork(fd, 1);
		for (size_t off = 0; off < sizeof(buf); off += 1000)
			write_all(fd, buf + off, 1000);
		if (cmd[0] == 'f' || cmd[0] == 'b') {
			double t0 = now();

			/* On a non-blocking fd, as the kernel's: the uncork never waits. */
			cork(fd, 0);
			if (cmd[0] == 'f' && now() - t0 > 0.5)
				fprintf(stderr, "corksrv: the uncork waited %.1f s\n", now() - t0);
			set_blocking(fd, 0);
		} else if (cmd[0] == 'c') {
			/* As nginx does: close alone; epoll forgets the fd with its socket. */
			open_fd[fd] = 0;
			close(fd);
			return 0;
		} else {
			shutdown(fd, SHUT_WR);
			if (write(fd, "x", 1) != -1 || errno != EPIPE)
				fprintf(stderr, "corksrv: a write after shutdown did not fail with "
						"EPIPE\n");
		}
	} else if (strcmp(cmd, "getcork") == 0) {
		int on, off;

		cork(fd, 1);
		on = corked(fd);
		cork(fd, 0);
		off = corked(fd);
		snprintf(reply, sizeof(reply), "%d %d\n", on, off);
		write_all(fd, reply, strlen(reply));
	} else {
		write_all(fd, "unknown\n", 8);
	}
	return 1;
}

static void serve(int ep, int fd)
{
	char c;
	ssize_t n;

	for (;;) {
		n = read(fd, &c, 1);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			close_conn(ep, fd);
			return;
		}
		if (c != '\n') {
			if (line_len[fd] < sizeof(line[fd]) - 1)
				line[fd][line_len[fd]++] = c;
			continue;
		}
		line[fd][line_len[fd]] = '\0';
		line_len[fd] = 0;
		if (!command(ep, fd, line[fd]))
			return;
		/* Straight back to epoll_wait, no read first: the wait must send the bytes. */
		if (strcmp(line[fd], "forget") == 0)
			return;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct epoll_event ev = { .events = EPOLLIN }, evs[16];
	int l, ep, one = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: corksrv PORT FILE\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	file_fd = open(argv[2], O_RDONLY);
	a.sin_port = htons((unsigned short)atoi(argv[1]));
	l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (file_fd < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 16) < 0) {
		perror("corksrv");
		return 2;
	}
	ep = epoll_create1(0);
	ev.data.fd = l;
	epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 16, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == l) {
				int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);

				if (c < 0 || c >= MAX_FDS) {
					if (c >= 0)
						close(c);
					continue;
				}
				ev.data.fd = c;
				open_fd[c] = 1;
				line_len[c] = 0;
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				continue;
			}
			if (!open_fd[fd]) {
				fprintf(stderr, "corksrv: an event for fd %d, which is closed\n",
					fd);
				return 3;
			}
			serve(ep, fd);
		}
	}
}
