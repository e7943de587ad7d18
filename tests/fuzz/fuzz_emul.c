/*
 * Fuzz target: sendfile(2) and splice(2) emulation (shim/emul.c).
 *
 * Everything is faked in memory, through the seams the module has: the sink
 * and source (the TLS connection's two sides) and the table of real functions
 * (pread and lseek on the file, read, write and poll on the pipes). The input
 * is a script of calls (sendfile with or without an offset, splice into and
 * out of the connection, their sizes, offsets and flags) and of what each
 * fake does when called: a full or a short count, EAGAIN, an error.
 *
 * Invariants, from README "sendfile and splice" and emul.h: the sink receives
 * exactly the next bytes of the file (or of the pipe), in order, none twice,
 * none skipped; a call returns what the sink took and moves *offset or the
 * file position by that much and no more, so a retry after EAGAIN resends the
 * same bytes; -1 means nothing moved; a short count has a reason (the sink
 * took less, a read failed, end of file); splice moves at most one chunk,
 * consumes from the connection exactly what the pipe took, and refuses a pipe
 * offset with ESPIPE.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emul.h"
#include "fuzz.h"
#include "real.h"
#include "stub_init.h"

#define FILE_FD	    9001 /* fake fds: never real ones */
#define PIPE_IN_FD  9002
#define PIPE_OUT_FD 9003

static struct fuzz_input in; /* the fakes draw their behaviour from the input too */

/* Bytes that do not repeat at a chunk boundary, so a misplaced one shows. */
static uint8_t file_byte(uint64_t off)
{
	return (uint8_t)((off * 2654435761u) >> 13 ^ off >> 9);
}

static uint8_t pipe_byte(uint64_t i)
{
	return (uint8_t)(i * 131 + (i >> 8) * 7 + 1);
}

static uint8_t src_byte(uint64_t i)
{
	return (uint8_t)(i * 197 + (i >> 10) + 5);
}

/* The file: size, position, and whether it is a pipe in disguise (no pread). */
static struct {
	off_t size, pos;
	bool unseekable;
	bool read_failed; /* a pread failed during this call */
	unsigned seeks;	  /* lseek(SEEK_SET) calls during this call */
} file;

/* The connection's send side: what it took must be the next bytes expected. */
static struct {
	uint8_t (*byte)(uint64_t); /* the stream being sent: file or pipe */
	uint64_t next;		   /* index in it of the next byte the sink must get */
	size_t taken;		   /* bytes taken during this call */
	bool shortfall;		   /* took less than offered, or failed, during this call */
	bool must_complete;	   /* what the last send asked */
	unsigned sends;
	size_t most; /* the most one send may be offered: a read of sendfile's, or a chunk */
} sink;

/* The pipe into the connection (splice_to) and the one out of it (splice_from). */
static struct {
	uint64_t head, tail; /* bytes [head, tail) of pipe_byte wait in it */
	bool writer_gone;    /* read at empty returns 0 (else EAGAIN) */
} pin;

static struct {
	size_t fill, cap;
} pout;

/* The connection's receive side: decrypted bytes [consumed, end) of src_byte. */
static struct {
	uint64_t consumed, end;
	bool peer_closed;
	size_t peeked; /* the last peek's count: consume may not take more */
} src;

static ssize_t fake_send(void *ctx, const void *buf, size_t len, bool must_complete)
{
	const uint8_t *b = buf;
	uint8_t how = fuzz_u8(&in);
	size_t n;

	(void)ctx;
	/* sendfile: the first read of a call one chunk, then up to ATLAS_EMUL_READ. */
	FUZZ_CHECK(len > 0 && len <= (sink.sends == 0 ? ATLAS_EMUL_CHUNK : sink.most));
	sink.sends++;
	sink.must_complete = must_complete;
	if (how % 8 == 0 || how % 8 == 1) {
		sink.shortfall = true;
		errno = how % 8 == 0 && !must_complete ? EAGAIN : EPIPE;
		return -1;
	}
	/* must_complete: all of it or a failure (the real sink waits); else what fits. */
	n = len;
	if (!must_complete && how % 8 != 2) {
		size_t cap = ((size_t)(how >> 3) + 1) * 512;
		n = len < cap ? len : cap;
	}
	if (n < len)
		sink.shortfall = true;
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(b[i] == sink.byte(sink.next + i)); /* the next bytes, in order */
	sink.next += n;
	sink.taken += n;
	return (ssize_t)n;
}

