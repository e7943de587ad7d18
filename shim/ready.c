#define _GNU_SOURCE
#include "ready.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "conn.h"
#include "engine.h"
#include "fdtab.h"
#include "real.h"

unsigned atlas_ready_count;

/* The bits of a wait that mean "read" or "write"; the rest (errors, hang-ups, flags) pass. */
#define POLL_IO	 (POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM)
#define EPOLL_IO (EPOLLIN | EPOLLRDNORM | EPOLLOUT | EPOLLWRNORM)

/*
 * A few connections at a time, so arrays: those with bytes waiting in OpenSSL
 * (c->pending) and those whose handshake waits (c->hs_want). Both, and every
 * ep_* and hs_* field of a connection, are guarded by list_lock.
 */
struct conn_list {
	struct atlas_conn **at;
	unsigned n;
	unsigned cap;
};

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn_list waiting, handshakes, gathering;
/* Connections holding a reservation (c->ready_slot): each list has room for all of them. */
static unsigned reserved;

/* Room for n entries in l. Locked. */
static bool list_reserve(struct conn_list *l, unsigned n)
{
	unsigned cap = l->cap ? l->cap : 16;
	struct atlas_conn **grown;

	if (l->cap >= n)
		return true;
	while (cap < n)
		cap *= 2;
	grown = realloc(l->at, cap * sizeof(*grown));
	if (grown == NULL)
		return false;
	l->at = grown;
	l->cap = cap;
	return true;
}

/* Never fails for a connection that holds a reservation (atlas_ready_reserve). */
static bool list_add(struct conn_list *l, struct atlas_conn *c)
{
	if (l->n == l->cap && !list_reserve(l, l->n + 1))
		return false;
	l->at[l->n++] = c;
	__atomic_add_fetch(&atlas_ready_count, 1, __ATOMIC_RELAXED);
	return true;
}

static void list_remove(struct conn_list *l, struct atlas_conn *c)
{
	for (unsigned i = 0; i < l->n; i++) {
		if (l->at[i] != c)
			continue;
		l->at[i] = l->at[--l->n];
		__atomic_sub_fetch(&atlas_ready_count, 1, __ATOMIC_RELAXED);
		return;
	}
}

void atlas_ready_update(struct atlas_conn *c)
{
	/*
	 * Decrypted bytes, or a whole record read ahead: a partial record waits for the
	 * socket like any data.
	 */
	bool waiting_now =
		c->state == ATLAS_CONN_OPEN && c->ssl != NULL &&
		(SSL_pending(c->ssl) > 0 || (c->ra_buf != NULL && atlas_conn_ra_record(c)));

	if (!waiting_now && !c->pending)
		return; /* the common case: nothing waits, nothing listed */
	pthread_mutex_lock(&list_lock);
	if (waiting_now && !c->pending) {
		/* Cannot fail: the connection reserved its place when its handshake began. */
		c->pending = list_add(&waiting, c);
		c->ep_reported = 0;
	} else if (waiting_now) {
		c->ep_reported = 0; /* read, and still more: a new edge */
	} else {
		list_remove(&waiting, c);
		c->pending = 0;
	}
	pthread_mutex_unlock(&list_lock);
}

/*
 * Does c's need add to the host's question rather than replace it? A handshake
 * needs what it needs, whatever the host asks. An open connection waits for room
 * for bytes the host counts as written (tls.c's send queue), and the host's own
 * question stands beside it: a peer that writes before it reads must still be
 * read from, or room may never come.
 */
static bool need_adds(const struct atlas_conn *c)
{
	return __atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == ATLAS_CONN_OPEN;
}

/* What epoll should watch for on c, the host having asked for host: and c's need. */
static uint32_t ep_kernel_events(const struct atlas_conn *c, uint32_t host)
{
	uint32_t need = c->hs_want == POLLIN ? EPOLLIN : EPOLLOUT;

	if (c->hs_want == 0 || !(host & EPOLL_IO))
		return host; /* no need, or the host waits for no I/O (disarmed) */
	return (need_adds(c) ? host : host & ~(uint32_t)EPOLL_IO) | need;
}

