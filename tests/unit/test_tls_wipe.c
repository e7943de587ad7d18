/*
 * What Atlas's OpenSSL leaves in freed memory (shim/tls.c's wipe_free): no block
 * the server side frees may still hold a secret of the session, in a full
 * handshake (TLS 1.3 and 1.2), in a resumed one (the server opens the client's
 * ticket) and at SSL_free.
 *
 * The server runs through atlas_tls_handshake and atlas_tls_ssl_free, the client
 * through plain OpenSSL, over a BIO pair in this process. tls.c shows this test
 * every block freed (atlas_tls_free_observer): while the server runs, the test
 * keeps a copy of each, and whether it was about to be wiped. Afterwards every
 * block must have been wiped, but for the record buffers released as a step
 * ends (OpenSSL frees secrets this test cannot name: a narrower wipe, once
 * tried, left the TLS 1.3 handshake secret in a freed HKDF salt). And it looks
 * in them for the session's secrets: those the client logged
 * (SSL_CTX_set_keylog_callback) and its session's master key (the TLS 1.2
 * master secret; in TLS 1.3 the resumption secret of its ticket), which is what
 * the session's DER carries, and that of every ticket it receives. Each secret
 * must be in some freed block (else the test could not see a leak; the
 * handshake traffic secrets excepted, which OpenSSL keeps on its stack) and in
 * none that was left unwiped.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "stub_init.h"
#include "test_cert.h"
#include "tls.h"

/*
 * A block's usable size runs past what was written into it: under valgrind those
 * bytes are undefined, and searching them would be reported. The copies are data.
 */
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#endif

/* ---- what the server side frees ---------------------------------------------------- */

struct freed {
	unsigned char *copy;
	size_t size;
	bool wiped;
};

static struct freed *freed;
static size_t n_freed, cap_freed;
static bool in_server; /* set while the server side runs: only its frees are kept */

void atlas_tls_free_observer(const void *p, size_t size, bool wiped)
{
	unsigned char *copy;

	if (!in_server)
		return;
	if (n_freed == cap_freed) {
		cap_freed = cap_freed ? cap_freed * 2 : 4096;
		freed = realloc(freed, cap_freed * sizeof(*freed));
		assert_non_null(freed);
	}
	copy = malloc(size ? size : 1);
	assert_non_null(copy);
	memcpy(copy, p, size);
	VALGRIND_MAKE_MEM_DEFINED(copy, size);
	freed[n_freed++] = (struct freed){ .copy = copy, .size = size, .wiped = wiped };
}

static void forget_freed(void)
{
	for (size_t i = 0; i < n_freed; i++)
		free(freed[i].copy);
	n_freed = 0;
}

/* ---- the session's secrets, as the client knows them -------------------------------- */

#define MAX_SECRETS 16

struct secret {
	char what[48];
	unsigned char bytes[64];
	size_t len;
	bool on_heap; /* the handshake traffic secrets never are: OpenSSL keeps them on its stack */
};

static struct secret secrets[MAX_SECRETS];
static size_t n_secrets;

static void add_secret(const char *what, const unsigned char *bytes, size_t len)
{
	if (n_secrets == MAX_SECRETS || len == 0 || len > sizeof(secrets[0].bytes))
		return;
	snprintf(secrets[n_secrets].what, sizeof(secrets[n_secrets].what), "%s", what);
	memcpy(secrets[n_secrets].bytes, bytes, len);
	secrets[n_secrets].len = len;
	secrets[n_secrets].on_heap = strstr(what, "HANDSHAKE_TRAFFIC_SECRET") == NULL;
	n_secrets++;
}

/* "LABEL CLIENT_RANDOM SECRET", hex: the secret. */
static void keylog(const SSL *ssl, const char *line)
{
	char label[48];
	const char *hex = strrchr(line, ' ');
	unsigned char bytes[64];
	size_t len = 0;

	(void)ssl;
	if (hex == NULL || sscanf(line, "%47s", label) != 1)
		return;
	for (hex++; hex[0] && hex[1] && len < sizeof(bytes); hex += 2) {
		unsigned v;

		if (sscanf(hex, "%2x", &v) != 1)
			return;
		bytes[len++] = (unsigned char)v;
	}
	add_secret(label, bytes, len);
}

static void add_master_key(const char *what, SSL_SESSION *session)
{
	unsigned char key[64];
	size_t len = SSL_SESSION_get_master_key(session, key, sizeof(key));

	add_secret(what, key, len);
}

/* Each ticket the client receives (TLS 1.3: two after a full handshake): its secret. */
static unsigned tickets;

static int new_session(SSL *ssl, SSL_SESSION *session)
{
	(void)ssl;
	tickets++;
	add_master_key("a ticket's master key", session);
	return 0;
}

/* ---- the handshake ----------------------------------------------------------------- */

static struct atlas_config cfg;
static SSL_CTX *server_ctx;

static int make_cert(void **state)
{
	char err[512];

	(void)state;
	test_cert_files(&cfg);
	server_ctx = atlas_tls_ctx_new(&cfg, false, err, sizeof(err));
	if (server_ctx == NULL)
		fail_msg("atlas_tls_ctx_new: %s", err);
	return 0;
}

static int remove_cert(void **state)
{
	(void)state;
	SSL_CTX_free(server_ctx);
	unlink(cfg.cert);
	unlink(cfg.key);
	return 0;
}

/*
 * One connection: handshake (resuming resume, if given), the client reads what
 * the server sends after it (TLS 1.3 tickets), then the server's SSL is freed.
 * Returns the client's session (the caller frees it); records whether it resumed.
 */
