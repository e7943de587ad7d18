#define _GNU_SOURCE
#include "fdtab.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "conn.h"
#include "real.h"
#include "ready.h"

/* Bounds on the table: at least this many slots, and never more (8 bytes each, mapped lazily). */
#define ATLAS_FDTAB_MIN ((size_t)1 << 16)
#define ATLAS_FDTAB_MAX ((size_t)1 << 22)
/* Striped locks: enough that unrelated fds on different threads rarely meet. */
#define ATLAS_FDTAB_STRIPES 64

struct atlas_conn **atlas_fdtab_slots;
size_t atlas_fdtab_size;
/* Per slot: did the host ask for close-on-exec on this fd? (Atlas forces it meanwhile.) */
static unsigned char *host_cloexec;
size_t atlas_fdtab_high;

static pthread_mutex_t stripes[ATLAS_FDTAB_STRIPES];
/* The process whose table this is: set at init and in every fork child. */
static pid_t owner;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* fork(2) copies a lock held by another thread as held: take them all around it. */
static void fdtab_prefork(void)
{
	for (int i = 0; i < ATLAS_FDTAB_STRIPES; i++)
		pthread_mutex_lock(&stripes[i]);
}

static void fdtab_postfork(void)
{
	for (int i = ATLAS_FDTAB_STRIPES - 1; i >= 0; i--)
		pthread_mutex_unlock(&stripes[i]);
}

/*
 * The child has one thread: a connection's lock that another thread of the
 * parent held at the fork would stay held for ever, and the child's first
 * close of that fd would hang. Every lock the table reaches starts afresh
 * (that thread's half-done OpenSSL call is the parent's; the child only
 * closes such a connection, without TLS I/O, as it does not own its session).
 */
static void fdtab_child(void)
{
	owner = getpid();
	for (size_t fd = 0; fd < atlas_fdtab_high; fd++) {
		struct atlas_conn *c = atlas_fdtab_slots[fd];

		if (c != NULL) {
			pthread_mutex_init(&c->lock, NULL);
			c->sending = 0; /* the parent's threads' sends are not the child's */
		}
	}
	atlas_ready_after_fork();
	fdtab_postfork();
}

static void fdtab_register_atfork(void)
{
	for (int i = 0; i < ATLAS_FDTAB_STRIPES; i++)
		pthread_mutex_init(&stripes[i], NULL);
	owner = getpid();
	pthread_atfork(fdtab_prefork, fdtab_postfork, fdtab_child);
}

bool atlas_fdtab_owned(void)
{
	return getpid() == owner;
}

static pthread_mutex_t *stripe(int fd)
{
	return &stripes[(unsigned)fd % ATLAS_FDTAB_STRIPES];
}

int atlas_fdtab_init(void)
{
	struct rlimit rl = { .rlim_cur = 0, .rlim_max = 0 };
	size_t n = ATLAS_FDTAB_MIN;
	void *p;

	pthread_once(&atfork_once, fdtab_register_atfork);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > ATLAS_FDTAB_MAX)
			n = ATLAS_FDTAB_MAX;
		else if (rl.rlim_max > n)
			n = rl.rlim_max;
	}
	/* Anonymous pages are zero and cost nothing until a slot on them is written. */
	p = mmap(NULL, n * sizeof(*atlas_fdtab_slots), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	host_cloexec = mmap(NULL, n, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (host_cloexec == MAP_FAILED) {
		munmap(p, n * sizeof(*atlas_fdtab_slots));
		return -1;
	}
	atlas_fdtab_slots = p;
	__atomic_store_n(&atlas_fdtab_size, n, __ATOMIC_RELEASE);
	return 0;
}

void atlas_fdtab_fini(void)
{
	if (atlas_fdtab_slots == NULL)
		return;
	munmap(atlas_fdtab_slots, atlas_fdtab_size * sizeof(*atlas_fdtab_slots));
	munmap(host_cloexec, atlas_fdtab_size);
	atlas_fdtab_slots = NULL;
	atlas_fdtab_size = 0;
	atlas_fdtab_high = 0;
}

struct atlas_conn *atlas_fdtab_get(int fd)
{
	struct atlas_conn *c;

	if ((size_t)fd >= atlas_fdtab_size)
		return NULL;
	pthread_mutex_lock(stripe(fd));
	c = atlas_fdtab_slots[fd];
	if (c != NULL)
		atlas_conn_get(c);
	pthread_mutex_unlock(stripe(fd));
	return c;
}

int atlas_fdtab_set(int fd, struct atlas_conn *c, struct atlas_conn **old)
{
	if (fd < 0 || (size_t)fd >= atlas_fdtab_size) {
		errno = EMFILE;
		return -1;
	}
	atlas_conn_fd_get(c);
	pthread_mutex_lock(stripe(fd));
	*old = atlas_fdtab_slots[fd];
	__atomic_store_n(&atlas_fdtab_slots[fd], c, __ATOMIC_RELEASE);
	if ((size_t)fd >= __atomic_load_n(&atlas_fdtab_high, __ATOMIC_RELAXED))
		__atomic_store_n(&atlas_fdtab_high, (size_t)fd + 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(stripe(fd));
	return 0;
}

struct atlas_conn *atlas_fdtab_take(int fd)
{
	struct atlas_conn *c;

	if ((size_t)fd >= atlas_fdtab_size)
		return NULL;
	pthread_mutex_lock(stripe(fd));
	c = atlas_fdtab_slots[fd];
	__atomic_store_n(&atlas_fdtab_slots[fd], NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(stripe(fd));
	return c;
}

void atlas_fdtab_note_cloexec(int fd, bool cloexec)
{
	if (fd >= 0 && (size_t)fd < atlas_fdtab_size)
		__atomic_store_n(&host_cloexec[fd], cloexec, __ATOMIC_RELAXED);
}

void atlas_fdtab_give_back_cloexec(struct atlas_conn *c, int fd)
{
	size_t high = __atomic_load_n(&atlas_fdtab_high, __ATOMIC_RELAXED);

	if (__atomic_load_n(&c->fds, __ATOMIC_RELAXED) <= 1) {
		high = 0; /* the usual case: fd is the only one, no scan */
		if (atlas_fdtab_peek(fd) == c && !host_cloexec[fd])
			atlas_real.fcntl(fd, F_SETFD, 0);
	}
	for (size_t i = 0; i < high; i++)
		if (atlas_fdtab_peek((int)i) == c && !host_cloexec[i])
			atlas_real.fcntl((int)i, F_SETFD, 0);
}
