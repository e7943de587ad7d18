/*
 * tests/uml/ktls-probe.c: proves that the running kernel does kernel TLS, the
 * way Atlas will use it: the "tls" TCP ULP, TLS_TX and TLS_RX keys from
 * linux/tls.h, records that OpenSSL agrees with byte for byte, sendfile(),
 * control records through cmsg, and the /proc/net/tls_stat counters.
 *
 *   cc -O2 -o ktls-probe tests/uml/ktls-probe.c -lcrypto && ./ktls-probe
 *
 * Meant to run inside User-Mode Linux (tests/uml/run.sh): the host kernel has
 * no kTLS. Prints one "ok - ..." or "not ok - ..." line per check, "# ..." lines
 * for diagnostics, and exits 0 only if every check passed. Every connection is a
 * TCP pair over 127.0.0.1 with fixed keys: no handshake, no certificates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <linux/tls.h>

#include <openssl/evp.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

#define REC_DATA      23
#define REC_ALERT     21
#define TAG_LEN	      16
#define IO_TIMEOUT_MS 10000
#define BIG_LEN	      (200 * 1024)

static int failures;

static void result(bool pass, const char *fmt, ...)
{
	va_list ap;

	printf("%s - ", pass ? "ok" : "not ok");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (!pass)
		failures++;
}

static void diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void on_alarm(int sig)
{
	static const char msg[] = "not ok - ktls-probe: still running after 60 s, gave up\n";

	(void)sig;
	(void)!write(1, msg, sizeof(msg) - 1);
	_exit(1);
}

/* ---- cipher suites and their fixed key material ---------------------------------- */

struct suite {
	const char *name;
	uint16_t version;
	uint16_t cipher;
	size_t key_len;
	bool gcm; /* AES-GCM: 4-byte salt + 8-byte iv; ChaCha20-Poly1305: 12-byte iv */
};

static const struct suite suites[] = {
	{ "TLS 1.2 AES-GCM-128", TLS_1_2_VERSION, TLS_CIPHER_AES_GCM_128, 16, true },
	{ "TLS 1.2 AES-GCM-256", TLS_1_2_VERSION, TLS_CIPHER_AES_GCM_256, 32, true },
	{ "TLS 1.2 ChaCha20-Poly1305", TLS_1_2_VERSION, TLS_CIPHER_CHACHA20_POLY1305, 32, false },
	{ "TLS 1.3 AES-GCM-128", TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_128, 16, true },
	{ "TLS 1.3 AES-GCM-256", TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_256, 32, true },
	{ "TLS 1.3 ChaCha20-Poly1305", TLS_1_3_VERSION, TLS_CIPHER_CHACHA20_POLY1305, 32, false },
};
#define N_SUITES (sizeof(suites) / sizeof(suites[0]))

static const unsigned char fixed_key[32] = {
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
	0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a,
	0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0,
};
static const unsigned char fixed_salt[4] = { 0xca, 0xfe, 0xba, 0xbe };
static const unsigned char fixed_iv[12] = { 0xde, 0xad, 0xbe, 0xef, 0x01, 0x23,
					    0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };

union crypto_info {
	struct tls_crypto_info info;
	struct tls12_crypto_info_aes_gcm_128 gcm128;
	struct tls12_crypto_info_aes_gcm_256 gcm256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

static void put_be64(unsigned char out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)v;
}

/* The TLS_TX/TLS_RX argument for a suite, starting at record sequence number seq. */
static socklen_t crypto_info_for(const struct suite *s, uint64_t seq, union crypto_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	ci->info.version = s->version;
	ci->info.cipher_type = s->cipher;
	switch (s->cipher) {
	case TLS_CIPHER_AES_GCM_128:
		memcpy(ci->gcm128.key, fixed_key, 16);
		memcpy(ci->gcm128.salt, fixed_salt, 4);
		memcpy(ci->gcm128.iv, fixed_iv, 8);
		put_be64(ci->gcm128.rec_seq, seq);
		return sizeof(ci->gcm128);
	case TLS_CIPHER_AES_GCM_256:
		memcpy(ci->gcm256.key, fixed_key, 32);
		memcpy(ci->gcm256.salt, fixed_salt, 4);
		memcpy(ci->gcm256.iv, fixed_iv, 8);
		put_be64(ci->gcm256.rec_seq, seq);
		return sizeof(ci->gcm256);
	default:
		memcpy(ci->chacha.key, fixed_key, 32);
		memcpy(ci->chacha.iv, fixed_iv, 12);
		put_be64(ci->chacha.rec_seq, seq);
		return sizeof(ci->chacha);
	}
}

