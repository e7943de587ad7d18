/*
 * Unit tests for shim/emul.c: sendfile(2) and splice(2) semantics on top of a
 * fake sink and a fake source, with real files (mkstemp) and real pipes.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "emul.h"
#include "real.h"
#include "stub_init.h"

/* Largest file and sink used here: a dozen chunks. */
#define DATA_MAX (12 * ATLAS_EMUL_CHUNK)

/* The connection's send side: records what it was given. */
struct fake_sink {
	unsigned char data[DATA_MAX]; /* every byte taken, in order */
	size_t len;		      /* bytes in data */
	size_t cap;		      /* most bytes one call takes (0: no limit): a full socket */
	bool eagain;		      /* every call fails with EAGAIN now: nothing fits */
	int ok_calls;		      /* calls that succeed before eagain turns on (-1: all) */
	unsigned calls;		      /* send calls */
	size_t max_offer;	      /* the largest len a send call was offered */
	bool must_complete;	      /* must_complete of the last send call */
};

static struct fake_sink sink_state;

static ssize_t fake_send(void *ctx, const void *buf, size_t len, bool must_complete)
{
	struct fake_sink *s = ctx;
	size_t n = len;

	s->calls++;
	s->must_complete = must_complete;
	if (len > s->max_offer)
		s->max_offer = len;
	if (s->ok_calls == 0)
		s->eagain = true;
	if (s->ok_calls > 0)
		s->ok_calls--;
	if (s->eagain) {
		errno = EAGAIN;
		return -1;
	}
	/* must_complete: the real sink waits until everything is out, so the cap does not apply. */
	if (!must_complete && s->cap != 0 && n > s->cap)
		n = s->cap;
	if (n > sizeof(s->data) - s->len)
		fail_msg("fake sink overflow: %zu + %zu bytes", s->len, n);
	memcpy(s->data + s->len, buf, n);
	s->len += n;
	return (ssize_t)n;
}

static int fake_ready(void *ctx)
{
	struct fake_sink *s = ctx;

	if (s->eagain) {
		errno = EAGAIN;
		return -1;
	}
	return 0;
}

static const struct atlas_emul_sink sink = {
	.send = fake_send,
	.ready = fake_ready,
	.ctx = &sink_state,
};

/* The connection's receive side: decrypted bytes waiting to be read. */
struct fake_source {
	unsigned char data[DATA_MAX]; /* the bytes the peer sent */
	size_t len;		      /* bytes in data */
	size_t off;		      /* bytes consumed so far */
	bool eagain;		      /* peek fails with EAGAIN: nothing has arrived */
	unsigned consumes;	      /* consume calls */
};

static struct fake_source src_state;

static ssize_t fake_peek(void *ctx, void *buf, size_t len)
{
	struct fake_source *s = ctx;
	size_t n = s->len - s->off;

	if (s->eagain) {
		errno = EAGAIN;
		return -1;
	}
	if (n > len)
		n = len;
	memcpy(buf, s->data + s->off, n);
	return (ssize_t)n;
}

static ssize_t fake_consume(void *ctx, void *buf, size_t len)
{
	struct fake_source *s = ctx;

	s->consumes++;
	if (len > s->len - s->off)
		fail_msg("consume of %zu bytes with %zu left", len, s->len - s->off);
	memcpy(buf, s->data + s->off, len);
	s->off += len;
	return (ssize_t)len;
}

static const struct atlas_emul_source source = {
	.peek = fake_peek,
	.consume = fake_consume,
	.ctx = &src_state,
};

/* Bytes that never repeat at a chunk or page boundary, so a misplaced byte shows. */
static unsigned char pattern[DATA_MAX];

static void fill_pattern(void)
{
	uint32_t x = 2463534242u;

	for (size_t i = 0; i < sizeof(pattern); i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		pattern[i] = (unsigned char)x;
	}
}

struct fixture {
	int file;    /* a temporary file holding pattern[0..file_size), or -1 */
	int pipe[2]; /* [0] read end, [1] write end */
};

static int setup(void **state)
{
	struct fixture *f = malloc(sizeof(*f));

	atlas_real_init();
	if (f == NULL || pipe2(f->pipe, O_CLOEXEC) < 0) {
		free(f);
		return -1;
	}
	f->file = -1;
	memset(&sink_state, 0, sizeof(sink_state));
	sink_state.ok_calls = -1;
	memset(&src_state, 0, sizeof(src_state));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->file >= 0)
		close(f->file);
	if (f->pipe[0] >= 0)
		close(f->pipe[0]);
	if (f->pipe[1] >= 0)
		close(f->pipe[1]);
	free(f);
	return 0;
}

