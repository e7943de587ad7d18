/*
 * Logging: one line per event on stderr, prefixed "atlas:".
 *
 * Every function here preserves errno, so a hook can log on its way out
 * without disturbing what it returns to the host. Secrets never reach a log.
 */
#ifndef ATLAS_LOG_H
#define ATLAS_LOG_H

enum atlas_log_level {
	ATLAS_LOG_ERROR = 0,
	ATLAS_LOG_WARN,
	ATLAS_LOG_INFO,
	ATLAS_LOG_DEBUG,
};

/* The threshold; messages above it are dropped. Set once at load. */
extern enum atlas_log_level atlas_log_threshold;

static inline int atlas_log_enabled(enum atlas_log_level level)
{
	return level <= atlas_log_threshold;
}

/* Formats one line ("atlas: <level>: ...\n") and writes it with one write(2). */
void atlas_log(enum atlas_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Appends OpenSSL's queued error reasons to a message, then clears the queue. */
void atlas_log_ssl(enum atlas_log_level level, const char *what);

/* The most recent OpenSSL error reason as a short string ("" if none); clears the queue. */
const char *atlas_log_ssl_reason(char *buf, unsigned long len);

#define atlas_error(...) atlas_log(ATLAS_LOG_ERROR, __VA_ARGS__)
#define atlas_warn(...)	 atlas_log(ATLAS_LOG_WARN, __VA_ARGS__)
#define atlas_info(...)                                         \
	do {                                                    \
		if (atlas_log_enabled(ATLAS_LOG_INFO))          \
			atlas_log(ATLAS_LOG_INFO, __VA_ARGS__); \
	} while (0)
#define atlas_debug(...)                                         \
	do {                                                     \
		if (atlas_log_enabled(ATLAS_LOG_DEBUG))          \
			atlas_log(ATLAS_LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
