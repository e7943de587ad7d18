#define _GNU_SOURCE
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "conn.h"
#include "emul.h"
#include "errmap.h"
#include "fdtab.h"
#include "linger.h"
#include "log.h"
#include "offload.h"
#include "ready.h"
#include "real.h"
#include "sniff.h"
#include "tls.h"

/* One TLS record of plaintext (RFC 8446 section 5.1): the unit of each SSL_write. */
#define ATLAS_RECORD_MAX 16384

static SSL_CTX *engine_ctx;

void atlas_engine_set_ctx(SSL_CTX *ctx)
{
	engine_ctx = ctx;
}

/* What the handshake driver reports. */
enum step {
	STEP_DONE,	 /* the connection is open */
	STEP_WANT_READ,	 /* wait until the socket is readable */
	STEP_WANT_WRITE, /* wait until the socket is writable */
	STEP_FAILED,	 /* refused or broken: see c->fail_errno */
	STEP_AGAIN,	 /* the state changed: run the driver again */
};

/* An operation run once the connection is open: SSL_read_ex and friends. */
typedef int (*ssl_op_fn)(SSL *ssl, void *buf, size_t len, size_t *done);

static int op_read(SSL *ssl, void *buf, size_t len, size_t *done)
{
	return SSL_read_ex(ssl, buf, len, done);
}

static int op_peek(SSL *ssl, void *buf, size_t len, size_t *done)
{
	return SSL_peek_ex(ssl, buf, len, done);
}

static int op_write(SSL *ssl, void *buf, size_t len, size_t *done)
{
	return SSL_write_ex(ssl, buf, len, done);
}

/* wb's bytes are gone (sealed into records, or dropped for a reset): none held. Locked. */
static void wb_release(struct atlas_conn *c)
{
	free(c->wb);
	__atomic_store_n(&c->wb, NULL, __ATOMIC_RELAXED); /* holds_gathered reads it unlocked */
	c->wb_len = 0;
	atlas_ready_gather_update(c);
}

/* Plaintext gathered under TCP_CORK waits in wb. Unlocked: a hint; decide under the lock. */
static bool holds_gathered(const struct atlas_conn *c)
{
	return __atomic_load_n(&c->wb, __ATOMIC_RELAXED) != NULL;
}

/* Ciphertext waits in the send queue (tls.c) for room. Unlocked, as above. */
static bool holds_queued(const struct atlas_conn *c)
{
	return __atomic_load_n(&c->sq, __ATOMIC_RELAXED) != NULL;
}

/* ... either, or a shutdown(SHUT_WR) waits to send close_notify and the FIN. Unlocked. */
static bool owes_bytes(const struct atlas_conn *c)
{
	return holds_gathered(c) || holds_queued(c) ||
	       __atomic_load_n(&c->shut_wr, __ATOMIC_RELAXED);
}

/*
 * Something owed waits for room. Whatever the caller does next (returns EAGAIN,
 * or its wait for the socket is cut short), the host's own waits must now wake
 * for POLLOUT too, and its next call sends the rest; gathered bytes wait behind
 * it, not before the host's waits. (A connection the host has closed is
 * linger.c's.) Locked.
 */
void atlas_engine_wait_for_room(struct atlas_conn *c)
{
	atlas_ready_gather_update(c);
	if (__atomic_load_n(&c->fds, __ATOMIC_RELAXED) > 0)
		atlas_ready_handshake_wait(c, POLLOUT);
}

/* The send queue out, as far as the socket takes it: as atlas_tls_queue_send. Locked. */
static int send_queue(struct atlas_conn *c, int fd)
{
	int r = atlas_tls_queue_send(c, fd);

	if (r != 0) {
		atlas_ready_gather_update(c); /* gathered bytes may go before a wait again */
		if (!c->shut_wr)
			atlas_ready_handshake_over(c); /* the host's waits as it asked them */
	}
	return r;
}

/*
 * wb's bytes (buf is the connection), one record per SSL_write: a record is
 * shorter when the client asked for a smaller max_fragment_length. It stops
 * when a record's rest had to wait in the send queue: the rest of wb waits
 * behind it.
 */
static int op_flush(SSL *ssl, void *buf, size_t len, size_t *done)
{
	struct atlas_conn *c = buf;
	size_t n = 0;
	int r = 1;

	(void)len;
	*done = 0;
	while (c->wb != NULL && c->sq == NULL && r > 0) {
		r = SSL_write_ex(ssl, c->wb, c->wb_len, &n);
		if (r > 0 && n < c->wb_len) {
			memmove(c->wb, c->wb + n, c->wb_len - n);
			c->wb_len -= (unsigned)n;
		} else if (r > 0) {
			wb_release(c);
		}
	}
	return r;
}

/* Only the send queue, which run_op sends before any write: nothing more. */
static int op_drain(SSL *ssl, void *buf, size_t len, size_t *done)
{
	(void)ssl;
	(void)buf;
	(void)len;
	*done = 0;
	return 1;
}

/* The connection will never carry TLS: say why, free OpenSSL's state. Called locked. */
static void refuse(struct atlas_conn *c, int fd, int fail_errno, const char *why,
		   const char *detail)
{
	char who[128];

	c->state = ATLAS_CONN_REFUSED;
	c->fail_errno = fail_errno;
	atlas_tls_ssl_free(c->ssl);
	c->ssl = NULL;
	if (atlas_log_enabled(ATLAS_LOG_INFO))
		atlas_log(ATLAS_LOG_INFO, "%s: refused: %s%s%s",
			  atlas_conn_describe(c, fd, who, sizeof(who)), why, detail[0] ? ": " : "",
			  detail);
}

/* The connection's one info line: who, what was negotiated, how long it took, which path. */
static void log_open(struct atlas_conn *c, int fd, const char *version, const char *cipher,
		     const char *path)
{
	char who[128];

	if (!atlas_log_enabled(ATLAS_LOG_INFO))
		return;
	atlas_log(ATLAS_LOG_INFO, "%s: %s %s, handshake %.1f ms, path %s",
		  atlas_conn_describe(c, fd, who, sizeof(who)), version, cipher,
		  atlas_conn_elapsed_ms(c), path);
}

/*
 * The handshake is done: hand what can go to the kernel, then open the
 * connection (the state is stored last, so that a reader who sees OPEN
 * also sees the final path).
 */
static enum step handshake_done(struct atlas_conn *c, int fd)
{
	const char *version = SSL_get_version(c->ssl), *cipher = SSL_get_cipher_name(c->ssl);
	char path[200];

