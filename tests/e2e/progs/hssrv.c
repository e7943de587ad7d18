/*
 * hssrv PORT MODE KIND: a one-thread, non-blocking event-loop server whose first
 * wait on a new connection is for a readiness the TLS handshake does not need.
 * MODE is epoll-lt, epoll-et, poll or select; KIND is banner or sndbuf.
 *
 *   banner  server speaks first (SMTP, IMAP, FTP): after accept it waits only for
 *           writability and writes "HELLO atlas\n"; the handshake under that
 *           write needs to read the ClientHello, and the socket is writable all
 *           along. Then it waits only for readability, reads a line and answers
 *           "ECHO <line>\n".
 *   sndbuf  the accepted socket gets SO_SNDBUF 2048 and the server waits only for
 *           readability; the handshake under its read must write a server flight
 *           (a big certificate) larger than the buffers, and so needs writability.
 *           Then the same echo of one line.
 *
 * Each connection is a small state machine; epoll registrations follow its state
 * with EPOLL_CTL_MOD. Edge-triggered mode drains reads and writes until EAGAIN.
 * A read of 0, an error or a full line buffer closes the connection. Never exits.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
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

#define MAX_CONNS 64
#define SNDBUF	  2048

static const char banner[] = "HELLO atlas\n";

enum state { WRITE_BANNER, READ_LINE, WRITE_ECHO };

struct conn {
	int fd; /* -1: a free slot */
	enum state state;
	unsigned registered; /* epoll: the events registered */
	char in[256];
	size_t in_len;
	char out[300];
	size_t out_len, out_off;
};

static struct conn conns[MAX_CONNS];
static int edge, sndbuf_kind;

static int listen_on(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((unsigned short)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 64) < 0) {
		perror("bind/listen");
		exit(2);
	}
	return l;
}

static int wants_write(const struct conn *c)
{
	return c->state != READ_LINE;
}

/* Writes out[out_off..] until done (1), EAGAIN (0) or an error (-1). */
static int flush_out(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (w <= 0)
			return -1;
		c->out_off += (size_t)w;
	}
	return 1;
}

/* The connection's work on a wake-up: 0 to keep waiting (for what its state wants), -1 to close. */
static int step(struct conn *c)
{
	char *nl;
	ssize_t n;
	int r;

	switch (c->state) {
	case WRITE_BANNER:
		r = flush_out(c);
		if (r <= 0)
			return r;
		c->state = READ_LINE; /* the next wake-up is for readability */
		return 0;
	case READ_LINE:
		do {
			n = read(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return 0;
			if (n <= 0)
				return -1;
			c->in_len += (size_t)n;
			c->in[c->in_len] = '\0';
			nl = strchr(c->in, '\n');
			if (nl != NULL) {
				*nl = '\0';
				c->out_len = (size_t)snprintf(c->out, sizeof(c->out), "ECHO %s\n",
							      c->in);
				c->out_off = 0;
				c->state = WRITE_ECHO;
				return step(c);
			}
			if (c->in_len == sizeof(c->in) - 1)
				return -1;
		} while (edge); /* edge-triggered: until EAGAIN */
		return 0;
	case WRITE_ECHO:
		r = flush_out(c);
		return r == 0 ? 0 : -1; /* answered (or failed): close */
	}
	return -1;
}

/* A new connection in a free slot, or NULL (closed) when all are taken. */
static struct conn *add_conn(int fd)
{
	for (int i = 0; i < MAX_CONNS; i++) {
		struct conn *c = &conns[i];

		if (c->fd >= 0)
			continue;
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		if (sndbuf_kind) {
			int size = SNDBUF;

			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
			c->state = READ_LINE;
		} else {
			memcpy(c->out, banner, sizeof(banner) - 1);
			c->out_len = sizeof(banner) - 1;
			c->state = WRITE_BANNER;
		}
		return c;
	}
	close(fd);
	return NULL;
}

static int accept_one(int l)
{
	int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK);

	if (fd >= FD_SETSIZE) {
		close(fd);
		return -1;
	}
	return fd;
}

static void close_conn(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
}

