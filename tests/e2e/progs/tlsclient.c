/*
 * tlsclient: a small OpenSSL client for the kernel TLS end-to-end tests
 * (tests/e2e/3x-ktls*.sh). It connects to 127.0.0.1:PORT, verifies the
 * server against --ca for the name localhost, does one action and prints
 * one summary line per step, "word: key=value ...", for the shell to check.
 *
 *   tlsclient --port P --ca FILE [--tls 1.2|1.3] [--cipher NAME] [--timeout S] ACTION
 *
 *   --get PATH [--requests K]  K requests for PATH on one connection (the last one
 *                     with Connection: close, the others keep-alive); per response
 *                     "get: request=I status=S length=N sha256=HEX version=V cipher=C",
 *                     then "end: HOW" (how the server ended the stream). With
 *                     --close-notify or --no-close-notify, every request is
 *                     keep-alive and the client ends the connection that way.
 *   --echo N          sends N random bytes in records of at most 16 KiB, each read
 *                     back before the next (an echo server); "echo: sent=N
 *                     received=M match=yes|no", then closes as --close-notify or
 *                     --no-close-notify say (the default: close_notify).
 *   --flood N         sends N bytes (byte i is i % 251) to an echo server that keeps
 *                     reading while its echo waits, without reading any back, its
 *                     receive buffer made small so that the server's echo meets a full
 *                     socket early; once half are out, SSL_key_update(REQUESTED): the
 *                     server must answer with a KeyUpdate of its own while its echo is
 *                     still stuck. Then it reads the N bytes back. "flood: sent=N
 *                     received=M keyupdate=requested match=yes|no [end=HOW]"; exit 0
 *                     when all N came back intact.
 *   --keyupdate       with --get: after the first (keep-alive) response; with --echo:
 *                     after the echo. SSL_key_update(NOT_REQUESTED), then one more
 *                     request (or echo record). Expected: a clean close (the server's
 *                     close_notify) and no response. "keyupdate: ... result=HOW".
 *   --alert           with --echo: after the echo, one more record whose echo is
 *                     corrupted on its way in (one ciphertext byte flipped), so that
 *                     OpenSSL itself sends the server a real fatal alert
 *                     (bad_record_mac, 20) under the current keys. "alert: sent=20
 *                     level=2 peer=HOW" (what the server did next).
 *   --renegotiate     TLS 1.2, after the echo: SSL_renegotiate, a ClientHello on an
 *                     established connection. "renegotiate: result=HOW".
 *   --tamper          with --echo: one ciphertext byte of the first application record
 *                     the client sends is flipped on its way out. Expected: the server
 *                     never echoes anything. "tamper: flipped=1 echoed=N peer=HOW".
 *   --close-notify    end with SSL_shutdown and wait for the server's close_notify:
 *                     "close: sent=close_notify peer=HOW".
 *   --no-close-notify end with a bare TCP close: "close: sent=tcp-close".
 *
 * HOW, how a stream ended: close_notify (SSL_read returned 0 with
 * SSL_ERROR_ZERO_RETURN), eof (a TCP close without close_notify), reset
 * (ECONNRESET), alert:NAME (a fatal alert from the server), timeout, data (more
 * bytes came), error:REASON.
 *
 * Exit status: 0 when the action did what it is expected to (a 200 with
 * Content-Length bytes and a close_notify, a matching echo, a clean close after
 * KeyUpdate, no echo after tampering, ...); 1 when it did not; 2 when it could
 * not connect or handshake, or for a usage error ("handshake: failed ...").
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#define RECORD_MAX 16384

struct opts {
	int port;
	const char *ca;
	const char *tls;
	const char *cipher;
	const char *get;
	int requests;
	long echo;
	long flood;
	bool keyupdate;
	bool alert;
	bool renegotiate;
	bool tamper;
	int close_mode; /* 0: close_notify, quietly; 1: --close-notify; 2: --no-close-notify */
	int timeout;
};

/* ---- a socket BIO that can flip one ciphertext byte, either way ---------- */

/* Follows the TLS record stream (5-byte headers, then bodies) in one direction. */
struct recparse {
	unsigned char hdr[5];
	int hdr_have;
	size_t body_len;
	size_t body_pos;
	bool flip_this;
	bool armed;   /* flip a byte in the next application_data record */
	int flipped;  /* how many bytes were flipped */
	long records; /* records seen */
};

struct sockbio {
	int fd;
	struct recparse w, r;
};

