/*
 * Kernel TLS: what this machine's kernel can take over.
 *
 * This file grows into the kTLS commit point (validate, then TCP_ULP, TLS_TX,
 * TLS_RX). For now it only probes the kernel, so the per-connection log line
 * can say truthfully why a connection stays on the userspace path.
 */
#ifndef ATLAS_KTLS_H
#define ATLAS_KTLS_H

#include <stdbool.h>

#include "config.h"

/* True if the "tls" upper-layer protocol is listed in tcp_available_ulp. */
bool atlas_ktls_ulp_available(void);

/* The path and reason for the log line, e.g. "userspace (ATLAS_KTLS=off)". */
const char *atlas_ktls_path_reason(enum atlas_ktls_mode mode);

#endif
