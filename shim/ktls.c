#define _GNU_SOURCE
#include "ktls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "conn.h"
#include "real.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

#define ULP_LIST "/proc/sys/net/ipv4/tcp_available_ulp"

bool atlas_ktls_ulp_available(void)
{
	char buf[256];
	ssize_t n;
	int fd = open(ULP_LIST, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = atlas_real.read(fd, buf, sizeof(buf) - 1);
	atlas_real.close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* A space-separated list, e.g. "mptcp tls". */
	for (char *save = NULL, *tok = strtok_r(buf, " \n", &save); tok != NULL;
	     tok = strtok_r(NULL, " \n", &save))
		if (strcmp(tok, "tls") == 0)
			return true;
	return false;
}

size_t atlas_ktls_crypto_size(const struct tls_crypto_info *info)
{
	if (info->version != TLS_1_2_VERSION && info->version != TLS_1_3_VERSION)
		return 0;
	switch (info->cipher_type) {
	case TLS_CIPHER_AES_GCM_128:
		return sizeof(struct tls12_crypto_info_aes_gcm_128);
	case TLS_CIPHER_AES_GCM_256:
		return sizeof(struct tls12_crypto_info_aes_gcm_256);
	case TLS_CIPHER_CHACHA20_POLY1305:
		return sizeof(struct tls12_crypto_info_chacha20_poly1305);
	default:
		return 0;
	}
}

/* setsockopt's errno, as a sentence about kTLS (tls.rst, net/tls/tls_main.c). */
static void explain(char *why, size_t whylen, const char *step, int err)
{
	const char *what;

	switch (err) {
	case ENOENT:
		/* From TCP_ULP: no tls module. From TLS_TX/TLS_RX: the kernel's crypto has no
		 * implementation of the cipher (a module such as gcm or chacha20poly1305). */
		what = strcmp(step, "TCP_ULP tls") == 0
			       ? "the kernel has no tls ULP (CONFIG_TLS; try modprobe tls)"
			       : "the kernel's crypto API cannot provide this cipher (its module "
				 "is "
				 "not loaded)";
		break;
	case ENOTCONN:
		what = "the socket is not connected";
		break;
	case EEXIST:
		what = "that direction is already offloaded";
		break;
	case EBUSY:
		what = "the socket already has another upper-layer protocol";
		break;
	case EINVAL:
		what = "the kernel rejected the crypto parameters";
		break;
	case ENOPROTOOPT:
	case EOPNOTSUPP:
		what = "the kernel cannot offload this cipher or TLS version";
		break;
	case ENOMEM:
		what = "the kernel is out of memory";
		break;
	default:
		what = strerror(err);
		break;
	}
	snprintf(why, whylen, "%s failed: %s", step, what);
}

int atlas_ktls_install(int fd, bool tx, struct tls_crypto_info *info, char *why, size_t whylen)
{
	size_t size = atlas_ktls_crypto_size(info);
	int rc = -1;

	if (size == 0) {
		snprintf(why, whylen, "cipher %u with TLS version 0x%04x is not offloadable",
			 info->cipher_type, info->version);
		return -1;
	}
	/* The ULP is per socket: the second direction finds it there already (EEXIST). */
	if (atlas_real.setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0 &&
	    errno != EEXIST) {
		explain(why, whylen, "TCP_ULP tls", errno);
		goto out;
	}
	if (atlas_real.setsockopt(fd, SOL_TLS, tx ? TLS_TX : TLS_RX, info, (socklen_t)size) < 0) {
		explain(why, whylen, tx ? "TLS_TX" : "TLS_RX", errno);
		goto out;
	}
	rc = 0;
out:
	/* The kernel has its copy, or userspace keeps its own cipher state: this one goes. */
	OPENSSL_cleanse(info, size);
	return rc;
}

unsigned atlas_ktls_directions(int fd)
{
	unsigned dirs = 0;

	for (int tx = 0; tx <= 1; tx++) {
		struct tls_crypto_info info;
		/* Exactly the header's size: the kernel then copies the header, never the key. */
		socklen_t len = sizeof(info);

		if (getsockopt(fd, SOL_TLS, tx ? TLS_TX : TLS_RX, &info, &len) == 0 &&
		    len == sizeof(info) && info.cipher_type != 0)
			dirs |= tx ? ATLAS_KTLS_TX : ATLAS_KTLS_RX;
	}
	return dirs;
}

/*
 * HKDF-Expand-Label(Secret, Label, "", Length) of RFC 8446 section 7.1:
 * HKDF-Expand with info = uint16 Length || opaque "tls13 " + Label || opaque "".
 */
static int hkdf_expand_label(const EVP_MD *md, const unsigned char *secret, size_t secret_len,
			     const char *label, unsigned char *out, size_t out_len)
{
	unsigned char info[2 + 1 + 6 + 32 + 1];
	size_t label_len = strlen(label), info_len = 0;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, ok;
	EVP_KDF *kdf;
	EVP_KDF_CTX *kctx;
	OSSL_PARAM params[5];

	if (label_len > 32)
		return -1;
	info[info_len++] = (unsigned char)(out_len >> 8);
	info[info_len++] = (unsigned char)out_len;
	info[info_len++] = (unsigned char)(6 + label_len);
	memcpy(info + info_len, "tls13 ", 6);
	info_len += 6;
	memcpy(info + info_len, label, label_len);
	info_len += label_len;
	info[info_len++] = 0; /* empty context */

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	EVP_KDF_free(kdf);
	if (kctx == NULL)
		return -1;
	params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						     (char *)EVP_MD_get0_name(md), 0);
	params[2] =
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, info_len);
	params[4] = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(kctx, out, out_len, params);
	EVP_KDF_CTX_free(kctx);
	return ok == 1 ? 0 : -1;
}

