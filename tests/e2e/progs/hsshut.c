/*
 * hsshut PORT N: N connections, one after another, for tests/e2e/32-ktls-apps.sh. On
 * each, a reader thread's blocking read() runs Atlas's handshake while the accepting
 * thread calls shutdown(SHUT_WR) 0 to 8 ms after accept(), so that the shutdown meets
 * the handshake at every stage: before it, during it, as it puts the connection on the
 * kernel path, and after it. Each client must see an end (close_notify, or the FIN
 * alone when the shutdown came before the handshake ended), and the server must live:
 * a shutdown taken on the userspace path whose handshake then ended on the kernel's
 * used OpenSSL's freed state (3b49141 died of it). Prints "hsshut: N connections"
 * at the end.
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void *reader(void *arg)
{
	char buf[64];

	(void)!read((int)(long)arg, buf, sizeof(buf));
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int l, one = 1, n;

	if (argc != 3) {
		fprintf(stderr, "usage: hsshut PORT N\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	a.sin_port = htons((unsigned short)atoi(argv[1]));
	n = atoi(argv[2]);
	l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 8) < 0) {
		perror("hsshut");
		return 2;
	}
	for (int i = 0; i < n; i++) {
		pthread_t t;
		int fd = accept(l, NULL, NULL);

		if (fd < 0) {
			perror("hsshut: accept");
			return 1;
		}
		if (pthread_create(&t, NULL, reader, (void *)(long)fd) != 0)
			return 1;
		usleep((useconds_t)((i * 37) % 8000)); /* 0 to 8 ms, spread over the rounds */
		shutdown(fd, SHUT_WR);
		pthread_join(t, NULL);
		close(fd);
	}
	printf("hsshut: %d connections\n", n);
	return 0;
}