static void recparse_run(struct recparse *p, unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p->hdr_have < 5) {
			p->hdr[p->hdr_have++] = buf[i];
			if (p->hdr_have < 5)
				continue;
			p->body_len = (size_t)p->hdr[3] << 8 | p->hdr[4];
			p->body_pos = 0;
			p->records++;
			/* 23: application_data, the outer type of every TLS 1.3 record too */
			p->flip_this = p->armed && p->hdr[0] == 23 && p->body_len > 0;
			if (p->flip_this)
				p->armed = false;
			if (p->body_len == 0)
				p->hdr_have = 0;
			continue;
		}
		if (p->flip_this && p->body_pos == p->body_len / 2) {
			buf[i] ^= 0x01;
			p->flipped++;
		}
		if (++p->body_pos == p->body_len)
			p->hdr_have = 0;
	}
}

static int sockbio_write(BIO *b, const char *buf, int len)
{
	struct sockbio *s = BIO_get_data(b);
	unsigned char *copy;
	size_t done = 0;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	copy = malloc((size_t)len);
	if (copy == NULL)
		return -1;
	memcpy(copy, buf, (size_t)len);
	recparse_run(&s->w, copy, (size_t)len);
	/* All or nothing: the parser has seen every byte already. */
	while (done < (size_t)len) {
		ssize_t n = send(s->fd, copy + done, (size_t)len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(copy);
			return -1;
		}
		done += (size_t)n;
	}
	free(copy);
	return len;
}

