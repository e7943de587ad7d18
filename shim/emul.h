/*
 * sendfile(2) and splice(2) emulated on top of a byte sink or source, for
 * connections whose bytes must pass through OpenSSL (the userspace path).
 *
 * The sink and source are function pointers so the unit tests can run the
 * offset and count semantics against a fake connection and a real file.
 */
#ifndef ATLAS_EMUL_H
#define ATLAS_EMUL_H

#include <fcntl.h>
#include <stdbool.h>
#include <sys/types.h>

/* How much plaintext one step moves: one TLS record. */
#define ATLAS_EMUL_CHUNK 16384
/*
 * ... and one read of sendfile's, once the sink has taken whole steps: four records
 * per pread(2) (a system call costs about as much as encrypting 2 KiB).
 */
#define ATLAS_EMUL_READ (4 * ATLAS_EMUL_CHUNK)

struct atlas_emul_sink {
	/*
	 * Sends up to len bytes like send(2): a count, or -1 with errno. With
	 * must_complete it sends all of them, waiting if it has to, or fails.
	 */
	ssize_t (*send)(void *ctx, const void *buf, size_t len, bool must_complete);
	/* 0 when the sink can take bytes now (or may block for them), -1 EAGAIN if not. */
	int (*ready)(void *ctx);
	void *ctx;
};

struct atlas_emul_source {
	/* Copies up to len bytes without consuming them, like recv(MSG_PEEK). */
	ssize_t (*peek)(void *ctx, void *buf, size_t len);
	/* Consumes len bytes already peeked, copying them to buf. */
	ssize_t (*consume)(void *ctx, void *buf, size_t len);
	void *ctx;
};

/*
 * sendfile(2): up to count bytes of in_fd to the sink. With offset, reads from
 * *offset and updates it, leaving the file position alone; without, reads
 * from the file position and advances it. Only what the sink took is counted
 * and moved past, so a retried call after EAGAIN re-reads the same bytes. The
 * first read is one chunk; each one the sink takes whole doubles the next, up to
 * ATLAS_EMUL_READ, so that a socket with little room wastes little reading.
 */
ssize_t atlas_emul_sendfile(const struct atlas_emul_sink *sink, int in_fd, off_t *offset,
			    size_t count);

/*
 * splice(2) from a pipe to the sink. Bytes taken from a pipe cannot be put
 * back, so a step starts only when the sink is ready and then completes.
 */
ssize_t atlas_emul_splice_to(const struct atlas_emul_sink *sink, int pipe_in, loff_t *off_in,
			     size_t len, unsigned flags);

/* splice(2) from the source to a pipe: peek, write to the pipe, consume what it took. */
ssize_t atlas_emul_splice_from(const struct atlas_emul_source *src, int pipe_out, loff_t *off_out,
			       size_t len, unsigned flags);

#endif
