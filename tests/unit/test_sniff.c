/*
 * Unit tests for shim/sniff.c: the first-bytes classifier, and the plain-HTTP
 * answer sent over a real socketpair.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "real.h"
#include "sniff.h"
#include "stub_init.h"

static const char *kind_name(enum atlas_sniff_kind k)
{
	switch (k) {
	case ATLAS_SNIFF_NEED_MORE:
		return "NEED_MORE";
	case ATLAS_SNIFF_TLS:
		return "TLS";
	case ATLAS_SNIFF_HTTP:
		return "HTTP";
	case ATLAS_SNIFF_OTHER:
		return "OTHER";
	default:
		return "?";
	}
}

static void assert_kind(const void *buf, size_t len, enum atlas_sniff_kind want)
{
	enum atlas_sniff_kind got = atlas_sniff_classify(buf, len);

	if (got != want)
		fail_msg("%zu bytes starting \"%.*s\" (0x%02x): %s, expected %s", len, (int)len,
			 (const char *)buf, len ? *(const unsigned char *)buf : 0, kind_name(got),
			 kind_name(want));
}

#define assert_str_kind(s, want) assert_kind((s), strlen(s), (want))

/* Every request method with its space, as the classifier must know them. */
static const char *const methods[] = {
	"GET ",	    "HEAD ",  "POST ",	  "PUT ",   "DELETE ",
	"OPTIONS ", "PATCH ", "CONNECT ", "TRACE ", "PRI ",
};

/* ---- atlas_sniff_classify ---- */

static void classify_empty_needs_more(void **state)
{
	static const unsigned char none[1] = { 0x16 };

	(void)state;
	assert_kind(none, 0, ATLAS_SNIFF_NEED_MORE);
}

static void classify_handshake_type_alone_needs_more(void **state)
{
	static const unsigned char b[] = { 0x16 };

	(void)state;
	assert_kind(b, sizeof(b), ATLAS_SNIFF_NEED_MORE);
}

static void classify_handshake_record_v3_is_tls(void **state)
{
	static const unsigned char two[] = { 0x16, 0x03 };
	/* A real ClientHello record header: TLS 1.0 record version, length 0x0200. */
	static const unsigned char hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01 };

	(void)state;
	assert_kind(two, sizeof(two), ATLAS_SNIFF_TLS);
	assert_kind(hello, sizeof(hello), ATLAS_SNIFF_TLS);
}

static void classify_handshake_record_other_version_is_other(void **state)
{
	static const unsigned char v2[] = { 0x16, 0x02 };
	static const unsigned char v4[] = { 0x16, 0x04, 0x01 };
	static const unsigned char v0[] = { 0x16, 0x00 };

	(void)state;
	assert_kind(v2, sizeof(v2), ATLAS_SNIFF_OTHER);
	assert_kind(v4, sizeof(v4), ATLAS_SNIFF_OTHER);
	assert_kind(v0, sizeof(v0), ATLAS_SNIFF_OTHER);
}

/* Only a handshake record may open a TLS connection; an alert (21) or data (23) may not. */
static void classify_other_record_types_are_other(void **state)
{
	static const unsigned char alert[] = { 0x15, 0x03, 0x03 };
	static const unsigned char data[] = { 0x17, 0x03, 0x03 };

	(void)state;
	assert_kind(alert, sizeof(alert), ATLAS_SNIFF_OTHER);
	assert_kind(data, sizeof(data), ATLAS_SNIFF_OTHER);
}

static void classify_every_method_with_its_space_is_http(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		assert_str_kind(methods[i], ATLAS_SNIFF_HTTP);
}

static void classify_request_line_is_http(void **state)
{
	(void)state;
	assert_str_kind("GET / HTTP/1.1\r\n", ATLAS_SNIFF_HTTP);
	assert_str_kind("OPTIONS * HTTP/1.1\r\n", ATLAS_SNIFF_HTTP);
	assert_str_kind("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", ATLAS_SNIFF_HTTP);
}

static void classify_method_prefixes_need_more(void **state)
{
	(void)state;
	assert_str_kind("G", ATLAS_SNIFF_NEED_MORE);
	assert_str_kind("GE", ATLAS_SNIFF_NEED_MORE);
	assert_str_kind("GET", ATLAS_SNIFF_NEED_MORE);
	assert_str_kind("P", ATLAS_SNIFF_NEED_MORE);
	assert_str_kind("PR", ATLAS_SNIFF_NEED_MORE);
	assert_str_kind("OPTION", ATLAS_SNIFF_NEED_MORE);
	assert_str_kind("OPTIONS", ATLAS_SNIFF_NEED_MORE);
	assert_str_kind("CONNEC", ATLAS_SNIFF_NEED_MORE);
	/* Every proper prefix of every method. */
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		for (size_t n = 1; n < strlen(methods[i]); n++)
			assert_kind(methods[i], n, ATLAS_SNIFF_NEED_MORE);
}

