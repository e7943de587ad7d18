/*
 * slowsend.so: a timing preload for tests/e2e/29-two-writers.sh. Listed in
 * LD_PRELOAD after Atlas (ATLAS_PRELOAD_AFTER), its send() is the one Atlas's
 * dlsym(RTLD_NEXT) finds, so it sits between Atlas and libc. The first send that
 * meets a full socket (a short count, or EAGAIN) returns only after
 * SLOWSEND_MS milliseconds (default 1500): a peer that reads meanwhile makes
 * the socket's room come back, and its EPOLLOUT edge reach the host's waits,
 * between that send and whatever Atlas does after it. Every other send is
 * passed through untouched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	static ssize_t (*real)(int, const void *, size_t, int);
	static int done;
	ssize_t n;
	int e;

	if (real == NULL) {
		void *fn = dlsym(RTLD_NEXT, "send");

		/* The cast from void * to a function pointer is what dlsym(3) prescribes. */
		*(void **)&real = fn;
	}
	n = real(fd, buf, len, flags);
	e = errno;
	if (((n >= 0 && (size_t)n < len) || (n < 0 && (e == EAGAIN || e == EWOULDBLOCK))) &&
	    !__atomic_exchange_n(&done, 1, __ATOMIC_RELAXED)) {
		const char *ms = getenv("SLOWSEND_MS");
		long t = ms != NULL ? atol(ms) : 1500;
		struct timespec d = { .tv_sec = t / 1000, .tv_nsec = t % 1000 * 1000000L };

		while (nanosleep(&d, &d) < 0 && errno == EINTR)
			;
	}
	errno = e;
	return n;
}