/* A real file with the first size bytes of the pattern; its position is 0. */
static int make_file(struct fixture *f, size_t size)
{
	char path[] = "/tmp/atlas-test-emul-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_true(size <= sizeof(pattern));
	assert_int_equal(write(fd, pattern, size), (ssize_t)size);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	f->file = fd;
	return fd;
}

static off_t file_position(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

static int pipe_bytes(int fd)
{
	int n = -1;

	assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

static void write_pipe(struct fixture *f, const void *buf, size_t len)
{
	assert_int_equal(write(f->pipe[1], buf, len), (ssize_t)len);
}

static void assert_sink_holds(const unsigned char *want, size_t len)
{
	assert_int_equal(sink_state.len, len);
	assert_memory_equal(sink_state.data, want, len);
}

/* ---- atlas_emul_sendfile ---- */

static void sendfile_with_offset_reads_from_it_and_updates_it(void **state)
{
	struct fixture *f = *state;
	int fd = make_file(f, 1000);
	off_t off = 100;

	assert_int_equal(lseek(fd, 10, SEEK_SET), 10);
	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, 200), 200);
	assert_int_equal(off, 300);
	assert_sink_holds(pattern + 100, 200);
	/* sendfile(2): with an offset, the file position is not changed. */
	assert_int_equal(file_position(fd), 10);
}

static void sendfile_without_offset_uses_and_advances_the_position(void **state)
{
	struct fixture *f = *state;
	int fd = make_file(f, 1000);

	assert_int_equal(lseek(fd, 100, SEEK_SET), 100);
	assert_int_equal(atlas_emul_sendfile(&sink, fd, NULL, 200), 200);
	assert_int_equal(file_position(fd), 300);
	assert_sink_holds(pattern + 100, 200);
	assert_int_equal(atlas_emul_sendfile(&sink, fd, NULL, 50), 50);
	assert_int_equal(file_position(fd), 350);
	assert_sink_holds(pattern + 100, 250);
}

static void sendfile_count_past_eof_stops_at_eof(void **state)
{
	struct fixture *f = *state;
	int fd = make_file(f, 1000);
	off_t off = 900;

	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, 500), 100);
	assert_int_equal(off, 1000);
	assert_sink_holds(pattern + 900, 100);
	sink_state.len = 0;
	assert_int_equal(lseek(fd, 950, SEEK_SET), 950);
	assert_int_equal(atlas_emul_sendfile(&sink, fd, NULL, 500), 50);
	assert_int_equal(file_position(fd), 1000);
	assert_sink_holds(pattern + 950, 50);
}

static void sendfile_count_0_returns_0(void **state)
{
	struct fixture *f = *state;
	int fd = make_file(f, 1000);
	off_t off = 5;

	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, 0), 0);
	assert_int_equal(off, 5);
	assert_int_equal(lseek(fd, 7, SEEK_SET), 7);
	assert_int_equal(atlas_emul_sendfile(&sink, fd, NULL, 0), 0);
	assert_int_equal(file_position(fd), 7);
	assert_int_equal(sink_state.calls, 0);
}

static void sendfile_offset_at_or_past_eof_returns_0(void **state)
{
	struct fixture *f = *state;
	int fd = make_file(f, 1000);
	off_t off = 1000;

	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, 100), 0);
	assert_int_equal(off, 1000);
	off = 5000;
	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, 100), 0);
	assert_int_equal(off, 5000);
	assert_int_equal(lseek(fd, 0, SEEK_END), 1000);
	assert_int_equal(atlas_emul_sendfile(&sink, fd, NULL, 100), 0);
	assert_int_equal(file_position(fd), 1000);
	assert_int_equal(sink_state.len, 0);
}

static void sendfile_partial_sink_advances_only_by_what_it_took(void **state)
{
	struct fixture *f = *state;
	int fd = make_file(f, 1000);
	off_t off = 0;

	sink_state.cap = 100;
	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, 1000), 100);
	assert_int_equal(off, 100);
	assert_sink_holds(pattern, 100);
	/* Without an offset: the file position (still 0) moves by what the sink took. */
	sink_state.len = 0;
	assert_int_equal(atlas_emul_sendfile(&sink, fd, NULL, 1000), 100);
	assert_int_equal(file_position(fd), 100);
	assert_sink_holds(pattern, 100);
}

