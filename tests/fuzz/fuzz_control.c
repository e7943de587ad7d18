/*
 * Fuzz target: reads on a kernel-RX socket, where the kernel hands userspace
 * every record that is not data (shim/offload.c atlas_offload_recv and
 * atlas_offload_control, shim/ktls.c atlas_ktls_recv_record).
 *
 * The kernel is faked through the table of real functions (recvmsg, sendmsg,
 * shutdown; write for the log), as Documentation/networking/tls.rst describes
 * it: a read without a control buffer returns data and fails with EIO at a
 * record that is not data; a read with one returns the next record whole,
 * with its type in a TLS_GET_RECORD_TYPE cmsg. The input is a script: records
 * the client sends (any type, length and bytes), errors the kernel returns
 * (EAGAIN, EBADMSG for a record that failed authentication, ...), and the
 * host's reads (iovecs, MSG_PEEK, MSG_DONTWAIT) and closes.
 *
 * Invariants, checked against a model of the connection after every read: data
 * arrives intact and in order; close_notify reads as end of file with errno
 * untouched; any other alert, handshake message, unknown type or malformed
 * record fails with ECONNRESET; a KeyUpdate sends one close_notify alert
 * through kernel TX, shuts the socket and fails with ECONNRESET too; once ended,
 * every read says the same without touching the socket; the control read never
 * gets the host's flags but MSG_DONTWAIT; every log line is one printable line.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/tls.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "conn.h"
#include "fuzz.h"
#include "ktls.h"
#include "log.h"
#include "offload.h"
#include "real.h"
#include "stub_init.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define FAKE_FD	   7001 /* the connection's fd: never a real one */
#define MAX_EVENTS 64
#define REC_MAX	   16384 /* TLS plaintext limit, RFC 8446 section 5.1 */

/* What the client sent or the kernel will say, in order. */
struct event {
	int err;	 /* a failure the next read returns (0: a record) */
	uint8_t type;	 /* record type */
	bool no_cmsg;	 /* the kernel forgets the record type (a broken kernel) */
	size_t len, off; /* record length; bytes already read (data records) */
	uint8_t *bytes;
};

static struct {
	struct event ev[MAX_EVENTS];
	int head, count;
	bool eof_at_end; /* after the last event: the client's FIN (else EAGAIN) */
	/* What Atlas did to the socket. */
	unsigned data_reads, control_reads, alerts_sent, shutdowns, log_lines;
	int last_shutdown_how;
} k;

static size_t iov_total(const struct msghdr *msg)
{
	size_t n = 0;

	for (size_t i = 0; i < msg->msg_iovlen; i++)
		n += msg->msg_iov[i].iov_len;
	return n;
}

static ssize_t fake_recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct event *e = k.head < k.count ? &k.ev[k.head] : NULL;

	FUZZ_CHECK(fd == FAKE_FD);
	FUZZ_CHECK(msg->msg_iovlen >= 1);
	if (msg->msg_control == NULL) {
		/* A data read: whatever data records hold, up to the first other record. */
		size_t done = 0;
		int at = k.head;
		size_t off = at < k.count ? k.ev[at].off : 0; /* within ev[at] */

		k.data_reads++;
		for (size_t i = 0; i < msg->msg_iovlen; i++) {
			struct iovec *v = &msg->msg_iov[i];
			size_t filled = 0;

			while (filled < v->iov_len && at < k.count && k.ev[at].err == 0 &&
			       k.ev[at].type == ATLAS_TLS_APPLICATION_DATA) {
				struct event *d = &k.ev[at];
				size_t left = d->len - off;
				size_t n = v->iov_len - filled < left ? v->iov_len - filled : left;

				memcpy((char *)v->iov_base + filled, d->bytes + off, n);
				filled += n;
				off += n;
				if (!(flags & MSG_PEEK))
					d->off = off;
				if (off == d->len) {
					at++;
					off = at < k.count ? k.ev[at].off : 0;
					if (!(flags & MSG_PEEK))
						k.head = at;
				}
			}
			done += filled;
			if (filled < v->iov_len)
				break;
		}
		if (done > 0 || iov_total(msg) == 0)
			return (ssize_t)done; /* as TCP: a read of 0 bytes returns 0 */
		if (e == NULL) {
			if (k.eof_at_end)
				return 0;
			errno = EAGAIN;
			return -1;
		}
		if (e->err != 0) {
			errno = e->err;
			k.head++;
			return -1;
		}
		errno = EIO; /* a record that is not data: the kernel wants a control buffer */
		return -1;
	}

	/* A control read (atlas_ktls_recv_record): one whole record with its type. */
	k.control_reads++;
	FUZZ_CHECK((flags & ~MSG_DONTWAIT) == 0); /* never the host's MSG_PEEK or others */
	FUZZ_CHECK(msg->msg_controllen >= CMSG_SPACE(1));
	msg->msg_flags = 0;
	if (e == NULL) {
		msg->msg_controllen = 0;
		if (k.eof_at_end)
			return 0;
		errno = EAGAIN;
		return -1;
	}
	k.head++;
	if (e->err != 0) {
		errno = e->err;
		return -1;
	}
	size_t n = e->len - e->off;
	if (n > msg->msg_iov[0].iov_len) {
		n = msg->msg_iov[0].iov_len;
		msg->msg_flags |= MSG_TRUNC;
	}
	memcpy(msg->msg_iov[0].iov_base, e->bytes + e->off, n);
	if (e->no_cmsg) {
		msg->msg_controllen = 0;
	} else {
		struct cmsghdr *cm = CMSG_FIRSTHDR(msg);

		cm->cmsg_level = SOL_TLS;
		cm->cmsg_type = TLS_GET_RECORD_TYPE;
		cm->cmsg_len = CMSG_LEN(1);
		*CMSG_DATA(cm) = e->type;
		msg->msg_controllen = CMSG_SPACE(1);
	}
	return (ssize_t)n;
}

