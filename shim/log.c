#define _GNU_SOURCE
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "fdtab.h"
#include "real.h"

enum atlas_log_level atlas_log_threshold = ATLAS_LOG_WARN;

static const char *const level_names[] = {
	[ATLAS_LOG_ERROR] = "error",
	[ATLAS_LOG_WARN] = "warn",
	[ATLAS_LOG_INFO] = "info",
	[ATLAS_LOG_DEBUG] = "debug",
};

static void log_write(const char *line, size_t len)
{
	ssize_t (*wr)(int, const void *, size_t) = atlas_real.write;

	/* A server that closed stderr can have a client connection on fd 2: never write there. */
	if (atlas_fdtab_peek(2) != NULL)
		return;
	if (wr == NULL) {
		atlas_real_init();
		wr = atlas_real.write;
	}
	/* A short write to stderr is not worth a retry loop: the line is advisory. */
	(void)!wr(2, line, len);
}

void atlas_log(enum atlas_log_level level, const char *fmt, ...)
{
	int saved = errno;
	char line[1024];
	size_t used;
	int n;
	va_list ap;

	if (!atlas_log_enabled(level))
		goto out;
	n = snprintf(line, sizeof(line), "atlas: %s: ", level_names[level]);
	used = (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
	va_end(ap);
	if (n < 0)
		goto out;
	used += (size_t)n;
	if (used > sizeof(line) - 2)
		used = sizeof(line) - 2; /* truncated: keep it one line */
	line[used++] = '\n';
	log_write(line, used);
out:
	errno = saved;
}

const char *atlas_log_ssl_reason(char *buf, unsigned long len)
{
	unsigned long code, last = 0, oom = 0;

	/*
	 * The last error is the most specific, except that an allocation that failed
	 * deep down comes back as "internal error" or worse: name the cause.
	 */
	while ((code = ERR_get_error()) != 0) {
		last = code;
		if (ERR_GET_REASON(code) == ERR_R_MALLOC_FAILURE)
			oom = code;
	}
	if (oom != 0)
		last = oom;
	buf[0] = '\0';
	if (last != 0) {
		const char *reason = ERR_reason_error_string(last);
		if (reason != NULL)
			snprintf(buf, len, "%s", reason);
		else
			snprintf(buf, len, "OpenSSL error %lx", last);
	}
	return buf;
}

void atlas_log_ssl(enum atlas_log_level level, const char *what)
{
	char reason[256];

	atlas_log_ssl_reason(reason, sizeof(reason));
	atlas_log(level, "%s%s%s", what, reason[0] ? ": " : "", reason);
}
