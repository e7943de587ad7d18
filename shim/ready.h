/*
 * Readiness the kernel cannot see.
 *
 * On the userspace path OpenSSL decrypts a whole record at a time; when the
 * host's read takes only part of it, the rest waits in OpenSSL while the
 * socket itself shows nothing to read. A host that then waits in poll,
 * select or epoll would wait for bytes it already has. Such connections are
 * kept in a short list, and the wait hooks report them readable (with the
 * registration's data for epoll, once per episode when edge-triggered).
 * While the list is empty, as it is almost always, a wait costs one load and
 * a branch. On the kernel path the kernel keeps readiness itself: nothing here.
 */
#ifndef ATLAS_READY_H
#define ATLAS_READY_H

#include <poll.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/select.h>

struct atlas_conn;

/* How many connections have decrypted bytes waiting in OpenSSL. */
extern unsigned atlas_ready_count;

static inline bool atlas_ready_any(void)
{
	return __atomic_load_n(&atlas_ready_count, __ATOMIC_RELAXED) != 0;
}

/* After an OpenSSL operation on c (c locked): puts c on the list or takes it off. */
void atlas_ready_update(struct atlas_conn *c);

/* c is being freed: takes it off the list. */
void atlas_ready_remove(struct atlas_conn *c);

/* epoll_ctl(2) succeeded on fd, one of ours: remembers the registration. */
void atlas_ready_note_epoll(int epfd, int op, int fd, const struct epoll_event *ev);

/*
 * Up to max events for the listed connections registered in epfd for
 * reading, as epoll would report them. Returns how many it wrote.
 */
int atlas_ready_epoll_events(int epfd, struct epoll_event *events, int max);

/*
 * For poll(2): does any of fds ask to read from a listed connection? Then
 * the caller polls without waiting and atlas_ready_poll_merge() adds them.
 */
bool atlas_ready_poll_wanted(const struct pollfd *fds, nfds_t n);
int atlas_ready_poll_merge(struct pollfd *fds, nfds_t n, int kernel_ready);

/* The same for select(2): before, whether readfds names a listed connection; after, the merge. */
bool atlas_ready_select_wanted(int nfds, const fd_set *readfds);
int atlas_ready_select_merge(int nfds, fd_set *readfds, const fd_set *asked, int kernel_ready);

#endif
