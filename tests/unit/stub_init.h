/*
 * Unit tests link every shim object but hooks.o and init.o (no libc symbol is
 * interposed, nothing runs at load). accept.o still refers to init.c's state:
 * these stand in for it. Include from exactly one file per test binary.
 */
#ifndef ATLAS_TEST_STUB_INIT_H
#define ATLAS_TEST_STUB_INIT_H

#include "init.h"

enum atlas_init_mode atlas_init_mode = ATLAS_INERT;
struct atlas_config atlas_init_config;

enum atlas_init_mode atlas_init_tls(void)
{
	return atlas_init_mode;
}

const char *atlas_init_refusal(void)
{
	return "";
}

#endif