static int fake_ready(void *ctx)
{
	(void)ctx;
	if (fuzz_u8(&in) % 4 == 0) {
		errno = EAGAIN;
		return -1;
	}
	return 0;
}

static ssize_t fake_pread(int fd, void *buf, size_t len, off_t pos)
{
	uint8_t how = fuzz_u8(&in);
	off_t end;
	size_t n;

	FUZZ_CHECK(fd == FILE_FD);
	FUZZ_CHECK(len > 0 && len <= ATLAS_EMUL_READ);
	if (file.unseekable) {
		file.read_failed = true;
		errno = ESPIPE;
		return -1;
	}
	/* pread(2) and rw_verify_area(): a negative or overflowing range is EINVAL. */
	if (pos < 0 || __builtin_add_overflow(pos, (off_t)len, &end)) {
		file.read_failed = true;
		errno = EINVAL;
		return -1;
	}
	if (how % 16 == 0 || how % 16 == 1) {
		file.read_failed = true;
		errno = how % 16 == 0 ? EIO : EINTR;
		return -1;
	}
	if (pos >= file.size)
		return 0;
	n = (size_t)(file.size - pos) < len ? (size_t)(file.size - pos) : len;
	if (how % 16 == 2 && n > 1)
		n = n / 2 + 1; /* a short read: a file being truncated, a slow filesystem */
	for (size_t i = 0; i < n; i++)
		((uint8_t *)buf)[i] = file_byte((uint64_t)pos + i);
	return (ssize_t)n;
}

static off_t fake_lseek(int fd, off_t off, int whence)
{
	FUZZ_CHECK(fd == FILE_FD);
	if (file.unseekable) {
		errno = ESPIPE;
		return -1;
	}
	if (whence == SEEK_CUR) {
		FUZZ_CHECK(off == 0);
		return file.pos;
	}
	FUZZ_CHECK(whence == SEEK_SET && off >= 0);
	file.seeks++;
	file.pos = off;
	return off;
}

static ssize_t fake_read(int fd, void *buf, size_t len)
{
	uint64_t avail = pin.tail - pin.head;
	uint8_t how = fuzz_u8(&in);
	size_t n;

	FUZZ_CHECK(fd == PIPE_IN_FD);
	FUZZ_CHECK(len > 0 && len <= ATLAS_EMUL_CHUNK);
	if (how % 8 == 0) {
		errno = EINTR;
		return -1;
	}
	if (avail == 0) {
		if (pin.writer_gone)
			return 0;
		errno = EAGAIN;
		return -1;
	}
	n = avail < len ? (size_t)avail : len;
	for (size_t i = 0; i < n; i++)
		((uint8_t *)buf)[i] = pipe_byte(pin.head + i);
	pin.head += n;
	return (ssize_t)n;
}

static ssize_t fake_write(int fd, const void *buf, size_t len)
{
	size_t room = pout.cap - pout.fill, n;

	FUZZ_CHECK(fd == PIPE_OUT_FD);
	FUZZ_CHECK(len > 0 && len <= src.peeked);
	if (room == 0) {
		errno = EAGAIN;
		return -1;
	}
	n = len < room ? len : room;
	/* The pipe gets the connection's next bytes: peeked, not yet consumed. */
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(((const uint8_t *)buf)[i] == src_byte(src.consumed + i));
	pout.fill += n;
	return (ssize_t)n;
}

static int fake_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	FUZZ_CHECK(nfds == 1 && timeout == 0); /* SPLICE_F_NONBLOCK: a look, never a wait */
	fds[0].revents = 0;
	if (fds[0].fd == PIPE_IN_FD && (fds[0].events & POLLIN))
		fds[0].revents = pin.tail > pin.head ? POLLIN : pin.writer_gone ? POLLHUP : 0;
	else if (fds[0].fd == PIPE_OUT_FD && (fds[0].events & POLLOUT))
		fds[0].revents = pout.fill < pout.cap ? POLLOUT : 0;
	else
		FUZZ_CHECK(!"poll on an fd emul has no business with");
	return fds[0].revents != 0;
}

