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

/* glibc's ptrace is variadic: so is the pointer it is called through. */
typedef long (*ptrace_fn)(int, ...);

/* The host's full XSAVE size, once a padded SETREGSET worked (0: not needed yet). */
static size_t padded_size;

/* The host's full XSAVE size: what a GETREGSET with room to spare fills in. 0: unknown. */
static size_t host_xstate_size(ptrace_fn real, pid_t pid)
{
	size_t cap = 64 * 1024;
	struct iovec iov;
	size_t size = 0;

	iov.iov_base = calloc(1, cap);
	iov.iov_len = cap;
	if (iov.iov_base == NULL)
		return 0;
	if (real(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) == 0 && iov.iov_len < cap)
		size = iov.iov_len;
	free(iov.iov_base);
	return size;
}

/* UML's state, then zeros, in a buffer of size bytes kept per thread. */
static struct iovec *padded(const struct iovec *iov, size_t size)
{
	static __thread struct iovec out;
	static __thread size_t have;

	if (have < size) {
		free(out.iov_base);
		have = 0;
		out.iov_base = malloc(size);
		if (out.iov_base == NULL)
			return NULL;
		have = size;
	}
	memcpy(out.iov_base, iov->iov_base, iov->iov_len);
	memset((char *)out.iov_base + iov->iov_len, 0, size - iov->iov_len);
	out.iov_len = size;
	return &out;
}

long ptrace(enum __ptrace_request request, ...)
{
	static ptrace_fn real;
	struct iovec *iov, *pad;
	va_list ap;
	pid_t pid;
	void *addr, *data;
	size_t full;
	long r;

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
	if (request != PTRACE_SETREGSET || (unsigned long)addr != NT_X86_XSTATE || data == NULL)
		return real((int)request, pid, addr, data);
	iov = data;
	full = __atomic_load_n(&padded_size, __ATOMIC_RELAXED);
	if (full <= iov->iov_len) {
		/* As UML asked; padded only once that is known to fail. */
		r = real((int)request, pid, addr, data);
		if (r == 0 || errno != EFAULT)
			return r;
		full = host_xstate_size(real, pid);
		if (full <= iov->iov_len) {
			errno = EFAULT;
			return -1;
		}
	}
	pad = padded(iov, full);
	if (pad == NULL) {
		errno = EFAULT;
		return -1;
	}
	r = real((int)request, pid, addr, pad);
	if (r == 0)
		__atomic_store_n(&padded_size, full, __ATOMIC_RELAXED);
	return r;
}
