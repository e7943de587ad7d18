#define _GNU_SOURCE
#include "linger.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "engine.h"
#include "log.h"
#include "ready.h"
#include "real.h"

/* How long a closed connection may take to send what is left: nginx's send_timeout. */
#define LINGER_MS 60000
/*
 * ... and close_notify alone, after bytes the kernel holds: nginx's own SSL_shutdown
 * waits 3 s for room. Past that the FIN alone ends the stream, and the fd is free.
 */
#define LINGER_NOTIFY_MS 3000

struct lingering {
	struct atlas_conn *c;
	int fd; /* Atlas's duplicate */
	bool notify_only;
	bool done; /* linger_main's, between its look and its drop */
	struct timespec deadline;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
/* Guarded by lock: the connections, and the thread's wake-up (an eventfd; -1: no thread). */
static struct lingering *list;
static unsigned count, cap;
static int wake_fd = -1;
static pid_t thread_pid; /* the process the thread runs in */

/* Done with entry i: close Atlas's fd, drop the reference. Locked. */
static void drop(unsigned i)
{
	atlas_real.close(list[i].fd);
	atlas_conn_put(list[i].c);
	list[i] = list[--count];
}

static void log_gave_up(struct atlas_conn *c, int fd, const char *why)
{
	char who[128];

	if (atlas_log_enabled(ATLAS_LOG_WARN))
		atlas_log(ATLAS_LOG_WARN, "%s: closed with bytes unsent: %s",
			  atlas_conn_describe(c, fd, who, sizeof(who)), why);
}

static void log_notify_dropped(struct atlas_conn *c, int fd, const char *why)
{
	char who[128];

	if (atlas_log_enabled(ATLAS_LOG_INFO))
		atlas_log(ATLAS_LOG_INFO,
			  "%s: close_notify not sent: %s (the client ends with the FIN)",
			  atlas_conn_describe(c, fd, who, sizeof(who)), why);
}

/*
 * Steps entry l, outside the lock (a kTLS send may wait there); sets l->done when it
 * can go. Nothing goes while a send of the host's, in another thread, is under way
 * (atlas_conn_sending): close_notify would wait behind it or land inside it.
 */
static void step(struct lingering *l, short revents)
{
	bool expired = atlas_ms_until(&l->deadline) == 0;
	bool host_sends = atlas_conn_sending(l->c);

	if (host_sends && (revents & (POLLERR | POLLHUP | POLLNVAL))) {
		log_notify_dropped(l->c, l->fd, "the connection failed while a send was under way");
		l->done = true; /* nothing more will go */
		return;
	}
	if (!expired && (revents == 0 || host_sends))
		return;
	if (!host_sends && atlas_engine_linger_step(l->c, l->fd)) {
		l->done = true;
		return;
	}
	if (!expired)
		return;
	if (!l->notify_only)
		log_gave_up(l->c, l->fd, "the client read nothing for a minute");
	else
		log_notify_dropped(l->c, l->fd,
				   host_sends
					   ? "a send of the server's was still under way 3 s after "
					     "the close"
					   : "no room for it within 3 s of the close");
	l->done = true;
}

static void *linger_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct lingering *snap;
		struct pollfd *p;
		unsigned n;
		int timeout = -1;
		uint64_t ticks;

		/*
		 * A copy of the entries, looked at without the lock: only this thread takes
		 * entries out (adopt appends), so each one's socket and reference stay.
		 */
		pthread_mutex_lock(&lock);
		n = count;
		p = calloc(n + 1, sizeof(*p));
		snap = malloc((n + 1) * sizeof(*snap));
		if (p == NULL || snap == NULL) {
			pthread_mutex_unlock(&lock);
			free(p);
			free(snap);
			sleep(1);
			continue;
		}
		memcpy(snap, list, n * sizeof(*snap));
		p[0] = (struct pollfd){ .fd = wake_fd, .events = POLLIN };
		pthread_mutex_unlock(&lock);
		for (unsigned i = 0; i < n; i++) {
			int left = atlas_ms_until(&snap[i].deadline);

			p[i + 1] = (struct pollfd){ .fd = snap[i].fd, .events = POLLOUT };
			if (atlas_conn_sending(snap[i].c)) {
				/* No event says that a send has ended: look again in a few ms. */
				p[i + 1].events = 0;
				left = left < 5 ? left : 5;
			}
			if (timeout < 0 || left < timeout)
				timeout = left;
		}
		atlas_real.poll(p, n + 1, timeout);
		if (p[0].revents & POLLIN)
			(void)!atlas_real.read(wake_fd, &ticks, sizeof(ticks));
		for (unsigned i = 0; i < n; i++)
			step(&snap[i], p[i + 1].revents);
		pthread_mutex_lock(&lock);
		/* Entries only join at the end and leave here: the first n are those copied. */
		for (unsigned i = n; i-- > 0;) {
			if (snap[i].done)
				drop(i);
		}
		pthread_mutex_unlock(&lock);
		free(snap);
		free(p);
	}
	return NULL;
}

/* fork(2) copies the lock as held by another thread: hold it across the fork. */
static void linger_prefork(void)
{
	pthread_mutex_lock(&lock);
}