/* ---- sockets ----------------------------------------------------------------------- */

/* A connected TCP pair over 127.0.0.1: fd[0] the client, fd[1] the accepted side. */
static bool tcp_pair(int fd[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	fd[0] = fd[1] = -1;
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &alen) < 0)
		goto fail;
	fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd[0] < 0 || connect(fd[0], (struct sockaddr *)&a, sizeof(a)) < 0)
		goto fail;
	fd[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (fd[1] < 0)
		goto fail;
	close(l);
	return true;
fail:
	diag("cannot make a TCP pair over 127.0.0.1: %s", strerror(errno));
	if (l >= 0)
		close(l);
	if (fd[0] >= 0)
		close(fd[0]);
	fd[0] = fd[1] = -1;
	return false;
}

static void close_pair(int fd[2])
{
	if (fd[0] >= 0)
		close(fd[0]);
	if (fd[1] >= 0)
		close(fd[1]);
}

static int tx_sessions, rx_sessions;

/* Attach the tls ULP and install a key in one direction (TLS_TX or TLS_RX). */
static bool ktls_on(int fd, int dir, const struct suite *s, uint64_t seq, char *why, size_t why_len)
{
	union crypto_info ci;
	socklen_t len = crypto_info_for(s, seq, &ci);
	char ulp[16] = "";
	socklen_t ulp_len = sizeof(ulp);

	/* Attaching twice fails with EEXIST: look first. */
	if ((getsockopt(fd, SOL_TCP, TCP_ULP, ulp, &ulp_len) < 0 || strcmp(ulp, "tls") != 0) &&
	    setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0) {
		snprintf(why, why_len, "setsockopt(TCP_ULP, \"tls\"): %s", strerror(errno));
		return false;
	}
	if (setsockopt(fd, SOL_TLS, dir, &ci, len) < 0) {
		snprintf(why, why_len, "setsockopt(SOL_TLS, %s): %s",
			 dir == TLS_TX ? "TLS_TX" : "TLS_RX", strerror(errno));
		return false;
	}
	if (dir == TLS_TX)
		tx_sessions++;
	else
		rx_sessions++;
	return true;
}

static bool wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, IO_TIMEOUT_MS) == 1;
}

/* Read exactly len bytes (a plain socket: raw records); false on EOF, error or timeout. */
static bool read_full(int fd, unsigned char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n;

		if (!wait_fd(fd, POLLIN)) {
			errno = ETIMEDOUT;
			return false;
		}
		n = read(fd, buf + got, len - got);
		if (n <= 0) {
			if (n == 0)
				errno = EPIPE;
			return false;
		}
		got += (size_t)n;
	}
	return true;
}

static bool write_full(int fd, const unsigned char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

static void pattern(unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(i * 131 + (i >> 8) * 7 + seed);
}

/* ---- records as OpenSSL makes them ---------------------------------------------------- */

static const EVP_CIPHER *evp_cipher(const struct suite *s)
{
	switch (s->cipher) {
	case TLS_CIPHER_AES_GCM_128:
		return EVP_aes_128_gcm();
	case TLS_CIPHER_AES_GCM_256:
		return EVP_aes_256_gcm();
	default:
		return EVP_chacha20_poly1305();
	}
}

static bool tls12_explicit_nonce(const struct suite *s)
{
	return s->version == TLS_1_2_VERSION && s->gcm;
}

/*
 * The 12-byte AEAD nonce of record seq. TLS 1.2 AES-GCM: salt + the 8-byte
 * explicit nonce the record carries (RFC 5288). Otherwise the static IV (salt +
 * iv for AES-GCM, iv for ChaCha20) XOR the sequence number (RFC 8446 5.3, RFC 7905).
 */
static void record_nonce(const struct suite *s, uint64_t seq, const unsigned char explicit_nonce[8],
			 unsigned char nonce[12])
{
	unsigned char be[8];

	if (tls12_explicit_nonce(s)) {
		memcpy(nonce, fixed_salt, 4);
		memcpy(nonce + 4, explicit_nonce, 8);
		return;
	}
	if (s->gcm) {
		memcpy(nonce, fixed_salt, 4);
		memcpy(nonce + 4, fixed_iv, 8);
	} else {
		memcpy(nonce, fixed_iv, 12);
	}
	put_be64(be, seq);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] ^= be[i];
}

