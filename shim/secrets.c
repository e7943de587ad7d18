#define _GNU_SOURCE
#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log.h"
#include "real.h"

/* The key log file: its fd and identity (a reused fd number is never written to). */
static int keylog_fd = -1;
static dev_t keylog_dev;
static ino_t keylog_ino;
/* Why it could not be opened (empty: it was, or none was asked for), for the listener. */
static char keylog_err[160];
static int key_mode_warned;

void atlas_secrets_keylog_open(const struct atlas_config *cfg)
{
	struct stat st;
	int fd;

	if (cfg->keylog[0] == '\0' || keylog_fd >= 0)
		return;
	/* 0600 when created; an existing file keeps its mode (the listener line names it). */
	fd = open(cfg->keylog, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		snprintf(keylog_err, sizeof(keylog_err), "%s", strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(keylog_err, sizeof(keylog_err), "not a regular file");
		atlas_real.close(fd);
		return;
	}
	keylog_dev = st.st_dev;
	keylog_ino = st.st_ino;
	keylog_fd = fd;
}

bool atlas_secrets_keylog_enabled(void)
{
	return keylog_fd >= 0;
}

void atlas_secrets_keylog_line(const char *line)
{
	char buf[512];
	size_t len = strlen(line);
	struct stat st;
	int saved = errno;

	if (keylog_fd < 0 || len + 1 > sizeof(buf))
		return;
	if (fstat(keylog_fd, &st) < 0 || st.st_dev != keylog_dev || st.st_ino != keylog_ino)
		goto out; /* closed behind our back: the number may be a client's socket now */
	memcpy(buf, line, len);
	buf[len++] = '\n';
	/* One write per line: with O_APPEND, workers sharing the file never interleave. */
	(void)!atlas_real.write(keylog_fd, buf, len);
	OPENSSL_cleanse(buf, sizeof(buf));
out:
	errno = saved;
}

void atlas_secrets_note_listener(const struct atlas_config *cfg, int fd)
{
	struct stat st;

	if (keylog_fd >= 0)
		atlas_warn("fd %d: SSLKEYLOGFILE is set: TLS session secrets are written to %s; "
			   "anyone who can read it can decrypt this server's traffic",
			   fd, cfg->keylog);
	else if (cfg->keylog[0] != '\0')
		atlas_warn("fd %d: SSLKEYLOGFILE is set but %s cannot be opened (%s): no key log "
			   "is written",
			   fd, cfg->keylog, keylog_err);
	if (cfg->key_mode_warned || stat(cfg->key, &st) < 0 || (st.st_mode & 077) == 0 ||
	    __atomic_exchange_n(&key_mode_warned, 1, __ATOMIC_RELAXED))
		return;
	atlas_warn("the private key file %s is accessible to group or others (mode %04o): "
		   "only its owner should read it (chmod 600)",
		   cfg->key, (unsigned)(st.st_mode & 07777));
}