/* Atlas's only sends here: close_notify as an alert record through kernel TX. */
static ssize_t fake_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct cmsghdr *cm = CMSG_FIRSTHDR((struct msghdr *)msg);
	const unsigned char *b = msg->msg_iov[0].iov_base;

	(void)flags;
	FUZZ_CHECK(fd == FAKE_FD);
	FUZZ_CHECK(cm != NULL && cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_SET_RECORD_TYPE);
	FUZZ_CHECK(*CMSG_DATA(cm) == ATLAS_TLS_ALERT);
	FUZZ_CHECK(msg->msg_iovlen == 1 && msg->msg_iov[0].iov_len == 2);
	FUZZ_CHECK(b[0] == 1 && b[1] == 0); /* warning, close_notify */
	k.alerts_sent++;
	return 2;
}

static int fake_shutdown(int fd, int how)
{
	FUZZ_CHECK(fd == FAKE_FD);
	k.shutdowns++;
	k.last_shutdown_how = how;
	return 0;
}

/* Log lines: "atlas: LEVEL: ..." and one newline, at its end. */
static ssize_t fake_write(int fd, const void *buf, size_t len)
{
	const char *s = buf;

	FUZZ_CHECK(fd == 2); /* nothing else is written on this path */
	FUZZ_CHECK(len >= 8 && strncmp(s, "atlas: ", 7) == 0 && s[len - 1] == '\n');
	for (size_t i = 0; i + 1 < len; i++)
		FUZZ_CHECK(s[i] >= 0x20 && s[i] <= 0x7e);
	k.log_lines++;
	return (ssize_t)len;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	atlas_real_init();
	atlas_real.recvmsg = fake_recvmsg;
	atlas_real.sendmsg = fake_sendmsg;
	atlas_real.shutdown = fake_shutdown;
	atlas_real.write = fake_write;
	atlas_log_threshold = ATLAS_LOG_DEBUG; /* every log line is formatted and checked */
	return 0;
}

/* The connection as the model sees it. */
struct model {
	bool closed;   /* reads are over */
	int close_err; /* 0: they see end of file; else this errno */
	bool tx_closed;
};

/* What a read must return, judged from the next events before the read runs. */
struct expect {
	ssize_t r; /* -1, 0, or the byte count */
	int err;
	const uint8_t *data[MAX_EVENTS]; /* the data's pieces, for a byte count */
	size_t len[MAX_EVENTS];
	int pieces;
	bool keyupdate, log;
	bool ends; /* the control read's verdict: rx is over */
};

static bool is_data(const struct event *e)
{
	return e->err == 0 && e->type == ATLAS_TLS_APPLICATION_DATA;
}