static bool aead(bool enc, const struct suite *s, const unsigned char nonce[12],
		 const unsigned char *aad, int aad_len, const unsigned char *in, int in_len,
		 unsigned char *out, unsigned char tag[TAG_LEN])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n, ok = c != NULL;

	ok = ok && EVP_CipherInit_ex(c, evp_cipher(s), NULL, NULL, NULL, enc);
	ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL);
	ok = ok && EVP_CipherInit_ex(c, NULL, NULL, fixed_key, nonce, enc);
	if (!enc)
		ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag);
	ok = ok && EVP_CipherUpdate(c, NULL, &n, aad, aad_len);
	ok = ok && EVP_CipherUpdate(c, out, &n, in, in_len);
	ok = ok && EVP_CipherFinal_ex(c, out + n, &n);
	if (enc)
		ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag);
	EVP_CIPHER_CTX_free(c);
	return ok;
}

/* Build one record of type `type` at sequence number seq; returns its length. */
static size_t make_record(const struct suite *s, uint64_t seq, unsigned char type,
			  const unsigned char *data, size_t len, unsigned char *rec)
{
	unsigned char nonce[12], aad[13], inner[4096 + 1], *p = rec + 5;
	size_t body, in_len = len;
	bool tls13 = s->version == TLS_1_3_VERSION;

	if (len > 4096)
		return 0;
	memcpy(inner, data, len);
	if (tls13)
		inner[in_len++] = type; /* TLSInnerPlaintext: content, then the real type */
	body = (tls12_explicit_nonce(s) ? 8 : 0) + in_len + TAG_LEN;
	rec[0] = tls13 ? REC_DATA : type;
	rec[1] = 3;
	rec[2] = 3;
	rec[3] = (unsigned char)(body >> 8);
	rec[4] = (unsigned char)body;
	if (tls12_explicit_nonce(s)) {
		put_be64(p, seq ^ 0x5a5a5a5a5a5a5a5aULL); /* any value will do: it travels */
		p += 8;
	}
	record_nonce(s, seq, rec + 5, nonce);
	if (tls13) {
		memcpy(aad, rec, 5);
	} else {
		put_be64(aad, seq);
		aad[8] = type;
		aad[9] = 3;
		aad[10] = 3;
		aad[11] = (unsigned char)(len >> 8);
		aad[12] = (unsigned char)len;
	}
	if (!aead(true, s, nonce, aad, tls13 ? 5 : 13, inner, (int)in_len, p, p + in_len))
		return 0;
	return 5 + body;
}

/*
 * Read one record from a plain socket and decrypt it as record seq: the content
 * type goes to *type, the plaintext to out (its length is the return value), -1
 * on failure with a reason in why.
 */