	if (atlas_offload_finish(c, fd, path, sizeof(path)) < 0) {
		atlas_offload_refuse(c, fd);
		/* Back through the engine, which refuses: no host write may reach kernel TX now. */
		atlas_conn_set_path(c, ATLAS_PATH_USERSPACE);
		refuse(c, fd, 0, "ATLAS_KTLS=require and the kernel does not have both directions",
		       path);
		return STEP_FAILED;
	}
	/* The kernel encrypts: a cork the host set meanwhile is the kernel's after all. */
	if (c->corked && c->path != ATLAS_PATH_USERSPACE) {
		int on = 1;

		atlas_real.setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
	}
	/* Reads stay in userspace: read ahead from now on (tls.c). */
	if (c->path != ATLAS_PATH_KERNEL)
		c->read_ahead = 1;
	log_open(c, fd, version, cipher, path);
	__atomic_store_n(&c->state, ATLAS_CONN_OPEN, __ATOMIC_RELEASE);
	/* The client's first request may have come with its Finished, and been read ahead. */
	atlas_ready_update(c);
	return STEP_DONE;
}

/* NEW: read the first bytes and decide what the client speaks. */
static enum step sniff_step(struct atlas_conn *c, int fd)
{
	ssize_t n;

	switch (atlas_sniff_classify(c->sniff, c->sniff_len)) {
	case ATLAS_SNIFF_TLS:
		c->ssl = engine_ctx ? atlas_tls_ssl_new(engine_ctx, c) : NULL;
		if (c->ssl == NULL || !atlas_ready_reserve(c)) {
			refuse(c, fd, ECONNRESET, "cannot start a TLS session", "out of memory");
			return STEP_FAILED;
		}
		c->state = ATLAS_CONN_HANDSHAKE;
		c->pid = getpid(); /* the process that handshakes owns the session */
		return STEP_AGAIN;
	case ATLAS_SNIFF_HTTP:
		refuse(c, fd, 0, "plain HTTP on a TLS port", "answering 400");
		atlas_sniff_reply_http(fd);
		return STEP_FAILED;
	case ATLAS_SNIFF_OTHER:
		refuse(c, fd, 0, "the client did not start with a TLS handshake", "");
		return STEP_FAILED;
	case ATLAS_SNIFF_NEED_MORE:
		/* Consume (not peek) so that a client that stops mid-word cannot make us spin. */
		n = atlas_real.recv(fd, c->sniff + c->sniff_len, ATLAS_SNIFF_MAX - c->sniff_len,
				    MSG_DONTWAIT);
		if (n > 0) {
			c->sniff_len += (unsigned char)n;
			return STEP_AGAIN;
		}
		if (n == 0) {
			refuse(c, fd, 0, "the client closed before sending anything", "");
			return STEP_FAILED;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return STEP_WANT_READ;
		if (errno == EINTR)
			return STEP_AGAIN;
		refuse(c, fd, errno, "reading the first bytes failed", strerror(errno));
		return STEP_FAILED;
	default:
		refuse(c, fd, ECONNRESET, "internal error", "unknown sniff result");
		return STEP_FAILED;
	}
}

/* HANDSHAKE: one SSL_do_handshake. */
static enum step tls_step(struct atlas_conn *c, int fd)
{
	char reason[200];
	int r, e, herr = 0;

	ERR_clear_error();
	errno = 0; /* SSL_ERROR_SYSCALL with errno 0 means end of file: no stale value */
	r = atlas_tls_handshake(c->ssl);
	if (r == 1)
		return handshake_done(c, fd);
	e = SSL_get_error(c->ssl, r);
	switch (atlas_errmap_ssl(e, errno, &herr)) {
	case ATLAS_ERRMAP_WANT_READ:
		return STEP_WANT_READ;
	case ATLAS_ERRMAP_WANT_WRITE:
		return STEP_WANT_WRITE;
	case ATLAS_ERRMAP_EOF:
		refuse(c, fd, 0, "the client closed during the handshake", "");
		return STEP_FAILED;
	case ATLAS_ERRMAP_FATAL:
	default:
		atlas_log_ssl_reason(reason, sizeof(reason));
		refuse(c, fd, 0, "TLS handshake failed", reason[0] ? reason : strerror(herr));
		return STEP_FAILED;
	}
}

/* Drives a connection towards OPEN as far as it can go without waiting. Called locked. */
static enum step handshake_step(struct atlas_conn *c, int fd)
{
	enum step s = STEP_AGAIN;

	while (s == STEP_AGAIN) {
		switch (c->state) {
		case ATLAS_CONN_OPEN:
			return STEP_DONE;
		case ATLAS_CONN_REFUSED:
		case ATLAS_CONN_BROKEN:
			return STEP_FAILED;
		case ATLAS_CONN_NEW:
		case ATLAS_CONN_HANDSHAKE:
			/* Non-blocking callers meet the deadline here, blocking ones in wait_ready(). */
			if (atlas_ms_until(&c->deadline) == 0) {
				refuse(c, fd, ETIMEDOUT, "handshake timed out", "");
				return STEP_FAILED;
			}
			s = c->state == ATLAS_CONN_NEW ? sniff_step(c, fd) : tls_step(c, fd);
			break;
		default:
			refuse(c, fd, ECONNRESET, "internal error", "bad connection state");
			return STEP_FAILED;
		}
	}
	return s;
}

static bool fd_nonblocking(int fd, int flags)
{
	int fl;

	if (flags & MSG_DONTWAIT)
		return true;
	fl = atlas_real.fcntl(fd, F_GETFL);
	return fl >= 0 && (fl & O_NONBLOCK);
}

/* How often a write waiting for room looks whether the host shut the connection down. */
#define ATLAS_SHUT_POLL_MS 20

/*
 * Waits until fd is ready for events, with the connection unlocked. A handshake
 * waits until its deadline (then ETIMEDOUT); data waits as long as the socket's
 * SO_RCVTIMEO/SO_SNDTIMEO says (then EAGAIN, as the kernel does), else forever.
 * A write's wait ends with EPIPE when another thread shuts the connection down,
 * as the kernel's shutdown wakes a writer; the shutdown leaves the socket alone
 * while bytes wait (they go first), so the wait looks every ATLAS_SHUT_POLL_MS.
 */
static int wait_ready(struct atlas_conn *c, int fd, short events, bool handshake, bool write)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	struct timespec end;
	int timeout = -1, n;