/* Brings c's epoll registration in line with ep_kernel_events(). Locked. */
static void ep_follow(struct atlas_conn *c)
{
	uint32_t want;
	struct epoll_event ev;

	if (c->ep_fd < 0)
		return;
	/*
	 * A one-shot registration may have fired (nothing tells us, where the need only
	 * adds to it): a MOD now would arm it again behind the host's back, and two of its
	 * threads could serve the connection at once. The host's own re-arm adds the need
	 * (atlas_ready_epoll_ctl).
	 */
	if ((c->ep_events & EPOLLONESHOT) && need_adds(c))
		return;
	want = ep_kernel_events(c, c->ep_events);
	if (want == c->ep_kernel)
		return;
	ev = (struct epoll_event){ .events = want, .data = c->ep_data };
	/* Failing (the fd left the set behind our back), the registration is simply gone. */
	if (atlas_real.epoll_ctl(c->ep_fd, EPOLL_CTL_MOD, c->ep_sock, &ev) < 0)
		c->ep_fd = -1;
	else
		c->ep_kernel = want;
}

/*
 * c now waits for room, on a registration that is the host's own, edge-triggered,
 * with EPOLLOUT (nginx's): the edge may already have come, and gone to the host
 * unused, between the send that met the full socket and this listing. A MOD with
 * the same events re-arms it: the kernel reports EPOLLOUT again if there is room
 * now (the epoll hook then sends), else the edge comes with the room. Locked.
 */
static void ep_rearm_room(struct atlas_conn *c)
{
	struct epoll_event ev = { .events = c->ep_kernel, .data = c->ep_data };

	if (c->ep_fd < 0 || c->ep_kernel != c->ep_events || !need_adds(c) ||
	    (c->ep_events & (EPOLLET | EPOLLOUT | EPOLLONESHOT)) != (EPOLLET | EPOLLOUT))
		return;
	if (atlas_real.epoll_ctl(c->ep_fd, EPOLL_CTL_MOD, c->ep_sock, &ev) < 0)
		c->ep_fd = -1; /* the fd left the set behind our back, as in ep_follow */
}

void atlas_ready_handshake_wait(struct atlas_conn *c, short want)
{
	pthread_mutex_lock(&list_lock);
	/* list_add cannot fail: the connection reserved its place when its handshake began. */
	if (c->hs_want != 0 || list_add(&handshakes, c)) {
		bool newly = c->hs_want != want;

		__atomic_store_n(&c->hs_want, want, __ATOMIC_RELAXED);
		ep_follow(c);
		if (newly && want == POLLOUT)
			ep_rearm_room(c);
	}
	pthread_mutex_unlock(&list_lock);
}

void atlas_ready_handshake_over(struct atlas_conn *c)
{
	if (__atomic_load_n(&c->hs_want, __ATOMIC_RELAXED) == 0)
		return;
	pthread_mutex_lock(&list_lock);
	if (c->hs_want != 0) {
		list_remove(&handshakes, c);
		__atomic_store_n(&c->hs_want, 0, __ATOMIC_RELAXED);
		ep_follow(c); /* the host's own events again */
	}
	pthread_mutex_unlock(&list_lock);
}

void atlas_ready_after_fork(void)
{
	pthread_mutex_init(&list_lock, NULL);
}

bool atlas_ready_reserve(struct atlas_conn *c)
{
	bool ok;

	pthread_mutex_lock(&list_lock);
	ok = c->ready_slot ||
	     (list_reserve(&waiting, reserved + 1) && list_reserve(&handshakes, reserved + 1) &&
	      list_reserve(&gathering, reserved + 1));
	if (ok && !c->ready_slot) {
		reserved++;
		c->ready_slot = 1;
	}
	pthread_mutex_unlock(&list_lock);
	return ok;
}