/* What a control record does to the connection (RFC 8446 sections 4.6.3 and 6). */
static void judge_record(const struct event *e, struct expect *x)
{
	size_t n = e->len - e->off;
	uint8_t type = e->no_cmsg ? ATLAS_TLS_APPLICATION_DATA : e->type;

	x->r = -1;
	x->err = ECONNRESET;
	x->log = type != ATLAS_TLS_APPLICATION_DATA; /* data here is the kernel's fault: no word */
	x->ends = true;
	if (n == 0 && type == ATLAS_TLS_APPLICATION_DATA) {
		x->r = 0; /* recvmsg's 0 without a record type: the client's FIN */
		x->err = 0;
		x->log = false;
	} else if (type == ATLAS_TLS_ALERT && n >= 2 && e->bytes[e->off + 1] == 0) {
		x->r = 0; /* close_notify, at either level */
		x->err = 0;
		x->log = false;
	} else if (type == ATLAS_TLS_HANDSHAKE && n >= 1 && e->bytes[e->off] == 24) {
		x->keyupdate = true; /* close_notify, shutdown, and ECONNRESET as above */
	}
}

static void expect_read(const struct model *m, size_t want, int flags, struct expect *x)
{
	int at = k.head;

	memset(x, 0, sizeof(*x));
	if (m->closed) {
		x->r = m->close_err ? -1 : 0;
		x->err = m->close_err;
		return;
	}
	/* Data first: the kernel returns what data records hold, up to another record. */
	x->r = 0;
	size_t off = at < k.count ? k.ev[at].off : 0;
	while (want > 0 && at < k.count && is_data(&k.ev[at])) {
		size_t left = k.ev[at].len - off;
		size_t n = want < left ? want : left;

		x->data[x->pieces] = k.ev[at].bytes + off;
		x->len[x->pieces++] = n;
		x->r += (ssize_t)n;
		want -= n;
		at++;
		off = at < k.count ? k.ev[at].off : 0;
	}
	if (x->r > 0 || want == 0)
		return;
	if (at >= k.count) {
		x->r = k.eof_at_end ? 0 : -1;
		x->err = k.eof_at_end ? 0 : EAGAIN;
		return;
	}
	if (k.ev[at].err != 0 && k.ev[at].err != EIO) {
		x->r = -1;
		x->err = k.ev[at].err;
		x->log = x->err == EBADMSG;
		return;
	}
	/* EIO (a control record, or a kernel that said so): the control read takes the next one. */
	const struct event *e =
		k.ev[at].err == EIO ? (at + 1 < k.count ? &k.ev[at + 1] : NULL) : &k.ev[at];
	if (e == NULL) {
		x->r = k.eof_at_end ? 0 : -1;
		x->err = k.eof_at_end ? 0 : EAGAIN;
		x->ends = k.eof_at_end;
	} else if (e->err != 0) {
		x->r = -1;
		x->err = e->err;
	} else {
		judge_record(e, x);
	}
	(void)flags;
}

/* One host read: the iovecs, the flags, and the checks. */
static void host_read(struct fuzz_input *in, struct atlas_conn *c, struct model *m)
{
	static const int flag_sets[] = { 0, MSG_DONTWAIT, MSG_PEEK, MSG_DONTWAIT | MSG_PEEK };
	uint8_t shape = fuzz_u8(in);
	int flags = flag_sets[shape & 3];
	int iovcnt = 1 + (shape >> 2) % 3;
	struct iovec iov[3];
	uint8_t *buf[3];
	size_t total = 0;
	unsigned sent_before = k.alerts_sent, logs_before = k.log_lines;
	unsigned reads_before = k.data_reads + k.control_reads;
	struct expect x;
	ssize_t r;

	for (int i = 0; i < iovcnt; i++) {
		size_t len = fuzz_u16(in) % (REC_MAX + 2048);

		buf[i] = malloc(len ? len : 1);
		FUZZ_CHECK(buf[i] != NULL);
		iov[i].iov_base = buf[i];
		iov[i].iov_len = len;
		total += len;
	}
	expect_read(m, total, flags, &x);

	errno = 4242; /* end of file must leave errno as it was */
	r = atlas_offload_recv(c, FAKE_FD, iov, iovcnt, flags);

	if (getenv("FUZZ_DEBUG"))
		fprintf(stderr, "read %zu flags %d: got %zd errno %d, want %zd errno %d\n", total,
			flags, r, errno, x.r, x.err);
	FUZZ_CHECK(r == x.r);
	if (r < 0)
		FUZZ_CHECK(errno == x.err);
	if (r == 0)
		FUZZ_CHECK(errno == 4242);
	if (r > 0) {
		/* The bytes, across the iovecs, as the client sent them. */
		size_t vi = 0, vo = 0;

		for (int p = 0; p < x.pieces; p++)
			for (size_t j = 0; j < x.len[p]; j++) {
				while (vo == iov[vi].iov_len) {
					vi++;
					vo = 0;
				}
				FUZZ_CHECK(buf[vi][vo++] == x.data[p][j]);
			}
	}
	if (m->closed)
		FUZZ_CHECK(k.data_reads + k.control_reads == reads_before); /* the socket is left */
	if (x.keyupdate) {
		FUZZ_CHECK(k.alerts_sent == sent_before + (m->tx_closed ? 0 : 1));
		FUZZ_CHECK(k.last_shutdown_how == SHUT_RDWR);
		m->tx_closed = true;
	} else {
		FUZZ_CHECK(k.alerts_sent == sent_before);
	}
	if (x.log)
		FUZZ_CHECK(k.log_lines > logs_before);
	/* A record that ends the connection: every later read says the same. */
	if (x.ends) {
		m->closed = true;
		m->close_err = x.err;
	}
	FUZZ_CHECK(c->rx_closed == m->closed);
	FUZZ_CHECK(c->tx_closed == m->tx_closed);
	for (int i = 0; i < iovcnt; i++)
		free(buf[i]);
}