	if (handshake) {
		timeout = atlas_ms_until(&c->deadline);
		if (timeout == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
	} else {
		struct timeval tv;
		socklen_t tl = sizeof(tv);
		int opt = (events & POLLIN) ? SO_RCVTIMEO : SO_SNDTIMEO;

		if (getsockopt(fd, SOL_SOCKET, opt, &tv, &tl) == 0 && (tv.tv_sec || tv.tv_usec))
			timeout = (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
	}
	if (write && !handshake) {
		if (timeout >= 0) {
			clock_gettime(CLOCK_MONOTONIC, &end);
			atlas_add_ms(&end, (unsigned)timeout);
		}
		for (;;) {
			int left = timeout < 0 ? ATLAS_SHUT_POLL_MS : atlas_ms_until(&end);

			if (__atomic_load_n(&c->wr_closed, __ATOMIC_RELAXED)) {
				errno = EPIPE;
				return -1;
			}
			n = atlas_real.poll(&pfd, 1,
					    left < ATLAS_SHUT_POLL_MS ? left : ATLAS_SHUT_POLL_MS);
			if (n != 0 || (timeout >= 0 && left <= ATLAS_SHUT_POLL_MS))
				break;
		}
	} else {
		n = atlas_real.poll(&pfd, 1, timeout);
	}
	if (n < 0)
		return -1;
	if (n == 0) {
		errno = handshake ? ETIMEDOUT : EAGAIN;
		return -1;
	}
	return 0;
}

/* What a call on a refused or broken connection returns. */
static ssize_t failed_result(const struct atlas_conn *c, bool is_write)
{
	if (c->fail_errno != 0) {
		errno = c->fail_errno;
		return -1;
	}
	if (is_write) {
		errno = EPIPE;
		return -1;
	}
	return 0;
}

/* A fatal error after the handshake: the connection cannot carry data any more. Locked. */
static void mark_broken(struct atlas_conn *c, int fd, int herr)
{
	char reason[200], who[128];

	c->state = ATLAS_CONN_BROKEN;
	c->fail_errno = herr;
	atlas_tls_queue_drop(c); /* nothing more goes */
	atlas_log_ssl_reason(reason, sizeof(reason));
	if (atlas_log_enabled(ATLAS_LOG_INFO))
		atlas_log(ATLAS_LOG_INFO, "%s: connection broken: %s",
			  atlas_conn_describe(c, fd, who, sizeof(who)),
			  reason[0] ? reason : strerror(herr));
}

static int flush_gathered(struct atlas_conn *c, int fd, int flags, bool force_block);

/*
 * Runs op on an open connection, finishing the handshake first, and returns
 * what the system call would. A blocking fd (or force_block) waits, unlocked,
 * for the readiness OpenSSL asks for; a non-blocking one gets EAGAIN. op may
 * be NULL to only finish the handshake (returns 0).
 *
 * A write (op_write, op_flush, op_drain) goes behind the send queue (tls.c):
 * what is queued is sent first, and while some of it waits for room the write
 * waits too (or gets EAGAIN). Each SSL_write is then taken whole: what the socket
 * has no room for joins the queue, counted as written, as the kernel counts what
 * it queues. A read that waits while bytes are owed waits for room as well, and
 * sends them when there is (the kernel sends its queue while the host reads).
 */
static ssize_t run_op(struct atlas_conn *c, int fd, int flags, bool force_block, bool is_write,
		      ssl_op_fn op, void *buf, size_t len)
{
	int nonblock = -1; /* unknown until the first wait: F_GETFL costs a system call */

	for (;;) {
		enum step s;
		size_t done = 0;
		int r, e, herr = 0;

		pthread_mutex_lock(&c->lock);
		c->io_fd = fd;
		s = handshake_step(c, fd);
		/* The host's waits as it asked them again, unless something owed waits for room. */
		if (s == STEP_FAILED || (s == STEP_DONE && c->sq == NULL && !c->shut_wr))
			atlas_ready_handshake_over(c);
		if (s == STEP_FAILED) {
			ssize_t ret = failed_result(c, is_write);
			pthread_mutex_unlock(&c->lock);
			return ret;
		}
		if (s == STEP_DONE) {
			if (op == NULL) {
				pthread_mutex_unlock(&c->lock);
				return 0;
			}
			if (c->ssl == NULL) {
				/* Cannot happen: every entry point settles the path (reach_path) first. */
				pthread_mutex_unlock(&c->lock);
				errno = EIO;
				return -1;
			}
			/* After shutdown(SHUT_WR) (or close_notify), as for a plain socket; the queue still goes. */
			if (op == op_write ? (c->wr_closed ||
					      (SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN))
					   : (op == op_flush &&
					      (SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN))) {
				pthread_mutex_unlock(&c->lock);
				errno = EPIPE;
				return -1;
			}
			if (is_write && c->sq != NULL) {
				int q = send_queue(c, fd);

				if (q < 0) {
					herr = errno;
					mark_broken(c, fd, herr);
					atlas_ready_update(c);
					pthread_mutex_unlock(&c->lock);
					errno = herr;
					return -1;
				}
				if (q == 0)
					s = STEP_WANT_WRITE;
			}
		}
		if (s == STEP_DONE) {
			ERR_clear_error();
			errno = 0; /* as above: SSL_ERROR_SYSCALL reads errno */
			r = op(c->ssl, buf, len, &done);
			atlas_ready_update(c);
			if (c->sq == NULL && !c->shut_wr)
				atlas_ready_handshake_over(c); /* a wait for room is over */
			/* The queue may have emptied before gathered bytes. */
			if (c->wb != NULL)
				atlas_ready_gather_update(c);
			/* A flush goes on until all is out (a drain, the queue), or no room is left. */
			if (r > 0 && ((op == op_flush && (c->wb != NULL || c->sq != NULL)) ||
				      (op == op_drain && c->sq != NULL))) {
				pthread_mutex_unlock(&c->lock);
				continue;
			}
			if (r > 0) {
				pthread_mutex_unlock(&c->lock);
				return (ssize_t)done;
			}
			e = SSL_get_error(c->ssl, r);
			switch (atlas_errmap_ssl(e, errno, &herr)) {
			case ATLAS_ERRMAP_WANT_READ:
				s = STEP_WANT_READ;
				break;
			case ATLAS_ERRMAP_WANT_WRITE:
				s = STEP_WANT_WRITE;
				break;
			case ATLAS_ERRMAP_EOF:
				pthread_mutex_unlock(&c->lock);
				if (is_write) {
					errno = EPIPE;
					return -1;
				}
				return 0;
			case ATLAS_ERRMAP_FATAL:
			default:
				mark_broken(c, fd, herr);
				atlas_ready_update(c);
				pthread_mutex_unlock(&c->lock);
				errno = herr;
				return -1;
			}
		}
		bool in_handshake = c->state != ATLAS_CONN_OPEN;
		short want = s == STEP_WANT_READ ? POLLIN : POLLOUT;
		bool flush_too =
			!is_write && !in_handshake &&
			((c->wb != NULL && !(SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN)) ||
			 c->sq != NULL || c->shut_wr);

		if (!force_block && nonblock < 0)
			nonblock = fd_nonblocking(fd, flags);
		if (!force_block && nonblock) {
			/* The host's own wait runs the handshake on: make sure it waits for want. */
			if (in_handshake)
				atlas_ready_handshake_wait(c, want);
			pthread_mutex_unlock(&c->lock);
			errno = EAGAIN;
			return -1;
		}
		pthread_mutex_unlock(&c->lock);
		if (wait_ready(c, fd, flush_too ? (short)(want | POLLOUT) : want, in_handshake,
			       is_write) < 0) {
			if (in_handshake && errno == ETIMEDOUT) {
				bool over;

				pthread_mutex_lock(&c->lock);
				over = c->state != ATLAS_CONN_NEW &&
				       c->state != ATLAS_CONN_HANDSHAKE;
				if (!over)
					refuse(c, fd, ETIMEDOUT, "handshake timed out", "");
				pthread_mutex_unlock(&c->lock);
				/*
				 * Another thread's step finished the handshake while this one waited
				 * for a socket that then stayed quiet (the client waits for the server
				 * to speak): go on, with the connection as that step left it.
				 */
				if (over)
					continue;
				errno = ETIMEDOUT;
			}
			return -1;
		}
		/* A failure shows in the next step. */
		if (flush_too)
			flush_gathered(c, fd, MSG_DONTWAIT, false);
	}
}

static size_t iov_total(const struct iovec *iov, int iovcnt)
{
	size_t total = 0;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	return total;
}

static size_t conn_pending(struct atlas_conn *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = (c->state == ATLAS_CONN_OPEN) ? (size_t)SSL_pending(c->ssl) : 0;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/*
 * Finishes the handshake if it is not done (waiting as the fd's mode says),
 * so that the connection's path is final. 0, or what the call must return.
 */
static ssize_t reach_path(struct atlas_conn *c, int fd, int flags, bool is_write)
{
	if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == ATLAS_CONN_OPEN)
		return 0;
	return run_op(c, fd, flags, false, is_write, NULL, NULL, 0);
}

static bool kernel_tx(const struct atlas_conn *c)
{
	return atlas_conn_path(c) >= ATLAS_PATH_KERNEL_TX;
}

static bool kernel_rx(const struct atlas_conn *c)
{
	return atlas_conn_path(c) == ATLAS_PATH_KERNEL;
}

/*
 * Every way the host reads (recv and its kin, splice, FIONREAD) first sends what
 * it can of the bytes it counts as written and a shutdown's close_notify: it may
 * be waiting for an answer to them, and its waits report room for them as its
 * own readiness (ready.c), which only such a call turns into progress. What the
 * socket has no room for yet goes while a blocking read waits (run_op), or with
 * the host's next call.
 */
static void send_owed(struct atlas_conn *c, int fd)
{
	if (owes_bytes(c))
		flush_gathered(c, fd, MSG_DONTWAIT, false);
}

ssize_t atlas_engine_recv(struct atlas_conn *c, int fd, const struct iovec *iov, int iovcnt,
			  int flags)
{
	size_t done = 0;
	ssize_t r;

	if (iov_total(iov, iovcnt) == 0)
		return 0;
	r = reach_path(c, fd, flags, false);
	if (r != 0)
		return r;
	if (kernel_rx(c))
		return atlas_offload_recv(c, fd, (struct iovec *)iov, iovcnt, flags);
	send_owed(c, fd);
	for (int i = 0; i < iovcnt; i++) {
		size_t off = 0;

		while (off < iov[i].iov_len) {
			char *p = (char *)iov[i].iov_base + off;
			ssize_t n;

			if (flags & MSG_PEEK)
				return run_op(c, fd, flags, false, false, op_peek, p,
					      iov[i].iov_len);
			/*
			 * Like a socket: block for the first byte only; after that take what is
			 * already decrypted, unless MSG_WAITALL asks for everything.
			 */
			if (done > 0 && !(flags & MSG_WAITALL) && conn_pending(c) == 0)
				return (ssize_t)done;
			n = run_op(c, fd, flags, false, false, op_read, p, iov[i].iov_len - off);
			if (n < 0)
				return done > 0 ? (ssize_t)done : -1;
			if (n == 0)
				return (ssize_t)done;
			off += (size_t)n;
			done += (size_t)n;
		}
	}
	return (ssize_t)done;
}

/* Copies up to cap bytes of the iovecs, from skip on, into dst. Returns how many. */
static size_t iov_copy(char *dst, size_t cap, const struct iovec *iov, int iovcnt, size_t skip)
{
	size_t got = 0;

	for (int i = 0; i < iovcnt && got < cap; i++) {
		size_t take;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		take = iov[i].iov_len - skip;
		if (take > cap - got)
			take = cap - got;
		memcpy(dst + got, (const char *)iov[i].iov_base + skip, take);
		got += take;
		skip = 0;
	}
	return got;
}

/*
 * The next piece of the iovecs to hand to SSL_write, one record at most: a
 * pointer into one iovec when it holds a full record's worth (or is all that
 * is left), else up to one record gathered into scratch.
 */
static size_t next_chunk(const struct iovec *iov, int iovcnt, size_t skip, char *scratch,
			 const char **out)
{
	int i = 0;

	while (i < iovcnt && skip >= iov[i].iov_len)
		skip -= iov[i++].iov_len;
	if (i == iovcnt)
		return 0;
	if (iov[i].iov_len - skip >= ATLAS_RECORD_MAX ||
	    iov_total(iov + i + 1, iovcnt - i - 1) == 0) {
		size_t n = iov[i].iov_len - skip;

		*out = (const char *)iov[i].iov_base + skip;
		return n < ATLAS_RECORD_MAX ? n : ATLAS_RECORD_MAX;
	}
	*out = scratch;
	return iov_copy(scratch, ATLAS_RECORD_MAX, iov + i, iovcnt - i, skip);
}

/*
 * TCP_CORK on the userspace path.
 *
 * A server that corks (nginx with tcp_nopush, serving a file: its headers with
 * writev, then the body with sendfile, then uncork) means "these writes are one
 * message". Passed to the kernel, the cork would only merge TCP segments: each
 * write would still be sealed as its own TLS record and sent with its own
 * system call, and the cork and uncork cost two more. So the cork stays here:
 * what the host writes while corked is gathered into one record (c->wb), and
 * sealed and sent once, when the host uncorks. Whole records (a write of 16 KiB
 * or more with nothing gathered) go straight out, as without the cork.
 *
 * The host counts gathered bytes as written, as it would bytes in the kernel's
 * send queue, so they must go out without the host asking again: when the
 * host uncorks, sets TCP_NODELAY, reads, waits (poll, select, epoll: the kernel
 * sends a corked socket's data within 200 ms, Atlas before the host sleeps),
 * shuts down or closes. What of the record meets a full socket waits in the
 * send queue, as any record's rest does; the host's next call on the connection
 * sends it, and its waits are made to wait for POLLOUT meanwhile (ready.c, as
 * for a handshake). Closed with bytes still unsent, the socket is kept open by
 * linger.c until they are out (or a minute has passed), as the kernel keeps a
 * closed socket's queue.
 */
enum gather {
	GATHER_DIRECT, /* not corked (or whole records): through OpenSSL as they are */
	GATHER_TOOK,   /* gathered: counted as written */
	GATHER_FLUSH,  /* what was gathered must go out first */
	GATHER_SHUT,   /* shut down for writes, the FIN waiting for what was gathered: EPIPE */
};

/* The next bytes of a write, skip bytes into iov and rest left: gather them? Locked. */
static enum gather gather_locked(struct atlas_conn *c, int fd, const struct iovec *iov, int iovcnt,
				 size_t skip, size_t rest, size_t *took)
{
	if (c->wr_closed)
		return GATHER_SHUT;
	/*
	 * Behind bytes that wait for room nothing is taken, corked or not, as the kernel
	 * takes nothing into a full send queue: the host sees EAGAIN and waits for room,
	 * with its write still to do, rather than counting it and waiting for its peer.
	 */
	if (c->sq != NULL || (c->wb != NULL && (!c->corked || c->wb_len == ATLAS_RECORD_MAX)))
		return GATHER_FLUSH;
	if (!c->corked || c->state != ATLAS_CONN_OPEN || c->ssl == NULL)
		return GATHER_DIRECT;
	if (c->wb == NULL) {
		unsigned char *wb = rest >= ATLAS_RECORD_MAX ? NULL : malloc(ATLAS_RECORD_MAX);

		if (wb == NULL)
			return GATHER_DIRECT; /* whole records; or out of memory: as uncorked */
		__atomic_store_n(&c->wb, wb, __ATOMIC_RELAXED); /* as in wb_release */
	}
	c->wb_fd = fd; /* the latest fd: the one a wait would flush through */
	atlas_ready_gather_update(c);
	*took = iov_copy((char *)c->wb + c->wb_len, ATLAS_RECORD_MAX - c->wb_len, iov, iovcnt,
			 skip);
	c->wb_len += (unsigned)*took;
	return GATHER_TOOK;
}

static bool shut_locked(struct atlas_conn *c, int fd);

/*
 * Sends the send queue and wb, waiting as flags, force_block and the fd's mode
 * say (not at all with MSG_DONTWAIT), then close_notify and the FIN of a
 * shutdown(SHUT_WR) that waited for them. 0 when nothing is left, else -1 with
 * errno; what is left stays (c->sq, c->wb, c->shut_wr) for the host's next call
 * (EAGAIN, EINTR).
 */
static int flush_gathered(struct atlas_conn *c, int fd, int flags, bool force_block)
{
	bool shut_waits;

	if (!owes_bytes(c))
		return 0;
	if ((holds_gathered(c) || holds_queued(c)) &&
	    run_op(c, fd, flags, force_block, true, holds_gathered(c) ? op_flush : op_drain, c, 0) <
		    0)
		return -1;
	/*
	 * One step under the lock, from the check to the FIN: another thread's (the epoll
	 * hook's, atlas_engine_room_came) either finds it done or does it all itself.
	 */
	pthread_mutex_lock(&c->lock);
	shut_waits = c->shut_wr && c->wb == NULL && c->sq == NULL && !shut_locked(c, fd);
	pthread_mutex_unlock(&c->lock);
	if (shut_waits) {
		errno = EAGAIN;
		return -1;
	}
	return 0;
}

static ssize_t send_iov(struct atlas_conn *c, int fd, const struct iovec *iov, int iovcnt,
			int flags, bool force_block)
{
	size_t total = iov_total(iov, iovcnt), done = 0;
	char scratch[ATLAS_RECORD_MAX];

	if (total == 0)
		return 0;
	while (done < total) {
		const char *p = NULL;
		size_t len, took = 0;
		ssize_t n;

		if (__atomic_load_n(&c->corked, __ATOMIC_RELAXED) || holds_gathered(c)) {
			enum gather g;

			pthread_mutex_lock(&c->lock);
			g = gather_locked(c, fd, iov, iovcnt, done, total - done, &took);
			pthread_mutex_unlock(&c->lock);
			if (g == GATHER_TOOK) {
				done += took;
				continue;
			}
			if (g == GATHER_SHUT) {
				errno = EPIPE;
				return done > 0 ? (ssize_t)done : -1;
			}
			if (g == GATHER_FLUSH) {
				if (flush_gathered(c, fd, flags, force_block) < 0) {
					/* Shut down meanwhile: what is left of this write fails. */
					if (__atomic_load_n(&c->wr_closed, __ATOMIC_RELAXED))
						errno = EPIPE;
					return done > 0 ? (ssize_t)done : -1;
				}
				continue;
			}
		}
		len = next_chunk(iov, iovcnt, done, scratch, &p);
		n = run_op(c, fd, flags, force_block, true, op_write, (void *)p, len);
		if (n < 0)
			return done > 0 ? (ssize_t)done : -1;
		done += (size_t)n;
	}
	/*
	 * A blocking write returns once its bytes are in the kernel, as the kernel's does: a
	 * host that writes, then sleeps, forks or exits must not leave its last record in
	 * the send queue. Cut short (a signal, SO_SNDTIMEO, a shutdown), the bytes stay
	 * counted and go with the host's next call, as the kernel's queue would. (Bytes
	 * gathered under TCP_CORK wait for the uncork, as in the kernel.)
	 */
	if (holds_queued(c) && !fd_nonblocking(fd, flags))
		run_op(c, fd, flags, false, true, op_drain, NULL, 0);
	return (ssize_t)done;
}

int atlas_engine_setsockopt_tcp(struct atlas_conn *c, int fd, int name, int on)
{
	if (name == TCP_CORK) {
		pthread_mutex_lock(&c->lock);
		/* Atomic: send_iov reads it unlocked. */
		__atomic_store_n(&c->corked, on != 0, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&c->lock);
		/*
		 * The uncork succeeds, as the kernel's. On a non-blocking fd what cannot go out
		 * yet stays sealed and goes with the host's next call (its waits wait for
		 * POLLOUT meanwhile). On a blocking one it waits (up to SO_SNDTIMEO), as the
		 * corked writes would have waited in the kernel for room in its queue: a
		 * blocking host may not call again until it has more to send.
		 */
		if (!on)
			flush_gathered(c, fd, 0, false);
		return 0;
	}
	if (on) /* TCP_NODELAY: the kernel pushes what it holds; so do we */
		flush_gathered(c, fd, 0, false);
	return atlas_real.setsockopt(fd, IPPROTO_TCP, name, &on, sizeof(on));
}

int atlas_engine_corked(struct atlas_conn *c)
{
	return __atomic_load_n(&c->corked, __ATOMIC_RELAXED);
}

/* fd is still c's and this process owns the session: c's bytes may go through it. Locked. */
static bool may_send_through(struct atlas_conn *c, int fd)
{
	return fd >= 0 && atlas_fdtab_peek(fd) == c && c->pid == getpid() &&
	       c->state == ATLAS_CONN_OPEN && c->ssl != NULL;
}

/*
 * Sends the send queue, then wb, without waiting, through fd (may_send_through).
 * All under the lock: a close of fd takes the fd out of the table, then the lock
 * (atlas_engine_fd_closing), before the fd goes, so its number cannot be reused
 * meanwhile. A deferred shutdown's close_notify and FIN are the caller's
 * (shut_locked). Locked.
 */
static void flush_locked(struct atlas_conn *c, int fd)
{
	int r, herr = 0;
	size_t done;

	c->io_fd = fd;
	if (c->sq != NULL && send_queue(c, fd) < 0) {
		mark_broken(c, fd, errno);
	} else if (c->sq == NULL && c->wb != NULL) {
		ERR_clear_error();
		errno = 0;
		r = op_flush(c->ssl, c, 0, &done);
		if (r <= 0 &&
		    atlas_errmap_ssl(SSL_get_error(c->ssl, r), errno, &herr) == ATLAS_ERRMAP_FATAL)
			mark_broken(c, fd, herr);
		ERR_clear_error();
	}
	atlas_ready_gather_update(c);
}

/*
 * before_wait's flush of one connection, through the fd the bytes came in on.
 * Every connection leaves the list: sent, behind the send queue (then waiting
 * for POLLOUT), broken, or, when its fd is gone, left for the host's next call
 * on the connection.
 */
static void flush_before_wait(struct atlas_conn *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->wb != NULL) {
		if (may_send_through(c, c->wb_fd))
			flush_locked(c, c->wb_fd);
		else
			c->wb_fd = -1;
		atlas_ready_gather_update(c);
	}
	pthread_mutex_unlock(&c->lock);
}

/*
 * Was the socket set to close abortively (SO_LINGER on with 0 s)? Then no close_notify,
 * which would tell the client that what came before it is complete. The host sets it
 * (nginx's reset_timedout_connection), or the execve hook does, in a child (which is why
 * Atlas's own mark is a socket option and not a flag). One system call, at a shutdown
 * or a close.
 */
static bool closes_abortively(int fd)
{
	struct linger l = { 0, 0 };
	socklen_t len = sizeof(l);

	return atlas_real.getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &len) == 0 && l.l_onoff &&
	       l.l_linger == 0;
}

