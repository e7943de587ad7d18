/*
 * failalloc.so: a fault-injection preload for the allocation-failure scenario
 * (tests/e2e/14-alloc-failure.sh). Listed in LD_PRELOAD before Atlas, its
 * malloc, calloc and realloc come first in symbol lookup, so every call to
 * them reaches it; one whose caller lies inside build/libatlas.so (Atlas, and
 * the OpenSSL linked statically into it) may be made to fail with ENOMEM on a
 * schedule. Every other caller (the server, libc, python) is never failed.
 *
 *   FAILALLOC_LIB=PATH     the library whose allocations may fail (its mapped
 *                          range, from dl_iterate_phdr at load); required
 *   FAILALLOC_EVERY=N      fail every Nth allocation from inside (default 1)
 *   FAILALLOC_FROM=A       ... counting from the Ath inside allocation (default 1)
 *   FAILALLOC_COUNT=K      ... and only K failures in all (default: no limit)
 *   FAILALLOC_SWITCH=FILE  ... and only while FILE exists; a number in it replaces N,
 *                          and "rN" makes it a chance of 1 in N instead, drawn from
 *                          the allocation's number (splitmix64: the same draws each
 *                          run); the file is looked at every 20 ms at most
 *   FAILALLOC_STATS=FILE   a file kept up to date with "inside=I failed=F\n" (a shared
 *                          mapping: the counts of every process forked after the load)
 *   FAILALLOC_BACKTRACE=1  each logged failure is followed by its backtrace (glibc's)
 *
 * The first 20 failures are each logged on stderr as one line,
 * "failalloc: failing allocation #I (malloc SIZE) from libatlas.so+0xOFFSET".
 * glibc's own __libc_malloc and friends do the real work, so no dlsym (which
 * allocates) is needed; free is left alone.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <errno.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

#define LOG_FIRST 20

static uintptr_t lib_lo, lib_hi; /* the target's mapped range; 0, 0 until found */
static unsigned long every = 1, from = 1, limit;
static const char *switch_file;
static int with_backtrace;
/* The counters (atomic): in the shared mapping of FAILALLOC_STATS when there is one. */
struct counters {
	char text[64]; /* "inside=I failed=F\n", padded with spaces */
	unsigned long inside;
	unsigned long failed;
};
static struct counters own, *cnt = &own;
static char *stats;
/* nginx overwrites its environment (its process title): keep copies. */
static char switch_path[4096];

static int find_lib(struct dl_phdr_info *info, size_t size, void *data)
{
	const char *want = data;
	const char *name = info->dlpi_name;
	size_t nl = strlen(name), wl = strlen(want);

	(void)size;
	if (nl < wl || strcmp(name + nl - wl, want) != 0)
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;

		if (ph->p_type != PT_LOAD)
			continue;
		if (lib_lo == 0 || lo < lib_lo)
			lib_lo = lo;
		if (hi > lib_hi)
			lib_hi = hi;
	}
	return 1;
}

static unsigned long env_ul(const char *name, unsigned long dflt)
{
	const char *v = getenv(name);

	return v != NULL && *v ? strtoul(v, NULL, 10) : dflt;
}

