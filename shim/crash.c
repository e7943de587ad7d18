#define _GNU_SOURCE
#include "crash.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "real.h"

__thread int atlas_crash_depth __attribute__((tls_model("initial-exec")));

static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
static struct sigaction previous[sizeof(crash_signals) / sizeof(crash_signals[0])];

/* Only async-signal-safe calls from here on: write(2), snprintf on a stack buffer, libunwind. */
static void say(const char *s, size_t n)
{
	/* The raw system call: neither the write hook nor anything that could take a lock. */
	(void)!syscall(SYS_write, 2, s, n);
}

static void print_backtrace(int sig, void *uctx)
{
	unw_cursor_t cur;
	char line[320], name[200];
	int n, depth = 0;

	n = snprintf(line, sizeof(line),
		     "atlas: fatal: signal %d (%s) inside Atlas TLS; backtrace:\n", sig,
		     sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
	say(line, (size_t)n);
	/* Unwind from the interrupted context itself: the first frame is the faulting one.
	 * On x86-64 libunwind's unw_context_t is the kernel's ucontext_t. */
	if (unw_init_local2(&cur, (unw_context_t *)uctx, UNW_INIT_SIGNAL_FRAME) != 0)
		return;
	do {
		unw_word_t ip = 0, off = 0;

		unw_get_reg(&cur, UNW_REG_IP, &ip);
		if (unw_get_proc_name(&cur, name, sizeof(name), &off) != 0)
			strcpy(name, "??");
		n = snprintf(line, sizeof(line), "atlas:   #%d 0x%lx %s+0x%lx\n", depth++,
			     (unsigned long)ip, name, (unsigned long)off);
		say(line, (size_t)n);
	} while (unw_step(&cur) > 0 && depth < 64);
}

static void crash_handler(int sig, siginfo_t *info, void *uctx)
{
	size_t i;

	for (i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		if (crash_signals[i] == sig)
			break;
	if (atlas_crash_depth > 0) {
		atlas_crash_depth = 0; /* report once, even if unwinding faults */
		print_backtrace(sig, uctx);
	}
	/* Hand the signal on: the host's handler, or the default action. */
	if (i < sizeof(crash_signals) / sizeof(crash_signals[0])) {
		const struct sigaction *old = &previous[i];

		if (old->sa_flags & SA_SIGINFO) {
			if (old->sa_sigaction != NULL) {
				old->sa_sigaction(sig, info, uctx);
				return;
			}
		} else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
			old->sa_handler(sig);
			return;
		}
	}
	/* Default action: restore it and re-raise; a fault re-faults on return. */
	signal(sig, SIG_DFL);
	raise(sig);
}

void atlas_crash_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = crash_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		sigaction(crash_signals[i], &sa, &previous[i]);
}
