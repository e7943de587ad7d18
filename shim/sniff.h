/*
 * The first-bytes classifier: is what a client sent on a TLS port a TLS
 * record, a plain HTTP request, or something else? Pure, so it can be fuzzed.
 */
#ifndef ATLAS_SNIFF_H
#define ATLAS_SNIFF_H

#include <stddef.h>
#include <sys/types.h>

enum atlas_sniff_kind {
	ATLAS_SNIFF_NEED_MORE, /* too few bytes to tell */
	ATLAS_SNIFF_TLS,       /* a TLS handshake record header */
	ATLAS_SNIFF_HTTP,      /* an HTTP/1.x request line or the HTTP/2 preface */
	ATLAS_SNIFF_OTHER,     /* anything else: refused without a word */
};

/* Classifies the first len bytes a client sent (len may be 0). */
enum atlas_sniff_kind atlas_sniff_classify(const unsigned char *buf, size_t len);

/*
 * Answers a plain HTTP request on a TLS port the way nginx does: reads what
 * the client already sent (so closing does not reset the answer away), sends
 * "HTTP/1.1 400" with a one-line body saying the port needs https, then a FIN.
 * Never blocks. Returns 0, or -1 with errno if the answer could not be sent.
 */
int atlas_sniff_reply_http(int fd);

#endif