/* emul.h: "a retried call after EAGAIN re-reads the same bytes" -- none lost, none twice. */
static void sendfile_retry_after_partial_resumes_at_the_first_unsent_byte(void **state)
{
	struct fixture *f = *state;
	int fd = make_file(f, 1000);
	off_t off = 0;
	ssize_t first;

	sink_state.cap = 333;
	first = atlas_emul_sendfile(&sink, fd, &off, 1000);
	assert_int_equal(first, 333);
	sink_state.cap = 0;
	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, 1000 - (size_t)first), 667);
	assert_int_equal(off, 1000);
	assert_sink_holds(pattern, 1000);
}

static void sendfile_sink_eagain_at_first_chunk_moves_nothing(void **state)
{
	struct fixture *f = *state;
	int fd = make_file(f, 1000);
	off_t off = 50;

	sink_state.eagain = true;
	errno = 0;
	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, 500), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(off, 50);
	assert_int_equal(lseek(fd, 70, SEEK_SET), 70);
	errno = 0;
	assert_int_equal(atlas_emul_sendfile(&sink, fd, NULL, 500), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(file_position(fd), 70);
	assert_int_equal(sink_state.len, 0);
}

/* A full socket after the first chunk: the count of what went, not an error. */
static void sendfile_sink_eagain_after_a_chunk_reports_that_chunk(void **state)
{
	struct fixture *f = *state;
	int fd = make_file(f, 2 * ATLAS_EMUL_CHUNK + 10);
	off_t off = 0;

	sink_state.ok_calls = 1;
	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, 2 * ATLAS_EMUL_CHUNK + 10),
			 ATLAS_EMUL_CHUNK);
	assert_int_equal(off, ATLAS_EMUL_CHUNK);
	assert_sink_holds(pattern, ATLAS_EMUL_CHUNK);
}

static void sendfile_negative_offset_is_einval(void **state)
{
	struct fixture *f = *state;
	int fd = make_file(f, 1000);
	off_t off = -1;

	errno = 0;
	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, 100), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(off, -1);
	assert_int_equal(sink_state.calls, 0);
}

static void sendfile_from_a_pipe_without_offset_is_einval(void **state)
{
	struct fixture *f = *state;

	write_pipe(f, pattern, 100);
	errno = 0;
	assert_int_equal(atlas_emul_sendfile(&sink, f->pipe[0], NULL, 100), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(sink_state.len, 0);
	assert_int_equal(pipe_bytes(f->pipe[0]), 100);
}

static void sendfile_from_a_closed_fd_is_ebadf(void **state)
{
	struct fixture *f = *state;
	int fd = make_file(f, 1000);
	off_t off = 0;

	close(fd);
	f->file = -1;
	errno = 0;
	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, 100), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(off, 0);
	errno = 0;
	assert_int_equal(atlas_emul_sendfile(&sink, fd, NULL, 100), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(sink_state.calls, 0);
}

static void sendfile_many_chunks_move_every_byte_in_order(void **state)
{
	const size_t size = 3 * ATLAS_EMUL_CHUNK + 123;
	struct fixture *f = *state;
	int fd = make_file(f, size);
	off_t off = 0;

	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, size + 1000), (ssize_t)size);
	assert_int_equal(off, (off_t)size);
	assert_sink_holds(pattern, size);
	/* emul.h: one chunk first, then twice as much each time the sink took it all. */
	assert_int_equal(sink_state.max_offer, 2 * ATLAS_EMUL_CHUNK);
	assert_int_equal(sink_state.calls, 3); /* 16 KiB, 32 KiB, the rest */
	assert_int_equal(file_position(fd), 0);
}

/* Reads grow to ATLAS_EMUL_READ and no further. */
static void sendfile_reads_grow_to_the_bound(void **state)
{
	const size_t size = 11 * ATLAS_EMUL_CHUNK + 4096;
	struct fixture *f = *state;
	int fd = make_file(f, size);
	off_t off = 0;

	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, size), (ssize_t)size);
	assert_sink_holds(pattern, size);
	assert_int_equal(sink_state.max_offer, ATLAS_EMUL_READ);
	assert_int_equal(sink_state.calls, 5); /* 16, 32, 64, 64 and 4 KiB */
}

/* A full socket at once on a large count: EAGAIN, and nothing kept (valgrind and ASan runs). */
static void sendfile_large_count_full_sink_at_once_is_eagain(void **state)
{
	struct fixture *f = *state;
	int fd = make_file(f, 4 * ATLAS_EMUL_CHUNK);
	off_t off = 0;

	sink_state.ok_calls = 0;
	errno = 0;
	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, 4 * ATLAS_EMUL_CHUNK), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(off, 0);
}