static long read_record(int fd, const struct suite *s, uint64_t seq, unsigned char *type,
			unsigned char *out, char *why, size_t why_len)
{
	unsigned char hdr[5], body[4096 + 256], nonce[12], aad[13], *ct = body;
	size_t body_len, ct_len;
	bool tls13 = s->version == TLS_1_3_VERSION;

	if (!read_full(fd, hdr, 5)) {
		snprintf(why, why_len, "reading a record header: %s", strerror(errno));
		return -1;
	}
	body_len = (size_t)hdr[3] << 8 | hdr[4];
	if (hdr[1] != 3 || hdr[2] != 3 || body_len > sizeof(body) || body_len < TAG_LEN + 1) {
		snprintf(why, why_len, "not a TLS record header: %02x %02x %02x %02x %02x", hdr[0],
			 hdr[1], hdr[2], hdr[3], hdr[4]);
		return -1;
	}
	if (!read_full(fd, body, body_len)) {
		snprintf(why, why_len, "reading a %zu-byte record: %s", body_len, strerror(errno));
		return -1;
	}
	if (tls12_explicit_nonce(s))
		ct += 8;
	ct_len = body_len - (size_t)(ct - body) - TAG_LEN;
	record_nonce(s, seq, body, nonce);
	if (tls13) {
		memcpy(aad, hdr, 5);
	} else {
		put_be64(aad, seq);
		aad[8] = hdr[0];
		aad[9] = 3;
		aad[10] = 3;
		aad[11] = (unsigned char)(ct_len >> 8);
		aad[12] = (unsigned char)ct_len;
	}
	if (!aead(false, s, nonce, aad, tls13 ? 5 : 13, ct, (int)ct_len, out, ct + ct_len)) {
		snprintf(why, why_len, "record %llu (type %u, %zu bytes) does not decrypt",
			 (unsigned long long)seq, hdr[0], body_len);
		return -1;
	}
	*type = hdr[0];
	if (tls13) {
		while (ct_len > 0 && out[ct_len - 1] == 0)
			ct_len--; /* padding */
		if (hdr[0] != REC_DATA || ct_len == 0) {
			snprintf(why, why_len, "TLS 1.3 record with outer type %u or no inner type",
				 hdr[0]);
			return -1;
		}
		*type = out[--ct_len];
	}
	return (long)ct_len;
}

/* ---- kTLS data transfer ------------------------------------------------------------------ */

/*
 * Send len bytes of pattern through tx (a child process does the sending, with
 * send() or sendfile() from a memfd) and receive them on rx; true if they all
 * arrive intact. why gets the reason otherwise.
 */
static bool transfer(int tx, int rx, size_t len, bool use_sendfile, char *why, size_t why_len)
{
	static unsigned char want[BIG_LEN], got[BIG_LEN];
	size_t have = 0;
	int status;
	pid_t pid;

	pattern(want, len, (unsigned)len);
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		snprintf(why, why_len, "fork: %s", strerror(errno));
		return false;
	}
	if (pid == 0) {
		if (use_sendfile) {
			int mfd = memfd_create("ktls-probe", 0);
			off_t off = 0;

			if (mfd < 0 || !write_full(mfd, want, len))
				_exit(2);
			while ((size_t)off < len)
				if (sendfile(tx, mfd, &off, len - (size_t)off) <= 0)
					_exit(3);
		} else if (!write_full(tx, want, len)) {
			_exit(4);
		}
		_exit(0);
	}
	while (have < len) {
		ssize_t n;

		if (!wait_fd(rx, POLLIN)) {
			snprintf(why, why_len, "nothing to read for %d s after %zu of %zu bytes",
				 IO_TIMEOUT_MS / 1000, have, len);
			break;
		}
		n = recv(rx, got + have, len - have, 0);
		if (n <= 0) {
			snprintf(why, why_len, "recv after %zu of %zu bytes: %s", have, len,
				 n == 0 ? "end of stream" : strerror(errno));
			break;
		}
		have += (size_t)n;
	}
	if (have < len)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	if (have < len)
		return false;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(why, why_len, "the sender failed (%s, status 0x%x)",
			 use_sendfile ? "sendfile" : "write", status);
		return false;
	}
	if (memcmp(want, got, len) != 0) {
		snprintf(why, why_len, "the bytes received differ from the bytes sent");
		return false;
	}
	return true;
}

/* ---- the checks ------------------------------------------------------------------------------ */

static bool ulp_listed(void)
{
	char buf[256] = "";
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
	bool found = false;

	if (f != NULL) {
		if (fgets(buf, sizeof(buf), f) == NULL)
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
	for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save))
		found = found || strcmp(t, "tls") == 0;
	result(found, "the tls ULP is available (/proc/sys/net/ipv4/tcp_available_ulp)");
	return found;
}

