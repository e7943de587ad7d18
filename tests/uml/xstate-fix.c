/*
 * xstate-fix.so: loaded into linux.uml (LD_PRELOAD, by tests/uml/run.sh) so that
 * Debian 12's UML kernel (6.1) boots on hosts whose XSAVE area is larger than
 * the one UML sizes its buffers for.
 *
 * UML saves and restores each of its processes' FPU state with
 * ptrace(PTRACE_GETREGSET / PTRACE_SETREGSET, NT_X86_XSTATE), with a buffer of
 * the size CPUID gives for the features enabled in XCR0 (2696 bytes with
 * AVX-512). The host kernel's SETREGSET accepts only a buffer of its full
 * user XSAVE size, which on a CPU with AMX (its tile data enabled on demand)
 * is larger: every SETREGSET fails with EFAULT, and UML panics as its first
 * process starts ("userspace - ptrace set fp regs failed, errno = 14";
 * seen on a Xeon with AVX-512 and AMX, host kernel 6.18).
 *
 * Only that case is changed: a SETREGSET of NT_X86_XSTATE that fails with
 * EFAULT is made again with the buffer padded with zeros to the host's size.
 * The padding is never read as state: the XSAVE header in UML's part
 * (XSTATE_BV) marks the components beyond it, which no UML process was given
 * permission to use, as absent. Everything else passes straight through.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef long (*ptrace_fn)(int, pid_t, void *, void *);

/* The host's full XSAVE size: what a GETREGSET with room to spare fills in. 0: unknown. */
static size_t host_xstate_size(ptrace_fn real, pid_t pid)
{
	static size_t size;
	size_t cap = 64 * 1024;
	struct iovec iov;

	if (__atomic_load_n(&size, __ATOMIC_RELAXED) != 0)
		return size;
	iov.iov_base = calloc(1, cap);
	iov.iov_len = cap;
	if (iov.iov_base == NULL)
		return 0;
	if (real(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) == 0 && iov.iov_len < cap)
		__atomic_store_n(&size, iov.iov_len, __ATOMIC_RELAXED);
	free(iov.iov_base);
	return size;
}

long ptrace(enum __ptrace_request request, ...)
{
	static ptrace_fn real;
	struct iovec *iov, padded;
	va_list ap;
	pid_t pid;
	void *addr, *data;
	size_t full;
	long r;
	int saved;

	va_start(ap, request);
	pid = va_arg(ap, pid_t);
	addr = va_arg(ap, void *);
	data = va_arg(ap, void *);
	va_end(ap);
	if (real == NULL)
		real = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
	if (real == NULL) {
		errno = ENOSYS;
		return -1;
	}
	r = real((int)request, pid, addr, data);
	if (r == 0 || errno != EFAULT || request != PTRACE_SETREGSET ||
	    (unsigned long)addr != NT_X86_XSTATE || data == NULL)
		return r;
	iov = data;
	full = host_xstate_size(real, pid);
	if (full <= iov->iov_len) {
		errno = EFAULT;
		return -1;
	}
	padded.iov_base = calloc(1, full);
	if (padded.iov_base == NULL) {
		errno = EFAULT;
		return -1;
	}
	memcpy(padded.iov_base, iov->iov_base, iov->iov_len);
	padded.iov_len = full;
	r = real((int)request, pid, addr, &padded);
	saved = errno;
	free(padded.iov_base);
	errno = saved;
	return r;
}
