/*
 * Unit tests for shim/errmap.c: every SSL_get_error() outcome and the system
 * call result it becomes (the table in errmap.h).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>

#include <openssl/ssl.h>

#include "errmap.h"
#include "stub_init.h"

/* A value no mapping writes, to see whether *host_errno was set. */
#define UNTOUCHED (-12345)

static void assert_fatal(int ssl_error, int sys_errno, int want_errno)
{
	int host_errno = UNTOUCHED;

	if (atlas_errmap_ssl(ssl_error, sys_errno, &host_errno) != ATLAS_ERRMAP_FATAL)
		fail_msg("ssl_error %d errno %d is not fatal", ssl_error, sys_errno);
	assert_int_equal(host_errno, want_errno);
}

static void want_read_waits_for_readable(void **state)
{
	int host_errno = UNTOUCHED;

	(void)state;
	assert_int_equal(atlas_errmap_ssl(SSL_ERROR_WANT_READ, 0, &host_errno),
			 ATLAS_ERRMAP_WANT_READ);
	/* errno left over from a non-blocking read does not change the verdict. */
	assert_int_equal(atlas_errmap_ssl(SSL_ERROR_WANT_READ, EAGAIN, &host_errno),
			 ATLAS_ERRMAP_WANT_READ);
}

static void want_write_waits_for_writable(void **state)
{
	int host_errno = UNTOUCHED;

	(void)state;
	assert_int_equal(atlas_errmap_ssl(SSL_ERROR_WANT_WRITE, 0, &host_errno),
			 ATLAS_ERRMAP_WANT_WRITE);
	assert_int_equal(atlas_errmap_ssl(SSL_ERROR_WANT_WRITE, EAGAIN, &host_errno),
			 ATLAS_ERRMAP_WANT_WRITE);
}

static void zero_return_is_eof(void **state)
{
	int host_errno = UNTOUCHED;

	(void)state;
	assert_int_equal(atlas_errmap_ssl(SSL_ERROR_ZERO_RETURN, 0, &host_errno), ATLAS_ERRMAP_EOF);
}

/* TCP FIN without close_notify: OpenSSL reports SYSCALL with errno 0; the host sees 0. */
static void syscall_with_errno_0_is_eof(void **state)
{
	int host_errno = UNTOUCHED;

	(void)state;
	assert_int_equal(atlas_errmap_ssl(SSL_ERROR_SYSCALL, 0, &host_errno), ATLAS_ERRMAP_EOF);
}

static void syscall_epipe_is_passed_through(void **state)
{
	(void)state;
	assert_fatal(SSL_ERROR_SYSCALL, EPIPE, EPIPE);
}

static void syscall_econnreset_is_passed_through(void **state)
{
	(void)state;
	assert_fatal(SSL_ERROR_SYSCALL, ECONNRESET, ECONNRESET);
}

static void syscall_other_errno_is_passed_through(void **state)
{
	(void)state;
	assert_fatal(SSL_ERROR_SYSCALL, ETIMEDOUT, ETIMEDOUT);
	assert_fatal(SSL_ERROR_SYSCALL, EBADF, EBADF);
}

static void ssl_error_is_fatal_econnreset(void **state)
{
	(void)state;
	assert_fatal(SSL_ERROR_SSL, 0, ECONNRESET);
	/* A stale errno from an earlier call does not leak through a protocol error. */
	assert_fatal(SSL_ERROR_SSL, EPIPE, ECONNRESET);
	assert_int_equal(ATLAS_ERRMAP_FATAL_ERRNO, ECONNRESET);
}

/* errmap.h: "SSL_ERROR_SSL and anything else -> -1 ECONNRESET". */
static void other_ssl_error_values_are_fatal_econnreset(void **state)
{
	static const int others[] = {
		SSL_ERROR_NONE,
		SSL_ERROR_WANT_X509_LOOKUP,
		SSL_ERROR_WANT_CONNECT,
		SSL_ERROR_WANT_ACCEPT,
		SSL_ERROR_WANT_ASYNC,
		SSL_ERROR_WANT_ASYNC_JOB,
		SSL_ERROR_WANT_CLIENT_HELLO_CB,
		SSL_ERROR_WANT_RETRY_VERIFY,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		assert_fatal(others[i], 0, ECONNRESET);
}

static void unknown_code_is_fatal_econnreset(void **state)
{
	(void)state;
	assert_fatal(99, 0, ECONNRESET);
	assert_fatal(-1, 0, ECONNRESET);
	assert_fatal(12345, EPIPE, ECONNRESET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(want_read_waits_for_readable),
		cmocka_unit_test(want_write_waits_for_writable),
		cmocka_unit_test(zero_return_is_eof),
		cmocka_unit_test(syscall_with_errno_0_is_eof),
		cmocka_unit_test(syscall_epipe_is_passed_through),
		cmocka_unit_test(syscall_econnreset_is_passed_through),
		cmocka_unit_test(syscall_other_errno_is_passed_through),
		cmocka_unit_test(ssl_error_is_fatal_econnreset),
		cmocka_unit_test(other_ssl_error_values_are_fatal_econnreset),
		cmocka_unit_test(unknown_code_is_fatal_econnreset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
