#define _GNU_SOURCE
#include "offload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "conn.h"
#include "fdtab.h"
#include "ktls.h"
#include "log.h"
#include "real.h"
#include "tls.h"

/* RFC 8446 section 6: alert levels and the descriptions handled here. */
#define ALERT_WARNING	     1
#define ALERT_FATAL	     2
#define ALERT_CLOSE_NOTIFY   0
#define ALERT_INTERNAL_ERROR 80
/* RFC 8446 section 4: handshake message types a client may send after the handshake. */
#define HS_KEY_UPDATE 24

/* The largest record the kernel hands back: 2^14 plaintext plus a little. */
#define RECORD_MAX (16384 + 256)

static enum atlas_ktls_mode offload_mode = ATLAS_KTLS_OFF;
static bool offload_ulp;

void atlas_offload_configure(enum atlas_ktls_mode mode, bool ulp_available)
{
	offload_mode = mode;
	offload_ulp = ulp_available;
}

bool atlas_offload_enabled(void)
{
	return offload_mode != ATLAS_KTLS_OFF && offload_ulp;
}

const char *atlas_offload_describe(void)
{
	if (offload_mode == ATLAS_KTLS_OFF)
		return "userspace (ATLAS_KTLS=off)";
	if (!offload_ulp)
		return "userspace (the kernel has no tls ULP)";
	if (offload_mode == ATLAS_KTLS_REQUIRE)
		return "kernel, TX and RX, or the connection is refused (ATLAS_KTLS=require)";
	return "kernel, TX and RX, where the cipher allows (ATLAS_KTLS=auto)";
}

/*
 * TLS 1.3 receive, which OpenSSL 3.0 leaves in userspace: only when nothing
 * under the client's application key has been read yet, so that record
 * sequence 0 is right (OpenSSL reads exactly one record at a time, and
 * tls.c reads ahead only where the kernel will not receive). Returns 0, or -1 with why.
 */
static int finish_tls13_rx(struct atlas_conn *c, int fd, char *why, size_t whylen)
{
	if (c->rx_secret_len == 0) {
		snprintf(why, whylen, "OpenSSL did not report the client traffic secret");
		return -1;
	}
	if (SSL_has_pending(c->ssl)) {
		snprintf(why, whylen, "the client's first records were already read into OpenSSL");
		return -1;
	}
	return atlas_ktls_install_tls13_rx(fd, SSL_get_current_cipher(c->ssl), c->rx_secret,
					   c->rx_secret_len, why, whylen);
}

/* The TLS 1.3 client traffic secret has served its purpose, whatever the path. */
static void forget_rx_secret(struct atlas_conn *c)
{
	OPENSSL_cleanse(c->rx_secret, sizeof(c->rx_secret));
	c->rx_secret_len = 0;
}

int atlas_offload_finish(struct atlas_conn *c, int fd, char *desc, size_t desclen)
{
	char why[160] = "";

	atlas_conn_set_path(c, ATLAS_PATH_USERSPACE);
	if (!atlas_offload_enabled()) {
		snprintf(desc, desclen, "%s", atlas_offload_describe());
		return offload_mode == ATLAS_KTLS_REQUIRE ? -1 : 0;
	}
	if (!(c->ktls & ATLAS_KTLS_TX)) {
		snprintf(desc, desclen, "userspace (%s)",
			 c->ktls_why[0] ? c->ktls_why : "OpenSSL did not offload this connection");
		forget_rx_secret(c); /* a connection left on the userspace path never needs it */
		goto done;
	}
	if (!(c->ktls & ATLAS_KTLS_RX)) {
		if (SSL_version(c->ssl) != TLS1_3_VERSION)
			snprintf(why, sizeof(why), "%s",
				 c->ktls_why[0] ? c->ktls_why : "OpenSSL did not offload RX");
		else if (finish_tls13_rx(c, fd, why, sizeof(why)) == 0)
			c->ktls |= ATLAS_KTLS_RX;
	}
	forget_rx_secret(c);
	if ((c->ktls & ATLAS_KTLS_RX) && !SSL_has_pending(c->ssl)) {
		/* Nothing left for OpenSSL to do: the kernel has the keys, we drop ours. */
		atlas_tls_ssl_free(c->ssl);
		c->ssl = NULL;
		atlas_conn_set_path(c, ATLAS_PATH_KERNEL);
		/* The socket carries its own keys now: it may follow exec as the host wanted. */
		atlas_fdtab_give_back_cloexec(c, fd);
		snprintf(desc, desclen, "kernel (TX and RX)");
		return 0;
	}
	atlas_conn_set_path(c, ATLAS_PATH_KERNEL_TX);
	snprintf(desc, desclen, "kernel TX, userspace RX (%s)",
		 why[0] ? why : "records were pending in OpenSSL");
done:
	return offload_mode == ATLAS_KTLS_REQUIRE ? -1 : 0;
}