static void linger_parent(void)
{
	pthread_mutex_unlock(&lock);
}

/* In a fork child the thread is gone: its sockets are the parent's to finish. Locked. */
static void forget_parents(void)
{
	for (unsigned i = 0; i < count; i++)
		atlas_real.close(list[i].fd);
	count = 0;
	if (wake_fd >= 0)
		atlas_real.close(wake_fd);
	wake_fd = -1;
}

static void linger_child(void)
{
	pthread_mutex_init(&lock, NULL);
	forget_parents();
}

static void linger_register_atfork(void)
{
	pthread_atfork(linger_prefork, linger_parent, linger_child);
}

/* The thread, started on first need. Locked. */
static bool thread_running(void)
{
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;
	int r;

	if (wake_fd >= 0 && thread_pid == getpid())
		return true;
	/* A child forked without fork(3)'s handlers (a raw clone): the thread is not here. */
	if (wake_fd >= 0)
		forget_parents();
	wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (wake_fd < 0)
		return false;
	/* No signal of the host's is ever delivered to this thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	r = pthread_create(&t, &attr, linger_main, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		atlas_real.close(wake_fd);
		wake_fd = -1;
		errno = r;
		return false;
	}
	thread_pid = getpid();
	return true;
}

/*
 * How many closed sockets may wait at once: a quarter of the fds the process may
 * open (RLIMIT_NOFILE), at least 16. Past that a close ends as the host asked, at
 * once: clients that never read must not take the host's fds from it.
 */
static unsigned room_for_more(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur / 4 > UINT_MAX)
		return UINT_MAX;
	return rl.rlim_cur / 4 > 16 ? (unsigned)(rl.rlim_cur / 4) : 16;
}

void atlas_linger_adopt(struct atlas_conn *c, int fd, bool notify_only)
{
	static const uint64_t one = 1;
	int keep;

	pthread_once(&atfork_once, linger_register_atfork);
	keep = atlas_real.fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (keep < 0) {
		log_gave_up(c, fd, strerror(errno));
		return;
	}
	/* The host's epoll set must not go on reporting the fd it closed. */
	atlas_ready_epoll_forget(c, fd);
	pthread_mutex_lock(&lock);
	if (count >= room_for_more()) {
		unsigned waiting = count;

		pthread_mutex_unlock(&lock);
		atlas_real.close(keep);
		if (notify_only) {
			log_notify_dropped(c, fd, "too many closed connections wait already");
		} else if (atlas_log_enabled(ATLAS_LOG_WARN)) {
			char why[96];

			snprintf(why, sizeof(why),
				 "%u closed connections wait already (a quarter of RLIMIT_NOFILE)",
				 waiting);
			log_gave_up(c, fd, why);
		}
		return;
	}
	if (count == cap) {
		unsigned grown_cap = cap ? cap * 2 : 16;
		struct lingering *grown = realloc(list, grown_cap * sizeof(*grown));

		if (grown == NULL) {
			pthread_mutex_unlock(&lock);
			atlas_real.close(keep);
			log_gave_up(c, fd, "out of memory");
			return;
		}
		list = grown;
		cap = grown_cap;
	}
	if (!thread_running()) {
		pthread_mutex_unlock(&lock);
		atlas_real.close(keep);
		log_gave_up(c, fd, strerror(errno));
		return;
	}
	atlas_conn_get(c);
	list[count].c = c;
	list[count].fd = keep;
	list[count].notify_only = notify_only;
	list[count].done = false;
	clock_gettime(CLOCK_MONOTONIC, &list[count].deadline);
	atlas_add_ms(&list[count].deadline, notify_only ? LINGER_NOTIFY_MS : LINGER_MS);
	if (atlas_log_enabled(notify_only ? ATLAS_LOG_DEBUG : ATLAS_LOG_INFO)) {
		char who[128];

		atlas_conn_describe(c, fd, who, sizeof(who));
		if (notify_only)
			atlas_log(ATLAS_LOG_DEBUG,
				  "%s: closed %s: sending close_notify after close", who,
				  atlas_conn_sending(c)
					  ? "while another thread's send was under way"
					  : "with the socket full");
		else
			atlas_log(ATLAS_LOG_INFO,
				  "%s: closed with %u bytes unsent: sending them after close", who,
				  c->wb_len + c->sq_len);
	}
	count++;
	pthread_mutex_unlock(&lock);
	(void)!atlas_real.write(wake_fd, &one, sizeof(one));
}

/*
 * At exit(3) (nginx's old workers on reload exit so), the thread would die with
 * the bytes it still holds: give it a few seconds to send them. _exit(2) and a
 * fatal signal skip this, and the bytes are lost (the kernel would still send a
 * dead process's queue).
 */
__attribute__((destructor)) static void linger_drain(void)
{
	for (int tick = 0; tick < 500; tick++) {
		unsigned left;

		pthread_mutex_lock(&lock);
		/* Not in a child forked without fork(3)'s handlers: the thread is not there. */
		left = wake_fd >= 0 && thread_pid == getpid() ? count : 0;
		pthread_mutex_unlock(&lock);
		if (left == 0)
			return;
		usleep(10000);
	}
}
