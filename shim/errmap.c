#include "errmap.h"

#include <errno.h>

#include <openssl/ssl.h>

enum atlas_errmap_verdict atlas_errmap_ssl(int ssl_error, int sys_errno, int *host_errno)
{
	switch (ssl_error) {
	case SSL_ERROR_WANT_READ:
		return ATLAS_ERRMAP_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return ATLAS_ERRMAP_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return ATLAS_ERRMAP_EOF;
	case SSL_ERROR_SYSCALL:
		/* OpenSSL(3) says SYSCALL with errno 0 is an EOF that broke the protocol. */
		if (sys_errno == 0)
			return ATLAS_ERRMAP_EOF;
		/* The transport's own error is what the host would have seen without TLS. */
		*host_errno = sys_errno;
		return ATLAS_ERRMAP_FATAL;
	case SSL_ERROR_SSL:
	default:
		*host_errno = ATLAS_ERRMAP_FATAL_ERRNO;
		return ATLAS_ERRMAP_FATAL;
	}
}