/*
 * The userspace path's close_notify, once: it joins the send queue (tls.c),
 * behind what waits there, and is out when the queue is. True when nothing
 * waits (a socket that failed sends nothing more); false while some of it
 * waits for room. Locked.
 */
static bool queue_close_notify(struct atlas_conn *c, int fd)
{
	c->io_fd = fd;
	ERR_clear_error();
	if (!(SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN))
		SSL_shutdown(c->ssl);
	ERR_clear_error(); /* what a failed send left must not reach another connection's log */
	return c->sq == NULL || send_queue(c, fd) != 0;
}

/*
 * What shutdown(SHUT_WR) does on the userspace path once nothing is owed before
 * it (c->shut_wr, wb and the send queue empty): close_notify, then the FIN. Without
 * room for all of close_notify, both wait, as the kernel's FIN waits behind its
 * queue: for the host's next call, its waits (which wait for POLLOUT meanwhile),
 * the epoll hook's room (atlas_engine_room_came), or linger.c after its close.
 * False then. A connection not open in this process (its handshake unfinished,
 * or a forked child's copy) or set to close abortively gets the FIN alone.
 * Locked, so that it is done once.
 */
static bool shut_locked(struct atlas_conn *c, int fd)
{
	if (c->state == ATLAS_CONN_OPEN && c->pid == getpid() && !closes_abortively(fd)) {
		if (kernel_tx(c)) {
			/*
			 * The handshake, finished in another thread after the shutdown was
			 * taken on the userspace path, put the connection on the kernel's:
			 * close_notify if there is room now, as send_close_notify does there.
			 */
			(void)atlas_offload_close_notify(c, fd);
		} else if (!queue_close_notify(c, fd)) {
			atlas_engine_wait_for_room(c);
			return false;
		}
	}
	__atomic_store_n(&c->shut_wr, 0, __ATOMIC_RELAXED);
	atlas_real.shutdown(fd, SHUT_WR);
	atlas_ready_handshake_over(c); /* the host's waits as it asked them again */
	return true;
}

