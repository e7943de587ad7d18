/*
 * What an operator must be told about secrets: the key log file and the
 * private key's permissions.
 *
 * SSLKEYLOGFILE (the NSS key log format that curl, browsers and Wireshark use)
 * is honoured only when it is set, non-empty, in the environment the library
 * loads with: the file is opened once (created mode 600, appended to), every
 * TLS session secret OpenSSL reports is one line, written with one write(2)
 * through the real-function table, and the listener says so at warn. Unset,
 * nothing is ever written. Nothing here logs a secret.
 */
#ifndef ATLAS_SECRETS_H
#define ATLAS_SECRETS_H

#include <stdbool.h>

#include "config.h"

/* Opens cfg->keylog when it is set (once per process; a forked worker shares it). */
void atlas_secrets_keylog_open(const struct atlas_config *cfg);

/* True when a key log file is open: OpenSSL must report its secrets. */
bool atlas_secrets_keylog_enabled(void);

/*
 * Appends one NSS key log line (OpenSSL's, without its newline) to the file, in
 * one write(2); nothing when no file is open, or when its fd no longer is that
 * file (the host closed it and the number was reused).
 */
void atlas_secrets_keylog_line(const char *line);

/*
 * The warn lines for a TLS listener on fd: the key log file (each listener),
 * and a private key that group or others may read (once per process, unless the
 * wrapper has said it already: ATLAS_KEY_MODE_WARNED).
 */
void atlas_secrets_note_listener(const struct atlas_config *cfg, int fd);

#endif
