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
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

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

/* Where a connection's bytes are encrypted, once its handshake is done. */
enum atlas_path {
	ATLAS_PATH_USERSPACE = 0, /* OpenSSL both ways */
	ATLAS_PATH_KERNEL_TX,	  /* the kernel encrypts; reads still go through OpenSSL */
	ATLAS_PATH_KERNEL,	  /* the kernel both ways; OpenSSL's state is freed */
};

/* Bits of atlas_conn.ktls: the directions the kernel has. */
#define ATLAS_KTLS_TX 1u
#define ATLAS_KTLS_RX 2u

/* Longest TLS 1.3 traffic secret: SHA-384's output. */
#define ATLAS_SECRET_MAX 48

struct atlas_conn {
	/* Held across every use of the fields below, except where a comment says otherwise. */
	pthread_mutex_t lock;
	/* Every reference: fd slots plus calls in flight. Atomic; freed at 0. */
	int refs;
	/* fd slots in this process pointing here. Atomic; close_notify when it reaches 0. */
	int fds;
	enum atlas_conn_state state;
	/* After REFUSED or BROKEN: the errno calls fail with; 0 means reads see end of file. */
	int fail_errno;
	/* The fd the current call came in on: the one the BIO uses. */
	int io_fd;
	/* The process that owns the TLS session (accepted or handshook it). */
	pid_t pid;
	/*
	 * Kernel TX: the host's sends in flight, each with a reference (atlas_conn_tx_begin).
	 * Atomic. close_notify goes only while there is none (engine.c). 16 bits: with port,
	 * it fills what would be padding before peer.
	 */
	uint16_t sending;
	/* The local port it was accepted on, and the peer, for the log (the peer's address is
	 * gone from the socket once it resets). */
	uint16_t port;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;
	/* The first bytes, read to classify the client, then replayed to OpenSSL. */
	unsigned char sniff_len;
	unsigned char sniff_off;
	unsigned char sniff[ATLAS_SNIFF_MAX];
	/* enum atlas_path. Written once under the lock; the hooks read it without. */
	unsigned char path;
	/* ATLAS_KTLS_TX | ATLAS_KTLS_RX: the directions the kernel has. */
	unsigned char ktls;
	/* Kernel TX: the record type of OpenSSL's next write (a control message), 0 for data. */
	unsigned char ctrl_type;
	/* Kernel RX: close_notify or a fatal alert was read; reads see end of file. */
	unsigned char rx_closed;
	/* Kernel TX: our close_notify went out. */
	unsigned char tx_closed;
	/* TLS 1.3: the client application traffic secret, until kernel RX has it; then wiped. */
	unsigned char rx_secret_len;
	unsigned char rx_secret[ATLAS_SECRET_MAX];
	/* Why OpenSSL's offload of a direction failed, for the connection's log line. */
	char ktls_why[96];
	/* Accept time and handshake deadline (CLOCK_MONOTONIC). */
	struct timespec started;
	struct timespec deadline;
	/* NULL until the first TLS record; freed once REFUSED or fully in the kernel. */
	SSL *ssl;
	/*
	 * Read-ahead (tls.c), on wherever the kernel will not receive: ciphertext read from
	 * the socket beyond what OpenSSL asked for, ra_buf[ra_off..ra_len). ra_buf is NULL
	 * when nothing waits: an idle connection holds no buffer.
	 */
	unsigned char read_ahead;
	unsigned char *ra_buf;
	unsigned ra_off;
	unsigned ra_len;
	/*
	 * Bytes the host counts as written that are not in the kernel yet (engine.c), on
	 * the userspace path. Plaintext: wb, wb_len bytes (NULL when empty). Under
	 * TCP_CORK the host's cork never reaches the kernel: what it writes is gathered
	 * into wb and sealed as one record when the host uncorks, when the record is
	 * full, or when the host waits, reads, shuts down or closes; wb is always a block
	 * of one record's size. wb_fd: the fd the bytes came in on (-1: closed since).
	 * Ciphertext: sq, sq_len bytes (NULL when empty), the send queue (tls.c): what
	 * the socket had no room for of the records OpenSSL wrote once the connection
	 * was open, a write's own or wb's. It goes before anything else. sq_cut: part
	 * of the record at its head has gone (the rest must follow, or the peer reads
	 * a cut record).
	 * wr_closed: the host shut the connection down for writes (never cleared: writes
	 * fail with EPIPE from then on); shut_wr: and close_notify and the FIN wait, for
	 * wb and sq to go out first or for room.
	 */
	unsigned char corked;
	unsigned char wr_closed;
	unsigned char shut_wr;
	unsigned char sq_cut;
	int wb_fd;
	unsigned wb_len;
	unsigned char *wb;
	unsigned sq_len;
	unsigned char *sq;
	/*
	 * ready.c's, guarded by its lock: decrypted bytes wait in OpenSSL (the connection is
	 * on its list); the handshake waits for hs_want (POLLIN or POLLOUT; 0: none waits);
	 * the connection's epoll registration (ep_fd -1: none): the set, the fd registered,
	 * the events the host asked for, those the kernel was given, the host's data.
	 */
	unsigned char pending;
	unsigned char gathering;  /* on ready.c's list of connections holding unsealed wb bytes */
	unsigned char ready_slot; /* holds a place on ready.c's lists (atlas_ready_reserve) */
	unsigned char ep_reported;
	short hs_want;
	int ep_fd;
	int ep_sock;
	uint32_t ep_events;
	uint32_t ep_kernel;
	epoll_data_t ep_data;
};

