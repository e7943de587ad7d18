#define _GNU_SOURCE
#include "tls.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "conn.h"
#include "engine.h"
#include "ktls.h"
#include "log.h"
#include "offload.h"
#include "real.h"
#include "secrets.h"

/*
 * OpenSSL 3.0 drives kernel TLS through these BIO controls (its private
 * include/internal/bio.h; 73 and 76 are public in openssl/bio.h). Their
 * contract, as crypto/bio/bss_sock.c implements it: SET_KTLS hands over
 * the crypto info for one direction (num = 1 for transmit); SEND_CTRL_MSG
 * asks that the next write go out as a record of type num rather than data.
 */
#define ATLAS_BIO_CTRL_SET_KTLS			 72
#define ATLAS_BIO_CTRL_SET_KTLS_TX_SEND_CTRL_MSG 74
#define ATLAS_BIO_CTRL_CLEAR_KTLS_TX_CTRL_MSG	 75

/* The record header OpenSSL expects in front of each record read from kernel RX. */
#define TLS_HEADER_LEN 5
#define TLS_TAG_LEN    16

/*
 * Set while a handshake step or SSL_free runs in this thread: OpenSSL's frees are
 * wiped. Not narrower: OpenSSL 3.0 frees secrets unwiped at points no callback marks
 * (the HKDF provider frees its salt, which is the TLS 1.3 handshake secret when the
 * master secret is derived, with a plain OPENSSL_free; the session's DER around a
 * ticket); tests/unit/test_tls_wipe.c checks that every such free is wiped.
 */
static _Thread_local bool wipe_frees;

static void *wipe_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return malloc(n);
}

/*
 * explicit_bzero, not OPENSSL_cleanse: both are zeroing the compiler may not drop, but
 * glibc's is its vectorised memset, while OpenSSL 3.0's x86_64 cleanse stores a byte or
 * a word at a time; in a profile of nginx under Atlas doing full handshakes the cleanse
 * was 4% of the worker's CPU, the memset 1.2%.
 */
static void wipe_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	if (p == NULL)
		return;
	if (atlas_tls_free_observer != NULL) /* only in tests/unit/test_tls_wipe.c */
		atlas_tls_free_observer(p, malloc_usable_size(p), wipe_frees);
	if (wipe_frees)
		explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

/* Where a block moves, the old one is freed as wipe_free frees (n > 0: OpenSSL frees for 0). */
static void *wipe_realloc(void *p, size_t n, const char *file, int line)
{
	size_t old;
	void *q;

	if (p == NULL || !wipe_frees)
		return realloc(p, n);
	old = malloc_usable_size(p);
	q = malloc(n);
	if (q == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	wipe_free(p, file, line);
	return q;
}

bool atlas_tls_wipe_init(void)
{
	return CRYPTO_set_mem_functions(wipe_malloc, wipe_realloc, wipe_free) == 1;
}

int atlas_tls_handshake(SSL *ssl)
{
	int r;

	wipe_frees = true;
	r = SSL_do_handshake(ssl);
	wipe_frees = false; /* the record buffers hold records, not secrets */
	/* From now on an idle connection holds no record buffers (see atlas_tls_ssl_new). */
	if (r == 1)
		SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	/* Done, or waiting for a client that may stall: hold nothing (refused if bytes wait). */
	if (r == 1 || SSL_want_read(ssl))
		SSL_free_buffers(ssl);
	return r;
}

void atlas_tls_ssl_free(SSL *ssl)
{
	if (ssl == NULL)
		return;
	wipe_frees = true;
	SSL_free(ssl);
	wipe_frees = false;
}

static BIO_METHOD *conn_bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

/*
 * With the kernel receiving, one record at a time comes back decrypted with
 * its type in a control message; OpenSSL still wants a record header first.
 * errno is left as recvmsg set it: OpenSSL maps EBADMSG to bad_record_mac.
 */
static int ktls_bio_read(BIO *b, struct atlas_conn *c, char *buf, int len)
{
	unsigned char type;
	ssize_t n;

	if (len <= TLS_HEADER_LEN + TLS_TAG_LEN) {
		errno = EINVAL;
		return -1;
	}
	n = atlas_ktls_recv_record(c->io_fd, &type, buf + TLS_HEADER_LEN,
				   (size_t)len - TLS_HEADER_LEN - TLS_TAG_LEN, MSG_DONTWAIT);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			BIO_set_retry_read(b);
		return (int)n;
	}
	buf[0] = (char)type;
	buf[1] = 3; /* legacy_record_version 0x0303 (RFC 8446 section 5.1) */
	buf[2] = 3;
	buf[3] = (char)(n >> 8);
	buf[4] = (char)n;
	return (int)n + TLS_HEADER_LEN;
}

