#define _GNU_SOURCE
#include "sniff.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "real.h"

/* RFC 8446 section 5.1: ContentType handshake(22), legacy_record_version 0x03xx. */
#define TLS_RECORD_HANDSHAKE 0x16
#define TLS_MAJOR_VERSION    0x03

/* Request methods of RFC 9110 section 9, and "PRI" of the HTTP/2 preface (RFC 9113 section 3.4). */
static const char *const http_methods[] = {
	"GET ",	    "HEAD ",  "POST ",	  "PUT ",   "DELETE ",
	"OPTIONS ", "PATCH ", "CONNECT ", "TRACE ", "PRI ",
};

static enum atlas_sniff_kind classify_http(const unsigned char *buf, size_t len)
{
	bool could_be = false;

	for (size_t i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++) {
		size_t mlen = strlen(http_methods[i]);
		size_t n = len < mlen ? len : mlen;

		if (memcmp(buf, http_methods[i], n) != 0)
			continue;
		if (len >= mlen)
			return ATLAS_SNIFF_HTTP;
		could_be = true;
	}
	return could_be ? ATLAS_SNIFF_NEED_MORE : ATLAS_SNIFF_OTHER;
}

enum atlas_sniff_kind atlas_sniff_classify(const unsigned char *buf, size_t len)
{
	if (len == 0)
		return ATLAS_SNIFF_NEED_MORE;
	if (buf[0] == TLS_RECORD_HANDSHAKE) {
		if (len < 2)
			return ATLAS_SNIFF_NEED_MORE;
		return buf[1] == TLS_MAJOR_VERSION ? ATLAS_SNIFF_TLS : ATLAS_SNIFF_OTHER;
	}
	return classify_http(buf, len);
}

static const char http_400[] = "HTTP/1.1 400 Bad Request\r\n"
			       "Content-Type: text/plain\r\n"
			       "Content-Length: 49\r\n"
			       "Connection: close\r\n"
			       "\r\n"
			       "This port requires TLS: use https:// to reach it\n";

int atlas_sniff_reply_http(int fd)
{
	char sink[4096];
	ssize_t n;
	int saved;

	/* Read what has arrived of the request: unread data turns our close into a reset. */
	for (int i = 0; i < 4; i++) {
		n = atlas_real.recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n < (ssize_t)sizeof(sink))
			break;
	}
	n = atlas_real.send(fd, http_400, sizeof(http_400) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	saved = errno; /* shutdown() below must not overwrite why send() failed */
	atlas_real.shutdown(fd, SHUT_WR);
	if (n != (ssize_t)sizeof(http_400) - 1) {
		errno = n >= 0 ? EAGAIN : saved;
		return -1;
	}
	return 0;
}