static int sockbio_read(BIO *b, char *buf, int len)
{
	struct sockbio *s = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	do
		n = recv(s->fd, buf, (size_t)len, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		recparse_run(&s->r, (unsigned char *)buf, (size_t)n);
	return (int)n;
}

static long sockbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO *sockbio_new(struct sockbio *s)
{
	static BIO_METHOD *m;
	BIO *b;

	if (m == NULL) {
		m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tlsclient socket");
		if (m == NULL)
			return NULL;
		BIO_meth_set_write(m, sockbio_write);
		BIO_meth_set_read(m, sockbio_read);
		BIO_meth_set_ctrl(m, sockbio_ctrl);
	}
	b = BIO_new(m);
	if (b == NULL)
		return NULL;
	BIO_set_data(b, s);
	BIO_set_init(b, 1);
	return b;
}

/* ---- what happened ------------------------------------------------------- */

static int alert_read = -1;  /* the last alert the server sent us: level << 8 | description */
static int alert_wrote = -1; /* the last alert we sent */

static void info_cb(const SSL *ssl, int where, int ret)
{
	(void)ssl;
	if (!(where & SSL_CB_ALERT))
		return;
	if (where & SSL_CB_READ)
		alert_read = ret;
	else
		alert_wrote = ret;
}

/* "close_notify", "eof", ... for a failed SSL call (see the header comment). */
static const char *classify(SSL *ssl, int r, char *buf, size_t len)
{
	int e = SSL_get_error(ssl, r), err = errno;
	unsigned long code = ERR_peek_error();

	if (r > 0)
		return "data";
	switch (e) {
	case SSL_ERROR_ZERO_RETURN:
		return "close_notify";
	case SSL_ERROR_SYSCALL:
		if (code == 0 && (err == 0 || r == 0))
			return "eof";
		if (err == ECONNRESET)
			return "reset";
		if (err == EAGAIN || err == EWOULDBLOCK)
			return "timeout";
		if (err == EPIPE)
			return "epipe";
		snprintf(buf, len, "error:syscall:%s", strerror(err));
		return buf;
	case SSL_ERROR_SSL:
		if (ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
			return "eof";
		if (alert_read >= 0 && (alert_read >> 8) == SSL3_AL_FATAL) {
			snprintf(buf, len, "alert:%s", SSL_alert_desc_string_long(alert_read));
			for (char *p = buf; *p; p++)
				if (*p == ' ')
					*p = '_';
			return buf;
		}
		snprintf(buf, len, "error:%s",
			 ERR_reason_error_string(code) ? ERR_reason_error_string(code) : "unknown");
		for (char *p = buf; *p; p++)
			if (*p == ' ')
				*p = '_';
		return buf;
	default:
		snprintf(buf, len, "error:ssl_error_%d", e);
		return buf;
	}
}

/* Reads what the server does next: its end of the stream, or data (counted in *extra). */
static const char *read_end(SSL *ssl, long *extra, char *buf, size_t len)
{
	char data[RECORD_MAX];

	for (;;) {
		int r;

		ERR_clear_error();
		errno = 0;
		r = SSL_read(ssl, data, sizeof(data));
		if (r > 0) {
			*extra += r;
			continue;
		}
		return classify(ssl, r, buf, len);
	}
}

/* After the server stopped talking TLS: how the TCP stream itself ends. */
static const char *raw_end(int fd)
{
	char data[4096];
	ssize_t n;

	while ((n = recv(fd, data, sizeof(data), 0)) > 0)
		;
	if (n == 0)
		return "eof";
	if (errno == ECONNRESET)
		return "reset";
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return "timeout";
	return "error";
}

static void ssl_fail(const char *what)
{
	char reason[256] = "";
	unsigned long code = ERR_get_error();

	if (code != 0)
		ERR_error_string_n(code, reason, sizeof(reason));
	printf("handshake: failed %s%s%s\n", what, reason[0] ? ": " : "", reason);
}

static bool write_all(SSL *ssl, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t n = 0;

		ERR_clear_error();
		if (SSL_write_ex(ssl, (const char *)buf + done, len - done, &n) != 1)
			return false;
		done += n;
	}
	return true;
}

/* ---- --get ---------------------------------------------------------------- */

struct response {
	int status;
	long length;
	char sha256[65];
	const char *end; /* set when the stream ended inside the response */
};

static void hex(const unsigned char *md, unsigned n, char *out)
{
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

/*
 * One response: the head (up to the blank line), then Content-Length bytes of
 * body, or everything up to the end of the stream without one.
 */
static void read_response(SSL *ssl, struct response *rsp, char *why, size_t whylen)
{
	char head[8192], buf[RECORD_MAX];
	size_t used = 0, in_body = 0;
	long want = -1, got = 0;
	char *eoh = NULL, *cl;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char digest[32];
	unsigned dlen = 0;

	memset(rsp, 0, sizeof(*rsp));
	rsp->status = -1;
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while (eoh == NULL) {
		int r;

		if (used >= sizeof(head) - 1) {
			rsp->end = "error:head_too_long";
			goto out;
		}
		ERR_clear_error();
		errno = 0;
		r = SSL_read(ssl, head + used, (int)(sizeof(head) - 1 - used));
		if (r <= 0) {
			rsp->end = classify(ssl, r, why, whylen);
			goto out;
		}
		used += (size_t)r;
		head[used] = '\0';
		eoh = strstr(head, "\r\n\r\n");
	}
	sscanf(head, "HTTP/%*s %d", &rsp->status);
	*eoh = '\0';
	for (cl = head; (cl = strchr(cl, '\n')) != NULL; cl++)
		if (strncasecmp(cl + 1, "Content-Length:", 15) == 0)
			want = strtol(cl + 16, NULL, 10);
	in_body = used - (size_t)(eoh + 4 - head);
	EVP_DigestUpdate(md, eoh + 4, in_body);
	got = (long)in_body;
	while (want < 0 || got < want) {
		int r, ask = (int)sizeof(buf);

		if (want >= 0 && want - got < ask)
			ask = (int)(want - got);
		ERR_clear_error();
		errno = 0;
		r = SSL_read(ssl, buf, ask);
		if (r <= 0) {
			rsp->end = classify(ssl, r, why, whylen);
			break;
		}
		EVP_DigestUpdate(md, buf, (size_t)r);
		got += r;
	}
out:
	EVP_DigestFinal_ex(md, digest, &dlen);
	EVP_MD_CTX_free(md);
	hex(digest, dlen, rsp->sha256);
	rsp->length = got;
	if (want >= 0 && got != want && rsp->end == NULL)
		rsp->end = "error:short_body";
}

static int do_get(SSL *ssl, const struct opts *o)
{
	char req[2048], why[256];
	struct response rsp;
	int ok = 1;

	for (int i = 1; i <= o->requests; i++) {
		/* With --close-notify or --no-close-notify the client ends the connection. */
		bool last = i == o->requests && o->close_mode == 0;

		if (i == 2 && o->keyupdate) {
			if (SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED) != 1) {
				printf("keyupdate: failed SSL_key_update\n");
				return 1;
			}
		}
		snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: %s\r\n\r\n", o->get,
			 last ? "close" : "keep-alive");
		if (!write_all(ssl, req, strlen(req))) {
			printf("get: request=%d write failed: %s\n", i,
			       classify(ssl, -1, why, sizeof(why)));
			return 1;
		}
		read_response(ssl, &rsp, why, sizeof(why));
		if (i == 2 && o->keyupdate) {
			/* Expected: no response, a clean close. */
			long extra = 0;
			const char *end =
				rsp.end ? rsp.end : read_end(ssl, &extra, why, sizeof(why));

			printf("keyupdate: after=get status=%d length=%ld result=%s\n", rsp.status,
			       rsp.length + extra, rsp.status < 0 ? end : "response");
			return rsp.status < 0 && strcmp(end, "close_notify") == 0 ? 0 : 1;
		}
		printf("get: request=%d status=%d length=%ld sha256=%s version=%s cipher=%s\n", i,
		       rsp.status, rsp.length, rsp.sha256, SSL_get_version(ssl),
		       SSL_get_cipher_name(ssl));
		if (rsp.status != 200)
			ok = 0;
		if (rsp.end != NULL) {
			printf("end: %s\n", rsp.end);
			return 1;
		}
		if (last) {
			long extra = 0;
			const char *end = read_end(ssl, &extra, why, sizeof(why));

			printf("end: %s%s\n", end, extra ? " (after more data)" : "");
			if (strcmp(end, "close_notify") != 0 || extra)
				ok = 0;
		}
	}
	if (o->close_mode == 2) {
		printf("close: sent=tcp-close\n");
	} else if (o->close_mode == 1) {
		long extra = 0;
		const char *end;

		ERR_clear_error();
		if (SSL_shutdown(ssl) < 0)
			end = classify(ssl, -1, why, sizeof(why));
		else
			end = read_end(ssl, &extra, why, sizeof(why));
		printf("close: sent=close_notify peer=%s%s\n", end,
		       extra ? " (after more data)" : "");
		if (strcmp(end, "close_notify") != 0 || extra)
			ok = 0;
	}
	return ok ? 0 : 1;
}

