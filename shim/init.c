#define _GNU_SOURCE
#include "init.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../include/atlas.h"
#include "crash.h"
#include "engine.h"
#include "fdtab.h"
#include "ktls.h"
#include "log.h"
#include "real.h"
#include "tls.h"

enum atlas_init_mode atlas_init_mode = ATLAS_INERT;
struct atlas_config atlas_init_config;

static const char *lookup_env(const char *name)
{
	return getenv(name);
}

/* "8443,8444" for the start-up line. */
static void format_ports(const struct atlas_config *cfg, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned p = 1; p < 65536 && used + 8 < len; p++)
		if (atlas_config_port_is_tls(cfg, (uint16_t)p))
			used += (size_t)snprintf(buf + used, len - used, "%s%u", used ? "," : "",
						 p);
}

static void refuse_ports(const char *why)
{
	atlas_init_mode = atlas_init_config.nports > 0 ? ATLAS_REFUSING : ATLAS_REFUSING_ALL;
	atlas_error("%s; %s", why,
		    atlas_init_mode == ATLAS_REFUSING
			    ? "connections to the TLS ports will be refused"
			    : "every accepted TCP connection will be refused");
}

/*
 * Runs when the library is loaded, before main(): nginx and others clear the
 * environment of their workers, so this is the one moment ATLAS_* can be read.
 */
__attribute__((constructor)) static void atlas_init(void)
{
	char err[512], ports[256];
	SSL_CTX *ctx;

	atlas_real_init();
	if (getenv(ATLAS_ENV_PORTS) == NULL)
		return; /* loaded without configuration (a child of the server, say) */
	if (atlas_config_load(&atlas_init_config, lookup_env, err, sizeof(err)) < 0) {
		atlas_log_threshold = atlas_init_config.log_level;
		refuse_ports(err);
		/* The table is still needed to refuse; nothing is ever put in it. */
		return;
	}
	atlas_log_threshold = atlas_init_config.log_level;
	if (atlas_fdtab_init() < 0) {
		refuse_ports("cannot map the fd table");
		return;
	}
	ctx = atlas_tls_ctx_new(&atlas_init_config, err, sizeof(err));
	if (ctx == NULL) {
		refuse_ports(err);
		return;
	}
	atlas_engine_set_ctx(ctx);
	atlas_engine_set_path_reason(atlas_ktls_path_reason(atlas_init_config.ktls));
	atlas_crash_install();
	atlas_init_mode = ATLAS_SERVING;
	format_ports(&atlas_init_config, ports, sizeof(ports));
	/* Every process that loads the library gets here: details at debug, listen() says the rest. */
	atlas_debug("Atlas TLS %s loaded in pid %d: TLS ports %s, ATLAS_KTLS=%s, handshake timeout "
		    "%u ms",
		    ATLAS_VERSION, (int)getpid(), ports,
		    atlas_config_ktls_name(atlas_init_config.ktls),
		    atlas_init_config.handshake_timeout_ms);
}
