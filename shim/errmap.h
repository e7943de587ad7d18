/*
 * The one place where an OpenSSL outcome becomes what a system call returns.
 *
 *   SSL_ERROR_WANT_READ / WANT_WRITE  -> wait (blocking fd) or -1 EAGAIN
 *   SSL_ERROR_ZERO_RETURN             -> 0, end of stream (close_notify)
 *   SSL_ERROR_SYSCALL, errno 0        -> 0, end of stream (TCP FIN without close_notify)
 *   SSL_ERROR_SYSCALL, errno e        -> -1 e (EPIPE, ECONNRESET: what the socket said)
 *   SSL_ERROR_SSL and anything else   -> -1 ECONNRESET, the connection is broken
 */
#ifndef ATLAS_ERRMAP_H
#define ATLAS_ERRMAP_H

enum atlas_errmap_verdict {
	ATLAS_ERRMAP_WANT_READ,	 /* the socket must become readable */
	ATLAS_ERRMAP_WANT_WRITE, /* the socket must become writable */
	ATLAS_ERRMAP_EOF,	 /* the peer ended the stream */
	ATLAS_ERRMAP_FATAL,	 /* -1 with *host_errno; the connection cannot go on */
};

/* The errno every fatal TLS-level failure reports: the peer's bytes made no sense. */
#define ATLAS_ERRMAP_FATAL_ERRNO ECONNRESET

/* ssl_error from SSL_get_error(); sys_errno is errno just after the call. */
enum atlas_errmap_verdict atlas_errmap_ssl(int ssl_error, int sys_errno, int *host_errno);

#endif