void atlas_ready_remove(struct atlas_conn *c)
{
	if (!c->pending && c->hs_want == 0 && !c->ready_slot && !c->gathering)
		return;
	pthread_mutex_lock(&list_lock);
	if (c->ready_slot) {
		reserved--;
		c->ready_slot = 0;
	}
	if (c->pending)
		list_remove(&waiting, c);
	if (c->hs_want != 0)
		list_remove(&handshakes, c);
	if (c->gathering)
		list_remove(&gathering, c);
	c->pending = 0;
	c->hs_want = 0;
	c->gathering = 0;
	pthread_mutex_unlock(&list_lock);
}

void atlas_ready_gather_update(struct atlas_conn *c)
{
	/* Gathered bytes go before the host waits, unless they wait behind the send queue. */
	bool listed_now = c->wb != NULL && c->sq == NULL && c->wb_fd >= 0;

	if (listed_now == (bool)c->gathering)
		return;
	pthread_mutex_lock(&list_lock);
	if (listed_now)
		/* Cannot fail: the connection reserved its place when its handshake began. */
		c->gathering = list_add(&gathering, c);
	else
		list_remove(&gathering, c);
	if (!listed_now)
		c->gathering = 0;
	pthread_mutex_unlock(&list_lock);
}

unsigned atlas_ready_take_gathering(struct atlas_conn **out, unsigned max)
{
	unsigned n = 0;

	pthread_mutex_lock(&list_lock);
	for (unsigned i = 0; i < gathering.n && n < max; i++)
		if (atlas_conn_tryget(gathering.at[i]))
			out[n++] = gathering.at[i];
	pthread_mutex_unlock(&list_lock);
	return n;
}

void atlas_ready_epoll_forget(struct atlas_conn *c, int fd)
{
	pthread_mutex_lock(&list_lock);
	if (c->ep_fd >= 0 && c->ep_sock == fd)
		atlas_real.epoll_ctl(c->ep_fd, EPOLL_CTL_DEL, fd, NULL);
	c->ep_fd = -1;
	pthread_mutex_unlock(&list_lock);
}

int atlas_ready_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct atlas_conn *c = atlas_fdtab_get(fd);
	struct epoll_event kev;
	int r;

	if (c == NULL)
		return atlas_real.epoll_ctl(epfd, op, fd, ev);
	pthread_mutex_lock(&list_lock);
	if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && ev != NULL) {
		kev = (struct epoll_event){ .events = ep_kernel_events(c, ev->events),
					    .data = ev->data };
		r = atlas_real.epoll_ctl(epfd, op, fd, &kev);
		if (r == 0) {
			c->ep_fd = epfd;
			c->ep_sock = fd;
			c->ep_events = ev->events;
			c->ep_kernel = kev.events;
			c->ep_data = ev->data;
			c->ep_reported = 0;
		}
	} else {
		r = atlas_real.epoll_ctl(epfd, op, fd, ev);
		if (r == 0 && op == EPOLL_CTL_DEL && c->ep_fd == epfd)
			c->ep_fd = -1;
	}
	pthread_mutex_unlock(&list_lock);
	atlas_conn_put(c);
	return r;
}

