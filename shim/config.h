/*
 * Configuration: the ATLAS_* environment variables, parsed and validated.
 *
 * Parsing is pure (no I/O beyond the lookup function it is given) so that the
 * unit tests can run every bad value through it. The library reads the real
 * environment once, when it is loaded: nginx clears the environment of its
 * workers, so a later getenv() would find nothing.
 */
#ifndef ATLAS_CONFIG_H
#define ATLAS_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

enum atlas_ktls_mode {
	ATLAS_KTLS_AUTO = 0, /* offload when the kernel and cipher allow, else userspace */
	ATLAS_KTLS_OFF,	     /* never offload */
	ATLAS_KTLS_REQUIRE,  /* offload or refuse the connection */
};

struct atlas_config {
	uint64_t port_bits[65536 / 64]; /* bit p set: local port p is a TLS port */
	unsigned nports;		/* how many bits are set */
	char cert[PATH_MAX];		/* certificate chain file (PEM) */
	char key[PATH_MAX];		/* private key file (PEM) */
	enum atlas_ktls_mode ktls;	/* ATLAS_KTLS */
	unsigned handshake_timeout_ms;	/* ATLAS_HANDSHAKE_TIMEOUT_MS */
	enum atlas_log_level log_level; /* ATLAS_LOG_LEVEL */
	char keylog[PATH_MAX];		/* SSLKEYLOGFILE; empty: unset, nothing is written */
	bool key_mode_warned;		/* ATLAS_KEY_MODE_WARNED: the wrapper said it */
};

/* Looks a variable up; returns NULL when it is unset. getenv fits. */
typedef const char *(*atlas_config_lookup_fn)(const char *name);

/*
 * Fills cfg from the variables. Returns 0, or -1 with one sentence in err that
 * names the variable and the problem. The ports are parsed first and kept when
 * a later variable is wrong, so the caller can refuse exactly those ports; when
 * the port list itself is wrong, nports is 0.
 */
int atlas_config_load(struct atlas_config *cfg, atlas_config_lookup_fn lookup, char *err,
		      size_t errlen);

/* The parsers atlas_config_load uses, one per variable; same return convention. */
int atlas_config_parse_ports(struct atlas_config *cfg, const char *text, char *err, size_t errlen);
int atlas_config_parse_ktls(const char *text, enum atlas_ktls_mode *out, char *err, size_t errlen);
int atlas_config_parse_timeout(const char *text, unsigned *out, char *err, size_t errlen);
int atlas_config_parse_log_level(const char *text, enum atlas_log_level *out, char *err,
				 size_t errlen);

const char *atlas_config_ktls_name(enum atlas_ktls_mode mode);

static inline bool atlas_config_port_is_tls(const struct atlas_config *cfg, uint16_t port)
{
	return (cfg->port_bits[port / 64] >> (port % 64)) & 1u;
}

#endif
