/*
 * Crash reports: a fatal signal raised while a thread is inside Atlas prints
 * a symbolised backtrace (libunwind) to stderr, then the host's own handler,
 * or the default action, runs as if Atlas were not there.
 */
#ifndef ATLAS_CRASH_H
#define ATLAS_CRASH_H

/* How deep the current thread is inside Atlas code; hooks raise it around TLS work. */
extern __thread int atlas_crash_depth __attribute__((tls_model("initial-exec")));

static inline void atlas_crash_enter(void)
{
	atlas_crash_depth++;
}

static inline void atlas_crash_leave(void)
{
	atlas_crash_depth--;
}

/* Installs the handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT, keeping the old ones. */
void atlas_crash_install(void);

#endif
