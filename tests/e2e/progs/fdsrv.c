/*
 * fdsrv PORT MODE: a one-connection HTTP server that hands its accepted
 * socket to the paths a TLS connection must not leak through, or (handoff)
 * may take only with its keys in the kernel.
 *
 *   stdio  answers through fdopen(3)/fprintf(3) (stdio bypasses libc's PLT)
 *   pass   first tries to pass the socket to itself over SCM_RIGHTS and
 *          reports in the body whether sendmsg refused (on the userspace path
 *          it must), then answers
 *   exec   dup2s the socket onto stdout and execs printf(1) with a response:
 *          the exec'd program must not be able to write plaintext to it
 *   mmsg   reads the request with recvmmsg(2) (two messages, MSG_WAITFORONE),
 *          tries to pass the socket to itself with sendmmsg(2) and SCM_RIGHTS,
 *          and answers with sendmmsg(2), the head and the body as two messages
 *   mmsg-partial  after the request, SO_SNDTIMEO 200 ms and one sendmmsg(2) of
 *          two messages, 8 MiB of 'a' then "MARKER\n", to a client that reads only
 *          after 0.5 s: the first message goes in part, and the kernel stops there
 *          (it returns 1). The server then sends the rest of each message it was
 *          told went in part, and every message it was not told went, in order,
 *          and closes: the client must read the 8 MiB, then the marker
 *   handoff  hands the connection to a worker, as a prefork server's acceptor
 *          does: before accept it forks a worker, joined to it by a
 *          socketpair(AF_UNIX, SOCK_STREAM); after reading the request (which
 *          completes the handshake) it passes the socket over SCM_RIGHTS.
 *          Refused (the userspace path): it answers itself, "handoff: refused
 *          with EPERM" (or "...with another errno"), and the worker reads end
 *          of file and exits. Passed (the kernel path, where it is allowed):
 *          it closes its copy, then its end of the socketpair; the worker
 *          receives the fd, waits for that end of file (so the parent's close
 *          always comes first), answers "handoff: served by the worker" and
 *          closes the fd. The parent exits with the worker's status. Both
 *          answers carry a Content-Length: a client can tell a close_notify
 *          after the body from an early one.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static const char response[] = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n";

static int listen_on(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((unsigned short)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 4) < 0) {
		perror("bind/listen");
		exit(2);
	}
	return l;
}

/* Reads the request head (up to the blank line) so the client sees a normal exchange. */
static void read_request(int s)
{
	char buf[4096];
	size_t used = 0;
	ssize_t n;

	while (used < sizeof(buf) - 1 && (n = read(s, buf + used, sizeof(buf) - 1 - used)) > 0) {
		used += (size_t)n;
		buf[used] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL)
			return;
	}
}

/* Passes fd s over the Unix socket chan (SCM_RIGHTS, one data byte): >= 0, or -1 and errno. */
static ssize_t send_fd(int chan, int s, bool many)
{
	char byte = 'x';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &s, sizeof(int));
	if (many) {
		struct mmsghdr mm = { .msg_hdr = msg };

		return sendmmsg(chan, &mm, 1, 0);
	}
	return sendmsg(chan, &msg, 0);
}

/* Receives one fd over chan into *s: 1, or 0 at end of file (nothing passed), -1 on an error. */
static int recv_fd(int chan, int *s)
{
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *cm;
	ssize_t n = recvmsg(chan, &msg, 0);

	if (n <= 0)
		return n == 0 ? 0 : -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (cm == NULL || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(s, CMSG_DATA(cm), sizeof(int));
	return 1;
}

static const char *try_pass(int s)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return "socketpair failed";
	if (send_fd(sv[0], s, false) >= 0)
		return "pass: sendmsg passed the TLS fd";
	return errno == EPERM ? "pass: refused with EPERM" : "pass: refused with another errno";
}

/* mmsg-partial: sendmmsg cut short by SO_SNDTIMEO, then resumed as a program would. */
static int mmsg_partial(int s)
{
	static char big[8 << 20];
	char marker[] = "MARKER\n";
	struct timeval tv = { .tv_usec = 200 * 1000 };
	struct iovec iov[2] = { { big, sizeof(big) }, { marker, sizeof(marker) - 1 } };
	struct mmsghdr vec[2] = { { .msg_hdr = { .msg_iov = &iov[0], .msg_iovlen = 1 } },
				  { .msg_hdr = { .msg_iov = &iov[1], .msg_iovlen = 1 } } };
	int n;

	memset(big, 'a', sizeof(big));
	read_request(s);
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = sendmmsg(s, vec, 2, 0);
	if (n < 0)
		n = 0;
	tv.tv_usec = 0;
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < 2; i++) {
		size_t sent = i < n ? vec[i].msg_len : 0;
		const char *p = iov[i].iov_base;

		while (sent < iov[i].iov_len) {
			ssize_t w = write(s, p + sent, iov[i].iov_len - sent);

			if (w <= 0)
				return 1;
			sent += (size_t)w;
		}
	}
	fprintf(stderr, "mmsg-partial: sendmmsg returned %d\n", n);
	return close(s) == 0 ? 0 : 1;
}

