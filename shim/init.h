/*
 * Process-wide state: the configuration, read when the library is loaded,
 * and the TLS context, built the first time this process listens on or
 * accepts from a TLS port (so that the programs a server starts, which load
 * the library too, never read the private key or log about it).
 */
#ifndef ATLAS_INIT_H
#define ATLAS_INIT_H

#include "config.h"

enum atlas_init_mode {
	ATLAS_INERT = 0,   /* ATLAS_PORTS unset: the library passes everything through */
	ATLAS_SERVING,	   /* connections to TLS ports are terminated */
	ATLAS_REFUSING,	   /* the configuration is broken: connections to TLS ports are closed */
	ATLAS_REFUSING_ALL /* even the port list is broken: every accepted TCP connection is closed */
};

extern enum atlas_init_mode atlas_init_mode;
extern struct atlas_config atlas_init_config;

/*
 * Builds the TLS context on first use (once per process; a forked child
 * inherits it). Afterwards atlas_init_mode is SERVING or REFUSING, and the
 * first failure has been logged. Returns the mode.
 */
enum atlas_init_mode atlas_init_tls(void);

/* Why TLS ports are refused ("" while serving): one sentence for log lines. */
const char *atlas_init_refusal(void);

#endif
