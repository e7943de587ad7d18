/*
 * Process-wide state, set once when the library is loaded (a constructor):
 * the configuration, what the accept hooks must do, and the OpenSSL context.
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

#endif