/* mmsg: the request through recvmmsg, a pass through sendmmsg, the answer through sendmmsg. */
static int mmsg(int s)
{
	char req[4096] = "", head[256], body[256];
	char part[2][1024];
	size_t used = 0;
	int sv[2], n;

	while (strstr(req, "\r\n\r\n") == NULL) {
		struct iovec iov[2] = { { part[0], sizeof(part[0]) },
					{ part[1], sizeof(part[1]) } };
		struct mmsghdr vec[2] = { { .msg_hdr = { .msg_iov = &iov[0], .msg_iovlen = 1 } },
					  { .msg_hdr = { .msg_iov = &iov[1], .msg_iovlen = 1 } } };

		n = recvmmsg(s, vec, 2, MSG_WAITFORONE, NULL);
		if (n <= 0)
			return 1;
		for (int i = 0; i < n; i++) {
			if (vec[i].msg_len > sizeof(req) - 1 - used)
				return 1;
			memcpy(req + used, part[i], vec[i].msg_len);
			used += vec[i].msg_len;
			req[used] = '\0';
		}
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;
	snprintf(body, sizeof(body), "mmsg: hello through sendmmsg\nmmsg: %s\n",
		 send_fd(sv[0], s, true) >= 0 ? "sendmmsg passed the TLS fd"
		 : errno == EPERM	      ? "passing refused with EPERM"
					      : "passing refused with another errno");
	snprintf(head, sizeof(head),
		 "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n",
		 strlen(body));
	{
		struct iovec iov[2] = { { head, strlen(head) }, { body, strlen(body) } };
		struct mmsghdr vec[2] = { { .msg_hdr = { .msg_iov = &iov[0], .msg_iovlen = 1 } },
					  { .msg_hdr = { .msg_iov = &iov[1], .msg_iovlen = 1 } } };

		n = sendmmsg(s, vec, 2, 0);
		if (n != 2 || vec[0].msg_len != iov[0].iov_len || vec[1].msg_len != iov[1].iov_len)
			return 1;
	}
	return close(s) == 0 ? 0 : 1;
}

/* A 200 with a Content-Length and body, then close: 0 if all of it went. */
static int answer(int s, const char *body)
{
	char buf[512];
	int n = snprintf(
		buf, sizeof(buf),
		"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
		strlen(body), body);
	int ok = write(s, buf, (size_t)n) == n;

	return close(s) == 0 && ok ? 0 : 1;
}

/* handoff's worker: the fd the parent passes over chan, answered once the parent let go. */
static int worker(int chan)
{
	char byte;
	int s, got = recv_fd(chan, &s);

	if (got <= 0)
		return got == 0 ? 0 : 1; /* end of file: the parent answered itself */
	while (read(chan, &byte, 1) > 0)
		;
	return answer(s, "handoff: served by the worker\n");
}

static int handoff(int l)
{
	int sv[2], s, status, rc = 0;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 2;
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		close(l);
		close(sv[0]);
		_exit(worker(sv[1]));
	}
	close(sv[1]);
	s = accept(l, NULL, NULL);
	if (s < 0)
		return 2;
	read_request(s);
	if (send_fd(sv[0], s, false) >= 0)
		rc = close(s) == 0 ? 0 : 1;
	else
		rc = answer(s, errno == EPERM ? "handoff: refused with EPERM\n"
					      : "handoff: refused with another errno\n");
	close(sv[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = 1;
	return rc;
}

int main(int argc, char **argv)
{
	int l, s;

	if (argc != 3)
		return 2;
	l = listen_on(atoi(argv[1]));
	if (strcmp(argv[2], "handoff") == 0)
		return handoff(l);
	s = accept(l, NULL, NULL);
	if (s < 0)
		return 2;
	if (strcmp(argv[2], "mmsg") == 0)
		return mmsg(s);
	if (strcmp(argv[2], "mmsg-partial") == 0)
		return mmsg_partial(s);
	read_request(s);
	if (strcmp(argv[2], "stdio") == 0) {
		FILE *f = fdopen(s, "w");

		fprintf(f, "%sstdio: hello through fprintf\n", response);
		return fclose(f) == 0 ? 0 : 1;
	}
	if (strcmp(argv[2], "pass") == 0) {
		const char *verdict = try_pass(s);

		if (write(s, response, strlen(response)) < 0 ||
		    write(s, verdict, strlen(verdict)) < 0)
			return 1;
		return close(s) == 0 ? 0 : 1;
	}
	if (strcmp(argv[2], "exec") == 0) {
		pid_t pid = fork();

		if (pid == 0) {
			/* execve(2) itself, as Python's CGI does: the one exec function Atlas logs. */
			char fmt[] = "%sexec: plaintext from the child\n";
			char *args[] = { "printf", fmt, (char *)response, NULL };
			char *env[] = { NULL };

			dup2(s, 1);
			execve("/usr/bin/printf", args, env);
			_exit(127);
		}
		waitpid(pid, NULL, 0);
		return close(s) == 0 ? 0 : 1;
	}
	return 2;
}