void atlas_engine_room_came(struct atlas_conn *c, int fd)
{
	pthread_mutex_lock(&c->lock);
	if (owes_bytes(c) && may_send_through(c, fd)) {
		flush_locked(c, fd);
		/*
		 * A host that shut the connection down waits for the client's close, reading,
		 * and never acts on room: its close_notify and FIN go now too.
		 */
		if (c->shut_wr && c->sq == NULL && c->wb == NULL && c->state == ATLAS_CONN_OPEN)
			(void)shut_locked(c, fd);
	}
	pthread_mutex_unlock(&c->lock);
}

void atlas_engine_before_wait(void)
{
	struct atlas_conn *list[16];
	unsigned n;

	/* Batches until the list is empty (each connection leaves it), bounded all the same. */
	for (int batch = 0; batch < 64; batch++) {
		n = atlas_ready_take_gathering(list, 16);
		for (unsigned i = 0; i < n; i++) {
			flush_before_wait(list[i]);
			atlas_conn_put(list[i]);
		}
		if (n < 16)
			break;
	}
}

/* After shutdown(SHUT_WR) (whose FIN may wait for gathered bytes): writes fail, as the kernel's. */
static bool shut_for_writes(const struct atlas_conn *c)
{
	if (!__atomic_load_n(&c->wr_closed, __ATOMIC_RELAXED))
		return false;
	errno = EPIPE;
	return true;
}