/*
 * Does the read-ahead hold a whole record? It starts at a record boundary whenever
 * OpenSSL is not inside a call (OpenSSL reads one record's header, then its body).
 */
static inline bool atlas_conn_ra_record(const struct atlas_conn *c)
{
	unsigned avail = c->ra_len - c->ra_off;
	const unsigned char *h = c->ra_buf + c->ra_off;

	return avail >= 5 && avail - 5 >= ((unsigned)h[3] << 8 | h[4]);
}

/* A new connection accepted on port, with one reference and no fd yet. NULL (ENOMEM). */
struct atlas_conn *atlas_conn_new(uint16_t port, unsigned handshake_timeout_ms);

static inline enum atlas_path atlas_conn_path(const struct atlas_conn *c)
{
	return (enum atlas_path)__atomic_load_n(&c->path, __ATOMIC_ACQUIRE);
}

/* Sets c's path: the hooks read it unlocked (atlas_conn_path). Locked. */
static inline void atlas_conn_set_path(struct atlas_conn *c, enum atlas_path path)
{
	__atomic_store_n(&c->path, (unsigned char)path, __ATOMIC_RELEASE);
}

/*
 * A send of the host's that the kernel encrypts for c starts: counted in c->sending
 * until atlas_conn_tx_end(c), which also drops a reference of the caller's that the
 * send took over (the caller takes one for it). kTLS lets one sender in at a time
 * and keeps a blocked one in until the peer reads, and lets others in between a
 * sendfile's pages: close_notify must not go while such a send runs. false, with
 * nothing taken, once the host has shut the connection down for writes: kTLS
 * (Linux 6.1) would take the bytes, count them as sent and never send them, where
 * TCP says EPIPE. The count comes before the look at wr_closed, and a shutdown
 * stores wr_closed before it looks at the count (atlas_conn_sending), all
 * sequentially consistent: of the two, whoever comes second sees the first. A
 * thread that ends inside the send (pthread_cancel, pthread_exit from a signal
 * handler) ends it too, from a thread-specific key's destructor.
 */
bool atlas_conn_tx_begin(struct atlas_conn *c); /* false: the reference stays the caller's */
/* The send is over: the count and the reference go. errno is kept. */
void atlas_conn_tx_end(struct atlas_conn *c);

/* Is a send of the host's under way on c (kernel TX)? */
static inline bool atlas_conn_sending(const struct atlas_conn *c)
{
	return __atomic_load_n(&c->sending, __ATOMIC_SEQ_CST) != 0;
}

void atlas_conn_get(struct atlas_conn *c);
/*
 * A reference from a list that does not hold one (ready.c's): false when the last
 * one is already gone and c is on its way to be freed (it leaves the list then).
 */
bool atlas_conn_tryget(struct atlas_conn *c);
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

/* Records the peer's address: from accept's own buffer when given (len bytes), else the socket. */
void atlas_conn_set_peer(struct atlas_conn *c, int fd, const struct sockaddr *addr, socklen_t len);

/* "fd 7 peer 127.0.0.1:40112 port 8443" into buf, for log lines. */
const char *atlas_conn_describe(const struct atlas_conn *c, int fd, char *buf, size_t len);

/* Milliseconds from accept to now. */
double atlas_conn_elapsed_ms(const struct atlas_conn *c);

/* Milliseconds from now until deadline (CLOCK_MONOTONIC): 0 once past, at most 10^9. */
int atlas_ms_until(const struct timespec *deadline);

/* Moves t (CLOCK_MONOTONIC) ms milliseconds on. */
static inline void atlas_add_ms(struct timespec *t, unsigned ms)
{
	t->tv_sec += ms / 1000;
	t->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

#endif