struct tls_stat {
	bool read;
	long tx_sw, rx_sw, curr_tx_sw, curr_rx_sw, decrypt_error;
};

static struct tls_stat read_tls_stat(void)
{
	struct tls_stat st = { 0 };
	char name[64];
	long v;
	FILE *f = fopen("/proc/net/tls_stat", "r");

	if (f == NULL)
		return st;
	st.read = true;
	while (fscanf(f, "%63s %ld", name, &v) == 2) {
		if (strcmp(name, "TlsTxSw") == 0)
			st.tx_sw = v;
		else if (strcmp(name, "TlsRxSw") == 0)
			st.rx_sw = v;
		else if (strcmp(name, "TlsCurrTxSw") == 0)
			st.curr_tx_sw = v;
		else if (strcmp(name, "TlsCurrRxSw") == 0)
			st.curr_rx_sw = v;
		else if (strcmp(name, "TlsDecryptError") == 0)
			st.decrypt_error = v;
	}
	fclose(f);
	return st;
}

/* kTLS TX on one side, kTLS RX on the other: BIG_LEN bytes through write(). */
static void check_round_trip(const struct suite *s)
{
	int fd[2];
	char why[256] = "";
	bool pass = tcp_pair(fd) && ktls_on(fd[0], TLS_TX, s, 0, why, sizeof(why)) &&
		    ktls_on(fd[1], TLS_RX, s, 0, why, sizeof(why)) &&
		    transfer(fd[0], fd[1], BIG_LEN, false, why, sizeof(why));

	result(pass, "%s: %d bytes written through kTLS TX read back through kTLS RX%s%s", s->name,
	       BIG_LEN, pass ? "" : ": ", why);
	close_pair(fd);
}

/* The records kTLS TX writes are the ones OpenSSL would: decrypt two of them. */
static void check_tx_wire(const struct suite *s)
{
	int fd[2];
	char why[256] = "";
	unsigned char msg[1000], out[4096 + 256], type = 0;
	uint64_t seq = 1;
	bool pass = tcp_pair(fd) && ktls_on(fd[0], TLS_TX, s, seq, why, sizeof(why));

	for (int i = 0; pass && i < 2; i++, seq++) {
		long n;

		pattern(msg, sizeof(msg), 40 + (unsigned)i);
		if (!write_full(fd[0], msg, sizeof(msg))) {
			snprintf(why, sizeof(why), "write: %s", strerror(errno));
			pass = false;
			break;
		}
		n = read_record(fd[1], s, seq, &type, out, why, sizeof(why));
		if (n < 0) {
			pass = false;
		} else if (type != REC_DATA || (size_t)n != sizeof(msg) ||
			   memcmp(out, msg, sizeof(msg))) {
			snprintf(why, sizeof(why),
				 "record %llu: type %u, %ld bytes, not the bytes sent",
				 (unsigned long long)seq, type, n);
			pass = false;
		}
	}
	result(pass,
	       "%s: the records kTLS TX sends decrypt with OpenSSL (sequence numbers 1, 2)%s%s",
	       s->name, pass ? "" : ": ", why);
	close_pair(fd);
}