/*
 * A send of the host's that the kernel encrypts: counted while call runs, as the
 * hooks count their own (atlas_conn_tx_begin); EPIPE after a shutdown.
 */
#define KERNEL_SEND(c, call)                                             \
	__extension__({                                                  \
		ssize_t r_ = -1;                                         \
		atlas_conn_get(c); /* the send's own: tx_end drops it */ \
		if (atlas_conn_tx_begin(c)) {                            \
			r_ = (call);                                     \
			atlas_conn_tx_end(c);                            \
		} else {                                                 \
			atlas_conn_put(c);                               \
			errno = EPIPE;                                   \
		}                                                        \
		r_;                                                      \
	})

ssize_t atlas_engine_send(struct atlas_conn *c, int fd, const struct iovec *iov, int iovcnt,
			  int flags)
{
	ssize_t r;

	if (iov_total(iov, iovcnt) == 0)
		return 0;
	r = reach_path(c, fd, flags, true);
	if (r != 0)
		return r;
	if (shut_for_writes(c))
		return -1;
	if (kernel_tx(c)) {
		/* The kernel encrypts: the host's own call, with its own flags. */
		struct msghdr msg = { .msg_iov = (struct iovec *)iov,
				      .msg_iovlen = (size_t)iovcnt };

		return KERNEL_SEND(c, atlas_real.sendmsg(fd, &msg, flags));
	}
	return send_iov(c, fd, iov, iovcnt, flags, false);
}

