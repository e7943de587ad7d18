/*
 * The kernel path: what happens to a connection once its handshake is done
 * and the kernel holds its keys.
 *
 * After the handshake, atlas_offload_finish() completes what OpenSSL left
 * (TLS 1.3 receive), decides the connection's path and, when the kernel has
 * both directions, frees OpenSSL's state: from then on the host's own calls
 * go straight to the kernel. Atlas steps in only where the kernel hands a
 * record to userspace that is not data (an alert, a KeyUpdate: read() fails
 * with EIO) and to send close_notify.
 */
#ifndef ATLAS_OFFLOAD_H
#define ATLAS_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "config.h"

struct atlas_conn;

/* Whether new connections try kernel TLS, and why not; set once by init.c. */
void atlas_offload_configure(enum atlas_ktls_mode mode, bool ulp_available);

/* What the listener's log line says about the path connections will take. */
const char *atlas_offload_describe(void);

/* Whether OpenSSL should be asked to offload (SSL_OP_ENABLE_KTLS). */
bool atlas_offload_enabled(void);

/*
 * The handshake of c just finished (c locked, c->ssl set). Installs TLS 1.3
 * receive by hand when OpenSSL offloaded transmit, sets c->path, frees the
 * SSL when the kernel has both directions, and writes a description of the
 * path ("kernel (TX and RX)", "userspace (why)") into desc. Returns 0, or -1
 * when ATLAS_KTLS=require and the kernel does not have both directions: the
 * caller closes the connection (after atlas_offload_refuse()).
 */
int atlas_offload_finish(struct atlas_conn *c, int fd, char *desc, size_t desclen);

/* Sends the alert that ends a connection refused under ATLAS_KTLS=require. Locked. */
void atlas_offload_refuse(struct atlas_conn *c, int fd);

/*
 * A read on a kernel-RX connection: recvmsg(2) with the host's flags, and the
 * control records handled here (close_notify reads as end of file, another
 * alert as ECONNRESET, a KeyUpdate closes the connection cleanly).
 */
ssize_t atlas_offload_recv(struct atlas_conn *c, int fd, struct iovec *iov, int iovcnt, int flags);

/*
 * A kernel-RX read failed with EIO: the next record is not data. Reads and
 * handles it; returns what the host's read returns: 0 with errno set back to
 * saved_errno, or -1 with errno.
 */
ssize_t atlas_offload_control(struct atlas_conn *c, int fd, int flags, int saved_errno);

/*
 * splice(2) from a kernel-RX connection: the kernel's, with what a read would do at
 * a record that is not data (Linux 6.1 fails the splice with EINVAL there and puts
 * the record back), and end of file or the error for ever once the stream ended.
 */
ssize_t atlas_offload_splice(struct atlas_conn *c, int fd, int pipe_out, loff_t *off_out,
			     size_t len, unsigned flags);

/*
 * The kernel's splice from such a connection failed (errno says how; saved_errno is
 * errno from before it): EINVAL or EIO with a record that is not data next is handled
 * as atlas_offload_control does; EBADMSG is logged; anything else goes back as it is.
 */
ssize_t atlas_offload_splice_failed(struct atlas_conn *c, int fd, unsigned flags, int saved_errno);

/* A kernel-RX read failed with EBADMSG: a record failed authentication. Logs it; errno kept. */
void atlas_offload_bad_record(struct atlas_conn *c, int fd);

/*
 * Sends close_notify through kernel TX, once, without waiting: false when the
 * socket is full (the caller may wait for room and call again), else true.
 */
bool atlas_offload_close_notify(struct atlas_conn *c, int fd);

#endif