__attribute__((constructor)) static void failalloc_init(void)
{
	const char *lib = getenv("FAILALLOC_LIB"), *st = getenv("FAILALLOC_STATS");
	const char *base;

	if (lib == NULL)
		return;
	base = strrchr(lib, '/') ? strrchr(lib, '/') + 1 : lib;
	dl_iterate_phdr(find_lib, (void *)base);
	every = env_ul("FAILALLOC_EVERY", 1);
	from = env_ul("FAILALLOC_FROM", 1);
	limit = env_ul("FAILALLOC_COUNT", 0);
	switch_file = getenv("FAILALLOC_SWITCH");
	if (switch_file != NULL) {
		snprintf(switch_path, sizeof(switch_path), "%s", switch_file);
		switch_file = switch_path;
	}
	with_backtrace = getenv("FAILALLOC_BACKTRACE") != NULL;
	if (every == 0)
		every = 1;
	if (st != NULL) {
		int fd = open(st, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

		if (fd >= 0 && ftruncate(fd, sizeof(struct counters)) == 0) {
			void *p = mmap(NULL, sizeof(struct counters), PROT_READ | PROT_WRITE,
				       MAP_SHARED, fd, 0);

			if (p != MAP_FAILED) {
				cnt = p;
				stats = cnt->text;
			}
		}
		if (fd >= 0)
			syscall(SYS_close, fd); /* not through Atlas's hook: not a socket */
	}
}

static void note(const char *what, size_t size, uintptr_t from_addr, unsigned long n,
		 unsigned long nfail)
{
	char line[160];
	int len;

	if (stats != NULL) {
		char s[64];
		int sl = snprintf(s, sizeof(s), "inside=%lu failed=%lu\n", n, nfail);

		if (sl > 0 && sl < 64) {
			memset(stats, ' ', 63);
			memcpy(stats, s, (size_t)sl);
		}
	}
	if (what == NULL || nfail > LOG_FIRST)
		return;
	len = snprintf(line, sizeof(line),
		       "failalloc: failing allocation #%lu (%s %zu) from libatlas.so+0x%lx\n", n,
		       what, size, (unsigned long)(from_addr - lib_lo));
	if (len > 0)
		(void)!syscall(SYS_write, 2, line, (size_t)len);
	if (with_backtrace) {
		void *frames[32];

		backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
	}
}

/*
 * The schedule's N now: 0 (nothing fails) while the switch file is missing, else the
 * number it holds or FAILALLOC_EVERY. Raw system calls: Atlas's hooks are not for us.
 */
static int random_mode; /* the switch said "rN" */

static unsigned long every_now(void)
{
	static long long next_look_ns;
	static unsigned long cached;
	struct timespec now;
	long long ns;
	char buf[32];
	long fd, n;
	unsigned long v;

	if (switch_file == NULL)
		return every;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
	if (ns < __atomic_load_n(&next_look_ns, __ATOMIC_RELAXED))
		return __atomic_load_n(&cached, __ATOMIC_RELAXED);
	fd = syscall(SYS_openat, AT_FDCWD, switch_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		v = 0;
	} else {
		n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
		syscall(SYS_close, fd);
		buf[n > 0 ? n : 0] = '\0';
		__atomic_store_n(&random_mode, buf[0] == 'r', __ATOMIC_RELAXED);
		v = strtoul(buf + (buf[0] == 'r'), NULL, 10);
		if (v == 0)
			v = every;
	}
	__atomic_store_n(&cached, v, __ATOMIC_RELAXED);
	__atomic_store_n(&next_look_ns, ns + 20000000LL, __ATOMIC_RELAXED);
	return v;
}

/* A well-mixed 64-bit value of n (splitmix64's finaliser). */
static unsigned long long mix(unsigned long long n)
{
	n = (n ^ (n >> 30)) * 0xbf58476d1ce4e5b9ULL;
	n = (n ^ (n >> 27)) * 0x94d049bb133111ebULL;
	return n ^ (n >> 31);
}

/* Whether the allocation asked for at from_addr must fail. */
static int should_fail(uintptr_t from_addr, const char *what, size_t size)
{
	unsigned long n, nfail, each;
	bool hit = false;

	if (from_addr < lib_lo || from_addr >= lib_hi)
		return 0;
	n = __atomic_add_fetch(&cnt->inside, 1, __ATOMIC_RELAXED);
	each = every_now();
	if (each != 0 && n >= from)
		hit = __atomic_load_n(&random_mode, __ATOMIC_RELAXED) ? mix(n) % each == 0
								      : (n - from) % each == 0;
	if (!hit || (limit != 0 && __atomic_load_n(&cnt->failed, __ATOMIC_RELAXED) >= limit)) {
		if (stats != NULL)
			note(NULL, 0, 0, n, __atomic_load_n(&cnt->failed, __ATOMIC_RELAXED));
		return 0;
	}
	nfail = __atomic_add_fetch(&cnt->failed, 1, __ATOMIC_RELAXED);
	note(what, size, from_addr, n, nfail);
	return 1;
}

void *malloc(size_t size)
{
	if (should_fail((uintptr_t)__builtin_return_address(0), "malloc", size)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	if (should_fail((uintptr_t)__builtin_return_address(0), "calloc", n * size)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	if (size != 0 && should_fail((uintptr_t)__builtin_return_address(0), "realloc", size)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, size);
}