static unsigned epoll_events(const struct conn *c)
{
	return (wants_write(c) ? EPOLLOUT : EPOLLIN) | (edge ? EPOLLET : 0);
}

static void run_epoll(int l)
{
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL }, got[16];

	epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
	for (;;) {
		int n = epoll_wait(ep, got, 16, -1);

		for (int i = 0; i < n; i++) {
			struct conn *c = got[i].data.ptr;

			if (c == NULL) {
				int fd;

				while ((fd = accept_one(l)) >= 0) {
					c = add_conn(fd);
					if (c == NULL)
						continue;
					c->registered = epoll_events(c);
					ev = (struct epoll_event){ .events = c->registered,
								   .data.ptr = c };
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
						close_conn(c);
				}
				continue;
			}
			if (c->fd < 0)
				continue;
			if (step(c) < 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close_conn(c);
			} else if (epoll_events(c) != c->registered) {
				c->registered = epoll_events(c);
				ev = (struct epoll_event){ .events = c->registered, .data.ptr = c };
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
			}
		}
	}
}

static void run_poll(int l)
{
	for (;;) {
		struct pollfd fds[MAX_CONNS + 1] = { { .fd = l, .events = POLLIN } };
		struct conn *of[MAX_CONNS + 1] = { NULL };
		nfds_t n = 1;

		for (int i = 0; i < MAX_CONNS; i++) {
			if (conns[i].fd < 0)
				continue;
			of[n] = &conns[i];
			fds[n].fd = conns[i].fd;
			fds[n++].events = wants_write(&conns[i]) ? POLLOUT : POLLIN;
		}
		if (poll(fds, n, -1) < 0)
			continue;
		for (nfds_t i = 1; i < n; i++) {
			if (fds[i].revents != 0 && step(of[i]) < 0)
				close_conn(of[i]);
		}
		if (fds[0].revents & POLLIN) {
			int fd;

			while ((fd = accept_one(l)) >= 0)
				add_conn(fd);
		}
	}
}

static void run_select(int l)
{
	for (;;) {
		fd_set r, w;
		int top = l;

		FD_ZERO(&r);
		FD_ZERO(&w);
		FD_SET(l, &r);
		for (int i = 0; i < MAX_CONNS; i++) {
			if (conns[i].fd < 0)
				continue;
			FD_SET(conns[i].fd, wants_write(&conns[i]) ? &w : &r);
			top = conns[i].fd > top ? conns[i].fd : top;
		}
		if (select(top + 1, &r, &w, NULL, NULL) < 0)
			continue;
		for (int i = 0; i < MAX_CONNS; i++) {
			struct conn *c = &conns[i];

			/* A connection accepted below is in neither set: the next round. */
			if (c->fd < 0 || !(FD_ISSET(c->fd, &r) || FD_ISSET(c->fd, &w)))
				continue;
			if (step(c) < 0)
				close_conn(c);
		}
		if (FD_ISSET(l, &r)) {
			int fd;

			while ((fd = accept_one(l)) >= 0)
				add_conn(fd);
		}
	}
}

int main(int argc, char **argv)
{
	int l;

	if (argc != 4 || (strcmp(argv[3], "banner") != 0 && strcmp(argv[3], "sndbuf") != 0)) {
		fprintf(stderr, "usage: hssrv PORT epoll-lt|epoll-et|poll|select banner|sndbuf\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN); /* as servers do: a write to a closed peer fails with EPIPE */
	for (int i = 0; i < MAX_CONNS; i++)
		conns[i].fd = -1;
	sndbuf_kind = strcmp(argv[3], "sndbuf") == 0;
	l = listen_on(atoi(argv[1]));
	if (strcmp(argv[2], "epoll-lt") == 0) {
		run_epoll(l);
	} else if (strcmp(argv[2], "epoll-et") == 0) {
		edge = 1;
		run_epoll(l);
	} else if (strcmp(argv[2], "poll") == 0) {
		run_poll(l);
	} else if (strcmp(argv[2], "select") == 0) {
		run_select(l);
	}
	fprintf(stderr, "hssrv: unknown mode '%s'\n", argv[2]);
	return 2;
}
