/*
 * One TLS connection: the state shared by every fd that refers to it.
 *
 * dup(), dup2(), dup3() and fcntl(F_DUPFD*) make several fds point at one
 * connection, as they make several fds point at one socket. The connection
 * counts those fds (close_notify goes out when the last one is closed) and,
 * separately, every reference at all (it is freed when the last one goes).
 */
#ifndef ATLAS_CONN_H
#define ATLAS_CONN_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/ssl.h>

/* How many first bytes are read to tell TLS from plain HTTP ("OPTIONS " is 8). */
#define ATLAS_SNIFF_MAX 8

enum atlas_conn_state {
	ATLAS_CONN_NEW,	      /* accepted; no byte read yet */
	ATLAS_CONN_HANDSHAKE, /* a TLS record arrived; the handshake is under way */
	ATLAS_CONN_OPEN,      /* handshake done; data goes through OpenSSL (userspace path) */
	ATLAS_CONN_REFUSED, /* never became TLS: plain HTTP, garbage, a failed or timed-out handshake */
	ATLAS_CONN_BROKEN, /* a fatal TLS error after the handshake */
};

struct atlas_conn {
	pthread_mutex_t lock;	     /* held across every use of the fields below */
	int refs;		     /* every reference: fd slots plus calls in flight */
	int fds;		     /* fd slots in this process; close_notify when it reaches 0 */
	enum atlas_conn_state state; /* see the enum */
	int fail_errno;		     /* after REFUSED/BROKEN: the errno calls fail with; 0 = EOF */
	int io_fd;		     /* the fd the current call came in on: the one the BIO uses */
	pid_t pid;     /* the process that owns the TLS session (accepted or handshook it) */
	uint16_t port; /* local port it was accepted on, for the log */
	unsigned char sniff_len; /* bytes in sniff[] */
	unsigned char sniff_off; /* bytes of sniff[] already handed to OpenSSL */
	unsigned char
		sniff[ATLAS_SNIFF_MAX]; /* first bytes, read to classify, replayed to OpenSSL */
	struct timespec started;	/* accept time (CLOCK_MONOTONIC) */
	struct timespec deadline;	/* the handshake must be done by then */
	SSL *ssl;			/* NULL until the first TLS record; freed once REFUSED */
};

/* A new connection accepted on port, with one reference and no fd yet. NULL (ENOMEM). */
struct atlas_conn *atlas_conn_new(uint16_t port, unsigned handshake_timeout_ms);

void atlas_conn_get(struct atlas_conn *c);
/* Drops a reference; frees the connection with the last one. Accepts NULL. */
void atlas_conn_put(struct atlas_conn *c);

/* An fd slot now points at c (atlas_fdtab_set calls this). */
void atlas_conn_fd_get(struct atlas_conn *c);
/*
 * An fd slot stopped pointing at c; fd is the descriptor, still open. When it
 * was the last fd, the session is closed (close_notify, if this process owns
 * it) before the caller closes the socket. Then drops the slot's reference.
 */
void atlas_conn_fd_put(struct atlas_conn *c, int fd);

/*
 * An fd slot pointed at c although its fd had been closed behind our back
 * (a raw syscall, say): drop the slot's reference without any I/O.
 */
void atlas_conn_fd_forget(struct atlas_conn *c);

/* "fd 7 peer 127.0.0.1:40112 port 8443" into buf, for log lines. */
const char *atlas_conn_describe(const struct atlas_conn *c, int fd, char *buf, size_t len);

/* Milliseconds from accept to now. */
double atlas_conn_elapsed_ms(const struct atlas_conn *c);

#endif