static ssize_t fake_peek(void *ctx, void *buf, size_t len)
{
	uint64_t avail = src.end - src.consumed;
	uint8_t how = fuzz_u8(&in);
	size_t n;

	(void)ctx;
	FUZZ_CHECK(len > 0 && len <= ATLAS_EMUL_CHUNK);
	src.peeked = 0;
	if (how % 4 == 0 || (avail == 0 && !src.peer_closed)) {
		errno = EAGAIN;
		return -1;
	}
	n = avail < len ? (size_t)avail : len;
	if (how % 4 == 1 && n > 1)
		n = n / 3 + 1; /* what one TLS record held */
	for (size_t i = 0; i < n; i++)
		((uint8_t *)buf)[i] = src_byte(src.consumed + i);
	src.peeked = n;
	return (ssize_t)n;
}

static ssize_t fake_consume(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	FUZZ_CHECK(len > 0 && len <= src.peeked); /* only what was peeked */
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = src_byte(src.consumed + i);
	src.consumed += len;
	src.peeked = 0;
	return (ssize_t)len;
}

static const struct atlas_emul_sink the_sink = { .send = fake_send, .ready = fake_ready };
static const struct atlas_emul_source the_source = { .peek = fake_peek, .consume = fake_consume };

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	atlas_real_init();
	atlas_real.pread = fake_pread;
	atlas_real.lseek = fake_lseek;
	atlas_real.read = fake_read;
	atlas_real.write = fake_write;
	atlas_real.poll = fake_poll;
	return 0;
}

/* An offset or a size: mostly small, sometimes at the edges of its type. */
static uint64_t pick(uint8_t how, uint64_t small_max)
{
	uint64_t v = fuzz_u64(&in);

	switch (how % 4) {
	case 0:
	case 1:
		return v % (small_max + 1);
	case 2:
		return INT64_MAX - v % 70000; /* near the largest off_t */
	default:
		return v;
	}
}

static void do_sendfile(void)
{
	uint8_t how = fuzz_u8(&in);
	bool with_offset = how & 1;
	off_t offset = (off_t)pick(how >> 1, 200000), start;
	size_t count = (size_t)pick(how >> 3, 150000);
	off_t pos_before = file.pos;
	int e;
	ssize_t r;

	/* A huge count only where little of the file is left: each run stays short. */
	if (count > 300000 && (file.size < 0 || file.size > 300000))
		count = 300000;
	start = with_offset ? offset : file.pos;
	sink.byte = file_byte;
	sink.most = ATLAS_EMUL_READ;
	sink.next = (uint64_t)start;
	sink.taken = 0;
	sink.shortfall = false;
	sink.sends = 0;
	file.read_failed = false;
	file.seeks = 0;

	errno = 0;
	r = atlas_emul_sendfile(&the_sink, FILE_FD, with_offset ? &offset : NULL, count);
	e = errno;

	FUZZ_CHECK(r >= -1);
	if (sink.sends > 0)
		FUZZ_CHECK(!sink.must_complete); /* sendfile reports a short count instead */
	if (r < 0) {
		FUZZ_CHECK(sink.taken == 0); /* -1: nothing moved */
		FUZZ_CHECK(e == EAGAIN || e == EPIPE || e == EIO || e == EINTR || e == EINVAL);
		FUZZ_CHECK(file.pos == pos_before && file.seeks == 0);
		if (with_offset)
			FUZZ_CHECK(offset == start);
		if (file.unseekable || start < 0)
			FUZZ_CHECK(e == EINVAL); /* sendfile(2): not mmap-able; a negative offset */
		return;
	}
	FUZZ_CHECK((size_t)r == sink.taken && (size_t)r <= count);
	if (with_offset) {
		FUZZ_CHECK(offset == start + r);    /* *offset moves by what was sent */
		FUZZ_CHECK(file.pos == pos_before); /* and the file position not at all */
		FUZZ_CHECK(file.seeks == 0);
	} else {
		FUZZ_CHECK(file.pos == pos_before + r);
	}
	/* A short count has a reason. */
	if ((size_t)r < count && !sink.shortfall && !file.read_failed)
		FUZZ_CHECK(start + r >= file.size);
}

