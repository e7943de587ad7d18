/*
 * OpenSSL set-up: the server context built from the configuration, and the
 * BIO through which every OpenSSL byte reaches the socket.
 *
 * The BIO calls libc's real recv/send (never the hooks), always with
 * MSG_DONTWAIT: waiting, when the host's fd is blocking, is the engine's job,
 * done with the connection's lock released.
 */
#ifndef ATLAS_TLS_H
#define ATLAS_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"

struct atlas_conn;

/* TLS 1.2 suites: ECDHE with the AEADs the kernel can take over (linux/tls.h). */
#define ATLAS_TLS12_CIPHERS                                          \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* Key exchange groups: elliptic curves only, also in TLS 1.3 (no finite-field DHE). */
#define ATLAS_TLS_GROUPS "X25519:P-256:X448:P-384:P-521"
#define ATLAS_TLS13_SUITES \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/*
 * Initialises OpenSSL (without an atexit handler: daemon threads may still be
 * serving at exit) and builds the server context: certificate chain, key,
 * the check that they match, versions and suites. With ktls, OpenSSL installs
 * kernel TLS through the BIO where it can. NULL with one sentence in err.
 */
SSL_CTX *atlas_tls_ctx_new(const struct atlas_config *cfg, bool ktls, char *err, size_t errlen);

/* A server SSL for c, reading and writing through c->io_fd. NULL on allocation failure. */
SSL *atlas_tls_ssl_new(SSL_CTX *ctx, struct atlas_conn *c);

/*
 * The send queue (c->sq): once a connection on the userspace path is open, the BIO
 * takes every record OpenSSL writes whole, and what the socket has no room for
 * waits here, counted as written, as the kernel counts what it queues. The engine
 * sends it before any later write. atlas_tls_queue_send: as much of it as fd takes;
 * 1 when none is left, 0 when some is (no room), -1 with errno when the socket
 * failed (the queue is dropped then). atlas_tls_queue_drop: forget it. Both locked.
 */
int atlas_tls_queue_send(struct atlas_conn *c, int fd);
void atlas_tls_queue_drop(struct atlas_conn *c);

/*
 * Routes the allocations of Atlas's own OpenSSL (linked privately: the host's
 * OpenSSL, if any, is not touched) through functions of Atlas's, so that
 * atlas_tls_ssl_free() can wipe what it frees. Call before OpenSSL's first
 * allocation (the constructor does); false if that moment has passed.
 */
bool atlas_tls_wipe_init(void);

/*
 * SSL_do_handshake and SSL_free, with every block OpenSSL frees meanwhile
 * zeroed first (the record buffers released when a handshake step ends
 * aside: they hold records). OpenSSL 3.0 frees without wiping the SSL object,
 * which holds the connection's traffic secrets (the kernel's keys after
 * offload), and, during the handshake, the DER of the session it seals into a
 * ticket or opens from one, and the TLS 1.3 handshake secret (the HKDF salt
 * when the master secret is derived). The data path (SSL_read, SSL_write),
 * whose buffers hold no key, is not slowed. atlas_tls_ssl_free accepts NULL.
 */
int atlas_tls_handshake(SSL *ssl);
void atlas_tls_ssl_free(SSL *ssl);

/*
 * A test's view of each block OpenSSL frees (its usable size, and whether it is
 * about to be wiped): defined only by tests/unit/test_tls_wipe.c, NULL in the
 * library (a hidden weak reference: no host symbol can take its place).
 */
__attribute__((weak, visibility("hidden"))) void atlas_tls_free_observer(const void *p, size_t size,
									 bool wiped);

#endif