/* kTLS RX decrypts records made by OpenSSL. */
static void check_rx_wire(const struct suite *s)
{
	int fd[2];
	char why[256] = "";
	unsigned char msg[2][1000], rec[4096 + 256], got[2000];
	size_t have = 0;
	bool pass = tcp_pair(fd) && ktls_on(fd[1], TLS_RX, s, 1, why, sizeof(why));

	for (int i = 0; pass && i < 2; i++) {
		size_t n;

		pattern(msg[i], sizeof(msg[i]), 80 + (unsigned)i);
		n = make_record(s, 1 + (uint64_t)i, REC_DATA, msg[i], sizeof(msg[i]), rec);
		if (n == 0 || !write_full(fd[0], rec, n)) {
			snprintf(why, sizeof(why), "cannot make or send record %d", i + 1);
			pass = false;
		}
	}
	while (pass && have < sizeof(got)) {
		ssize_t n = wait_fd(fd[1], POLLIN) ? recv(fd[1], got + have, sizeof(got) - have, 0)
						   : -2;

		if (n <= 0) {
			snprintf(why, sizeof(why), "recv after %zu bytes: %s", have,
				 n == -2  ? "timed out"
				 : n == 0 ? "end of stream"
					  : strerror(errno));
			pass = false;
		} else {
			have += (size_t)n;
		}
	}
	if (pass && (memcmp(got, msg[0], 1000) || memcmp(got + 1000, msg[1], 1000))) {
		snprintf(why, sizeof(why), "the plaintext differs from what was encrypted");
		pass = false;
	}
	result(pass, "%s: kTLS RX decrypts records made with OpenSSL (sequence numbers 1, 2)%s%s",
	       s->name, pass ? "" : ": ", why);
	close_pair(fd);
}

/* sendfile() from a file into a kTLS TX socket: what serving a static file does. */
static void check_sendfile(const struct suite *s)
{
	int fd[2];
	char why[256] = "";
	bool pass = tcp_pair(fd) && ktls_on(fd[0], TLS_TX, s, 0, why, sizeof(why)) &&
		    ktls_on(fd[1], TLS_RX, s, 0, why, sizeof(why)) &&
		    transfer(fd[0], fd[1], BIG_LEN, true, why, sizeof(why));

	result(pass, "%s: %d bytes sendfile()d into kTLS TX read back through kTLS RX%s%s", s->name,
	       BIG_LEN, pass ? "" : ": ", why);
	close_pair(fd);
}

/*
 * A control record (an alert) sent with a TLS_SET_RECORD_TYPE cmsg: a plain
 * read() on the kTLS RX side fails with EIO, recvmsg() with a control buffer
 * gets it with its TLS_GET_RECORD_TYPE; then data flows again.
 */
