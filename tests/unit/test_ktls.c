/*
 * The kTLS commit point (shim/ktls.c), against a fake setsockopt: what reaches
 * the kernel, in which order, and what a failure says. The TLS 1.3 receive
 * keys are checked against the published test vectors of RFC 8448 section 3.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/ssl.h>

#include "conn.h"
#include "ktls.h"
#include "real.h"
#include "tls.h"
#include "stub_init.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

/* What the fake setsockopt saw, and what it should answer. */
static struct {
	int calls;
	int level[4], name[4];
	unsigned char value[4][64];
	socklen_t len[4];
	int fail_call;	/* 1-based call number that fails, 0 = none */
	int fail_errno; /* errno of that failure */
} fake;

static int fake_setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
	int i = fake.calls++;

	(void)fd;
	if (i < 4) {
		fake.level[i] = level;
		fake.name[i] = name;
		fake.len[i] = len;
		memcpy(fake.value[i], value, len < 64 ? len : 64);
	}
	if (fake.fail_call == i + 1) {
		errno = fake.fail_errno;
		return -1;
	}
	return 0;
}

static int setup(void **state)
{
	(void)state;
	atlas_real_init();
	memset(&fake, 0, sizeof(fake));
	atlas_real.setsockopt = fake_setsockopt;
	return 0;
}

static union atlas_ktls_crypto crypto_for(unsigned short version, unsigned short cipher)
{
	union atlas_ktls_crypto c;

	memset(&c, 0, sizeof(c));
	c.info.version = version;
	c.info.cipher_type = cipher;
	return c;
}

/* Runs first: OpenSSL accepts allocation functions only before its first allocation. */
static void wipe_init_takes_openssls_allocations_before_the_first(void **state)
{
	SSL_CTX *ctx;

	(void)state;
	assert_true(atlas_tls_wipe_init());
	ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(ctx);
	atlas_tls_ssl_free(SSL_new(ctx)); /* a whole SSL freed through the wiping free */
	atlas_tls_ssl_free(NULL);
	SSL_CTX_free(ctx);
}

static void crypto_size_matches_each_cipher(void **state)
{
	union atlas_ktls_crypto c;

	(void)state;
	c = crypto_for(TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_128);
	assert_int_equal(atlas_ktls_crypto_size(&c.info), sizeof(c.aes128));
	c = crypto_for(TLS_1_2_VERSION, TLS_CIPHER_AES_GCM_256);
	assert_int_equal(atlas_ktls_crypto_size(&c.info), sizeof(c.aes256));
	c = crypto_for(TLS_1_2_VERSION, TLS_CIPHER_CHACHA20_POLY1305);
	assert_int_equal(atlas_ktls_crypto_size(&c.info), sizeof(c.chacha));
}

static void crypto_size_rejects_other_ciphers_and_versions(void **state)
{
	union atlas_ktls_crypto c;

	(void)state;
	c = crypto_for(TLS_1_2_VERSION, TLS_CIPHER_AES_CCM_128);
	assert_int_equal(atlas_ktls_crypto_size(&c.info), 0);
	c = crypto_for(0x0302 /* TLS 1.1 */, TLS_CIPHER_AES_GCM_128);
	assert_int_equal(atlas_ktls_crypto_size(&c.info), 0);
}

static void install_sets_ulp_then_the_direction(void **state)
{
	union atlas_ktls_crypto c = crypto_for(TLS_1_2_VERSION, TLS_CIPHER_AES_GCM_128);
	char why[128] = "";

	(void)state;
	assert_int_equal(atlas_ktls_install(7, true, &c.info, why, sizeof(why)), 0);
	assert_int_equal(fake.calls, 2);
	assert_int_equal(fake.level[0], SOL_TCP);
	assert_int_equal(fake.name[0], TCP_ULP);
	assert_string_equal((const char *)fake.value[0], "tls");
	assert_int_equal(fake.level[1], SOL_TLS);
	assert_int_equal(fake.name[1], TLS_TX);
	assert_int_equal(fake.len[1], sizeof(c.aes128));
}