/* ---- --echo and what may follow it ------------------------------------------ */

/* One record of n random bytes out, the same n bytes back. */
static int echo_round(SSL *ssl, long n, long *received, const char **end, char *why, size_t whylen)
{
	unsigned char out[RECORD_MAX], in[RECORD_MAX];
	long got = 0;

	RAND_bytes(out, (int)n);
	if (!write_all(ssl, out, (size_t)n)) {
		*end = classify(ssl, -1, why, whylen);
		return -1;
	}
	while (got < n) {
		int r;

		ERR_clear_error();
		errno = 0;
		r = SSL_read(ssl, in + got, (int)(n - got));
		if (r <= 0) {
			*end = classify(ssl, r, why, whylen);
			return -1;
		}
		got += r;
		*received += r;
	}
	return memcmp(in, out, (size_t)n) == 0 ? 0 : 1;
}

static int do_echo(SSL *ssl, int fd, struct sockbio *sb, const struct opts *o)
{
	long sent = 0, received = 0, extra = 0;
	const char *end = NULL;
	char why[256];
	bool match = true;

	if (o->tamper)
		sb->w.armed = true; /* the first data record on its way out */
	while (sent < o->echo) {
		long n = o->echo - sent > RECORD_MAX ? RECORD_MAX : o->echo - sent;
		int r = echo_round(ssl, n, &received, &end, why, sizeof(why));

		sent += n;
		if (r < 0)
			break;
		if (r > 0)
			match = false;
	}
	if (o->tamper) {
		if (end == NULL)
			end = read_end(ssl, &extra, why, sizeof(why));
		printf("tamper: flipped=%d echoed=%ld peer=%s\n", sb->w.flipped, received + extra,
		       end);
		return sb->w.flipped == 1 && received + extra == 0 ? 0 : 1;
	}
	printf("echo: sent=%ld received=%ld match=%s%s%s\n", sent, received,
	       match && end == NULL ? "yes" : "no", end ? " end=" : "", end ? end : "");
	if (end != NULL || !match)
		return 1;

	if (o->keyupdate) {
		int r;

		if (SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED) != 1) {
			printf("keyupdate: failed SSL_key_update\n");
			return 1;
		}
		received = 0;
		r = echo_round(ssl, 1000, &received, &end, why, sizeof(why));
		if (end == NULL)
			end = read_end(ssl, &extra, why, sizeof(why));
		printf("keyupdate: after=echo echoed=%ld result=%s\n", received + extra,
		       r == 0 ? "echoed" : end);
		return r != 0 && received + extra == 0 && strcmp(end, "close_notify") == 0 ? 0 : 1;
	}
	if (o->alert) {
		/* The echo of this record is corrupted on its way in: OpenSSL answers with an alert. */
		sb->r.armed = true;
		received = 0;
		echo_round(ssl, 1000, &received, &end, why, sizeof(why));
		printf("alert: sent=%d level=%d flipped=%d peer=%s\n",
		       alert_wrote < 0 ? -1 : alert_wrote & 0xff,
		       alert_wrote < 0 ? -1 : alert_wrote >> 8, sb->r.flipped, raw_end(fd));
		return alert_wrote >= 0 && (alert_wrote & 0xff) != SSL_AD_CLOSE_NOTIFY ? 0 : 1;
	}
	if (o->renegotiate) {
		int r;

		if (SSL_renegotiate(ssl) != 1) {
			printf("renegotiate: failed SSL_renegotiate (not TLS 1.2?)\n");
			return 1;
		}
		ERR_clear_error();
		errno = 0;
		r = SSL_do_handshake(ssl);
		end = r == 1 ? "renegotiated" : classify(ssl, r, why, sizeof(why));
		printf("renegotiate: result=%s\n", end);
		return r == 1 ? 1 : 0;
	}
	if (o->close_mode == 2) {
		printf("close: sent=tcp-close\n");
		return 0;
	}
	ERR_clear_error();
	if (SSL_shutdown(ssl) < 0) {
		end = classify(ssl, -1, why, sizeof(why));
	} else {
		end = read_end(ssl, &extra, why, sizeof(why));
	}
	if (o->close_mode == 1 || strcmp(end, "close_notify") != 0 || extra)
		printf("close: sent=close_notify peer=%s%s\n", end,
		       extra ? " (after more data)" : "");
	return strcmp(end, "close_notify") == 0 && !extra ? 0 : 1;
}

