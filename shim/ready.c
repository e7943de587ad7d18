#define _GNU_SOURCE
#include "ready.h"

#include <pthread.h>
#include <stdlib.h>

#include <openssl/ssl.h>

#include "conn.h"
#include "fdtab.h"

unsigned atlas_ready_count;

/* The connections with bytes waiting in OpenSSL: a few at a time, so an array. */
static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct atlas_conn **list;
static size_t list_cap;

static void list_add(struct atlas_conn *c)
{
	if (atlas_ready_count == list_cap) {
		size_t cap = list_cap ? list_cap * 2 : 16;
		struct atlas_conn **grown = realloc(list, cap * sizeof(*grown));

		if (grown == NULL)
			return; /* not listed: the host finds the bytes at its next read instead */
		list = grown;
		list_cap = cap;
	}
	list[atlas_ready_count] = c;
	__atomic_store_n(&atlas_ready_count, atlas_ready_count + 1, __ATOMIC_RELAXED);
	c->pending = 1;
	c->ep_reported = 0;
}

static void list_remove(struct atlas_conn *c)
{
	for (unsigned i = 0; i < atlas_ready_count; i++) {
		if (list[i] != c)
			continue;
		list[i] = list[atlas_ready_count - 1];
		__atomic_store_n(&atlas_ready_count, atlas_ready_count - 1, __ATOMIC_RELAXED);
		break;
	}
	c->pending = 0;
}

void atlas_ready_update(struct atlas_conn *c)
{
	/* Decrypted bytes only: a partial record in OpenSSL waits for the socket like any data. */
	bool waiting = c->state == ATLAS_CONN_OPEN && c->ssl != NULL && SSL_pending(c->ssl) > 0;

	if (!waiting && !c->pending)
		return; /* the common case: nothing waits, nothing listed */
	pthread_mutex_lock(&list_lock);
	if (waiting && !c->pending)
		list_add(c);
	else if (waiting)
		c->ep_reported = 0; /* read, and still more: a new edge */
	else
		list_remove(c);
	pthread_mutex_unlock(&list_lock);
}

void atlas_ready_remove(struct atlas_conn *c)
{
	if (!c->pending)
		return;
	pthread_mutex_lock(&list_lock);
	list_remove(c);
	pthread_mutex_unlock(&list_lock);
}

void atlas_ready_note_epoll(int epfd, int op, int fd, const struct epoll_event *ev)
{
	struct atlas_conn *c = atlas_fdtab_get(fd);

	if (c == NULL)
		return;
	pthread_mutex_lock(&list_lock);
	switch (op) {
	case EPOLL_CTL_ADD:
	case EPOLL_CTL_MOD:
		c->ep_fd = epfd;
		c->ep_events = ev != NULL ? ev->events : 0;
		c->ep_data = ev != NULL ? ev->data : (epoll_data_t){ .fd = fd };
		c->ep_reported = 0;
		break;
	case EPOLL_CTL_DEL:
		if (c->ep_fd == epfd)
			c->ep_fd = -1;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&list_lock);
	atlas_conn_put(c);
}

int atlas_ready_epoll_events(int epfd, struct epoll_event *events, int max)
{
	int k = 0;

	pthread_mutex_lock(&list_lock);
	for (unsigned i = 0; i < atlas_ready_count && k < max; i++) {
		struct atlas_conn *c = list[i];

		if (c->ep_fd != epfd || !(c->ep_events & EPOLLIN))
			continue;
		if ((c->ep_events & EPOLLET) && c->ep_reported)
			continue; /* edge-triggered: once until the host reads and more remains */
		events[k].events = EPOLLIN | (c->ep_events & EPOLLRDNORM);
		events[k].data = c->ep_data;
		k++;
		c->ep_reported = 1;
		if (c->ep_events & EPOLLONESHOT)
			c->ep_events = 0; /* disarmed until EPOLL_CTL_MOD, as the kernel does */
	}
	pthread_mutex_unlock(&list_lock);
	return k;
}

static bool fd_waiting(int fd)
{
	struct atlas_conn *c = atlas_fdtab_peek(fd);

	return c != NULL && __atomic_load_n(&c->pending, __ATOMIC_RELAXED);
}

bool atlas_ready_poll_wanted(const struct pollfd *fds, nfds_t n)
{
	for (nfds_t i = 0; i < n; i++)
		if ((fds[i].events & (POLLIN | POLLRDNORM)) && fd_waiting(fds[i].fd))
			return true;
	return false;
}

int atlas_ready_poll_merge(struct pollfd *fds, nfds_t n, int kernel_ready)
{
	int ready = kernel_ready;

	for (nfds_t i = 0; i < n; i++) {
		short want = fds[i].events & (POLLIN | POLLRDNORM);

		if (want == 0 || !fd_waiting(fds[i].fd))
			continue;
		if (fds[i].revents == 0)
			ready++;
		fds[i].revents |= want;
	}
	return ready;
}

bool atlas_ready_select_wanted(int nfds, const fd_set *readfds)
{
	if (readfds == NULL)
		return false;
	for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
		if (FD_ISSET(fd, readfds) && fd_waiting(fd))
			return true;
	return false;
}

int atlas_ready_select_merge(int nfds, fd_set *readfds, const fd_set *asked, int kernel_ready)
{
	int ready = kernel_ready;

	for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
		if (!FD_ISSET(fd, asked) || FD_ISSET(fd, readfds) || !fd_waiting(fd))
			continue;
		FD_SET(fd, readfds); /* select counts each set bit: one more */
		ready++;
	}
	return ready;
}