static void install_rx_uses_tls_rx(void **state)
{
	union atlas_ktls_crypto c = crypto_for(TLS_1_3_VERSION, TLS_CIPHER_CHACHA20_POLY1305);
	char why[128];

	(void)state;
	assert_int_equal(atlas_ktls_install(7, false, &c.info, why, sizeof(why)), 0);
	assert_int_equal(fake.name[1], TLS_RX);
	assert_int_equal(fake.len[1], sizeof(c.chacha));
}

static void install_accepts_ulp_already_there(void **state)
{
	union atlas_ktls_crypto c = crypto_for(TLS_1_2_VERSION, TLS_CIPHER_AES_GCM_256);
	char why[128];

	(void)state;
	fake.fail_call = 1; /* the second direction finds the ULP set by the first */
	fake.fail_errno = EEXIST;
	assert_int_equal(atlas_ktls_install(7, false, &c.info, why, sizeof(why)), 0);
	assert_int_equal(fake.calls, 2);
}

static void install_without_ulp_says_so(void **state)
{
	union atlas_ktls_crypto c = crypto_for(TLS_1_2_VERSION, TLS_CIPHER_AES_GCM_128);
	char why[128] = "";

	(void)state;
	fake.fail_call = 1;
	fake.fail_errno = ENOENT;
	assert_int_equal(atlas_ktls_install(7, true, &c.info, why, sizeof(why)), -1);
	assert_int_equal(fake.calls, 1); /* nothing after a failed commit step */
	assert_non_null(strstr(why, "TCP_ULP"));
	assert_non_null(strstr(why, "no tls ULP"));
}

static void install_explains_a_rejected_cipher(void **state)
{
	union atlas_ktls_crypto c = crypto_for(TLS_1_3_VERSION, TLS_CIPHER_CHACHA20_POLY1305);
	char why[128] = "";

	(void)state;
	fake.fail_call = 2;
	fake.fail_errno = ENOENT; /* the kernel's crypto has no chacha20poly1305 */
	assert_int_equal(atlas_ktls_install(7, true, &c.info, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "TLS_TX failed"));
}

static void install_refuses_an_unknown_cipher_before_any_setsockopt(void **state)
{
	union atlas_ktls_crypto c = crypto_for(TLS_1_2_VERSION, 9999);
	char why[128] = "";

	(void)state;
	assert_int_equal(atlas_ktls_install(7, true, &c.info, why, sizeof(why)), -1);
	assert_int_equal(fake.calls, 0);
	assert_non_null(strstr(why, "not offloadable"));
}

/* RFC 8448 section 3, "Simple 1-RTT Handshake": the client's application traffic secret. */
static const unsigned char rfc8448_secret[32] = {
	0x9e, 0x40, 0x64, 0x6c, 0xe7, 0x9a, 0x7f, 0x9d, 0xc0, 0x5a, 0xf8,
	0x88, 0x9b, 0xce, 0x65, 0x52, 0x87, 0x5a, 0xfa, 0x0b, 0x06, 0xdf,
	0x00, 0x87, 0xf7, 0x92, 0xeb, 0xb7, 0xc1, 0x75, 0x04, 0xa5,
};
/* ... and the write key and IV it derives ("derive write traffic keys for application data"). */
static const unsigned char rfc8448_key[16] = {
	0x17, 0x42, 0x2d, 0xda, 0x59, 0x6e, 0xd5, 0xd9,
	0xac, 0xd8, 0x90, 0xe3, 0xc6, 0x3f, 0x50, 0x51,
};
static const unsigned char rfc8448_iv[12] = {
	0x5b, 0x78, 0x92, 0x3d, 0xee, 0x08, 0x57, 0x90, 0x33, 0xe5, 0x23, 0xd9,
};

/* The secret as Atlas holds it (the connection's rx_secret): a writable copy. */
static unsigned char secret_buf[32];

static unsigned char *secret_copy(void)
{
	memcpy(secret_buf, rfc8448_secret, sizeof(secret_buf));
	return secret_buf;
}

static bool all_zero(const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i] != 0)
			return false;
	return true;
}

