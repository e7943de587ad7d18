/*
 * The engine: everything a hook does with a TLS connection on the userspace
 * path. Each function takes the connection (with a reference held by the
 * caller) and the fd the host used, and returns exactly what the system call
 * would: a count, 0 at end of stream, or -1 with errno.
 *
 * The handshake is lazy: the first call on a new connection reads the first
 * bytes (TLS, plain HTTP or garbage?), then drives SSL_do_handshake. A
 * non-blocking fd gets EAGAIN while it is under way; a blocking one waits,
 * with the connection unlocked, until the handshake deadline.
 */
#ifndef ATLAS_ENGINE_H
#define ATLAS_ENGINE_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <openssl/ssl.h>

struct atlas_conn;

/* The server context every new connection uses; NULL while the configuration is broken. */
void atlas_engine_set_ctx(SSL_CTX *ctx);

/* recv(2)/readv(2): flags may hold MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL. */
ssize_t atlas_engine_recv(struct atlas_conn *c, int fd, const struct iovec *iov, int iovcnt,
			  int flags);

/* send(2)/writev(2): flags may hold MSG_DONTWAIT; SIGPIPE is never raised. */
ssize_t atlas_engine_send(struct atlas_conn *c, int fd, const struct iovec *iov, int iovcnt,
			  int flags);

/* sendfile(2) from in_fd to the connection. */
ssize_t atlas_engine_sendfile(struct atlas_conn *c, int fd, int in_fd, off_t *offset, size_t count);

/* splice(2) from a pipe into the connection, and from the connection into a pipe. */
ssize_t atlas_engine_splice_to(struct atlas_conn *c, int fd, int pipe_in, loff_t *off_in,
			       size_t len, unsigned flags);
ssize_t atlas_engine_splice_from(struct atlas_conn *c, int fd, int pipe_out, loff_t *off_out,
				 size_t len, unsigned flags);

/*
 * ioctl(FIONREAD) on a TLS fd: how many bytes a read would return now. The
 * socket's own count is TCP's queue, which says 0 while plaintext waits in
 * OpenSSL or, on the kernel path, decrypted in kTLS (nginx then waits for an
 * event that never comes). 0, or -1 with errno.
 */
int atlas_engine_readable_bytes(struct atlas_conn *c, int fd, int *count);

/*
 * shutdown(2): SHUT_WR and SHUT_RDWR end the writes with close_notify, then the FIN.
 * On the userspace path both wait behind bytes the host counts as written (and for
 * room for close_notify), as the kernel's FIN waits behind its queue; a blocking
 * host's shutdown gives them a second.
 */
int atlas_engine_shutdown(struct atlas_conn *c, int fd, int how);

/* Makes the connection on fd close abortively (SO_LINGER 0: a reset, no close_notify). */
void atlas_engine_abort_on_close(int fd);

/*
 * fd, one of c's, is about to be closed (last: c's last fd in this process).
 * Bytes the host counts as written and a shutdown's close_notify that wait for
 * room go out first, and the last close sends close_notify without waiting, if
 * this process owns an open session; what the socket cannot take yet is
 * linger.c's to send. Never fails.
 */
void atlas_engine_fd_closing(struct atlas_conn *c, int fd, bool last);

/*
 * setsockopt(IPPROTO_TCP, name, on) on a connection the kernel does not encrypt
 * for: TCP_CORK is kept here (the gathering of writes into records, engine.c),
 * TCP_NODELAY sends what was gathered and goes to the kernel. Returns as the call.
 */
int atlas_engine_setsockopt_tcp(struct atlas_conn *c, int fd, int name, int on);

/* getsockopt(TCP_CORK): the host's cork as it set it. */
int atlas_engine_corked(struct atlas_conn *c);

/*
 * Bytes the host counts as written now wait for room (tls.c's send queue): the
 * host's waits must wake for POLLOUT too, and its next call sends them. Locked.
 */
void atlas_engine_wait_for_room(struct atlas_conn *c);

/*
 * The kernel reported room on fd, one of c's, to a wait of the host's that asked
 * for it itself: send the bytes c owes, without waiting, if fd is still c's. (A
 * host that has nothing more to write ignores that readiness.) A deferred
 * shutdown's close_notify and FIN wait for the host's next call. Unlocked.
 */
void atlas_engine_room_came(struct atlas_conn *c, int fd);

/* The host is about to wait (poll, select, epoll): what it wrote corked goes out first. */
void atlas_engine_before_wait(void);

/* linger.c: sends what is left on a closed connection; true once done with it. */
bool atlas_engine_linger_step(struct atlas_conn *c, int fd);

#endif
