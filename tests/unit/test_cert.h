/*
 * For unit tests that need a server certificate: a self-signed P-256 certificate
 * and its key, written to fresh files under /tmp named in cfg (the caller unlinks
 * them). Include from exactly one file per test binary.
 */
#ifndef ATLAS_TEST_CERT_H
#define ATLAS_TEST_CERT_H

#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config.h"

static void test_cert_files(struct atlas_config *cfg)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	FILE *f;
	int fd;

	assert_non_null(key);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	snprintf(cfg->cert, sizeof(cfg->cert), "/tmp/atlas-test-cert-XXXXXX");
	fd = mkstemp(cfg->cert);
	assert_true(fd >= 0 && (f = fdopen(fd, "w")) != NULL);
	assert_true(PEM_write_X509(f, x) == 1);
	fclose(f);
	snprintf(cfg->key, sizeof(cfg->key), "/tmp/atlas-test-key-XXXXXX");
	fd = mkstemp(cfg->key);
	assert_true(fd >= 0 && (f = fdopen(fd, "w")) != NULL);
	assert_true(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(key);
}

#endif