static void classify_method_without_space_is_other(void **state)
{
	(void)state;
	assert_str_kind("GETX", ATLAS_SNIFF_OTHER);
	assert_str_kind("GET/", ATLAS_SNIFF_OTHER);
	assert_str_kind("POSTS", ATLAS_SNIFF_OTHER);
	assert_str_kind("OPTIONSX", ATLAS_SNIFF_OTHER);
}

static void classify_lowercase_method_is_other(void **state)
{
	(void)state;
	assert_str_kind("get ", ATLAS_SNIFF_OTHER);
	assert_str_kind("g", ATLAS_SNIFF_OTHER);
	assert_str_kind("Get ", ATLAS_SNIFF_OTHER);
}

static void classify_random_bytes_are_other(void **state)
{
	static const unsigned char junk[] = { 0x00, 0xff, 0x13, 0x37 };
	static const unsigned char zero[] = { 0x00 };

	(void)state;
	assert_kind(junk, sizeof(junk), ATLAS_SNIFF_OTHER);
	assert_kind(zero, sizeof(zero), ATLAS_SNIFF_OTHER);
	assert_str_kind("SSH-2.0-OpenSSH_9.2\r\n", ATLAS_SNIFF_OTHER);
	assert_str_kind("X", ATLAS_SNIFF_OTHER);
	assert_str_kind("\r\n", ATLAS_SNIFF_OTHER);
}

/* An SSLv2-compatible ClientHello starts with a 2-byte length with the top bit set. */
static void classify_sslv2_hello_is_other(void **state)
{
	static const unsigned char v2[] = { 0x80, 0x2e, 0x01, 0x03, 0x01 };

	(void)state;
	assert_kind(v2, sizeof(v2), ATLAS_SNIFF_OTHER);
	assert_kind(v2, 1, ATLAS_SNIFF_OTHER);
}

/* The classifier reads no further than len: a method split by len is still undecided. */
static void classify_reads_only_len_bytes(void **state)
{
	char *buf = malloc(3);

	(void)state;
	assert_non_null(buf);
	memcpy(buf, "GET", 3); /* no terminator: reading past len would be caught by ASan */
	assert_kind(buf, 3, ATLAS_SNIFF_NEED_MORE);
	free(buf);
}

/* ---- atlas_sniff_reply_http over a socketpair ---- */

struct pair {
	int server; /* the fd Atlas answers on */
	int client; /* the peer that reads the answer */
};

static struct atlas_real_table saved_real;

static int setup_pair(void **state)
{
	struct pair *p = malloc(sizeof(*p));
	int sv[2];

	atlas_real_init();
	saved_real = atlas_real;
	if (p == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		free(p);
		return -1;
	}
	p->server = sv[0];
	p->client = sv[1];
	*state = p;
	return 0;
}

static int teardown_pair(void **state)
{
	struct pair *p = *state;

	atlas_real = saved_real;
	if (p->server >= 0)
		close(p->server);
	if (p->client >= 0)
		close(p->client);
	free(p);
	return 0;
}

/*
 * Reads the whole answer, then EOF. On an AF_UNIX socketpair a send lands in
 * the peer's queue before it returns, and so does shutdown's FIN: everything
 * must be readable without waiting, so a missing FIN fails instead of hanging.
 */
static size_t read_to_eof(int fd, char *buf, size_t cap)
{
	size_t used = 0;

	for (;;) {
		ssize_t n = recv(fd, buf + used, cap - 1 - used, MSG_DONTWAIT);

		if (n < 0)
			fail_msg("no EOF after %zu bytes of answer: %s", used, strerror(errno));
		if (n == 0)
			break;
		used += (size_t)n;
		assert_true(used < cap - 1);
	}
	buf[used] = '\0';
	return used;
}

