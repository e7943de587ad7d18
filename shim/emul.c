#define _GNU_SOURCE
#include "emul.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "real.h"

ssize_t atlas_emul_sendfile(const struct atlas_emul_sink *sink, int in_fd, off_t *offset,
			    size_t count)
{
	char small[ATLAS_EMUL_CHUNK];
	char *buf = small, *big = NULL;
	size_t done = 0, step = sizeof(small);
	bool failed = false;
	off_t pos;

	if (offset != NULL) {
		if (*offset < 0) {
			errno = EINVAL;
			return -1;
		}
		pos = *offset;
	} else {
		pos = atlas_real.lseek(in_fd, 0, SEEK_CUR);
		if (pos < 0) {
			/* sendfile(2): EINVAL when in_fd does not support mmap-like reads (a pipe). */
			if (errno == ESPIPE)
				errno = EINVAL;
			return -1;
		}
	}
	while (done < count) {
		size_t want = count - done < step ? count - done : step;
		ssize_t got = atlas_real.pread(in_fd, buf, want, pos + (off_t)done);
		ssize_t sent;

		if (got < 0) {
			if (errno == ESPIPE)
				errno = EINVAL;
			failed = done == 0;
			break;
		}
		if (got == 0)
			break; /* end of file */
		sent = sink->send(sink->ctx, buf, (size_t)got, false);
		if (sent < 0) {
			failed = done == 0;
			break;
		}
		done += (size_t)sent;
		if (sent < got)
			break; /* the socket is full: report what went */
		/*
		 * The sink took it all: read more at once next time, into the heap (a host
		 * thread's stack may be small). Without memory, one chunk at a time.
		 */
		if (step < ATLAS_EMUL_READ && count - done > step) {
			if (big == NULL)
				big = malloc(ATLAS_EMUL_READ);
			if (big != NULL) {
				buf = big;
				step *= 2;
			}
		}
	}
	if (failed) {
		int saved = errno;

		free(big);
		errno = saved;
		return -1;
	}
	free(big);
	if (offset != NULL)
		*offset = pos + (off_t)done;
	else if (done > 0)
		atlas_real.lseek(in_fd, pos + (off_t)done, SEEK_SET);
	return (ssize_t)done;
}

/* With SPLICE_F_NONBLOCK, the pipe side must not block either. */
static int pipe_ready(int fd, short events, unsigned flags)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	if (!(flags & SPLICE_F_NONBLOCK))
		return 0;
	if (atlas_real.poll(&pfd, 1, 0) == 1)
		return 0;
	errno = EAGAIN;
	return -1;
}

ssize_t atlas_emul_splice_to(const struct atlas_emul_sink *sink, int pipe_in, loff_t *off_in,
			     size_t len, unsigned flags)
{
	char buf[ATLAS_EMUL_CHUNK];
	ssize_t got;

	if (off_in != NULL) {
		errno = ESPIPE; /* splice(2): an offset for a pipe */
		return -1;
	}
	if (len == 0)
		return 0;
	if (sink->ready(sink->ctx) < 0 || pipe_ready(pipe_in, POLLIN, flags) < 0)
		return -1;
	got = atlas_real.read(pipe_in, buf, len < sizeof(buf) ? len : sizeof(buf));
	if (got <= 0)
		return got;
	return sink->send(sink->ctx, buf, (size_t)got, true);
}

ssize_t atlas_emul_splice_from(const struct atlas_emul_source *src, int pipe_out, loff_t *off_out,
			       size_t len, unsigned flags)
{
	char buf[ATLAS_EMUL_CHUNK];
	ssize_t got, put;

	if (off_out != NULL) {
		errno = ESPIPE;
		return -1;
	}
	if (len == 0)
		return 0;
	got = src->peek(src->ctx, buf, len < sizeof(buf) ? len : sizeof(buf));
	if (got <= 0)
		return got;
	if (pipe_ready(pipe_out, POLLOUT, flags) < 0)
		return -1;
	put = atlas_real.write(pipe_out, buf, (size_t)got);
	if (put <= 0)
		return put;
	return src->consume(src->ctx, buf, (size_t)put);
}
