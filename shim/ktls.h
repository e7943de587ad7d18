/*
 * Kernel TLS: the commit point where a connection's keys go to the kernel.
 *
 * OpenSSL 3.0 computes the crypto parameters itself when SSL_OP_ENABLE_KTLS
 * is set and hands them to the BIO (tls.c), which calls atlas_ktls_install();
 * it does so for TLS 1.2 in both directions and for TLS 1.3 transmit only.
 * TLS 1.3 receive is written here by hand from the client application
 * traffic secret (RFC 8446 section 7.3). See Documentation/networking/tls.rst.
 *
 * Every function validates first, then calls setsockopt, then does nothing
 * that can fail; key material copied here is wiped before it returns.
 */
#ifndef ATLAS_KTLS_H
#define ATLAS_KTLS_H

#include <linux/tls.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "config.h"

/* TLS record content types (RFC 8446 section 5.1). */
#define ATLAS_TLS_ALERT		   21
#define ATLAS_TLS_HANDSHAKE	   22
#define ATLAS_TLS_APPLICATION_DATA 23

/* Any crypto_info the kernel takes: the header says which member is meant. */
union atlas_ktls_crypto {
	struct tls_crypto_info info;
	struct tls12_crypto_info_aes_gcm_128 aes128;
	struct tls12_crypto_info_aes_gcm_256 aes256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

/* True if the "tls" upper-layer protocol is listed in tcp_available_ulp. */
bool atlas_ktls_ulp_available(void);

/* The size of info's struct for its cipher, or 0 for a cipher or version we do not offload. */
size_t atlas_ktls_crypto_size(const struct tls_crypto_info *info);

/*
 * Puts one direction of fd into the kernel: TCP_ULP "tls" (already there is
 * fine), then TLS_TX or TLS_RX. 0, or -1 with one sentence in why. Either way
 * info (the whole struct of its cipher: the key, salt, IV and sequence number)
 * is zero on return: the kernel has its own copy, and OpenSSL keeps its own
 * cipher state for a direction left in userspace. An info whose cipher is not
 * offloadable has no known size and is left as it is.
 */
int atlas_ktls_install(int fd, bool tx, struct tls_crypto_info *info, char *why, size_t whylen);

/*
 * TLS 1.3 receive offload by hand: derives key and IV from the client
 * application traffic secret with HKDF-Expand-Label (RFC 8446 section 7.3)
 * and installs TLS_RX at record sequence 0. The caller guarantees that no
 * record under that secret has been read yet. 0, or -1 with why. The secret
 * (secret_len bytes), the derived key and IV and the crypto info are all zero
 * on return, whatever the outcome.
 */
int atlas_ktls_install_tls13_rx(int fd, const SSL_CIPHER *cipher, unsigned char *secret,
				size_t secret_len, char *why, size_t whylen);

/*
 * The directions the kernel already holds keys for on fd (a socket another
 * process offloaded and passed over SCM_RIGHTS): ATLAS_KTLS_TX | ATLAS_KTLS_RX
 * (conn.h), or 0 for a socket without kernel TLS. Reads no key material.
 */
unsigned atlas_ktls_directions(int fd);

/* Sends one record of the given type through kernel TX (TLS_SET_RECORD_TYPE). */
ssize_t atlas_ktls_send_record(int fd, unsigned char type, const void *buf, size_t len, int flags);

/*
 * Reads one record from a kernel-RX socket with its type (TLS_GET_RECORD_TYPE):
 * the bytes, or -1 with errno as recvmsg(2) sets it.
 */
ssize_t atlas_ktls_recv_record(int fd, unsigned char *type, void *buf, size_t len, int flags);

/*
 * Can this kernel take cipher (TLS_CIPHER_*) for version (TLS_1_2_VERSION,
 * TLS_1_3_VERSION) in the direction tx? Tries it on a loopback connection of
 * its own with a dummy key. For `atlas-preload.sh --check`.
 */
bool atlas_ktls_probe(unsigned short version, unsigned short cipher, bool tx);

#endif