static SSL_SESSION *connection(int version, SSL_SESSION *resume, bool *resumed)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *s, *c;
	BIO *sb = NULL, *cb = NULL;
	SSL_SESSION *session;
	unsigned char buf[16];
	bool done = false;

	assert_non_null(cctx);
	SSL_CTX_set_min_proto_version(cctx, version);
	SSL_CTX_set_max_proto_version(cctx, version);
	SSL_CTX_set_keylog_callback(cctx, keylog);
	SSL_CTX_set_session_cache_mode(cctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(cctx, new_session);
	s = SSL_new(server_ctx);
	c = SSL_new(cctx);
	assert_non_null(s);
	assert_non_null(c);
	assert_true(BIO_new_bio_pair(&sb, 0, &cb, 0));
	SSL_set_bio(s, sb, sb);
	SSL_set_bio(c, cb, cb);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	if (resume != NULL)
		assert_int_equal(SSL_set_session(c, resume), 1);
	for (int i = 0; i < 8 && !done; i++) {
		int rc = SSL_do_handshake(c), rs;

		in_server = true;
		rs = atlas_tls_handshake(s);
		in_server = false;
		done = rc == 1 && rs == 1;
	}
	assert_true(done);
	assert_int_equal(SSL_version(c), version);
	/* TLS 1.3 tickets come after the handshake: reading finds them, then nothing. */
	assert_true(SSL_read(c, buf, sizeof(buf)) <= 0);
	*resumed = SSL_session_reused(c) == 1;
	in_server = true;
	atlas_tls_ssl_free(s);
	in_server = false;
	/* A session freed without close_notify is marked not resumable (ssl_clear_bad_session). */
	SSL_shutdown(c);
	session = SSL_get1_session(c);
	assert_non_null(session);
	SSL_free(c);
	SSL_CTX_free(cctx);
	ERR_clear_error();
	return session;
}

static bool contains(const struct freed *f, const struct secret *s)
{
	return f->size >= s->len && memmem(f->copy, f->size, s->bytes, s->len) != NULL;
}

/*
 * Every block the server freed was wiped, but for the record buffers released as a
 * handshake step ends (17 KiB and more: they hold records). Not only the blocks that
 * hold the secrets this test knows: OpenSSL frees others unwiped that it cannot name
 * (the TLS 1.3 handshake secret, as the salt of the HKDF that derives the master
 * secret, is in a 40-byte block).
 */
#define RECORD_BUFFER_MIN 16384

static void check_all_wiped(const char *what)
{
	size_t unwiped = 0, first = 0;

	assert_true(n_freed > 100);
	for (size_t j = 0; j < n_freed; j++) {
		if (freed[j].wiped || freed[j].size >= RECORD_BUFFER_MIN)
			continue;
		if (unwiped++ == 0)
			first = j;
	}
	print_message("%s: %zu blocks freed, %zu small ones unwiped\n", what, n_freed, unwiped);
	if (unwiped != 0)
		fail_msg("%s: %zu of %zu blocks freed unwiped (the first: %zu bytes)", what,
			 unwiped, n_freed, freed[first].size);
}

/* Each secret was in a block the server freed, and in none left unwiped. */
static void check_secrets(const char *what)
{
	check_all_wiped(what);
	assert_true(n_secrets >= 2);
	for (size_t i = 0; i < n_secrets; i++) {
		size_t in = 0, unwiped = 0;

		for (size_t j = 0; j < n_freed; j++) {
			if (!contains(&freed[j], &secrets[i]))
				continue;
			in++;
			if (!freed[j].wiped)
				unwiped++;
		}
		print_message("%s: %s in %zu freed blocks, %zu left unwiped\n", what,
			      secrets[i].what, in, unwiped);
		if (in == 0 && secrets[i].on_heap)
			fail_msg("%s: %s is in no block the server freed: this test cannot see it",
				 what, secrets[i].what);
		if (unwiped != 0)
			fail_msg("%s: %s left in %zu freed blocks unwiped", what, secrets[i].what,
				 unwiped);
	}
}

static void full_and_resumed(int version, const char *name)
{
	SSL_SESSION *first, *second;
	bool resumed;
	char what[64];

	/* A full handshake: the traffic secrets (keylog) and the ticket's secret. */
	n_secrets = 0;
	forget_freed();
	first = connection(version, NULL, &resumed);
	assert_false(resumed);
	add_master_key("the session's master key", first);
	snprintf(what, sizeof(what), "%s, full handshake", name);
	check_secrets(what);

	/* Resumed with that ticket: the server opens it (its DER holds that master key). */
	n_secrets = 0;
	forget_freed();
	add_master_key("the resumed session's master key", first);
	tickets = 0;
	second = connection(version, first, &resumed);
	assert_true(resumed);
	/* A resumed TLS 1.3 connection gets a new ticket, as with OpenSSL's defaults. */
	if (version == TLS1_3_VERSION)
		assert_int_equal(tickets, 1);
	snprintf(what, sizeof(what), "%s, resumed", name);
	check_secrets(what);
	SSL_SESSION_free(first);
	SSL_SESSION_free(second);
	forget_freed();
}

static void tls13_leaves_no_secret_in_freed_memory(void **state)
{
	(void)state;
	full_and_resumed(TLS1_3_VERSION, "TLS 1.3");
}

static void tls12_leaves_no_secret_in_freed_memory(void **state)
{
	(void)state;
	full_and_resumed(TLS1_2_VERSION, "TLS 1.2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tls13_leaves_no_secret_in_freed_memory),
		cmocka_unit_test(tls12_leaves_no_secret_in_freed_memory),
	};

	/* Before OpenSSL allocates anything, as the library's constructor does. */
	if (!atlas_tls_wipe_init())
		return 1;
	return cmocka_run_group_tests(tests, make_cert, remove_cert);
}
