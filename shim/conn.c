#define _GNU_SOURCE
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "engine.h"
#include "ready.h"
#include "tls.h"

struct atlas_conn *atlas_conn_new(uint16_t port, unsigned handshake_timeout_ms)
{
	struct atlas_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	c->refs = 1;
	c->state = ATLAS_CONN_NEW;
	c->io_fd = -1;
	c->ep_fd = -1;
	c->wb_fd = -1;
	c->pid = getpid();
	c->port = port;
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	c->deadline = c->started;
	atlas_add_ms(&c->deadline, handshake_timeout_ms);
	return c;
}

/* The send of this thread's that is under way, for tx_abandoned. */
static pthread_key_t tx_key;
static bool tx_key_made;
static pthread_once_t tx_once = PTHREAD_ONCE_INIT;

static void tx_over(struct atlas_conn *c)
{
	__atomic_sub_fetch(&c->sending, 1, __ATOMIC_RELEASE);
	atlas_conn_put(c);
}

/* A thread ended inside a send (cancelled while blocked in it): the send is over. */
static void tx_abandoned(void *c)
{
	tx_over(c);
}

static void tx_key_create(void)
{
	tx_key_made = pthread_key_create(&tx_key, tx_abandoned) == 0;
}

bool atlas_conn_tx_begin(struct atlas_conn *c)
{
	__atomic_add_fetch(&c->sending, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&c->wr_closed, __ATOMIC_SEQ_CST)) {
		__atomic_sub_fetch(&c->sending, 1, __ATOMIC_RELEASE);
		return false;
	}
	pthread_once(&tx_once, tx_key_create);
	/* One per thread: a send from a signal handler inside another leaves the outer one out. */
	if (tx_key_made)
		pthread_setspecific(tx_key, c);
	return true;
}

void atlas_conn_tx_end(struct atlas_conn *c)
{
	int saved = errno;

	if (tx_key_made)
		pthread_setspecific(tx_key, NULL);
	tx_over(c);
	errno = saved;
}

void atlas_conn_get(struct atlas_conn *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
}

bool atlas_conn_tryget(struct atlas_conn *c)
{
	int n = __atomic_load_n(&c->refs, __ATOMIC_RELAXED);

	while (n != 0)
		if (__atomic_compare_exchange_n(&c->refs, &n, n + 1, false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return true;
	return false;
}

void atlas_conn_put(struct atlas_conn *c)
{
	if (c == NULL || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	atlas_ready_remove(c);
	atlas_tls_ssl_free(c->ssl);
	free(c->ra_buf);
	free(c->wb);
	free(c->sq);
	OPENSSL_cleanse(c->rx_secret, sizeof(c->rx_secret));
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void atlas_conn_fd_get(struct atlas_conn *c)
{
	__atomic_add_fetch(&c->fds, 1, __ATOMIC_RELAXED);
	atlas_conn_get(c);
}

void atlas_conn_fd_put(struct atlas_conn *c, int fd)
{
	atlas_engine_fd_closing(c, fd, __atomic_sub_fetch(&c->fds, 1, __ATOMIC_ACQ_REL) == 0);
	atlas_conn_put(c);
}

void atlas_conn_fd_forget(struct atlas_conn *c)
{
	if (c == NULL)
		return;
	__atomic_sub_fetch(&c->fds, 1, __ATOMIC_ACQ_REL);
	atlas_conn_put(c);
}

void atlas_conn_set_peer(struct atlas_conn *c, int fd, const struct sockaddr *addr, socklen_t len)
{
	socklen_t sl = sizeof(c->peer);

	if (addr != NULL && len >= sizeof(struct sockaddr_in) &&
	    (addr->sa_family == AF_INET ||
	     (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)))) {
		memcpy(&c->peer, addr,
		       addr->sa_family == AF_INET ? sizeof(c->peer.in) : sizeof(c->peer.in6));
		return;
	}
	if (getpeername(fd, &c->peer.sa, &sl) < 0)
		c->peer.sa.sa_family = AF_UNSPEC;
}

const char *atlas_conn_describe(const struct atlas_conn *c, int fd, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (c->peer.sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &c->peer.in.sin_addr, host, sizeof(host));
		port = ntohs(c->peer.in.sin_port);
	} else if (c->peer.sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &c->peer.in6.sin6_addr, host, sizeof(host));
		port = ntohs(c->peer.in6.sin6_port);
	}
	snprintf(buf, len, "fd %d peer %s:%u port %u", fd, host, port, c->port);
	return buf;
}

double atlas_conn_elapsed_ms(const struct atlas_conn *c)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - c->started.tv_sec) * 1e3 +
	       (double)(now.tv_nsec - c->started.tv_nsec) / 1e6;
}

int atlas_ms_until(const struct timespec *deadline)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
	     (deadline->tv_nsec - now.tv_nsec) / 1000000;
	if (ms <= 0)
		return 0;
	return ms > 1000000000 ? 1000000000 : (int)ms;
}