int atlas_ready_epoll_events(int epfd, struct epoll_event *events, int max)
{
	int k = 0;

	pthread_mutex_lock(&list_lock);
	for (unsigned i = 0; i < waiting.n && k < max; i++) {
		struct atlas_conn *c = waiting.at[i];

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

/* The handshake's readiness came: tell the host what it asked for, so that it calls us. */
static uint32_t as_asked(uint32_t got, uint32_t asked, uint32_t io)
{
	if (!(got & io) && !(got & (EPOLLERR | EPOLLHUP)))
		return got;
	return (got & ~io) | (asked & io);
}

/*
 * Did the kernel report room (or an error) for c among the n events? c is registered
 * as the host asked, which includes EPOLLOUT. Locked.
 */
static bool room_reported(const struct atlas_conn *c, const struct epoll_event *events, int n)
{
	for (int j = 0; j < n; j++)
		if (events[j].data.u64 == c->ep_data.u64 &&
		    (events[j].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return true;
	return false;
}

/* The connections whose owed bytes the epoll hook sends, and the fd for each. */
struct owed {
	struct atlas_conn *c;
	int fd;
};

/*
 * Room for more than the 16 on the stack: one per event, n. False when it cannot
 * grow (out of memory: those bytes wait for the host's next call). Locked.
 */
static bool owed_grow(struct owed **owed, struct owed *few, unsigned *cap, int n)
{
	struct owed *many;

	if (*owed != few || (unsigned)n <= *cap ||
	    (many = malloc((size_t)n * sizeof(*many))) == NULL)
		return false;
	memcpy(many, few, *cap * sizeof(*many));
	*owed = many;
	*cap = (unsigned)n;
	return true;
}

void atlas_ready_epoll_translate(int epfd, struct epoll_event *events, int n)
{
	struct owed few[16], *owed = few;
	unsigned k = 0, cap = 16;
	int saved_errno = errno;

	pthread_mutex_lock(&list_lock);
	for (unsigned i = 0; i < handshakes.n; i++) {
		struct atlas_conn *c = handshakes.at[i];

		if (c->ep_fd != epfd)
			continue; /* not registered here */
		if (c->ep_kernel == c->ep_events) {
			/*
			 * Registered as the host asked, EPOLLOUT included (nginx registers every
			 * connection for EPOLLIN|EPOLLOUT|EPOLLET): room for an open connection's
			 * owed bytes reaches the host as its own EPOLLOUT, which a host with
			 * nothing more to write ignores while it waits for the next request.
			 * Those bytes go now, after the lists' lock is let go.
			 */
			if (need_adds(c) && room_reported(c, events, n) &&
			    (k < cap || owed_grow(&owed, few, &cap, n)) && atlas_conn_tryget(c))
				owed[k++] = (struct owed){ c, c->ep_sock };
			continue;
		}
		for (int j = 0; j < n; j++) {
			if (events[j].data.u64 != c->ep_data.u64)
				continue;
			events[j].events = as_asked(events[j].events, c->ep_events, EPOLL_IO);
			if (c->ep_events & EPOLLONESHOT)
				c->ep_events = c->ep_kernel = 0; /* the kernel disarmed it */
		}
	}
	pthread_mutex_unlock(&list_lock);
	for (unsigned i = 0; i < k; i++) {
		atlas_engine_room_came(owed[i].c, owed[i].fd);
		atlas_conn_put(owed[i].c);
	}
	if (owed != few)
		free(owed);
	errno = saved_errno; /* the host's epoll_wait succeeded: errno as the kernel left it */
}

/* What c's need (need_adds) makes of a question about fd: the same question if none waits. */
static short handshake_question(const struct atlas_conn *c, short asked)
{
	short want = __atomic_load_n(&c->hs_want, __ATOMIC_RELAXED);

	if (want == 0 || !(asked & POLL_IO))
		return asked;
	return (short)((need_adds(c) ? asked : asked & ~POLL_IO) | want);
}

bool atlas_ready_poll_begin(struct pollfd *fds, nfds_t n, struct atlas_ready_poll *w)
{
	w->no_wait = w->translated = false;
	w->saved = NULL;
	for (nfds_t i = 0; i < n; i++) {
		struct atlas_conn *c = atlas_fdtab_peek(fds[i].fd);
		short q;

		if (c == NULL)
			continue;
		if ((fds[i].events & (POLLIN | POLLRDNORM)) &&
		    __atomic_load_n(&c->pending, __ATOMIC_RELAXED))
			w->no_wait = true;
		q = handshake_question(c, fds[i].events);
		if (q == fds[i].events)
			continue;
		if (w->saved == NULL) {
			w->saved = n <= sizeof(w->small) / sizeof(w->small[0])
					   ? w->small
					   : malloc(n * sizeof(*w->saved));
			if (w->saved == NULL)
				continue; /* out of memory: this wait as the host asked it */
			for (nfds_t j = 0; j < n; j++)
				w->saved[j] = fds[j].events;
		}
		fds[i].events = q;
		w->translated = true;
	}
	return w->no_wait || w->translated;
}

int atlas_ready_poll_end(struct pollfd *fds, nfds_t n, struct atlas_ready_poll *w, int kernel_ready)
{
	int ready = kernel_ready;

	for (nfds_t i = 0; w->saved != NULL && i < n; i++) {
		if (fds[i].events == w->saved[i])
			continue;
		if (kernel_ready > 0)
			fds[i].revents = (short)as_asked((uint16_t)fds[i].revents,
							 (uint16_t)w->saved[i], POLL_IO);
		fds[i].events = w->saved[i];
	}
	if (w->saved != w->small)
		free(w->saved);
	for (nfds_t i = 0; w->no_wait && kernel_ready >= 0 && i < n; i++) {
		short want = fds[i].events & (POLLIN | POLLRDNORM);
		struct atlas_conn *c;

		if (want == 0 || (c = atlas_fdtab_peek(fds[i].fd)) == NULL ||
		    !__atomic_load_n(&c->pending, __ATOMIC_RELAXED))
			continue;
		if (fds[i].revents == 0)
			ready++;
		fds[i].revents |= want;
	}
	return ready;
}

static bool in(const fd_set *set, int fd)
{
	return set != NULL && FD_ISSET(fd, set);
}

bool atlas_ready_select_begin(int nfds, fd_set **readfds, fd_set **writefds,
			      struct atlas_ready_select *w)
{
	int top = nfds < FD_SETSIZE ? nfds : FD_SETSIZE;

	w->no_wait = w->translated = false;
	FD_ZERO(&w->asked_read);
	FD_ZERO(&w->asked_write);
	if (*readfds != NULL)
		w->asked_read = **readfds;
	if (*writefds != NULL)
		w->asked_write = **writefds;
	w->kread = w->asked_read;
	w->kwrite = w->asked_write;
	FD_ZERO(&w->changed);
	for (int fd = 0; fd < top; fd++) {
		bool r = FD_ISSET(fd, &w->asked_read), wr = FD_ISSET(fd, &w->asked_write);
		struct atlas_conn *c;
		short q;

		if (!(r || wr) || (c = atlas_fdtab_peek(fd)) == NULL)
			continue;
		if (r && __atomic_load_n(&c->pending, __ATOMIC_RELAXED))
			w->no_wait = true;
		q = handshake_question(c, (short)((r ? POLLIN : 0) | (wr ? POLLOUT : 0)));
		if (q == ((r ? POLLIN : 0) | (wr ? POLLOUT : 0)))
			continue;
		FD_CLR(fd, &w->kread);
		FD_CLR(fd, &w->kwrite);
		if (q & POLLIN)
			FD_SET(fd, &w->kread);
		if (q & POLLOUT)
			FD_SET(fd, &w->kwrite);
		FD_SET(fd, &w->changed);
		w->translated = true;
	}
	if (w->translated) {
		*readfds = &w->kread;
		*writefds = &w->kwrite;
	}
	return w->no_wait || w->translated;
}

int atlas_ready_select_end(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds,
			   struct atlas_ready_select *w)
{
	int top = nfds < FD_SETSIZE ? nfds : FD_SETSIZE, ready = 0;

	for (int fd = 0; fd < top; fd++) {
		bool r = in(w->translated ? &w->kread : readfds, fd);
		bool wr = in(w->translated ? &w->kwrite : writefds, fd);
		struct atlas_conn *c;

		if (FD_ISSET(fd, &w->changed) && (r || wr)) {
			r = FD_ISSET(
				fd,
				&w->asked_read); /* as asked: the next call runs the handshake */
			wr = FD_ISSET(fd, &w->asked_write);
		}
		if (!r && w->no_wait && FD_ISSET(fd, &w->asked_read) &&
		    (c = atlas_fdtab_peek(fd)) != NULL &&
		    __atomic_load_n(&c->pending, __ATOMIC_RELAXED))
			r = true;
		if (readfds != NULL) {
			if (r)
				FD_SET(fd, readfds);
			else
				FD_CLR(fd, readfds);
		}
		if (writefds != NULL) {
			if (wr)
				FD_SET(fd, writefds);
			else
				FD_CLR(fd, writefds);
		}
		ready += r + wr + in(exceptfds, fd);
	}
	return ready;
}