/*
 * Read-ahead. Without it OpenSSL reads each record with two system calls, its
 * 5-byte header and then its body; nginx turns OpenSSL's own read-ahead on to
 * save one. Atlas reads ahead here instead, where it can see what it holds:
 * a whole record held is readiness the socket no longer shows (ready.c), and
 * a connection that may still hand receive to the kernel must not read ahead
 * at all (the kernel takes over at a record boundary of the socket), so this
 * is on only where the kernel will not receive (c->read_ahead).
 */
#define RA_SIZE (TLS_HEADER_LEN + 16384 + 256) /* a whole TLS 1.3 record, the largest */

static int bio_recv(BIO *b, int fd, void *buf, size_t len)
{
	ssize_t n = atlas_real.recv(fd, buf, len, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_read(b);
	return (int)n;
}

static int ra_read(BIO *b, struct atlas_conn *c, char *buf, int len)
{
	unsigned take;

	if (c->ra_buf == NULL) {
		int n;

		/* Out of memory: a plain read, as without read-ahead. */
		if ((size_t)len >= RA_SIZE || (c->ra_buf = malloc(RA_SIZE)) == NULL)
			return bio_recv(b, c->io_fd, buf, (size_t)len);
		n = bio_recv(b, c->io_fd, c->ra_buf, RA_SIZE);
		if (n <= 0) {
			free(c->ra_buf);
			c->ra_buf = NULL;
			return n;
		}
		c->ra_off = 0;
		c->ra_len = (unsigned)n;
	}
	take = c->ra_len - c->ra_off;
	if (take > (unsigned)len)
		take = (unsigned)len;
	memcpy(buf, c->ra_buf + c->ra_off, take);
	c->ra_off += take;
	if (c->ra_off == c->ra_len) {
		free(c->ra_buf);
		c->ra_buf = NULL;
		c->ra_off = c->ra_len = 0;
	}
	return (int)take;
}

/* Bytes read while sniffing are OpenSSL's first bytes: hand them over before the socket's. */
static int conn_bio_read(BIO *b, char *buf, int len)
{
	struct atlas_conn *c = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (c->sniff_off < c->sniff_len) {
		int left = c->sniff_len - c->sniff_off;
		int take = len < left ? len : left;

		memcpy(buf, c->sniff + c->sniff_off, (size_t)take);
		c->sniff_off += (unsigned char)take;
		return take;
	}
	if (c->ktls & ATLAS_KTLS_RX)
		return ktls_bio_read(b, c, buf, len);
	if (c->read_ahead || c->ra_buf != NULL)
		return ra_read(b, c, buf, len);
	return bio_recv(b, c->io_fd, buf, (size_t)len);
}

/* Drops the send queue: nothing more will go (a failed socket, or a reset asked for). Locked. */
void atlas_tls_queue_drop(struct atlas_conn *c)
{
	free(c->sq);
	__atomic_store_n(&c->sq, NULL, __ATOMIC_RELAXED); /* engine.c reads it unlocked */
	c->sq_len = 0;
	c->sq_cut = 0;
}

int atlas_tls_queue_send(struct atlas_conn *c, int fd)
{
	while (c->sq_len > 0) {
		ssize_t n = atlas_real.send(fd, c->sq, c->sq_len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0) {
			int e = errno;

			atlas_tls_queue_drop(c);
			errno = e;
			return -1;
		}
		memmove(c->sq, c->sq + n, c->sq_len - (size_t)n);
		c->sq_len -= (unsigned)n;
		c->sq_cut = 1; /* the record at its head, at least, has partly gone */
	}
	atlas_tls_queue_drop(c);
	return 1;
}

static bool queue_append(struct atlas_conn *c, const char *buf, size_t len)
{
	unsigned char *q = realloc(c->sq, c->sq_len + len);

	if (q == NULL)
		return false;
	memcpy(q + c->sq_len, buf, len);
	__atomic_store_n(&c->sq, q, __ATOMIC_RELAXED);
	c->sq_len += (unsigned)len;
	return true;
}

/*
 * A write of OpenSSL's on an open connection on the userspace path: behind what
 * the queue holds, as much as the socket takes, and the rest into the queue. The
 * whole record counts as written, so OpenSSL never holds one partly sent (whose
 * retry would have to be the same SSL_write, with the same bytes, which a host
 * need not offer). Callers write through SSL_write only with the queue empty
 * (engine.c), so it holds one record's rest at most, and what SSL_read (a KeyUpdate)
 * or SSL_shutdown (close_notify) adds behind it.
 */
static int queue_write(struct atlas_conn *c, const char *buf, int len)
{
	bool was_empty;
	ssize_t n = 0;

	if (c->sq != NULL && atlas_tls_queue_send(c, c->io_fd) < 0)
		return -1;
	was_empty = c->sq == NULL;
	if (was_empty) {
		/* MSG_NOSIGNAL: a peer that went away must not kill the host with SIGPIPE. */
		n = atlas_real.send(c->io_fd, buf, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		if (n < 0)
			n = 0;
	}
	if (n < len) {
		if (!queue_append(c, buf + n, (size_t)(len - n))) {
			errno = ENOMEM; /* the record is cut: the connection cannot go on */
			return -1;
		}
		if (n > 0)
			c->sq_cut = 1;
		if (was_empty)
			atlas_engine_wait_for_room(c);
	}
	return len;
}

static int conn_bio_write(BIO *b, const char *buf, int len)
{
	struct atlas_conn *c = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (c->state == ATLAS_CONN_OPEN && !(c->ktls & ATLAS_KTLS_TX))
		return queue_write(c, buf, len);
	if (c->ctrl_type != 0) {
		/* One whole record or EAGAIN: the kernel never sends part of a control message. */
		n = atlas_ktls_send_record(c->io_fd, c->ctrl_type, buf, (size_t)len, MSG_DONTWAIT);
		if (n >= 0) {
			c->ctrl_type = 0;
			n = len;
		}
	} else {
		/* MSG_NOSIGNAL: a peer that went away must not kill the host with SIGPIPE. */
		n = atlas_real.send(c->io_fd, buf, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static long conn_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct atlas_conn *c = BIO_get_data(b);
	bool tx = num != 0;

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1; /* nothing is buffered here: every write goes straight to the socket */
	case ATLAS_BIO_CTRL_SET_KTLS:
		/*
		 * ptr: OpenSSL's ktls_crypto_info_t, whose first member is the kernel's struct,
		 * on OpenSSL's stack; OpenSSL 3.0 never reads it again, nor wipes it
		 * (ssl/t1_enc.c, ssl/tls13_enc.c): the install below does.
		 */
		if (atlas_ktls_install(c->io_fd, tx, ptr, c->ktls_why, sizeof(c->ktls_why)) < 0)
			return 0;
		c->ktls |= tx ? ATLAS_KTLS_TX : ATLAS_KTLS_RX;
		return 1;
	case BIO_CTRL_GET_KTLS_SEND:
		return (c->ktls & ATLAS_KTLS_TX) != 0;
	case BIO_CTRL_GET_KTLS_RECV:
		return (c->ktls & ATLAS_KTLS_RX) != 0;
	case ATLAS_BIO_CTRL_SET_KTLS_TX_SEND_CTRL_MSG:
		c->ctrl_type = (unsigned char)num;
		return 0;
	case ATLAS_BIO_CTRL_CLEAR_KTLS_TX_CTRL_MSG:
		c->ctrl_type = 0;
		return 0;
	default:
		return 0;
	}
}

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * OpenSSL reports every secret it derives as an NSS key log line. It goes to
 * SSLKEYLOGFILE only when that is set (secrets.c). With kTLS, the one secret
 * OpenSSL 3.0 does not offload itself, the TLS 1.3 client application traffic
 * secret, becomes kernel RX (offload.c). Nothing is logged.
 */
static void keylog(const SSL *ssl, const char *line)
{
	static const char label[] = "CLIENT_TRAFFIC_SECRET_0 ";
	struct atlas_conn *c = SSL_get_app_data(ssl);
	const char *hex;
	size_t n = 0;

	atlas_secrets_keylog_line(line); /* SSLKEYLOGFILE, when the operator set it */
	if (c == NULL || !atlas_offload_enabled() || strncmp(line, label, sizeof(label) - 1) != 0)
		return;
	hex = strchr(line + sizeof(label) - 1, ' '); /* skip the client random */
	if (hex == NULL)
		return;
	for (hex++; hex[0] && hex[1] && n < sizeof(c->rx_secret); hex += 2) {
		int hi = hex_value(hex[0]), lo = hex_value(hex[1]);

		if (hi < 0 || lo < 0)
			break;
		c->rx_secret[n++] = (unsigned char)(hi << 4 | lo);
	}
	c->rx_secret_len = (unsigned char)n;
}

static void conn_bio_method_create(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "atlas socket");

	if (m == NULL)
		return;
	BIO_meth_set_read(m, conn_bio_read);
	BIO_meth_set_write(m, conn_bio_write);
	BIO_meth_set_ctrl(m, conn_bio_ctrl);
	conn_bio_method = m;
}

SSL *atlas_tls_ssl_new(SSL_CTX *ctx, struct atlas_conn *c)
{
	SSL *ssl;
	BIO *bio;

	pthread_once(&bio_once, conn_bio_method_create);
	if (conn_bio_method == NULL)
		return NULL;
	ssl = SSL_new(ctx);
	bio = BIO_new(conn_bio_method);
	if (ssl == NULL || bio == NULL) {
		SSL_free(ssl);
		BIO_free(bio);
		return NULL;
	}
	SSL_set_app_data(ssl, c);
	BIO_set_data(bio, c);
	BIO_set_init(bio, 1);
	SSL_set_bio(ssl, bio, bio);
	SSL_set_accept_state(ssl);
	/*
	 * The record buffers are kept while the handshake runs, and released when it waits
	 * for the client, when it is done, and whenever they empty after that
	 * (atlas_tls_handshake). Released each time they empty during the handshake too, the
	 * buffers were allocated, wiped and freed again for every record the server wrote:
	 * ten 17 KiB write buffers per TLS 1.3 handshake.
	 */
	SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	c->read_ahead = !atlas_offload_enabled(); /* else once the handshake has settled the path */
	return ssl;
}

/* SSL_do_handshake returned r: done, or waiting for the other side (not failed). */
static bool handshake_waits(SSL *ssl, int r)
{
	int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, r);

	return e == SSL_ERROR_NONE || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/*
 * One handshake between ctx and a client in memory (a BIO pair), at version:
 * 1 when it completed. Nothing touches a socket, and nothing is logged.
 */
static int warm_up_one(SSL_CTX *ctx, SSL_CTX *client_ctx, int version)
{
	SSL *server = SSL_new(ctx), *client = SSL_new(client_ctx);
	BIO *sb = NULL, *cb = NULL;
	int done = 0;

	/* Buffers of 64 KiB: a large certificate chain's flight needs more rounds, no more. */
	if (server == NULL || client == NULL || !BIO_new_bio_pair(&sb, 65536, &cb, 65536))
		goto out;
	SSL_set_bio(server, sb, sb);
	SSL_set_bio(client, cb, cb);
	SSL_set_min_proto_version(client, version);
	SSL_set_max_proto_version(client, version);
	SSL_set_accept_state(server);
	SSL_set_connect_state(client);
	/* Each side's turn produces (part of) the other's next flight: a few rounds. */
	for (int round = 0; round < 64 && !done; round++) {
		int rc = SSL_do_handshake(client), rs = SSL_do_handshake(server);

		done = rc == 1 && rs == 1;
		if (!done && (!handshake_waits(client, rc) || !handshake_waits(server, rs)))
			break;
	}
out:
	SSL_free(server);
	SSL_free(client);
	ERR_clear_error();
	return done;
}

/*
 * OpenSSL 3.0 builds its tables of algorithms (the provider's methods and the
 * name map) lazily, in the first handshake that needs each kind, and an
 * allocation that fails while it builds them leaves them broken for the rest
 * of the process: every later handshake fails with "internal error" (found by
 * tests/e2e/14-alloc-failure.sh). One handshake in memory per version, when
 * the context is built, builds them here, at start-up, where a failure
 * concerns the process and is said once, rather than in a connection's
 * handshake where it would silently break every later one.
 */
static int warm_up(SSL_CTX *ctx)
{
	SSL_CTX *client_ctx = SSL_CTX_new(TLS_client_method());
	int ok;

	if (client_ctx == NULL)
		return 0;
	/* Either will do: a key may serve only one version (an RSA-PSS key, TLS 1.3). */
	ok = warm_up_one(ctx, client_ctx, TLS1_3_VERSION) |
	     warm_up_one(ctx, client_ctx, TLS1_2_VERSION);
	SSL_CTX_free(client_ctx);
	return ok;
}

/* A key that needs a passphrase must fail to load, not prompt on the server's terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)userdata;
	return 0;
}

static SSL_CTX *ctx_fail(SSL_CTX *ctx, char *err, size_t errlen, const char *what, const char *path)
{
	char reason[200];

	atlas_log_ssl_reason(reason, sizeof(reason));
	snprintf(err, errlen, "%s %s%s%s", what, path, reason[0] ? ": " : "", reason);
	SSL_CTX_free(ctx);
	return NULL;
}

static SSL_CTX *file_fail(SSL_CTX *ctx, char *err, size_t errlen, const char *what,
			  const char *path)
{
	snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *atlas_tls_ctx_new(const struct atlas_config *cfg, bool ktls, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if (!OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT | OPENSSL_INIT_LOAD_SSL_STRINGS |
				      OPENSSL_INIT_LOAD_CRYPTO_STRINGS,
			      NULL)) {
		snprintf(err, errlen, "OpenSSL failed to initialise");
		return NULL;
	}
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		return ctx_fail(NULL, err, errlen, "cannot create the TLS context", "");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	/*
	 * No compression (CRIME), no renegotiation (the kernel cannot follow it), and a
	 * TCP close without close_notify reads as end of file, as it does without TLS.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_IGNORE_UNEXPECTED_EOF |
					 SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_PRIORITIZE_CHACHA);
	if (ktls) /* OpenSSL offloads what 3.0 can (TLS 1.2 both ways, TLS 1.3 transmit). */
		SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
	if (ktls || atlas_secrets_keylog_enabled())
		SSL_CTX_set_keylog_callback(ctx, keylog);
	/* Partial writes and a retried buffer that moved: what write(2) callers expect to do. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, ATLAS_TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, ATLAS_TLS13_SUITES) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, ATLAS_TLS_GROUPS) != 1)
		return ctx_fail(ctx, err, errlen, "cannot set the cipher suites", "");
	/*
	 * No session cache in the process: OpenSSL's would keep every TLS 1.2 session, its
	 * master secret included, for two hours (tls1_default_timeout) after the kernel has
	 * the keys, and its memory with it. Session tickets still resume, TLS 1.2 and 1.3:
	 * the server keeps nothing for them (RFC 5077, RFC 8446 section 4.6.1).
	 */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	/* OpenSSL says only "system lib" for a missing file: ask the system first. */
	if (access(cfg->cert, R_OK) != 0)
		return file_fail(ctx, err, errlen, "cannot read the certificate chain file",
				 cfg->cert);
	if (access(cfg->key, R_OK) != 0)
		return file_fail(ctx, err, errlen, "cannot read the private key file", cfg->key);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert) != 1)
		return ctx_fail(ctx, err, errlen, "cannot load the certificate chain from",
				cfg->cert);
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key, SSL_FILETYPE_PEM) != 1)
		return ctx_fail(ctx, err, errlen, "cannot load the private key from", cfg->key);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return ctx_fail(ctx, err, errlen,
				"the private key does not match the certificate in", cfg->cert);
	/* Made here, once: a failure later would refuse every connection for ever. */
	pthread_once(&bio_once, conn_bio_method_create);
	if (conn_bio_method == NULL)
		return ctx_fail(ctx, err, errlen, "cannot create the socket BIO", "");
	if (!warm_up(ctx))
		return ctx_fail(ctx, err, errlen,
				"a TLS handshake in memory failed with the certificate in",
				cfg->cert);
	return ctx;
}
