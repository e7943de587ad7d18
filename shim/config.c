#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../include/atlas.h"

/* Longest handshake timeout accepted: an hour is already far past useful. */
#define ATLAS_MAX_HANDSHAKE_TIMEOUT_MS 3600000u

/* Writes the one sentence that names the problem; the compiler checks every format. */
__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
						      ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * The first max bytes of a bad value, for quoting in the error: any byte but
 * printable ASCII becomes '?', so the sentence stays one readable log line
 * whatever the variable held (a newline in it would start a line of its own).
 */
static const char *quote(char *buf, size_t buflen, const char *text, size_t max)
{
	size_t i;

	for (i = 0; i + 1 < buflen && i < max && text[i] != '\0'; i++)
		buf[i] = text[i] >= 0x20 && text[i] <= 0x7e ? text[i] : '?';
	buf[i] = '\0';
	return buf;
}

/* Parses a decimal number of at most max with no sign, space or suffix. */
static bool parse_decimal(const char *s, size_t len, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

int atlas_config_parse_ports(struct atlas_config *cfg, const char *text, char *err, size_t errlen)
{
	const char *p = text;

	memset(cfg->port_bits, 0, sizeof(cfg->port_bits));
	cfg->nports = 0;
	if (text == NULL || *text == '\0')
		return fail(err, errlen, "%s is not set: name the TLS ports, e.g. %s=8443",
			    ATLAS_ENV_PORTS, ATLAS_ENV_PORTS);
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		unsigned long port;
		char item[16];

		if (!parse_decimal(p, len, 65535, &port) || port == 0) {
			quote(item, sizeof(item), p, len < 12 ? len : 12);
			/* A half-read list would name the wrong ports: keep none. */
			memset(cfg->port_bits, 0, sizeof(cfg->port_bits));
			cfg->nports = 0;
			return fail(err, errlen, "%s: '%s' is not a port number from 1 to 65535",
				    ATLAS_ENV_PORTS, item);
		}
		if (!atlas_config_port_is_tls(cfg, (uint16_t)port)) {
			cfg->port_bits[port / 64] |= UINT64_C(1) << (port % 64);
			cfg->nports++;
		}
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

int atlas_config_parse_ktls(const char *text, enum atlas_ktls_mode *out, char *err, size_t errlen)
{
	static const char *const names[] = {
		[ATLAS_KTLS_AUTO] = "auto",
		[ATLAS_KTLS_OFF] = "off",
		[ATLAS_KTLS_REQUIRE] = "require",
	};
	char q[44];

	if (text == NULL || *text == '\0') {
		*out = ATLAS_KTLS_AUTO;
		return 0;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(text, names[i]) == 0) {
			*out = (enum atlas_ktls_mode)i;
			return 0;
		}
	}
	return fail(err, errlen, "%s: '%s' is not one of auto, off, require", ATLAS_ENV_KTLS,
		    quote(q, sizeof(q), text, 40));
}

const char *atlas_config_ktls_name(enum atlas_ktls_mode mode)
{
	switch (mode) {
	case ATLAS_KTLS_AUTO:
		return "auto";
	case ATLAS_KTLS_OFF:
		return "off";
	case ATLAS_KTLS_REQUIRE:
		return "require";
	default:
		return "?";
	}
}

int atlas_config_parse_timeout(const char *text, unsigned *out, char *err, size_t errlen)
{
	unsigned long v;
	char q[44];

	if (text == NULL || *text == '\0') {
		*out = ATLAS_DEFAULT_HANDSHAKE_TIMEOUT_MS;
		return 0;
	}
	if (!parse_decimal(text, strlen(text), ATLAS_MAX_HANDSHAKE_TIMEOUT_MS, &v) || v == 0)
		return fail(err, errlen,
			    "%s: '%s' is not a number of milliseconds from 1 to 3600000",
			    ATLAS_ENV_HANDSHAKE_TIMEOUT_MS, quote(q, sizeof(q), text, 40));
	*out = (unsigned)v;
	return 0;
}

int atlas_config_parse_log_level(const char *text, enum atlas_log_level *out, char *err,
				 size_t errlen)
{
	static const char *const names[] = {
		[ATLAS_LOG_ERROR] = "error",
		[ATLAS_LOG_WARN] = "warn",
		[ATLAS_LOG_INFO] = "info",
		[ATLAS_LOG_DEBUG] = "debug",
	};
	char q[44];

	if (text == NULL || *text == '\0') {
		*out = ATLAS_LOG_WARN;
		return 0;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(text, names[i]) == 0) {
			*out = (enum atlas_log_level)i;
			return 0;
		}
	}
	return fail(err, errlen, "%s: '%s' is not one of error, warn, info, debug",
		    ATLAS_ENV_LOG_LEVEL, quote(q, sizeof(q), text, 40));
}

static int parse_path(const char *var, const char *text, char *out, size_t outlen, char *err,
		      size_t errlen)
{
	if (text == NULL || *text == '\0')
		return fail(err, errlen, "%s is not set: name a PEM file", var);
	if (strlen(text) >= outlen)
		return fail(err, errlen, "%s: the path is longer than PATH_MAX", var);
	strcpy(out, text);
	return 0;
}

/*
 * What is optional and never refuses a port: SSLKEYLOGFILE (set and non-empty; one
 * too long for a path is ignored, as if unset) and the wrapper's mark.
 */
static int parse_optional(atlas_config_lookup_fn lookup, struct atlas_config *cfg)
{
	const char *keylog = lookup(ATLAS_ENV_KEYLOG), *warned = lookup(ATLAS_ENV_KEY_MODE_WARNED);

	if (keylog != NULL && strlen(keylog) < sizeof(cfg->keylog))
		snprintf(cfg->keylog, sizeof(cfg->keylog), "%s", keylog);
	cfg->key_mode_warned = warned != NULL && strcmp(warned, "1") == 0;
	return 0;
}

int atlas_config_load(struct atlas_config *cfg, atlas_config_lookup_fn lookup, char *err,
		      size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ktls = ATLAS_KTLS_AUTO;
	cfg->handshake_timeout_ms = ATLAS_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	cfg->log_level = ATLAS_LOG_WARN;

	/*
	 * Ports first: even when a later variable is wrong, the caller must know which
	 * ports were meant for TLS so that it can refuse them rather than serve plaintext.
	 */
	if (atlas_config_parse_ports(cfg, lookup(ATLAS_ENV_PORTS), err, errlen) < 0 ||
	    atlas_config_parse_log_level(lookup(ATLAS_ENV_LOG_LEVEL), &cfg->log_level, err,
					 errlen) < 0 ||
	    parse_path(ATLAS_ENV_CERT, lookup(ATLAS_ENV_CERT), cfg->cert, sizeof(cfg->cert), err,
		       errlen) < 0 ||
	    parse_path(ATLAS_ENV_KEY, lookup(ATLAS_ENV_KEY), cfg->key, sizeof(cfg->key), err,
		       errlen) < 0 ||
	    atlas_config_parse_ktls(lookup(ATLAS_ENV_KTLS), &cfg->ktls, err, errlen) < 0 ||
	    atlas_config_parse_timeout(lookup(ATLAS_ENV_HANDSHAKE_TIMEOUT_MS),
				       &cfg->handshake_timeout_ms, err, errlen) < 0)
		return -1;
	return parse_optional(lookup, cfg);
}