/* The emulation's view of a connection: where sendfile and splice put bytes. */
struct engine_io {
	struct atlas_conn *c;
	int fd;
	int flags;
};

static ssize_t sink_send(void *ctx, const void *buf, size_t len, bool must_complete)
{
	struct engine_io *io = ctx;
	struct iovec v = { .iov_base = (void *)buf, .iov_len = len };

	return send_iov(io->c, io->fd, &v, 1, must_complete ? 0 : io->flags, must_complete);
}

static int sink_ready(void *ctx)
{
	struct engine_io *io = ctx;
	struct pollfd pfd = { .fd = io->fd, .events = POLLOUT };

	if (run_op(io->c, io->fd, io->flags, false, true, NULL, NULL, 0) < 0)
		return -1;
	if (!fd_nonblocking(io->fd, io->flags))
		return 0;
	/* The send queue first: while some of it waits, there is no room for more. */
	if (holds_queued(io->c) &&
	    run_op(io->c, io->fd, MSG_DONTWAIT, false, true, op_drain, NULL, 0) < 0)
		return -1;
	if (atlas_real.poll(&pfd, 1, 0) == 1)
		return 0;
	errno = EAGAIN;
	return -1;
}

static ssize_t source_peek(void *ctx, void *buf, size_t len)
{
	struct engine_io *io = ctx;

	return run_op(io->c, io->fd, io->flags, false, false, op_peek, buf, len);
}

static ssize_t source_consume(void *ctx, void *buf, size_t len)
{
	struct engine_io *io = ctx;

	/* The bytes were peeked: they are decrypted in OpenSSL already and cannot block. */
	return run_op(io->c, io->fd, MSG_DONTWAIT, false, false, op_read, buf, len);
}

ssize_t atlas_engine_sendfile(struct atlas_conn *c, int fd, int in_fd, off_t *offset, size_t count)
{
	struct engine_io io = { .c = c, .fd = fd };
	struct atlas_emul_sink sink = { .send = sink_send, .ready = sink_ready, .ctx = &io };
	ssize_t r = count == 0 ? 0 : reach_path(c, fd, 0, true);

	if (r != 0)
		return r;
	if (shut_for_writes(c))
		return -1;
	if (kernel_tx(c))
		return KERNEL_SEND(c, atlas_real.sendfile(fd, in_fd, offset, count));
	return atlas_emul_sendfile(&sink, in_fd, offset, count);
}

ssize_t atlas_engine_splice_to(struct atlas_conn *c, int fd, int pipe_in, loff_t *off_in,
			       size_t len, unsigned flags)
{
	struct engine_io io = { .c = c, .fd = fd };
	struct atlas_emul_sink sink = { .send = sink_send, .ready = sink_ready, .ctx = &io };
	ssize_t r;

	if (flags & SPLICE_F_NONBLOCK)
		io.flags = MSG_DONTWAIT;
	r = len == 0 ? 0 : reach_path(c, fd, io.flags, true);
	if (r != 0)
		return r;
	if (shut_for_writes(c))
		return -1;
	if (kernel_tx(c))
		return KERNEL_SEND(c, atlas_real.splice(pipe_in, off_in, fd, NULL, len, flags));
	return atlas_emul_splice_to(&sink, pipe_in, off_in, len, flags);
}

ssize_t atlas_engine_splice_from(struct atlas_conn *c, int fd, int pipe_out, loff_t *off_out,
				 size_t len, unsigned flags)
{
	struct engine_io io = { .c = c, .fd = fd };
	struct atlas_emul_source src = { .peek = source_peek,
					 .consume = source_consume,
					 .ctx = &io };
	ssize_t r;

	if (flags & SPLICE_F_NONBLOCK)
		io.flags = MSG_DONTWAIT;
	r = len == 0 ? 0 : reach_path(c, fd, io.flags, false);
	if (r != 0)
		return r;
	if (kernel_rx(c))
		return atlas_offload_splice(c, fd, pipe_out, off_out, len, flags);
	send_owed(c, fd);
	return atlas_emul_splice_from(&src, pipe_out, off_out, len, flags);
}

void atlas_engine_abort_on_close(int fd)
{
	struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
}

/* How long send_close_notify may wait, up to a second. */
enum notify_wait {
	NOTIFY_NOW,   /* not at all: a close (linger.c tries again) */
	NOTIFY_SENDS, /* for the host's sends in flight on kernel TX to end: a shutdown */
	NOTIFY_ROOM,  /* ... and for room: a blocking host's shutdown */
};

/*
 * Sends close_notify once; true when it went (or needs not). On kernel TX it goes only
 * when none of the host's sends is in flight (atlas_conn_sending) and there is room,
 * or not at all: the FIN then ends the stream. kTLS lets one sender in at a time and
 * keeps a blocked one in until the peer reads, so close_notify would wait behind it;
 * a sendfile lets it in between two pages, inside the host's stream.
 */
static bool send_close_notify(struct atlas_conn *c, int fd, enum notify_wait how)
{
	struct timespec deadline;
	bool full = false;

	if (closes_abortively(fd))
		return true; /* a reset is what the host asked for: a close_notify would say "complete" */

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 1; /* a peer that will not read must not hold the host for long */
	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int step = atlas_ms_until(&deadline), n;

		if (c->state != ATLAS_CONN_OPEN || c->pid != getpid())
			break;
		if (!(c->ktls & ATLAS_KTLS_TX)) {
			full = !queue_close_notify(c, fd);
			if (!full || how != NOTIFY_ROOM)
				break;
		} else if (c->tx_closed) {
			break;
		} else if (atlas_conn_sending(c)) {
			full = true;
			if (how == NOTIFY_NOW)
				break;
			/* No event says that a send has ended: look again in a few ms. */
			pfd.fd = -1;
			step = step < 5 ? step : 5;
		} else {
			bool room = true;

			if (how == NOTIFY_ROOM) {
				struct pollfd p = { .fd = fd, .events = POLLOUT };

				if (atlas_real.poll(&p, 1, 0) < 0 ||
				    (p.revents & (POLLERR | POLLHUP | POLLNVAL)))
					break;
				room = p.revents & POLLOUT;
			}
			full = !(room && atlas_offload_close_notify(c, fd));
			if (!full || how != NOTIFY_ROOM)
				break;
		}
		pthread_mutex_unlock(&c->lock);
		n = atlas_real.poll(&pfd, 1, step);
		pthread_mutex_lock(&c->lock);
		if (n < 0 || atlas_ms_until(&deadline) == 0 ||
		    (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)))
			break;
	}
	ERR_clear_error();
	pthread_mutex_unlock(&c->lock);
	return !full;
}

