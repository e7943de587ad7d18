#define _GNU_SOURCE
#include "init.h"

#include <pthread.h>
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
#include "offload.h"
#include "real.h"
#include "secrets.h"
#include "tls.h"

enum atlas_init_mode atlas_init_mode = ATLAS_INERT;
struct atlas_config atlas_init_config;

static char refusal[512];
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static const char *lookup_env(const char *name)
{
	return getenv(name);
}

const char *atlas_init_refusal(void)
{
	return refusal;
}

static void refuse_ports(const char *why)
{
	snprintf(refusal, sizeof(refusal), "%s", why);
	__atomic_store_n(&atlas_init_mode,
			 atlas_init_config.nports > 0 ? ATLAS_REFUSING : ATLAS_REFUSING_ALL,
			 __ATOMIC_RELEASE);
}

static void build_tls(void)
{
	char err[512];
	SSL_CTX *ctx;

	if (atlas_init_mode != ATLAS_SERVING)
		return;
	bool ulp = atlas_ktls_ulp_available();

	if (atlas_init_config.ktls == ATLAS_KTLS_REQUIRE && !ulp) {
		refuse_ports("ATLAS_KTLS=require but this kernel has no tls ULP (CONFIG_TLS; try "
			     "modprobe tls)");
		return;
	}
	atlas_offload_configure(atlas_init_config.ktls, ulp);
	atlas_secrets_keylog_open(&atlas_init_config);
	ctx = atlas_tls_ctx_new(&atlas_init_config, atlas_offload_enabled(), err, sizeof(err));
	if (ctx == NULL) {
		refuse_ports(err); /* the caller logs it, naming the port */
		return;
	}
	atlas_engine_set_ctx(ctx);
	atlas_crash_install();
}

enum atlas_init_mode atlas_init_tls(void)
{
	pthread_once(&tls_once, build_tls);
	return __atomic_load_n(&atlas_init_mode, __ATOMIC_ACQUIRE);
}

/*
 * Runs when the library is loaded, before main(): nginx and others clear the
 * environment of their workers, so this is the one moment ATLAS_* can be read.
 * Nothing is logged here: every program the server starts loads the library
 * too, and only one that listens on or accepts from a TLS port has anything
 * to say (accept.c says it).
 */
__attribute__((constructor)) static void atlas_init(void)
{
	char err[512];

	atlas_real_init();
	if (getenv(ATLAS_ENV_PORTS) == NULL)
		return; /* loaded without configuration */
	/* Before OpenSSL's first allocation: a connection's OpenSSL state is wiped when freed. */
	atlas_tls_wipe_init();
	if (atlas_config_load(&atlas_init_config, lookup_env, err, sizeof(err)) < 0) {
		atlas_log_threshold = atlas_init_config.log_level;
		refuse_ports(err);
		return;
	}
	atlas_log_threshold = atlas_init_config.log_level;
	if (atlas_fdtab_init() < 0) {
		refuse_ports("cannot map the fd table");
		return;
	}
	atlas_init_mode = ATLAS_SERVING;
}