static void check_control_record(const struct suite *s)
{
	int fd[2];
	char why[256] = "", cbuf[CMSG_SPACE(sizeof(unsigned char))];
	unsigned char alert[2] = { 1, 0 }, buf[64], type = 0; /* warning, close_notify */
	struct iovec iov = { .iov_base = alert, .iov_len = sizeof(alert) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;
	bool set_up = tcp_pair(fd) && ktls_on(fd[0], TLS_TX, s, 0, why, sizeof(why)) &&
		      ktls_on(fd[1], TLS_RX, s, 0, why, sizeof(why));
	bool sent = false, eio = false, got = false, data = false;

	if (set_up) {
		memset(cbuf, 0, sizeof(cbuf));
		m.msg_control = cbuf;
		m.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_TLS;
		c->cmsg_type = TLS_SET_RECORD_TYPE;
		c->cmsg_len = CMSG_LEN(sizeof(unsigned char));
		*CMSG_DATA(c) = REC_ALERT;
		sent = sendmsg(fd[0], &m, 0) == (ssize_t)sizeof(alert);
		if (!sent)
			snprintf(why, sizeof(why), "sendmsg(TLS_SET_RECORD_TYPE): %s",
				 strerror(errno));
	}
	if (sent && wait_fd(fd[1], POLLIN)) {
		n = read(fd[1], buf, sizeof(buf));
		eio = n < 0 && errno == EIO;
		if (!eio)
			snprintf(why, sizeof(why), "read() of the alert returned %zd (%s), not EIO",
				 n, n < 0 ? strerror(errno) : "data");
	}
	result(eio, "%s: a plain read() of an alert record under kTLS RX fails with EIO%s%s",
	       s->name, eio ? "" : ": ", why);

	if (sent) {
		memset(&m, 0, sizeof(m));
		iov.iov_base = buf;
		iov.iov_len = sizeof(buf);
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = cbuf;
		m.msg_controllen = sizeof(cbuf);
		n = wait_fd(fd[1], POLLIN) ? recvmsg(fd[1], &m, 0) : -1;
		for (c = n >= 0 ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_TLS && c->cmsg_type == TLS_GET_RECORD_TYPE)
				type = *CMSG_DATA(c);
		got = n == 2 && type == REC_ALERT && buf[0] == 1 && buf[1] == 0;
		if (!got)
			snprintf(why, sizeof(why), "recvmsg returned %zd (%s), record type %u", n,
				 n < 0 ? strerror(errno) : "bytes", type);
	}
	result(got, "%s: recvmsg() gets the alert record with TLS_GET_RECORD_TYPE %d%s%s", s->name,
	       REC_ALERT, got ? "" : ": ", why);

	if (got) {
		char why2[256] = "";

		data = transfer(fd[0], fd[1], 3000, false, why2, sizeof(why2));
		snprintf(why, sizeof(why), "%s", why2);
	}
	result(data, "%s: data records flow again after the alert%s%s", s->name, data ? "" : ": ",
	       why);
	close_pair(fd);
}

/* A record with one flipped bit: kTLS RX refuses it with EBADMSG. */
static void check_tampered(const struct suite *s)
{
	int fd[2];
	char why[256] = "";
	unsigned char msg[100], rec[512], buf[128];
	size_t len = 0;
	ssize_t n = 0;
	bool pass = tcp_pair(fd) && ktls_on(fd[1], TLS_RX, s, 0, why, sizeof(why));

	if (pass) {
		pattern(msg, sizeof(msg), 7);
		len = make_record(s, 0, REC_DATA, msg, sizeof(msg), rec);
		if (len > 0)
			rec[len - TAG_LEN - 10] ^= 0x01; /* in the ciphertext */
		pass = len > 0 && write_full(fd[0], rec, len);
	}
	if (pass) {
		n = wait_fd(fd[1], POLLIN) ? recv(fd[1], buf, sizeof(buf), 0) : 0;
		pass = n < 0 && errno == EBADMSG;
		if (!pass)
			snprintf(why, sizeof(why), "recv returned %zd (%s)", n,
				 n < 0 ? strerror(errno) : "no error");
	}
	result(pass, "%s: kTLS RX refuses a record with a flipped bit (EBADMSG)%s%s", s->name,
	       pass ? "" : ": ", why);
	close_pair(fd);
}

int main(void)
{
	struct tls_stat before, after;

	signal(SIGALRM, on_alarm);
	alarm(60);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	diag("kernel TLS probe, pid %d", (int)getpid());
	ulp_listed();
	before = read_tls_stat();
	result(before.read, "/proc/net/tls_stat exists");

	for (size_t i = 0; i < N_SUITES; i++) {
		check_round_trip(&suites[i]);
		check_tx_wire(&suites[i]);
		check_rx_wire(&suites[i]);
	}
	check_sendfile(&suites[0]);
	check_sendfile(&suites[3]);
	check_control_record(&suites[0]);
	check_control_record(&suites[3]);
	check_tampered(&suites[0]);
	check_tampered(&suites[3]);

	after = read_tls_stat();
	result(after.read && after.tx_sw - before.tx_sw == tx_sessions,
	       "/proc/net/tls_stat: TlsTxSw rose by %ld, one per TLS_TX installed (%d)",
	       after.tx_sw - before.tx_sw, tx_sessions);
	result(after.read && after.rx_sw - before.rx_sw == rx_sessions,
	       "/proc/net/tls_stat: TlsRxSw rose by %ld, one per TLS_RX installed (%d)",
	       after.rx_sw - before.rx_sw, rx_sessions);
	result(after.read && after.decrypt_error - before.decrypt_error == 2,
	       "/proc/net/tls_stat: TlsDecryptError rose by %ld, one per tampered record (2)",
	       after.decrypt_error - before.decrypt_error);
	result(after.read && after.curr_tx_sw == before.curr_tx_sw &&
		       after.curr_rx_sw == before.curr_rx_sw,
	       "/proc/net/tls_stat: no kTLS session left open (TlsCurrTxSw %ld, TlsCurrRxSw %ld)",
	       after.curr_tx_sw, after.curr_rx_sw);

	diag("%d check(s) failed", failures);
	return failures == 0 ? 0 : 1;
}