/* Fills crypto for a TLS 1.3 suite from its key and 12-byte IV, at record sequence 0. */
static int tls13_crypto(uint16_t suite, const unsigned char *key, const unsigned char *iv,
			union atlas_ktls_crypto *crypto)
{
	memset(crypto, 0, sizeof(*crypto));
	crypto->info.version = TLS_1_3_VERSION;
	switch (suite) {
	case 0x1301: /* TLS_AES_128_GCM_SHA256: nonce = salt(4) || iv(8), RFC 8446 section 5.3 */
		crypto->info.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(crypto->aes128.salt, iv, TLS_CIPHER_AES_GCM_128_SALT_SIZE);
		memcpy(crypto->aes128.iv, iv + TLS_CIPHER_AES_GCM_128_SALT_SIZE,
		       TLS_CIPHER_AES_GCM_128_IV_SIZE);
		memcpy(crypto->aes128.key, key, TLS_CIPHER_AES_GCM_128_KEY_SIZE);
		return 0;
	case 0x1302: /* TLS_AES_256_GCM_SHA384 */
		crypto->info.cipher_type = TLS_CIPHER_AES_GCM_256;
		memcpy(crypto->aes256.salt, iv, TLS_CIPHER_AES_GCM_256_SALT_SIZE);
		memcpy(crypto->aes256.iv, iv + TLS_CIPHER_AES_GCM_256_SALT_SIZE,
		       TLS_CIPHER_AES_GCM_256_IV_SIZE);
		memcpy(crypto->aes256.key, key, TLS_CIPHER_AES_GCM_256_KEY_SIZE);
		return 0;
	case 0x1303: /* TLS_CHACHA20_POLY1305_SHA256: the whole 12-byte IV, no salt */
		crypto->info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(crypto->chacha.iv, iv, TLS_CIPHER_CHACHA20_POLY1305_IV_SIZE);
		memcpy(crypto->chacha.key, key, TLS_CIPHER_CHACHA20_POLY1305_KEY_SIZE);
		return 0;
	default:
		return -1;
	}
}

int atlas_ktls_install_tls13_rx(int fd, const SSL_CIPHER *cipher, unsigned char *secret,
				size_t secret_len, char *why, size_t whylen)
{
	uint16_t suite = (uint16_t)(SSL_CIPHER_get_id(cipher) & 0xffff);
	size_t key_len = suite == 0x1301 ? 16 : 32;
	const EVP_MD *md = SSL_CIPHER_get_handshake_digest(cipher);
	unsigned char key[32], iv[12];
	union atlas_ktls_crypto crypto;
	int rc = -1;

	if (md == NULL || (suite != 0x1301 && suite != 0x1302 && suite != 0x1303)) {
		snprintf(why, whylen, "TLS 1.3 suite %s is not offloadable",
			 SSL_CIPHER_get_name(cipher));
		OPENSSL_cleanse(secret, secret_len);
		return -1;
	}
	if (hkdf_expand_label(md, secret, secret_len, "key", key, key_len) < 0 ||
	    hkdf_expand_label(md, secret, secret_len, "iv", iv, sizeof(iv)) < 0) {
		snprintf(why, whylen, "deriving the TLS 1.3 receive keys failed");
		goto out;
	}
	tls13_crypto(suite, key, iv, &crypto);
	rc = atlas_ktls_install(fd, false, &crypto.info, why, whylen);
out:
	/* The kernel has its copy (or none is needed): ours go now, the secret too. */
	OPENSSL_cleanse(secret, secret_len);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	OPENSSL_cleanse(&crypto, sizeof(crypto));
	return rc;
}

ssize_t atlas_ktls_send_record(int fd, unsigned char type, const void *buf, size_t len, int flags)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(unsigned char))];
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_SET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(cm) = type;
	return atlas_real.sendmsg(fd, &msg, flags | MSG_NOSIGNAL);
}

ssize_t atlas_ktls_recv_record(int fd, unsigned char *type, void *buf, size_t len, int flags)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(unsigned char))];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *cm;
	ssize_t n = atlas_real.recvmsg(fd, &msg, flags);

	if (n < 0)
		return n;
	*type = ATLAS_TLS_APPLICATION_DATA;
	cm = CMSG_FIRSTHDR(&msg);
	if (cm != NULL && cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_GET_RECORD_TYPE)
		*type = *CMSG_DATA(cm);
	return n;
}

/* A connected loopback pair of TCP sockets, for the probe. */
static int loopback_pair(int *a, int *b)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*a = *b = -1;
	if (l < 0)
		return -1;
	if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &sl) < 0)
		goto fail;
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*a < 0 || connect(*a, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		goto fail;
	*b = atlas_real.accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (*b < 0)
		goto fail;
	atlas_real.close(l);
	return 0;
fail:
	atlas_real.close(l);
	if (*a >= 0)
		atlas_real.close(*a);
	*a = -1;
	return -1;
}

bool atlas_ktls_probe(unsigned short version, unsigned short cipher, bool tx)
{
	union atlas_ktls_crypto crypto;
	char why[160];
	int a, b;
	bool ok;

	memset(&crypto, 0, sizeof(crypto)); /* a zero key: nothing is ever sent with it */
	crypto.info.version = version;
	crypto.info.cipher_type = cipher;
	if (loopback_pair(&a, &b) < 0)
		return false;
	ok = atlas_ktls_install(a, tx, &crypto.info, why, sizeof(why)) == 0;
	atlas_real.close(a);
	atlas_real.close(b);
	return ok;
}
