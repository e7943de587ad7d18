#define _GNU_SOURCE
#include "real.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct atlas_real_table atlas_real;

static pthread_once_t real_once = PTHREAD_ONCE_INIT;

/* The shared object this file is linked into, to detect a lookup that found ourselves. */
static void *self_handle(void)
{
	Dl_info info;
	if (dladdr((void *)atlas_real_init, &info) == 0)
		return NULL;
	return info.dli_fbase;
}

static void *resolve(const char *name, void *self_base, bool optional)
{
	void *fn = dlsym(RTLD_NEXT, name);
	Dl_info info;

	if (fn == NULL && optional)
		return NULL;
	if (fn == NULL) {
		/* Nothing after us defines it: libc itself must, or the process cannot work. */
		static const char msg[] =
			"atlas: fatal: libc symbol not found by dlsym(RTLD_NEXT)\n";
		(void)!syscall(SYS_write, 2, msg, sizeof(msg) - 1); /* not the write hook */
		abort();
	}
	if (self_base != NULL && dladdr(fn, &info) != 0 && info.dli_fbase == self_base) {
		static const char msg[] =
			"atlas: fatal: dlsym(RTLD_NEXT) returned Atlas's own hook\n";
		(void)!syscall(SYS_write, 2, msg, sizeof(msg) - 1); /* not the write hook */
		abort();
	}
	return fn;
}

static void resolve_all(void)
{
	void *self = self_handle();

	/* The cast from void * to a function pointer is what dlsym(3) prescribes. */
#define RESOLVE(field, name) *(void **)(&atlas_real.field) = resolve(name, self, false)
/* Newer than the glibc the library needs: no program can call it where it is missing. */
#define RESOLVE_NEWER(field, name) *(void **)(&atlas_real.field) = resolve(name, self, true)
	RESOLVE(accept, "accept");
	RESOLVE(accept4, "accept4");
	RESOLVE(listen, "listen");
	RESOLVE(read, "read");
	RESOLVE(readv, "readv");
	RESOLVE(recv, "recv");
	RESOLVE(recvfrom, "recvfrom");
	RESOLVE(recvmsg, "recvmsg");
	RESOLVE(recvmmsg, "recvmmsg");
	RESOLVE(write, "write");
	RESOLVE(writev, "writev");
	RESOLVE(send, "send");
	RESOLVE(sendto, "sendto");
	RESOLVE(sendmsg, "sendmsg");
	RESOLVE(sendmmsg, "sendmmsg");
	RESOLVE(sendfile, "sendfile64");
	RESOLVE(splice, "splice");
	RESOLVE(pread, "pread64");
	RESOLVE(lseek, "lseek64");
	RESOLVE(close, "close");
	RESOLVE(syscall, "syscall");
	RESOLVE(ioctl, "ioctl");
	RESOLVE(close_range, "close_range");
	RESOLVE(setsockopt, "setsockopt");
	RESOLVE(getsockopt, "getsockopt");
	RESOLVE(shutdown, "shutdown");
	RESOLVE(dup, "dup");
	RESOLVE(dup2, "dup2");
	RESOLVE(dup3, "dup3");
	RESOLVE(fcntl, "fcntl64");
	RESOLVE(poll, "poll");
	RESOLVE(ppoll, "ppoll");
	RESOLVE(select, "select");
	RESOLVE(pselect, "pselect");
	RESOLVE(epoll_ctl, "epoll_ctl");
	RESOLVE(epoll_wait, "epoll_wait");
	RESOLVE(epoll_pwait, "epoll_pwait");
	RESOLVE_NEWER(epoll_pwait2, "epoll_pwait2"); /* glibc 2.35 */
	RESOLVE(fdopen, "fdopen");
	RESOLVE(execve, "execve");
	RESOLVE(read_chk, "__read_chk");
	RESOLVE(recv_chk, "__recv_chk");
	RESOLVE(recvfrom_chk, "__recvfrom_chk");
#undef RESOLVE
#undef RESOLVE_NEWER
}

void atlas_real_init(void)
{
	pthread_once(&real_once, resolve_all);
}