/* A full socket after the reads have grown: the count of what went, and nothing kept. */
static void sendfile_full_sink_after_grown_reads_reports_what_went(void **state)
{
	struct fixture *f = *state;
	int fd = make_file(f, 8 * ATLAS_EMUL_CHUNK);
	off_t off = 0;

	sink_state.ok_calls = 2; /* 16 KiB, then 32 KiB, then EAGAIN */
	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, 8 * ATLAS_EMUL_CHUNK),
			 3 * ATLAS_EMUL_CHUNK);
	assert_int_equal(off, 3 * ATLAS_EMUL_CHUNK);
	assert_sink_holds(pattern, 3 * ATLAS_EMUL_CHUNK);
}

/* A sink that takes part of a grown read ends the call there, counting what it took. */
static void sendfile_grown_read_cut_by_a_full_sink_counts_what_went(void **state)
{
	struct fixture *f = *state;
	int fd = make_file(f, 4 * ATLAS_EMUL_CHUNK);
	off_t off = 0;

	sink_state.cap = 20000; /* the first 16 KiB whole, then 20000 bytes of 32 KiB */
	assert_int_equal(atlas_emul_sendfile(&sink, fd, &off, 4 * ATLAS_EMUL_CHUNK),
			 ATLAS_EMUL_CHUNK + 20000);
	assert_int_equal(off, ATLAS_EMUL_CHUNK + 20000);
	assert_sink_holds(pattern, ATLAS_EMUL_CHUNK + 20000);
}

static void sendfile_many_chunks_without_offset_advance_the_position(void **state)
{
	const size_t size = 2 * ATLAS_EMUL_CHUNK + 7;
	struct fixture *f = *state;
	int fd = make_file(f, size);

	assert_int_equal(lseek(fd, 3, SEEK_SET), 3);
	assert_int_equal(atlas_emul_sendfile(&sink, fd, NULL, size), (ssize_t)size - 3);
	assert_int_equal(file_position(fd), (off_t)size);
	assert_sink_holds(pattern + 3, size - 3);
}

/* ---- atlas_emul_splice_to: pipe -> sink ---- */

static void splice_to_with_offset_is_espipe(void **state)
{
	struct fixture *f = *state;
	loff_t off = 0;

	write_pipe(f, pattern, 100);
	errno = 0;
	assert_int_equal(atlas_emul_splice_to(&sink, f->pipe[0], &off, 100, 0), -1);
	assert_int_equal(errno, ESPIPE);
	assert_int_equal(pipe_bytes(f->pipe[0]), 100);
	assert_int_equal(sink_state.calls, 0);
}

static void splice_to_len_0_returns_0(void **state)
{
	struct fixture *f = *state;

	write_pipe(f, pattern, 100);
	assert_int_equal(atlas_emul_splice_to(&sink, f->pipe[0], NULL, 0, 0), 0);
	assert_int_equal(pipe_bytes(f->pipe[0]), 100);
	assert_int_equal(sink_state.calls, 0);
}

static void splice_to_moves_pipe_bytes_to_the_sink(void **state)
{
	struct fixture *f = *state;

	write_pipe(f, pattern, 1000);
	assert_int_equal(atlas_emul_splice_to(&sink, f->pipe[0], NULL, 4096, 0), 1000);
	assert_sink_holds(pattern, 1000);
	/* Bytes taken from a pipe cannot be put back: the sink must take them all. */
	assert_true(sink_state.must_complete);
	assert_int_equal(pipe_bytes(f->pipe[0]), 0);
}

static void splice_to_takes_at_most_len(void **state)
{
	struct fixture *f = *state;

	write_pipe(f, pattern, 1000);
	assert_int_equal(atlas_emul_splice_to(&sink, f->pipe[0], NULL, 300, 0), 300);
	assert_sink_holds(pattern, 300);
	assert_int_equal(pipe_bytes(f->pipe[0]), 700);
}

static void splice_to_moves_at_most_one_chunk_per_call(void **state)
{
	const size_t size = ATLAS_EMUL_CHUNK + 5000;
	struct fixture *f = *state;
	ssize_t n;

	write_pipe(f, pattern, size);
	n = atlas_emul_splice_to(&sink, f->pipe[0], NULL, size, 0);
	assert_true(n > 0 && n <= ATLAS_EMUL_CHUNK);
	assert_sink_holds(pattern, (size_t)n);
	assert_int_equal(pipe_bytes(f->pipe[0]), (int)(size - (size_t)n));
}