/* Checks a whole HTTP/1.1 400 response: status line, Content-Length, body size. */
static void assert_http_400(const char *resp, size_t len)
{
	const char *end = strstr(resp, "\r\n\r\n");
	const char *cl;
	char *num_end;
	unsigned long content_length;
	size_t body_len;

	if (strncmp(resp, "HTTP/1.1 400 ", 13) != 0)
		fail_msg("the answer does not start with \"HTTP/1.1 400 \": \"%.40s\"", resp);
	assert_non_null(end);
	body_len = len - (size_t)(end + 4 - resp);
	cl = strcasestr(resp, "\r\nContent-Length:");
	assert_non_null(cl);
	assert_true(cl < end);
	cl += strlen("\r\nContent-Length:");
	while (*cl == ' ')
		cl++;
	content_length = strtoul(cl, &num_end, 10);
	assert_true(num_end > cl);
	assert_memory_equal(num_end, "\r\n", 2);
	assert_int_equal(content_length, body_len);
	assert_true(body_len > 0);
	/* The body tells the user what to do. */
	assert_non_null(strstr(end + 4, "https://"));
}

static void reply_http_sends_400_with_matching_length_then_eof(void **state)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: localhost:8443\r\n\r\n";
	struct pair *p = *state;
	char resp[4096];
	size_t len;

	assert_int_equal(write(p->client, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	assert_int_equal(atlas_sniff_reply_http(p->server), 0);
	len = read_to_eof(p->client, resp, sizeof(resp));
	assert_http_400(resp, len);
}

/* The request already sent is read off the server socket, so close() sends no reset. */
static void reply_http_drains_what_the_client_sent(void **state)
{
	static const char req[] = "POST /upload HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
	struct pair *p = *state;
	char resp[4096], rest[16];

	assert_int_equal(write(p->client, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	assert_int_equal(atlas_sniff_reply_http(p->server), 0);
	assert_http_400(resp, read_to_eof(p->client, resp, sizeof(resp)));
	assert_int_equal(recv(p->server, rest, sizeof(rest), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

static void reply_http_without_request_bytes_still_answers(void **state)
{
	struct pair *p = *state;
	char resp[4096];

	assert_int_equal(atlas_sniff_reply_http(p->server), 0);
	assert_http_400(resp, read_to_eof(p->client, resp, sizeof(resp)));
}

static void reply_http_to_a_closed_peer_fails_with_epipe(void **state)
{
	struct pair *p = *state;

	close(p->client);
	p->client = -1;
	errno = 0;
	assert_int_equal(atlas_sniff_reply_http(p->server), -1);
	assert_int_equal(errno, EPIPE);
}

/* A TCP socket reset by its peer fails shutdown() too (ENOTCONN): send's errno must win. */
static int fake_shutdown_enotconn(int fd, int how)
{
	(void)fd;
	(void)how;
	errno = ENOTCONN;
	return -1;
}

static void reply_http_reports_send_errno_when_shutdown_also_fails(void **state)
{
	struct pair *p = *state;

	close(p->client);
	p->client = -1;
	atlas_real.shutdown = fake_shutdown_enotconn;
	errno = 0;
	assert_int_equal(atlas_sniff_reply_http(p->server), -1);
	assert_int_equal(errno, EPIPE);
}

/* A socket buffer that takes only part of the answer: -1 EAGAIN, never a silent success. */
static ssize_t fake_send_short(int fd, const void *buf, size_t len, int flags)
{
	(void)fd;
	(void)buf;
	(void)flags;
	return len > 10 ? 10 : (ssize_t)len;
}

static void reply_http_short_send_fails_with_eagain(void **state)
{
	struct pair *p = *state;

	atlas_real.send = fake_send_short;
	errno = 0;
	assert_int_equal(atlas_sniff_reply_http(p->server), -1);
	assert_int_equal(errno, EAGAIN);
}

#define T(f)  cmocka_unit_test(f)
#define TP(f) cmocka_unit_test_setup_teardown(f, setup_pair, teardown_pair)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(classify_empty_needs_more),
		T(classify_handshake_type_alone_needs_more),
		T(classify_handshake_record_v3_is_tls),
		T(classify_handshake_record_other_version_is_other),
		T(classify_other_record_types_are_other),
		T(classify_every_method_with_its_space_is_http),
		T(classify_request_line_is_http),
		T(classify_method_prefixes_need_more),
		T(classify_method_without_space_is_other),
		T(classify_lowercase_method_is_other),
		T(classify_random_bytes_are_other),
		T(classify_sslv2_hello_is_other),
		T(classify_reads_only_len_bytes),
		TP(reply_http_sends_400_with_matching_length_then_eof),
		TP(reply_http_drains_what_the_client_sent),
		TP(reply_http_without_request_bytes_still_answers),
		TP(reply_http_to_a_closed_peer_fails_with_epipe),
		TP(reply_http_reports_send_errno_when_shutdown_also_fails),
		TP(reply_http_short_send_fails_with_eagain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
