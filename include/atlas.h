/*
 * Atlas TLS: TLS termination for unmodified servers, loaded with LD_PRELOAD.
 *
 * The library has no API to call: it is configured from the environment when
 * it is loaded and works by interposing libc's socket calls. This header is
 * the one place that names that contract, for the wrapper script, the tests
 * and anyone embedding the library.
 */
#ifndef ATLAS_H
#define ATLAS_H

#define ATLAS_VERSION "0.1.0"

/* Environment variables read once, when the library is loaded. */
#define ATLAS_ENV_PORTS		       "ATLAS_PORTS" /* "8443[,8444...]", required */
#define ATLAS_ENV_CERT		       "ATLAS_CERT"  /* PEM chain, leaf first */
#define ATLAS_ENV_KEY		       "ATLAS_KEY"   /* PEM private key */
#define ATLAS_ENV_KTLS		       "ATLAS_KTLS"  /* auto | off | require */
#define ATLAS_ENV_HANDSHAKE_TIMEOUT_MS "ATLAS_HANDSHAKE_TIMEOUT_MS"
#define ATLAS_ENV_LOG_LEVEL	       "ATLAS_LOG_LEVEL" /* error | warn | info | debug */
/* Honoured only when set: NSS key log lines for every session (anyone who reads them decrypts). */
#define ATLAS_ENV_KEYLOG "SSLKEYLOGFILE"
/* Set to 1 by atlas-preload.sh when it has warned about the key file's mode already. */
#define ATLAS_ENV_KEY_MODE_WARNED "ATLAS_KEY_MODE_WARNED"

#define ATLAS_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000u

#endif