static void splice_to_sink_not_ready_is_eagain_and_the_pipe_keeps_its_bytes(void **state)
{
	struct fixture *f = *state;

	write_pipe(f, pattern, 1000);
	sink_state.eagain = true;
	errno = 0;
	assert_int_equal(atlas_emul_splice_to(&sink, f->pipe[0], NULL, 1000, 0), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(pipe_bytes(f->pipe[0]), 1000);
	assert_int_equal(sink_state.len, 0);
	/* Once the sink is ready, the same bytes go, in order. */
	sink_state.eagain = false;
	assert_int_equal(atlas_emul_splice_to(&sink, f->pipe[0], NULL, 1000, 0), 1000);
	assert_sink_holds(pattern, 1000);
}

static void splice_to_nonblock_empty_pipe_is_eagain(void **state)
{
	struct fixture *f = *state;

	errno = 0;
	assert_int_equal(atlas_emul_splice_to(&sink, f->pipe[0], NULL, 100, SPLICE_F_NONBLOCK), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(sink_state.calls, 0);
}

static void splice_to_pipe_without_writer_is_eof(void **state)
{
	struct fixture *f = *state;

	close(f->pipe[1]);
	f->pipe[1] = -1;
	assert_int_equal(atlas_emul_splice_to(&sink, f->pipe[0], NULL, 100, 0), 0);
	assert_int_equal(atlas_emul_splice_to(&sink, f->pipe[0], NULL, 100, SPLICE_F_NONBLOCK), 0);
	assert_int_equal(sink_state.calls, 0);
}

/* ---- atlas_emul_splice_from: source -> pipe ---- */

static void load_source(size_t len)
{
	memcpy(src_state.data, pattern, len);
	src_state.len = len;
	src_state.off = 0;
}

static void read_pipe(struct fixture *f, unsigned char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(f->pipe[0], buf + got, len - got);

		assert_true(n > 0);
		got += (size_t)n;
	}
}

/* A one-page pipe that fails writes with EAGAIN instead of blocking. */
static void make_pipe_small_nonblocking(struct fixture *f)
{
	assert_true(fcntl(f->pipe[1], F_SETPIPE_SZ, 4096) >= 4096);
	assert_int_equal(fcntl(f->pipe[1], F_SETFL, O_NONBLOCK), 0);
}

static void splice_from_with_offset_is_espipe(void **state)
{
	struct fixture *f = *state;
	loff_t off = 0;

	load_source(100);
	errno = 0;
	assert_int_equal(atlas_emul_splice_from(&source, f->pipe[1], &off, 100, 0), -1);
	assert_int_equal(errno, ESPIPE);
	assert_int_equal(src_state.off, 0);
	assert_int_equal(pipe_bytes(f->pipe[0]), 0);
}

static void splice_from_len_0_returns_0(void **state)
{
	struct fixture *f = *state;

	load_source(100);
	assert_int_equal(atlas_emul_splice_from(&source, f->pipe[1], NULL, 0, 0), 0);
	assert_int_equal(src_state.off, 0);
	assert_int_equal(pipe_bytes(f->pipe[0]), 0);
}

static void splice_from_moves_source_bytes_to_the_pipe(void **state)
{
	struct fixture *f = *state;
	unsigned char got[1000];

	load_source(1000);
	assert_int_equal(atlas_emul_splice_from(&source, f->pipe[1], NULL, 4096, 0), 1000);
	assert_int_equal(src_state.off, 1000);
	assert_int_equal(pipe_bytes(f->pipe[0]), 1000);
	read_pipe(f, got, sizeof(got));
	assert_memory_equal(got, pattern, sizeof(got));
}

static void splice_from_takes_at_most_len(void **state)
{
	struct fixture *f = *state;

	load_source(1000);
	assert_int_equal(atlas_emul_splice_from(&source, f->pipe[1], NULL, 300, 0), 300);
	assert_int_equal(src_state.off, 300);
	assert_int_equal(pipe_bytes(f->pipe[0]), 300);
}

static void splice_from_consumes_only_what_the_pipe_took(void **state)
{
	static unsigned char got[10000];
	struct fixture *f = *state;
	ssize_t n, m;

	make_pipe_small_nonblocking(f);
	load_source(10000);
	n = atlas_emul_splice_from(&source, f->pipe[1], NULL, 10000, 0);
	assert_true(n > 0 && n < 10000);
	assert_int_equal(src_state.off, (size_t)n);
	assert_int_equal(pipe_bytes(f->pipe[0]), (int)n);
	read_pipe(f, got, (size_t)n);
	assert_memory_equal(got, pattern, (size_t)n);
	/* The next call starts at the first byte the pipe did not take. */
	m = atlas_emul_splice_from(&source, f->pipe[1], NULL, 10000, 0);
	assert_true(m > 0);
	assert_int_equal(src_state.off, (size_t)(n + m));
	read_pipe(f, got + n, (size_t)m);
	assert_memory_equal(got, pattern, (size_t)(n + m));
}

static void splice_from_full_pipe_is_eagain_and_consumes_nothing(void **state)
{
	struct fixture *f = *state;
	size_t filled = 0;
	ssize_t n;

	make_pipe_small_nonblocking(f);
	while ((n = write(f->pipe[1], pattern, 512)) > 0)
		filled += (size_t)n;
	assert_int_equal(errno, EAGAIN);
	load_source(1000);
	errno = 0;
	assert_int_equal(atlas_emul_splice_from(&source, f->pipe[1], NULL, 1000, SPLICE_F_NONBLOCK),
			 -1);
	assert_int_equal(errno, EAGAIN);
	errno = 0;
	assert_int_equal(atlas_emul_splice_from(&source, f->pipe[1], NULL, 1000, 0), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(src_state.off, 0);
	assert_int_equal(src_state.consumes, 0);
	assert_int_equal(pipe_bytes(f->pipe[0]), (int)filled);
}

static void splice_from_source_at_eof_returns_0(void **state)
{
	struct fixture *f = *state;

	load_source(0);
	assert_int_equal(atlas_emul_splice_from(&source, f->pipe[1], NULL, 100, 0), 0);
	assert_int_equal(pipe_bytes(f->pipe[0]), 0);
	assert_int_equal(src_state.consumes, 0);
}

static void splice_from_source_eagain_is_passed_through(void **state)
{
	struct fixture *f = *state;

	load_source(100);
	src_state.eagain = true;
	errno = 0;
	assert_int_equal(atlas_emul_splice_from(&source, f->pipe[1], NULL, 100, 0), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(pipe_bytes(f->pipe[0]), 0);
	assert_int_equal(src_state.off, 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(sendfile_with_offset_reads_from_it_and_updates_it),
		T(sendfile_without_offset_uses_and_advances_the_position),
		T(sendfile_count_past_eof_stops_at_eof),
		T(sendfile_count_0_returns_0),
		T(sendfile_offset_at_or_past_eof_returns_0),
		T(sendfile_partial_sink_advances_only_by_what_it_took),
		T(sendfile_retry_after_partial_resumes_at_the_first_unsent_byte),
		T(sendfile_sink_eagain_at_first_chunk_moves_nothing),
		T(sendfile_sink_eagain_after_a_chunk_reports_that_chunk),
		T(sendfile_negative_offset_is_einval),
		T(sendfile_from_a_pipe_without_offset_is_einval),
		T(sendfile_from_a_closed_fd_is_ebadf),
		T(sendfile_many_chunks_move_every_byte_in_order),
		T(sendfile_reads_grow_to_the_bound),
		T(sendfile_grown_read_cut_by_a_full_sink_counts_what_went),
		T(sendfile_large_count_full_sink_at_once_is_eagain),
		T(sendfile_full_sink_after_grown_reads_reports_what_went),
		T(sendfile_many_chunks_without_offset_advance_the_position),
		T(splice_to_with_offset_is_espipe),
		T(splice_to_len_0_returns_0),
		T(splice_to_moves_pipe_bytes_to_the_sink),
		T(splice_to_takes_at_most_len),
		T(splice_to_moves_at_most_one_chunk_per_call),
		T(splice_to_sink_not_ready_is_eagain_and_the_pipe_keeps_its_bytes),
		T(splice_to_nonblock_empty_pipe_is_eagain),
		T(splice_to_pipe_without_writer_is_eof),
		T(splice_from_with_offset_is_espipe),
		T(splice_from_len_0_returns_0),
		T(splice_from_moves_source_bytes_to_the_pipe),
		T(splice_from_takes_at_most_len),
		T(splice_from_consumes_only_what_the_pipe_took),
		T(splice_from_full_pipe_is_eagain_and_consumes_nothing),
		T(splice_from_source_at_eof_returns_0),
		T(splice_from_source_eagain_is_passed_through),
	};

	fill_pattern();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