/* ---- --flood ---------------------------------------------------------------------- */

static int do_flood(SSL *ssl, const struct opts *o)
{
	unsigned char buf[RECORD_MAX];
	long sent = 0, received = 0;
	const char *end = NULL;
	char why[256];
	bool match = true, updated = false;

	while (sent < o->flood) {
		long n = o->flood - sent > RECORD_MAX ? RECORD_MAX : o->flood - sent;

		if (!updated && sent >= o->flood / 2) {
			if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1) {
				printf("flood: failed SSL_key_update (not TLS 1.3?)\n");
				return 1;
			}
			updated = true;
		}
		for (long i = 0; i < n; i++)
			buf[i] = (unsigned char)((sent + i) % 251);
		if (!write_all(ssl, buf, (size_t)n)) {
			end = classify(ssl, -1, why, sizeof(why));
			break;
		}
		sent += n;
	}
	while (end == NULL && received < sent) {
		int r;

		ERR_clear_error();
		errno = 0;
		r = SSL_read(ssl, buf, sizeof(buf));
		if (r <= 0) {
			end = classify(ssl, r, why, sizeof(why));
			break;
		}
		for (int i = 0; i < r; i++)
			if (buf[i] != (unsigned char)((received + i) % 251))
				match = false;
		received += r;
	}
	printf("flood: sent=%ld received=%ld keyupdate=%s match=%s%s%s\n", sent, received,
	       updated ? "requested" : "none", match ? "yes" : "no", end ? " end=" : "",
	       end ? end : "");
	return end == NULL && match && received == o->flood ? 0 : 1;
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr, "usage: tlsclient --port P --ca FILE [--tls 1.2|1.3] [--cipher NAME] "
			"[--timeout S]\n"
			"         (--get PATH [--requests K] [--keyupdate | --close-notify | "
			"--no-close-notify] |\n"
			"          --echo N [--keyupdate | --alert | --renegotiate | --tamper]\n"
			"                   [--close-notify | --no-close-notify] |\n"
			"          --flood N)\n");
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "ca", required_argument, NULL, 'a' },
		{ "tls", required_argument, NULL, 'v' },
		{ "cipher", required_argument, NULL, 'c' },
		{ "get", required_argument, NULL, 'g' },
		{ "requests", required_argument, NULL, 'n' },
		{ "echo", required_argument, NULL, 'e' },
		{ "flood", required_argument, NULL, 'f' },
		{ "keyupdate", no_argument, NULL, 'k' },
		{ "alert", no_argument, NULL, 'A' },
		{ "renegotiate", no_argument, NULL, 'R' },
		{ "tamper", no_argument, NULL, 'T' },
		{ "close-notify", no_argument, NULL, 'C' },
		{ "no-close-notify", no_argument, NULL, 'N' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->requests = 1;
	o->echo = -1;
	o->flood = -1;
	o->timeout = 20;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			o->port = atoi(optarg);
			break;
		case 'a':
			o->ca = optarg;
			break;
		case 'v':
			o->tls = optarg;
			break;
		case 'c':
			o->cipher = optarg;
			break;
		case 'g':
			o->get = optarg;
			break;
		case 'n':
			o->requests = atoi(optarg);
			break;
		case 'e':
			o->echo = atol(optarg);
			break;
		case 'f':
			o->flood = atol(optarg);
			break;
		case 'k':
			o->keyupdate = true;
			break;
		case 'A':
			o->alert = true;
			break;
		case 'R':
			o->renegotiate = true;
			break;
		case 'T':
			o->tamper = true;
			break;
		case 'C':
			o->close_mode = 1;
			break;
		case 'N':
			o->close_mode = 2;
			break;
		case 't':
			o->timeout = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || o->port <= 0 || o->ca == NULL ||
	    (o->get != NULL) + (o->echo >= 0) + (o->flood >= 0) != 1)
		usage();
	if (o->tls != NULL && strcmp(o->tls, "1.2") != 0 && strcmp(o->tls, "1.3") != 0)
		usage();
	if (o->requests < 1)
		usage();
	if (o->get != NULL && o->keyupdate)
		o->requests = 2; /* one response, the KeyUpdate, one more request */
	if (o->echo == 0 && (o->keyupdate || o->alert || o->renegotiate))
		usage();
}

