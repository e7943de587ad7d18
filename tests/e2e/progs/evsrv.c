/*
 * evsrv PORT MODE: a one-thread echo server that reads at most 100 bytes per
 * wake-up of its event loop, MODE being epoll-lt, epoll-et, poll or select, or
 * the same loops waiting in epoll_pwait (epoll-pwait, edge-triggered),
 * epoll_pwait2 (epoll-pwait2, level-triggered), ppoll or pselect.
 *
 * Reading less than a TLS record leaves the rest decrypted in OpenSSL while
 * the socket shows nothing: the readiness test of Atlas's userspace path.
 * Edge-triggered mode drains each connection, 100 bytes at a time, until
 * EAGAIN, as edge-triggered servers must (without TLS too, an undrained
 * socket gets no new edge): there EAGAIN must mean that OpenSSL is empty.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK	100
#define MAX_FDS 64

static int listen_on(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((unsigned short)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 16) < 0) {
		perror("bind/listen");
		exit(2);
	}
	return l;
}

/* One chunk from fd echoed back: 1, 0 at EAGAIN, -1 when the connection is done. */
static int serve_chunk(int fd)
{
	char buf[CHUNK];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0)
		return -1;
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(fd, buf + off, (size_t)(n - off));

		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			poll(&p, 1, 1000);
			continue;
		}
		if (w <= 0)
			return -1;
		off += w;
	}
	return 1;
}

/* Edge-triggered: chunks until EAGAIN. */
static int serve_drain(int fd)
{
	int r;

	while ((r = serve_chunk(fd)) > 0)
		;
	return r;
}

/* The wait each loop makes: the plain call, or its variant with a signal mask. */
enum wait_call { PLAIN, PWAIT, PWAIT2 };

static int wait_epoll(enum wait_call how, int ep, struct epoll_event *got, int max)
{
	sigset_t none;

	sigemptyset(&none);
	if (how == PWAIT)
		return epoll_pwait(ep, got, max, -1, &none);
	if (how == PWAIT2)
		return epoll_pwait2(ep, got, max, NULL, &none);
	return epoll_wait(ep, got, max, -1);
}

static void run_epoll(int l, int edge, enum wait_call how)
{
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = l }, got[16];

	epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
	for (;;) {
		int n = wait_epoll(how, ep, got, 16);

		for (int i = 0; i < n; i++) {
			int fd = got[i].data.fd;

			if (fd == l) {
				int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
				struct epoll_event cev = { .events = EPOLLIN | (edge ? EPOLLET : 0),
							   .data.fd = c };

				if (c >= 0)
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
			} else if ((edge ? serve_drain(fd) : serve_chunk(fd)) < 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
				close(fd);
			}
		}
	}
}

static void run_poll(int l, enum wait_call how)
{
	struct pollfd fds[MAX_FDS] = { { .fd = l, .events = POLLIN } };
	nfds_t n = 1;
	sigset_t none;

	sigemptyset(&none);
	for (;;) {
		if ((how == PLAIN ? poll(fds, n, -1) : ppoll(fds, n, NULL, &none)) < 0)
			continue;
		for (nfds_t i = 1; i < n; i++) {
			if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)) ||
			    serve_chunk(fds[i].fd) >= 0)
				continue;
			close(fds[i].fd);
			fds[i--] = fds[--n];
		}
		if ((fds[0].revents & POLLIN) && n < MAX_FDS) {
			int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);

			if (c >= 0)
				fds[n++] = (struct pollfd){ .fd = c, .events = POLLIN };
		}
	}
}

static void run_select(int l, enum wait_call how)
{
	int conns[MAX_FDS], n = 0;
	sigset_t none;

	sigemptyset(&none);

	for (;;) {
		fd_set r;
		int top = l;

		FD_ZERO(&r);
		FD_SET(l, &r);
		for (int i = 0; i < n; i++) {
			FD_SET(conns[i], &r);
			top = conns[i] > top ? conns[i] : top;
		}
		if ((how == PLAIN ? select(top + 1, &r, NULL, NULL, NULL)
				  : pselect(top + 1, &r, NULL, NULL, NULL, &none)) < 0)
			continue;
		for (int i = 0; i < n; i++) {
			if (!FD_ISSET(conns[i], &r) || serve_chunk(conns[i]) >= 0)
				continue;
			close(conns[i]);
			conns[i--] = conns[--n];
		}
		if (FD_ISSET(l, &r) && n < MAX_FDS) {
			int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);

			if (c >= 0)
				conns[n++] = c;
		}
	}
}

int main(int argc, char **argv)
{
	int l;

	if (argc != 3)
		return 2;
	l = listen_on(atoi(argv[1]));
	if (strcmp(argv[2], "epoll-lt") == 0)
		run_epoll(l, 0, PLAIN);
	else if (strcmp(argv[2], "epoll-et") == 0)
		run_epoll(l, 1, PLAIN);
	else if (strcmp(argv[2], "epoll-pwait") == 0)
		run_epoll(l, 1, PWAIT);
	else if (strcmp(argv[2], "epoll-pwait2") == 0)
		run_epoll(l, 0, PWAIT2);
	else if (strcmp(argv[2], "poll") == 0)
		run_poll(l, PLAIN);
	else if (strcmp(argv[2], "ppoll") == 0)
		run_poll(l, PWAIT);
	else if (strcmp(argv[2], "select") == 0)
		run_select(l, PLAIN);
	else if (strcmp(argv[2], "pselect") == 0)
		run_select(l, PWAIT);
	return 2;
}
