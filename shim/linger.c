#define _GNU_SOURCE
#include "linger.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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

static void log_notify_dropped(struct atlas_conn *c, int fd)
{
	char who[128];

	if (atlas_log_enabled(ATLAS_LOG_INFO))
		atlas_log(ATLAS_LOG_INFO,
			  "%s: close_notify not sent: no room for it within 3 s of the close (the "
			  "client ends with the FIN)",
			  atlas_conn_describe(c, fd, who, sizeof(who)));
}

static void *linger_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd *p;
		unsigned n;
		int timeout = -1;
		uint64_t ticks;

		pthread_mutex_lock(&lock);
		n = count;
		p = calloc(n + 1, sizeof(*p));
		if (p == NULL) {
			pthread_mutex_unlock(&lock);
			sleep(1);
			continue;
		}
		p[0] = (struct pollfd){ .fd = wake_fd, .events = POLLIN };
		for (unsigned i = 0; i < n; i++) {
			int left = atlas_ms_until(&list[i].deadline);

			p[i + 1] = (struct pollfd){ .fd = list[i].fd, .events = POLLOUT };
			if (timeout < 0 || left < timeout)
				timeout = left;
		}
		pthread_mutex_unlock(&lock);
		atlas_real.poll(p, n + 1, timeout);
		if (p[0].revents & POLLIN)
			(void)!atlas_real.read(wake_fd, &ticks, sizeof(ticks));
		pthread_mutex_lock(&lock);
		/* Entries only join at the end and leave here: the first n are those polled. */
		for (unsigned i = n; i-- > 0;) {
			struct lingering *l = &list[i];

			if (p[i + 1].revents == 0 && atlas_ms_until(&l->deadline) > 0)
				continue;
			if (atlas_engine_linger_step(l->c, l->fd))
				drop(i);
			else if (atlas_ms_until(&l->deadline) == 0) {
				if (!l->notify_only)
					log_gave_up(l->c, l->fd,
						    "the client read nothing for a minute");
				else
					log_notify_dropped(l->c, l->fd);
				drop(i);
			}
		}
		pthread_mutex_unlock(&lock);
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
	if (atlas_log_enabled(notify_only ? ATLAS_LOG_DEBUG : ATLAS_LOG_INFO)) {
		char who[128];

		atlas_conn_describe(c, fd, who, sizeof(who));
		if (notify_only)
			atlas_log(
				ATLAS_LOG_DEBUG,
				"%s: closed with the socket full: sending close_notify after close",
				who);
		else
			atlas_log(ATLAS_LOG_INFO,
				  "%s: closed with %u bytes unsent: sending them after close", who,
				  c->wb_len + c->sq_len);
	}
	atlas_conn_get(c);
	list[count].c = c;
	list[count].fd = keep;
	list[count].notify_only = notify_only;
	clock_gettime(CLOCK_MONOTONIC, &list[count].deadline);
	atlas_add_ms(&list[count].deadline, notify_only ? LINGER_NOTIFY_MS : LINGER_MS);
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