/* A record of the client's: its type, length and bytes (a pattern where the input ends). */
static void add_record(struct fuzz_input *in, uint8_t kind)
{
	static const uint8_t types[] = { ATLAS_TLS_APPLICATION_DATA, ATLAS_TLS_ALERT,
					 ATLAS_TLS_HANDSHAKE };
	struct event *e = &k.ev[k.count++];
	size_t got;
	const uint8_t *p;

	e->type = kind < 3 ? types[kind] : fuzz_u8(in);
	e->no_cmsg = kind == 4;
	/* Mostly short records (alerts are 2 bytes, a KeyUpdate 5), now and then a full one. */
	e->len = fuzz_u8(in);
	if (e->len == 255)
		e->len = fuzz_u16(in) % (REC_MAX + 1);
	if (e->type == ATLAS_TLS_APPLICATION_DATA && e->len == 0)
		e->len = 1; /* the kernel hands out no empty data record */
	e->bytes = malloc(e->len ? e->len : 1);
	FUZZ_CHECK(e->bytes != NULL);
	p = fuzz_bytes(in, e->len < 64 ? e->len : 64, &got);
	memcpy(e->bytes, p, got);
	for (size_t i = got; i < e->len; i++)
		e->bytes[i] = (uint8_t)(i * 31 + e->type);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int errs[] = { EAGAIN, EINTR, EBADMSG, ECONNRESET, ETIMEDOUT, EIO, ENOMEM };
	struct fuzz_input in = fuzz_input(data, size);
	uint8_t setup = fuzz_u8(&in);
	struct model m = { 0 };
	struct atlas_conn *c;

	memset(&k, 0, sizeof(k));
	k.eof_at_end = setup & 1;
	c = atlas_conn_new(8443, 10000);
	FUZZ_CHECK(c != NULL);
	c->path = ATLAS_PATH_KERNEL;
	c->ktls = ATLAS_KTLS_TX | ATLAS_KTLS_RX;
	c->state = ATLAS_CONN_OPEN;
	if (setup & 2) {
		c->peer.in6.sin6_family = AF_INET6;
		c->peer.in6.sin6_port = htons(40112);
		memset(&c->peer.in6.sin6_addr, 0xfe, 16);
	} else if (setup & 4) {
		c->peer.in.sin_family = AF_INET;
		c->peer.in.sin_port = htons(40112);
		c->peer.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}

	for (int steps = 0; fuzz_left(&in) > 0 && steps < 256; steps++) {
		uint8_t op = fuzz_u8(&in);

		switch (op % 10) {
		case 0: /* the client's records: data, alert, handshake, any type, without cmsg */
		case 1:
		case 2:
		case 3:
		case 4:
			if (k.count < MAX_EVENTS)
				add_record(&in, op % 10);
			break;
		case 5: /* the kernel fails the next read */
			if (k.count < MAX_EVENTS)
				k.ev[k.count++].err = errs[fuzz_u8(&in) % 7];
			break;
		case 6: /* the host shuts its side: close_notify, once */
		{
			unsigned before = k.alerts_sent;

			atlas_offload_close_notify(c, FAKE_FD);
			FUZZ_CHECK(k.alerts_sent == before + (m.tx_closed ? 0 : 1));
			m.tx_closed = true;
			break;
		}
		default: /* the host reads */
			host_read(&in, c, &m);
			break;
		}
	}
	/* And a last read, so that every script ends in a checked read. */
	host_read(&in, c, &m);

	for (int i = 0; i < k.count; i++)
		free(k.ev[i].bytes);
	atlas_conn_put(c);
	return 0;
}