int main(int argc, char **argv)
{
	struct opts o;
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv;
	struct sockbio sb;
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *bio;
	int fd, rc;

	parse(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		ssl_fail("SSL_CTX_new");
		return 2;
	}
	if (o.tls != NULL) {
		int v = strcmp(o.tls, "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;

		SSL_CTX_set_min_proto_version(ctx, v);
		SSL_CTX_set_max_proto_version(ctx, v);
	}
	if (o.cipher != NULL) {
		bool tls13 = (o.tls != NULL && strcmp(o.tls, "1.3") == 0) ||
			     (o.tls == NULL && strncmp(o.cipher, "TLS_", 4) == 0);
		int r = tls13 ? SSL_CTX_set_ciphersuites(ctx, o.cipher)
			      : SSL_CTX_set_cipher_list(ctx, o.cipher);

		if (r != 1) {
			ssl_fail("unknown cipher");
			return 2;
		}
	}
	if (SSL_CTX_load_verify_locations(ctx, o.ca, NULL) != 1) {
		ssl_fail("cannot load --ca");
		return 2;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_info_callback(ctx, info_cb);
	if (o.renegotiate)
		SSL_CTX_clear_options(ctx, SSL_OP_NO_RENEGOTIATION);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (o.flood >= 0) {
		int small = 16384; /* before connect: the window is set by the handshake */

		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	}
	sin.sin_port = htons((unsigned short)o.port);
	tv.tv_sec = o.timeout;
	tv.tv_usec = 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		printf("handshake: failed connect: %s\n", strerror(errno));
		return 2;
	}
	memset(&sb, 0, sizeof(sb));
	sb.fd = fd;
	ssl = SSL_new(ctx);
	bio = sockbio_new(&sb);
	if (ssl == NULL || bio == NULL) {
		ssl_fail("SSL_new");
		return 2;
	}
	SSL_set_bio(ssl, bio, bio);
	SSL_set_tlsext_host_name(ssl, "localhost");
	SSL_set1_host(ssl, "localhost");
	ERR_clear_error();
	if (SSL_connect(ssl) != 1) {
		char why[256];

		errno = 0;
		printf("handshake: failed SSL_connect: %s\n", classify(ssl, -1, why, sizeof(why)));
		ssl_fail("SSL_connect");
		return 2;
	}
	printf("handshake: ok version=%s cipher=%s\n", SSL_get_version(ssl),
	       SSL_get_cipher_name(ssl));

	if (o.get != NULL)
		rc = do_get(ssl, &o);
	else if (o.flood >= 0)
		rc = do_flood(ssl, &o);
	else
		rc = do_echo(ssl, fd, &sb, &o);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return rc;
}
