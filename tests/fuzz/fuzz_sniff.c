/*
 * Fuzz target: the first-bytes classifier and the plain-HTTP answer
 * (shim/sniff.c).
 *
 * The input is what a client sends first on a TLS port. Every prefix of it is
 * classified, as the engine does while the bytes trickle in, and checked
 * against a reference written from RFC 8446 section 5.1 (a handshake record:
 * 0x16 0x03) and RFC 9110 section 9 (a method and a space). Then the input is
 * sent down a real socketpair and atlas_sniff_reply_http answers it.
 *
 * Invariants: a verdict never changes once given; the verdict is given by
 * ATLAS_SNIFF_MAX bytes (all the engine ever reads); the answer is exactly one
 * well-formed 400 (Content-Length matches its body) followed by end of file,
 * whatever the client sent; no fd is left behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "fuzz.h"
#include "real.h"
#include "sniff.h"
#include "stub_init.h"

/* Methods of RFC 9110 section 9.3 and the HTTP/2 preface's "PRI" (RFC 9113 section 3.4). */
static const char *const methods[] = { "GET",	  "HEAD",    "POST",  "PUT",   "DELETE",
				       "CONNECT", "OPTIONS", "TRACE", "PATCH", "PRI" };

/* What a classifier that read the RFCs says about the first len bytes. */
static enum atlas_sniff_kind reference(const uint8_t *b, size_t len)
{
	bool prefix = false;

	if (len == 0)
		return ATLAS_SNIFF_NEED_MORE;
	if (b[0] == 0x16)
		return len < 2	      ? ATLAS_SNIFF_NEED_MORE
		       : b[1] == 0x03 ? ATLAS_SNIFF_TLS
				      : ATLAS_SNIFF_OTHER;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		size_t m = strlen(methods[i]);

		if (len > m && memcmp(b, methods[i], m) == 0 && b[m] == ' ')
			return ATLAS_SNIFF_HTTP;
		if (len <= m && memcmp(b, methods[i], len) == 0)
			prefix = true;
	}
	return prefix ? ATLAS_SNIFF_NEED_MORE : ATLAS_SNIFF_OTHER;
}

static void check_classifier(const uint8_t *data, size_t size)
{
	enum atlas_sniff_kind verdict = ATLAS_SNIFF_NEED_MORE;

	for (size_t k = 0; k <= size && k <= 2 * ATLAS_SNIFF_MAX; k++) {
		/* An exact-size copy: ASan sees a read past the k bytes it was given. */
		uint8_t *b = malloc(k ? k : 1);
		enum atlas_sniff_kind r;

		FUZZ_CHECK(b != NULL);
		memcpy(b, data, k);
		r = atlas_sniff_classify(b, k);
		free(b);
		FUZZ_CHECK(r == reference(data, k));
		if (verdict != ATLAS_SNIFF_NEED_MORE)
			FUZZ_CHECK(r == verdict); /* more bytes never change a verdict */
		verdict = r;
		if (k >= ATLAS_SNIFF_MAX)
			FUZZ_CHECK(r != ATLAS_SNIFF_NEED_MORE); /* the engine reads no more */
	}
}

/* The whole answer a client reads, then end of file; -1 if it does not end. */
static ssize_t read_answer(int fd, char *buf, size_t len)
{
	size_t got = 0;

	for (;;) {
		ssize_t n = recv(fd, buf + got, len - got, MSG_DONTWAIT);

		if (n == 0)
			return (ssize_t)got;
		if (n < 0 || got + (size_t)n == len)
			return -1;
		got += (size_t)n;
	}
}

static void check_reply(const uint8_t *data, size_t size)
{
	static int first_fd = -1;
	char answer[1024];
	const char *body, *cl;
	ssize_t n;
	int sv[2];

	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	if (first_fd < 0)
		first_fd = sv[0];
	FUZZ_CHECK(sv[0] == first_fd); /* the previous run closed everything it opened */
	/* The client's bytes; a socketpair holds far more than the fuzzer's inputs. */
	FUZZ_CHECK(size == 0 || send(sv[1], data, size, MSG_DONTWAIT) == (ssize_t)size);
	if (data[0] & 1)
		shutdown(sv[1], SHUT_WR); /* a client that already sent its FIN */

	FUZZ_CHECK(atlas_sniff_reply_http(sv[0]) == 0);

	n = read_answer(sv[1], answer, sizeof(answer) - 1);
	FUZZ_CHECK(n > 0);
	answer[n] = '\0';
	FUZZ_CHECK(strncmp(answer, "HTTP/1.1 400 ", 13) == 0);
	body = strstr(answer, "\r\n\r\n");
	cl = strstr(answer, "\r\nContent-Length: ");
	FUZZ_CHECK(body != NULL && cl != NULL && cl < body);
	body += 4;
	FUZZ_CHECK(strtoul(cl + 18, NULL, 10) == strlen(body));
	FUZZ_CHECK(strstr(body, "https://") != NULL);
	FUZZ_CHECK(strstr(answer, "\r\nConnection: close\r\n") != NULL);

	FUZZ_CHECK(close(sv[0]) == 0 && close(sv[1]) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	atlas_real_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_classifier(data, size);
	if (size > 0)
		check_reply(data, size);
	return 0;
}
