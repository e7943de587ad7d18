/*
 * Readiness the kernel cannot see, or sees for the wrong direction.
 *
 * Bytes waiting in OpenSSL. On the userspace path OpenSSL decrypts a whole
 * record at a time; when the host's read takes only part of it, the rest
 * waits in OpenSSL while the socket itself shows nothing to read. A host that
 * then waits in poll, select or epoll would wait for bytes it already has.
 * Such connections are kept in a short list, and the wait hooks report them
 * readable (with the registration's data for epoll, once per episode when
 * edge-triggered).
 *
 * Handshakes that need the other direction. A non-blocking host's read or
 * write on a handshaking fd advances the handshake and fails with EAGAIN
 * until it is done. The handshake may need to read while the host waits only
 * to write (a server that speaks first: its banner waits for the ClientHello)
 * or to write while the host waits only to read (a server flight larger than
 * the send buffer). Left alone, the first spins (the socket is always
 * writable) and the second hangs. So while a handshake waits, the wait hooks
 * ask the kernel for what the handshake needs and, when that comes, report
 * what the host asked for: its next read or write runs the handshake on.
 * For epoll the registration itself is changed (EPOLL_CTL_MOD) and given back
 * once the handshake is over. Bytes the host counts as written that met a full
 * socket (tls.c: the send queue), and a shutdown's close_notify behind them, wait
 * for POLLOUT too, but beside the host's own question, not instead of it: the
 * host may wait to read (and must still see a peer that writes before it
 * reads), and its next call sends them on.
 *
 * Bytes gathered under TCP_CORK and not sent yet. A host that corks, writes
 * and then waits without uncorking would wait for an answer to bytes that
 * never left: the waits send them first.
 *
 * While the lists are empty, as they are almost always, a wait costs one
 * load and a branch. On the kernel path the kernel keeps readiness itself.
 */
#ifndef ATLAS_READY_H
#define ATLAS_READY_H

#include <poll.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/select.h>

struct atlas_conn;

/* How many connections are listed (bytes waiting, a handshake or a flush waiting, bytes gathered). */
extern unsigned atlas_ready_count;

static inline bool atlas_ready_any(void)
{
	return __atomic_load_n(&atlas_ready_count, __ATOMIC_RELAXED) != 0;
}

/* After an OpenSSL operation on c (c locked): puts c on the list or takes it off. */
void atlas_ready_update(struct atlas_conn *c);

/*
 * c's handshake returned EAGAIN to a non-blocking host and needs want (POLLIN
 * or POLLOUT) to go on (c locked). Its epoll registration follows.
 */
void atlas_ready_handshake_wait(struct atlas_conn *c, short want);

/* c's handshake is over, done or failed (c locked): its registration goes back to the host's. */
void atlas_ready_handshake_over(struct atlas_conn *c);

/* In a fork child (one thread): the lists' lock starts afresh, whoever held it in the parent. */
void atlas_ready_after_fork(void);

/*
 * c's handshake begins (c locked): room on the lists for it, so that listing it later
 * cannot fail for want of memory (its bytes would then wait unseen by the host's poll).
 * false when that room cannot be had: the caller refuses the connection.
 */
bool atlas_ready_reserve(struct atlas_conn *c);

/*
 * After c's gathered bytes changed (c locked): c is listed while it holds bytes
 * gathered under TCP_CORK and not yet sealed (engine.c), so that a host that
 * waits without uncorking has them sent first, as the kernel sends a corked
 * socket's data within 200 ms.
 */
void atlas_ready_gather_update(struct atlas_conn *c);
/* Up to max listed gathering connections, each with a reference for the caller. */
unsigned atlas_ready_take_gathering(struct atlas_conn **out, unsigned max);
/*
 * The host is closing fd, whose socket Atlas keeps open a while (linger.c): its
 * epoll registration goes first, or the host's epoll set would go on reporting a
 * closed fd (epoll forgets a socket only when its last descriptor closes).
 */
void atlas_ready_epoll_forget(struct atlas_conn *c, int fd);
/* c is being freed: takes it off the lists and gives its room back. */
void atlas_ready_remove(struct atlas_conn *c);

/* epoll_ctl(2) on fd, one of ours: the real call, with what a waiting handshake needs. */
int atlas_ready_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);

/*
 * Up to max events for the connections with bytes waiting registered in epfd
 * for reading, as epoll would report them. Returns how many it wrote.
 */
int atlas_ready_epoll_events(int epfd, struct epoll_event *events, int max);

/* After epoll_wait(2) returned n events: those of waiting handshakes say what the host asked. */
void atlas_ready_epoll_translate(int epfd, struct epoll_event *events, int n);

/*
 * For poll(2): true when fds name a listed connection. Then the caller polls
 * (without waiting if w->no_wait) and atlas_ready_poll_end() gives the host
 * back its events, in terms of what it asked, with what OpenSSL holds added.
 */
struct atlas_ready_poll {
	bool no_wait;	 /* bytes wait in OpenSSL for an fd asked to read: do not sleep */
	bool translated; /* a waiting handshake's events were changed */
	short *saved;	 /* every fd's events as the host gave them, once one is changed */
	short small[32];
};
bool atlas_ready_poll_begin(struct pollfd *fds, nfds_t n, struct atlas_ready_poll *w);
int atlas_ready_poll_end(struct pollfd *fds, nfds_t n, struct atlas_ready_poll *w,
			 int kernel_ready);

/*
 * The same for select(2). begin may point *readfds and *writefds at sets of its
 * own (the kernel's question); end takes the host's own pointers (either NULL,
 * as select allows) and returns select's count.
 */
struct atlas_ready_select {
	bool no_wait;
	bool translated;
	fd_set asked_read, asked_write; /* the host's question */
	fd_set kread, kwrite;		/* the kernel's question, then its answer */
	fd_set changed;			/* the fds whose question was changed */
};
bool atlas_ready_select_begin(int nfds, fd_set **readfds, fd_set **writefds,
			      struct atlas_ready_select *w);
int atlas_ready_select_end(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds,
			   struct atlas_ready_select *w);

#endif