static void tls13_rx_keys_match_rfc8448(void **state)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	const SSL_CIPHER *cipher;
	struct tls12_crypto_info_aes_gcm_128 got;
	unsigned char suite[2] = { 0x13, 0x01 }; /* TLS_AES_128_GCM_SHA256 */
	SSL *ssl;
	char why[128] = "";

	(void)state;
	assert_non_null(ctx);
	ssl = SSL_new(ctx);
	cipher = SSL_CIPHER_find(ssl, suite);
	assert_non_null(cipher);
	assert_int_equal(
		atlas_ktls_install_tls13_rx(7, cipher, secret_copy(), 32, why, sizeof(why)), 0);
	assert_int_equal(fake.name[1], TLS_RX);
	memcpy(&got, fake.value[1], sizeof(got));
	assert_int_equal(got.info.version, TLS_1_3_VERSION);
	assert_int_equal(got.info.cipher_type, TLS_CIPHER_AES_GCM_128);
	assert_memory_equal(got.key, rfc8448_key, sizeof(rfc8448_key));
	/* The kernel's nonce is salt || iv: the first 4 bytes of the RFC's IV, then the other 8. */
	assert_memory_equal(got.salt, rfc8448_iv, 4);
	assert_memory_equal(got.iv, rfc8448_iv + 4, 8);
	for (size_t i = 0; i < sizeof(got.rec_seq); i++)
		assert_int_equal(got.rec_seq[i], 0); /* nothing was read under this key yet */
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

static void tls13_rx_chacha_takes_the_whole_iv(void **state)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	unsigned char suite[2] = { 0x13, 0x03 }; /* TLS_CHACHA20_POLY1305_SHA256 */
	struct tls12_crypto_info_chacha20_poly1305 got;
	SSL *ssl = SSL_new(ctx);
	char why[128];

	(void)state;
	assert_int_equal(atlas_ktls_install_tls13_rx(7, SSL_CIPHER_find(ssl, suite), secret_copy(),
						     32, why, sizeof(why)),
			 0);
	memcpy(&got, fake.value[1], sizeof(got));
	assert_int_equal(got.info.cipher_type, TLS_CIPHER_CHACHA20_POLY1305);
	/* Same secret and hash, so the same 12-byte IV, all of it in iv[]. */
	assert_memory_equal(got.iv, rfc8448_iv, sizeof(rfc8448_iv));
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

/* A crypto info with a recognisable key, salt, IV and sequence number. */
static union atlas_ktls_crypto keyed(unsigned short version, unsigned short cipher)
{
	union atlas_ktls_crypto c = crypto_for(version, cipher);

	memset(c.aes128.iv, 0xa5, sizeof(c) - offsetof(struct tls12_crypto_info_aes_gcm_128, iv));
	return c;
}

static void install_wipes_the_key_once_the_kernel_has_it(void **state)
{
	union atlas_ktls_crypto c = keyed(TLS_1_2_VERSION, TLS_CIPHER_AES_GCM_256);
	struct tls12_crypto_info_aes_gcm_256 got;
	char why[128];

	(void)state;
	assert_int_equal(atlas_ktls_install(7, true, &c.info, why, sizeof(why)), 0);
	/* The kernel got the key ... */
	memcpy(&got, fake.value[1], sizeof(got));
	assert_int_equal(got.key[0], 0xa5);
	assert_int_equal(got.key[sizeof(got.key) - 1], 0xa5);
	/* ... and Atlas's copy (OpenSSL's, through the BIO) is zero, header included. */
	assert_true(all_zero(&c.aes256, sizeof(c.aes256)));
}