int atlas_engine_readable_bytes(struct atlas_conn *c, int fd, int *count)
{
	char peek[ATLAS_RECORD_MAX];
	int queued = 0, pending = 0;
	ssize_t n;

	if (kernel_rx(c)) {
		/* kTLS: a peek returns what is decrypted and ready, up to a record. */
		n = atlas_real.recv(fd, peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT);
		*count = n > 0 ? (int)n : 0;
		return 0;
	}
	send_owed(c, fd);
	if (atlas_real.ioctl(fd, FIONREAD, &queued) < 0)
		return -1;
	pthread_mutex_lock(&c->lock);
	if (c->state == ATLAS_CONN_OPEN && c->ssl != NULL)
		pending = SSL_pending(c->ssl);
	queued += (int)(c->ra_len - c->ra_off); /* read ahead, not yet OpenSSL's */
	pthread_mutex_unlock(&c->lock);
	/* Decrypted bytes first; else the ciphertext queued (at least that much is coming). */
	*count = pending > 0 ? pending : queued;
	return 0;
}

/*
 * A blocking host's shutdown gives wb, close_notify and the FIN up to a second
 * to go, as send_close_notify gives close_notify on the kernel path; a host
 * that shuts down and then exits without reading must not lose them. Past
 * that they wait (c->shut_wr) for the host's next call or its close.
 */
static void shutdown_wait(struct atlas_conn *c, int fd)
{
	struct timespec deadline;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 1;
	while (owes_bytes(c)) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int ms = atlas_ms_until(&deadline);

		if (ms == 0 || atlas_real.poll(&pfd, 1, ms) <= 0 ||
		    (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)))
			return;
		if (flush_gathered(c, fd, MSG_DONTWAIT, false) < 0 && errno != EAGAIN)
			return; /* broken: nothing more will go */
	}
}

int atlas_engine_shutdown(struct atlas_conn *c, int fd, int how)
{
	/*
	 * A socket set to close abortively sends no close_notify. On the userspace path
	 * the mark is Atlas's own (atlas_engine_abort_on_close, a connection handed to a
	 * program it cannot follow), and the connection must end in a reset: a FIN now
	 * would let the client take a cut-short response as complete. On the kernel path
	 * Atlas never marks a socket: the host set it, and gets the shutdown it asked for
	 * (its FIN, and a wake-up for its blocked reads), as on plain TCP.
	 */
	if (how != SHUT_RD && closes_abortively(fd)) {
		if (!kernel_tx(c))
			return 0;
		__atomic_store_n(&c->wr_closed, 1, __ATOMIC_SEQ_CST);
		return atlas_real.shutdown(fd, how);
	}
	if (how == SHUT_WR || how == SHUT_RDWR) {
		bool userspace;
		bool blocking = !fd_nonblocking(fd, 0);

		/*
		 * First, so that no other thread writes behind it (read unlocked too). The path
		 * is read under the lock, though a handshake that another thread finishes after
		 * it may still put the connection on the kernel path (shut_locked sees to that).
		 */
		pthread_mutex_lock(&c->lock);
		userspace = !kernel_tx(c);
		__atomic_store_n(&c->wr_closed, 1, __ATOMIC_SEQ_CST);
		if (userspace)
			__atomic_store_n(&c->shut_wr, 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&c->lock);
		if (userspace) {
			/*
			 * wb's bytes, then close_notify and the FIN; what cannot go yet waits, as
			 * the kernel's FIN waits for its queue (flush_gathered, shut_locked),
			 * and a write waiting for room in another thread ends (wait_ready).
			 */
			flush_gathered(c, fd, MSG_DONTWAIT, false);
			if (blocking)
				shutdown_wait(c, fd);
			return how == SHUT_RDWR ? atlas_real.shutdown(fd, SHUT_RD) : 0;
		}
		/*
		 * Kernel TX: the kernel holds the host's bytes, and a write of the host's may
		 * wait inside it, which only the real shutdown wakes. close_notify goes if,
		 * within a second, no send of the host's is under way and there is room
		 * (send_close_notify), then the FIN.
		 */
		send_close_notify(c, fd, blocking ? NOTIFY_ROOM : NOTIFY_SENDS);
	}
	return atlas_real.shutdown(fd, how);
}

void atlas_engine_fd_closing(struct atlas_conn *c, int fd, bool last)
{
	/* A flush_before_wait() through fd, under way in another thread, ends before fd goes. */
	pthread_mutex_lock(&c->lock);
	pthread_mutex_unlock(&c->lock);
	if (!owes_bytes(c) || c->pid != getpid())
		goto done;
	if (closes_abortively(fd)) {
		pthread_mutex_lock(&c->lock);
		if (c->wb != NULL)
			wb_release(c); /* a reset is what the host asked for */
		atlas_tls_queue_drop(c);
		atlas_ready_handshake_over(c);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (flush_gathered(c, fd, MSG_DONTWAIT, false) < 0 && errno == EAGAIN) {
		if (last) {
			/* The socket stays open, in linger.c's hands, until the bytes are out. */
			atlas_linger_adopt(c, fd, false);
			return;
		}
		pthread_mutex_lock(&c->lock);
		if (c->wb_fd == fd)
			c->wb_fd = -1; /* the host's next call on another fd sends them */
		atlas_ready_gather_update(c);
		pthread_mutex_unlock(&c->lock);
	}
done:
	/*
	 * No room for close_notify (in the send queue on the userspace path; not sent
	 * on the kernel's, where the host's bytes fill the kernel's queue themselves):
	 * it follows from linger.c once the client has read what is before it, as the
	 * kernel's FIN follows a closed socket's queue, for up to 3 s.
	 */
	if (!last)
		return;
	/* A send of the host's that looked at c before the close must not follow close_notify. */
	if (kernel_tx(c))
		__atomic_store_n(&c->wr_closed, 1, __ATOMIC_SEQ_CST);
	if (!send_close_notify(c, fd, NOTIFY_NOW))
		atlas_linger_adopt(c, fd, true);
}

bool atlas_engine_linger_step(struct atlas_conn *c, int fd)
{
	/* A shutdown that waited is moot: close_notify goes below, then the socket closes. */
	pthread_mutex_lock(&c->lock);
	__atomic_store_n(&c->shut_wr, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->lock);
	if (flush_gathered(c, fd, MSG_DONTWAIT, false) < 0 && errno == EAGAIN)
		return false;
	return send_close_notify(c, fd, NOTIFY_NOW); /* not yet: on the next room, again */
}
