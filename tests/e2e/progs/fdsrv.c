/*
 * fdsrv PORT MODE: a one-connection HTTP server that hands its accepted
 * socket to the paths a TLS connection must not leak through.
 *
 *   stdio  answers through fdopen(3)/fprintf(3) (stdio bypasses libc's PLT)
 *   pass   first tries to pass the socket to itself over SCM_RIGHTS and
 *          reports in the body whether sendmsg refused (it must), then answers
 *   exec   dup2s the socket onto stdout and execs printf(1) with a response:
 *          the exec'd program must not be able to write plaintext to it
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

static const char *try_pass(int s)
{
	int sv[2];
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

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return "socketpair failed";
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &s, sizeof(int));
	if (sendmsg(sv[0], &msg, 0) >= 0)
		return "pass: sendmsg passed the TLS fd";
	return errno == EPERM ? "pass: refused with EPERM" : "pass: refused with another errno";
}

int main(int argc, char **argv)
{
	int l, s;

	if (argc != 3)
		return 2;
	l = listen_on(atoi(argv[1]));
	s = accept(l, NULL, NULL);
	if (s < 0)
		return 2;
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
