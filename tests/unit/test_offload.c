/*
 * Unit tests for shim/offload.c's reads on a kernel-RX connection, against a
 * fake recvmsg that plays the kernel (Documentation/networking/tls.rst): a
 * read without a control buffer fails with EIO at a record that is not data,
 * and a read with one returns that record with its TLS_GET_RECORD_TYPE.
 * tests/fuzz/fuzz_control.c runs the same path over scripts of records.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/tls.h>
#include <string.h>
#include <sys/socket.h>

#include "conn.h"
#include "ktls.h"
#include "offload.h"
#include "real.h"
#include "stub_init.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define FAKE_FD 7001

/* The next record the client sent; has_type 0: recvmsg returns it with no record type. */
static struct {
	unsigned char type;
	int has_type;
	unsigned char bytes[8];
	size_t len;
	int control_reads;
} rec;

static ssize_t fake_recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct cmsghdr *cm;

	(void)fd;
	(void)flags;
	if (msg->msg_control == NULL) {
		errno = EIO; /* not data: the kernel wants a control buffer */
		return -1;
	}
	rec.control_reads++;
	memcpy(msg->msg_iov[0].iov_base, rec.bytes, rec.len);
	if (!rec.has_type) {
		msg->msg_controllen = 0;
		return (ssize_t)rec.len;
	}
	cm = CMSG_FIRSTHDR(msg);
	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_GET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(1);
	*CMSG_DATA(cm) = rec.type;
	return (ssize_t)rec.len;
}

static int setup(void **state)
{
	struct atlas_conn *c;

	atlas_real_init();
	atlas_real.recvmsg = fake_recvmsg;
	memset(&rec, 0, sizeof(rec));
	c = atlas_conn_new(8443, 10000);
	assert_non_null(c);
	c->path = ATLAS_PATH_KERNEL;
	c->ktls = ATLAS_KTLS_TX | ATLAS_KTLS_RX;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	atlas_conn_put(*state);
	return 0;
}

static ssize_t host_read(struct atlas_conn *c)
{
	char buf[64];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };

	return atlas_offload_recv(c, FAKE_FD, &iov, 1, 0);
}

static void close_notify_reads_as_end_of_file(void **state)
{
	struct atlas_conn *c = *state;

	rec.type = ATLAS_TLS_ALERT;
	rec.has_type = 1;
	rec.bytes[0] = 1;
	rec.len = 2; /* warning, close_notify */
	errno = 1234;
	assert_int_equal(host_read(c), 0);
	assert_int_equal(errno, 1234);
	assert_true(c->rx_closed);
	assert_int_equal(host_read(c), 0);
	assert_int_equal(rec.control_reads, 1); /* the socket is not read again */
}

/* Found by tests/fuzz/fuzz_control: recvmsg's 0 was taken for the FIN whatever the type. */
static void empty_alert_record_resets(void **state)
{
	struct atlas_conn *c = *state;

	rec.type = ATLAS_TLS_ALERT;
	rec.has_type = 1;
	rec.len = 0;
	assert_int_equal(host_read(c), -1);
	assert_int_equal(errno, ECONNRESET);
	assert_true(c->rx_closed);
	assert_int_equal(host_read(c), -1);
	assert_int_equal(errno, ECONNRESET);
}

static void empty_handshake_record_resets(void **state)
{
	struct atlas_conn *c = *state;

	rec.type = ATLAS_TLS_HANDSHAKE;
	rec.has_type = 1;
	rec.len = 0;
	assert_int_equal(host_read(c), -1);
	assert_int_equal(errno, ECONNRESET);
}

static void nothing_without_a_record_type_is_the_fin(void **state)
{
	struct atlas_conn *c = *state;

	rec.has_type = 0;
	rec.len = 0;
	assert_int_equal(host_read(c), 0);
	assert_true(c->rx_closed);
}

/*
 * A connection OpenSSL did not offload (its cipher, say) stays on the userspace
 * path: the TLS 1.3 client traffic secret kept for kernel RX goes at once, not
 * when the connection is freed.
 */
static void userspace_connection_forgets_the_rx_secret(void **state)
{
	struct atlas_conn *c = *state;
	static const unsigned char zero[sizeof(c->rx_secret)];
	char desc[256];

	atlas_offload_configure(ATLAS_KTLS_AUTO, true);
	c->ktls = 0;
	memset(c->rx_secret, 0xa5, sizeof(c->rx_secret));
	c->rx_secret_len = 32;
	assert_int_equal(atlas_offload_finish(c, FAKE_FD, desc, sizeof(desc)), 0);
	assert_string_equal(desc, "userspace (OpenSSL did not offload this connection)");
	assert_int_equal(c->path, ATLAS_PATH_USERSPACE);
	assert_int_equal(c->rx_secret_len, 0);
	assert_memory_equal(c->rx_secret, zero, sizeof(zero));
	atlas_offload_configure(ATLAS_KTLS_OFF, false);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(close_notify_reads_as_end_of_file),
		T(empty_alert_record_resets),
		T(empty_handshake_record_resets),
		T(nothing_without_a_record_type_is_the_fin),
		T(userspace_connection_forgets_the_rx_secret),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