static void install_wipes_the_key_when_the_kernel_refuses(void **state)
{
	union atlas_ktls_crypto c = keyed(TLS_1_3_VERSION, TLS_CIPHER_CHACHA20_POLY1305);
	union atlas_ktls_crypto d = keyed(TLS_1_2_VERSION, TLS_CIPHER_AES_GCM_128);
	char why[128];

	(void)state;
	fake.fail_call = 2;
	fake.fail_errno = EINVAL;
	assert_int_equal(atlas_ktls_install(7, false, &c.info, why, sizeof(why)), -1);
	assert_true(all_zero(&c.chacha, sizeof(c.chacha)));
	fake.calls = 0;
	fake.fail_call = 1; /* no ULP: TLS_TX is never tried, the key goes all the same */
	fake.fail_errno = ENOENT;
	assert_int_equal(atlas_ktls_install(7, true, &d.info, why, sizeof(why)), -1);
	assert_true(all_zero(&d.aes128, sizeof(d.aes128)));
}

static void tls13_rx_wipes_the_secret(void **state)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	unsigned char suite[2] = { 0x13, 0x02 }; /* TLS_AES_256_GCM_SHA384 */
	SSL *ssl = SSL_new(ctx);
	unsigned char *secret = secret_copy();
	char why[128];

	(void)state;
	assert_int_equal(atlas_ktls_install_tls13_rx(7, SSL_CIPHER_find(ssl, suite), secret, 32,
						     why, sizeof(why)),
			 0);
	assert_int_equal(fake.name[1], TLS_RX);
	assert_true(all_zero(secret, 32));
	/* Refused before any setsockopt (the kernel has nothing): wiped too. */
	fake.calls = 0;
	secret = secret_copy();
	fake.fail_call = 2;
	fake.fail_errno = ENOENT;
	assert_int_equal(atlas_ktls_install_tls13_rx(7, SSL_CIPHER_find(ssl, suite), secret, 32,
						     why, sizeof(why)),
			 -1);
	assert_true(all_zero(secret, 32));
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

/* OpenSSL's own path: SET_KTLS through Atlas's BIO, as ssl/t1_enc.c calls it. */
static void bio_set_ktls_wipes_openssls_crypto_info(void **state)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	struct atlas_conn *c = atlas_conn_new(443, 1000);
	union atlas_ktls_crypto info = keyed(TLS_1_2_VERSION, TLS_CIPHER_AES_GCM_128);
	SSL *ssl;

	(void)state;
	assert_non_null(ctx);
	assert_non_null(c);
	ssl = atlas_tls_ssl_new(ctx, c);
	assert_non_null(ssl);
	c->io_fd = 7;
	assert_int_equal(BIO_ctrl(SSL_get_wbio(ssl), 72 /* BIO_CTRL_SET_KTLS */, 1, &info), 1);
	assert_int_equal(c->ktls, ATLAS_KTLS_TX);
	assert_int_equal(fake.value[1][sizeof(info.info)], 0xa5); /* the kernel got it */
	assert_true(all_zero(&info.aes128, sizeof(info.aes128)));
	c->ssl = ssl; /* freed with the connection */
	atlas_conn_put(c);
	SSL_CTX_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(wipe_init_takes_openssls_allocations_before_the_first,
				       setup),
		cmocka_unit_test_setup(crypto_size_matches_each_cipher, setup),
		cmocka_unit_test_setup(crypto_size_rejects_other_ciphers_and_versions, setup),
		cmocka_unit_test_setup(install_sets_ulp_then_the_direction, setup),
		cmocka_unit_test_setup(install_rx_uses_tls_rx, setup),
		cmocka_unit_test_setup(install_accepts_ulp_already_there, setup),
		cmocka_unit_test_setup(install_without_ulp_says_so, setup),
		cmocka_unit_test_setup(install_explains_a_rejected_cipher, setup),
		cmocka_unit_test_setup(install_refuses_an_unknown_cipher_before_any_setsockopt,
				       setup),
		cmocka_unit_test_setup(tls13_rx_keys_match_rfc8448, setup),
		cmocka_unit_test_setup(tls13_rx_chacha_takes_the_whole_iv, setup),
		cmocka_unit_test_setup(install_wipes_the_key_once_the_kernel_has_it, setup),
		cmocka_unit_test_setup(install_wipes_the_key_when_the_kernel_refuses, setup),
		cmocka_unit_test_setup(tls13_rx_wipes_the_secret, setup),
		cmocka_unit_test_setup(bio_set_ktls_wipes_openssls_crypto_info, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