static void do_splice_to(void)
{
	uint8_t how = fuzz_u8(&in);
	size_t len = (size_t)pick(how >> 2, 40000);
	unsigned flags = how & 1 ? SPLICE_F_NONBLOCK : 0;
	loff_t off = 0;
	uint64_t head = pin.head;
	ssize_t r;

	sink.byte = pipe_byte;
	sink.most = ATLAS_EMUL_CHUNK;
	sink.sends = 0;
	sink.next = pin.head;
	sink.taken = 0;
	sink.shortfall = false;
	errno = 0;
	r = atlas_emul_splice_to(&the_sink, PIPE_IN_FD, how & 2 ? &off : NULL, len, flags);
	if (how & 2) {
		FUZZ_CHECK(r == -1 && errno == ESPIPE && pin.head == head);
		return;
	}
	FUZZ_CHECK(r >= -1 && r <= ATLAS_EMUL_CHUNK && (r < 0 || (size_t)r <= len));
	if (r > 0) {
		/* Everything taken from the pipe went out, whole. */
		FUZZ_CHECK(sink.must_complete);
		FUZZ_CHECK((uint64_t)r == pin.head - head && (size_t)r == sink.taken);
	} else if (r == 0) {
		FUZZ_CHECK(len == 0 || (pin.writer_gone && pin.head == pin.tail));
		FUZZ_CHECK(sink.taken == 0);
	} else {
		FUZZ_CHECK(sink.taken == 0);
		/* Taken from the pipe and lost only when the connection failed for good. */
		if (pin.head != head)
			FUZZ_CHECK(errno == EPIPE);
		else
			FUZZ_CHECK(errno == EAGAIN || errno == EINTR);
	}
}

static void do_splice_from(void)
{
	uint8_t how = fuzz_u8(&in);
	size_t len = (size_t)pick(how >> 2, 40000);
	unsigned flags = how & 1 ? SPLICE_F_NONBLOCK : 0;
	loff_t off = 0;
	uint64_t consumed = src.consumed;
	size_t fill = pout.fill;
	ssize_t r;

	src.peeked = 0;
	errno = 0;
	r = atlas_emul_splice_from(&the_source, PIPE_OUT_FD, how & 2 ? &off : NULL, len, flags);
	if (how & 2) {
		FUZZ_CHECK(r == -1 && errno == ESPIPE && src.consumed == consumed);
		return;
	}
	FUZZ_CHECK(r >= -1 && r <= ATLAS_EMUL_CHUNK && (r < 0 || (size_t)r <= len));
	/* The connection gave up exactly what the pipe took. */
	FUZZ_CHECK(src.consumed - consumed == pout.fill - fill);
	FUZZ_CHECK(r < 0 ? src.consumed == consumed : (uint64_t)r == src.consumed - consumed);
	if (r == 0)
		FUZZ_CHECK(len == 0 || (src.peer_closed && src.consumed == src.end));
	if (r < 0)
		FUZZ_CHECK(errno == EAGAIN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t setup;

	in = fuzz_input(data, size);
	setup = fuzz_u8(&in);
	memset(&file, 0, sizeof(file));
	memset(&sink, 0, sizeof(sink));
	memset(&pin, 0, sizeof(pin));
	memset(&src, 0, sizeof(src));
	file.unseekable = setup % 16 == 0;
	file.size = (off_t)pick(setup >> 4, 120000);
	if (file.size < 0)
		file.size = -(file.size + 1);
	file.pos = (off_t)(fuzz_u64(&in) % 140000);
	pin.writer_gone = setup & 2;
	src.peer_closed = setup & 4;
	pout.cap = 4096 + (size_t)(fuzz_u8(&in)) * 256;
	pout.fill = 0;

	for (int steps = 0; fuzz_left(&in) > 0 && steps < 64; steps++) {
		uint8_t op = fuzz_u8(&in);

		switch (op % 6) {
		case 0:
		case 1:
			do_sendfile();
			break;
		case 2:
			pin.tail += fuzz_u16(&in); /* the host writes into its pipe */
			do_splice_to();
			break;
		case 3:
			src.end += fuzz_u16(&in); /* the client sends more */
			do_splice_from();
			break;
		case 4:
			pout.fill -= pout.fill < 1000 ? pout.fill : fuzz_u16(&in) % pout.fill;
			do_splice_from();
			break;
		default: /* the host moves the file position itself */
			file.pos = (off_t)(fuzz_u64(&in) % 140000);
			break;
		}
	}
	return 0;
}
