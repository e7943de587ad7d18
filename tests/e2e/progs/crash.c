/*
 * crash PORT shim|host: a process that faults, for the crash-report test.
 *
 * It listens on 127.0.0.1:PORT, connects to itself and accepts, so that with
 * Atlas loaded and PORT a TLS port the accepted fd is a connection of Atlas's.
 * "shim" then passes writev() an iovec pointer that cannot be read: the fault
 * happens inside Atlas. "host" faults in main() itself, outside Atlas.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	const struct iovec *volatile bad_iov = (const struct iovec *)8;
	volatile int *volatile null_ptr = NULL;
	int l, c, s, one = 1;

	if (argc != 3)
		return 2;
	a.sin_port = htons((unsigned short)atoi(argv[1]));
	l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0) {
		perror("bind");
		return 2;
	}
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&a, sizeof(a)) < 0 || (s = accept(l, NULL, NULL)) < 0) {
		perror("connect/accept");
		return 2;
	}
	if (strcmp(argv[2], "shim") == 0)
		writev(s, bad_iov, 1);
	else
		*null_ptr = 1;
	puts("not reached");
	return 0;
}