void atlas_offload_refuse(struct atlas_conn *c, int fd)
{
	static const unsigned char alert[2] = { ALERT_FATAL, ALERT_INTERNAL_ERROR };

	if (c->ktls & ATLAS_KTLS_TX) {
		atlas_ktls_send_record(fd, ATLAS_TLS_ALERT, alert, sizeof(alert), MSG_DONTWAIT);
		c->tx_closed = 1;
	} else if (c->ssl != NULL) {
		SSL_shutdown(c->ssl); /* OpenSSL can send no other alert on request: close_notify */
	}
}

bool atlas_offload_close_notify(struct atlas_conn *c, int fd)
{
	static const unsigned char alert[2] = { ALERT_WARNING, ALERT_CLOSE_NOTIFY };

	if (c->tx_closed)
		return true;
	if (atlas_ktls_send_record(fd, ATLAS_TLS_ALERT, alert, sizeof(alert), MSG_DONTWAIT) < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	c->tx_closed = 1;
	return true;
}

/* The connection cannot go on: reads see end of file (clean) or ECONNRESET. Locked. */
static ssize_t end_rx(struct atlas_conn *c, int err)
{
	c->rx_closed = 1;
	c->fail_errno = err;
	if (err == 0)
		return 0;
	errno = err;
	return -1;
}

static ssize_t handle_record(struct atlas_conn *c, int fd, unsigned char type,
			     const unsigned char *rec, ssize_t n)
{
	char who[128];

	atlas_conn_describe(c, fd, who, sizeof(who));
	switch (type) {
	case ATLAS_TLS_ALERT:
		if (n >= 2 && rec[1] == ALERT_CLOSE_NOTIFY) {
			atlas_debug("%s: close_notify received", who);
			return end_rx(c, 0);
		}
		atlas_info("%s: the client sent alert %d (level %d): connection closed", who,
			   n >= 2 ? rec[1] : -1, n >= 1 ? rec[0] : -1);
		return end_rx(c, ECONNRESET);
	case ATLAS_TLS_HANDSHAKE:
		if (n >= 1 && rec[0] == HS_KEY_UPDATE) {
			/*
			 * Linux 6.1 cannot change kTLS keys: records under the new key would not
			 * decrypt. The client gets close_notify; the host's read fails with
			 * ECONNRESET, not end of file: the client's stream goes on past the
			 * KeyUpdate, and an end would make a cut-short upload look complete.
			 */
			atlas_info(
				"%s: the client sent a KeyUpdate, which kernel TLS cannot follow: "
				"closing the connection (close_notify to the client, ECONNRESET "
				"to the server)",
				who);
			/*
			 * As after the host's own shutdown (engine.c): kTLS would take its later
			 * writes, count them and never send them; they fail with EPIPE instead.
			 * A send of the host's still in flight (a blocked one would hold this
			 * one back until the client reads) gets the FIN alone.
			 */
			__atomic_store_n(&c->wr_closed, 1, __ATOMIC_SEQ_CST);
			if (!atlas_conn_sending(c))
				atlas_offload_close_notify(c, fd);
			atlas_real.shutdown(fd, SHUT_RDWR);
			return end_rx(c, ECONNRESET);
		}
		atlas_info("%s: unexpected handshake message %d after the handshake: connection "
			   "closed",
			   who, n >= 1 ? rec[0] : -1);
		return end_rx(c, ECONNRESET);
	default:
		atlas_info(
			"%s: unexpected record type %u on a kernel TLS socket: connection closed",
			who, type);
		return end_rx(c, ECONNRESET);
	}
}

ssize_t atlas_offload_control(struct atlas_conn *c, int fd, int flags, int saved_errno)
{
	unsigned char *rec;
	unsigned char type;
	ssize_t n, r;

	pthread_mutex_lock(&c->lock);
	if (c->rx_closed) {
		r = c->fail_errno ? (errno = c->fail_errno, -1) : 0;
		goto out;
	}
	rec = malloc(RECORD_MAX);
	if (rec == NULL) {
		errno = ENOMEM;
		r = -1;
		goto out;
	}
	n = atlas_ktls_recv_record(fd, &type, rec, RECORD_MAX, flags & MSG_DONTWAIT);
	if (n < 0)
		r = -1;
	else if (n == 0 && type == ATLAS_TLS_APPLICATION_DATA)
		r = end_rx(c, 0); /* no record at all: the client's FIN */
	else if (type == ATLAS_TLS_APPLICATION_DATA)
		r = end_rx(c, ECONNRESET); /* a data record where EIO said control: cannot happen */
	else
		r = handle_record(c, fd, type, rec, n);
	OPENSSL_cleanse(rec, RECORD_MAX);
	free(rec);
out:
	pthread_mutex_unlock(&c->lock);
	if (r == 0)
		errno = saved_errno; /* end of file is a success: errno as before the call */
	return r;
}

/* Is the record the kernel has next for fd not data? errno is kept. */
static bool control_next(int fd)
{
	unsigned char type = ATLAS_TLS_APPLICATION_DATA;
	unsigned char *rec = malloc(RECORD_MAX);
	int saved = errno;
	ssize_t n;

	if (rec == NULL)
		return false;
	n = atlas_ktls_recv_record(fd, &type, rec, RECORD_MAX, MSG_PEEK | MSG_DONTWAIT);
	OPENSSL_cleanse(rec, n > 0 ? (size_t)n : 0);
	free(rec);
	errno = saved;
	return n >= 0 && type != ATLAS_TLS_APPLICATION_DATA;
}

ssize_t atlas_offload_splice_failed(struct atlas_conn *c, int fd, unsigned flags, int saved_errno)
{
	int mflags = flags & SPLICE_F_NONBLOCK ? MSG_DONTWAIT : 0;

	if (errno == EBADMSG) {
		atlas_offload_bad_record(c, fd);
		return -1;
	}
	if ((errno != EINVAL && errno != EIO) || !control_next(fd))
		return -1;
	return atlas_offload_control(c, fd, mflags, saved_errno);
}

ssize_t atlas_offload_splice(struct atlas_conn *c, int fd, int pipe_out, loff_t *off_out,
			     size_t len, unsigned flags)
{
	int saved = errno;
	ssize_t n;

	if (__atomic_load_n(&c->rx_closed, __ATOMIC_ACQUIRE))
		return atlas_offload_control(c, fd, 0, saved);
	n = atlas_real.splice(fd, NULL, pipe_out, off_out, len, flags);
	return n >= 0 ? n : atlas_offload_splice_failed(c, fd, flags, saved);
}

void atlas_offload_bad_record(struct atlas_conn *c, int fd)
{
	char who[128];
	int saved = errno;

	if (atlas_log_enabled(ATLAS_LOG_INFO))
		atlas_log(ATLAS_LOG_INFO,
			  "%s: a record from the client failed authentication (EBADMSG): "
			  "tampered with or corrupted in transit",
			  atlas_conn_describe(c, fd, who, sizeof(who)));
	errno = saved;
}

ssize_t atlas_offload_recv(struct atlas_conn *c, int fd, struct iovec *iov, int iovcnt, int flags)
{
	/* No control buffer: with one, the kernel would return an alert's bytes as data. */
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };
	int saved = errno;
	ssize_t n;

	if (__atomic_load_n(&c->rx_closed, __ATOMIC_ACQUIRE))
		return atlas_offload_control(c, fd, flags, saved);
	n = atlas_real.recvmsg(fd, &msg, flags);
	if (n >= 0)
		return n;
	if (errno == EBADMSG)
		atlas_offload_bad_record(c, fd);
	if (errno != EIO)
		return n;
	return atlas_offload_control(c, fd, flags, saved);
}
