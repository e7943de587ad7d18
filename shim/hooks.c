/*
 * The hooks: the only file that defines libc's names.
 *
 * Every hook starts with one question, "is this fd a TLS connection of ours?"
 * (atlas_fdtab_peek: one load and a branch), and when the answer is no, as it
 * is for every file, pipe and plaintext socket, calls libc's own function and
 * nothing else. The answer yes hands the call to the engine with a counted
 * reference on the connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "accept.h"
#include "conn.h"
#include "crash.h"
#include "engine.h"
#include "fdtab.h"
#include "init.h"
#include "log.h"
#include "offload.h"
#include "ready.h"
#include "real.h"

#define ATLAS_HOOK __attribute__((visibility("default")))

/* libc's function, resolved on first use if a hook runs before the constructor. */
#define REAL(name) \
	(__builtin_expect(atlas_real.name != NULL, 1) ? atlas_real.name : real_slow()->name)

/* glibc's fortify failure: prints "buffer overflow detected" and aborts. */
extern void __chk_fail(void) __attribute__((noreturn));

static struct atlas_real_table *real_slow(void)
{
	atlas_real_init();
	return &atlas_real;
}

/*
 * Is fd ours, and not reached from inside Atlas itself? The depth test is the
 * second line of defence: Atlas's own I/O uses atlas_real and never gets here.
 */
static inline bool ours(int fd)
{
	return __builtin_expect(atlas_fdtab_peek(fd) != NULL, 0) && atlas_crash_depth == 0;
}

/*
 * TCP_CORK on fd is Atlas's: ours, and the kernel does not encrypt for it.
 * Once kernel TX has a connection, the kernel corks.
 */
static inline bool ours_cork(int fd)
{
	struct atlas_conn *c = atlas_fdtab_peek(fd);

	return __builtin_expect(c != NULL, 0) && atlas_crash_depth == 0 &&
	       atlas_conn_path(c) < ATLAS_PATH_KERNEL_TX;
}

/* Where a send on fd goes. */
enum tx_route {
	TX_LIBC,   /* not ours: libc's function, nothing else */
	TX_KERNEL, /* kernel TLS encrypts: libc's function, the send counted until tx_done */
	TX_ATLAS,  /* the engine: userspace TLS, a handshake to finish, or a shut-down stream */
};

/* route_tx's slow half: a connection the kernel encrypts for, taken for the send. */
static enum tx_route kernel_tx_begin(int fd, struct atlas_conn **kc)
{
	struct atlas_conn *c = atlas_fdtab_get(fd);

	if (c == NULL)
		return TX_LIBC; /* closed meanwhile: the kernel answers for the fd */
	if (atlas_conn_path(c) >= ATLAS_PATH_KERNEL_TX && atlas_conn_tx_begin(c)) {
		*kc = c; /* the reference goes with the send, to tx_done */
		return TX_KERNEL;
	}
	atlas_conn_put(c);
	return TX_ATLAS;
}

/*
 * Once kernel TX has a connection, the host's own call goes to the kernel, counted
 * with a reference while it runs (atlas_conn_tx_begin) so that close_notify keeps out
 * of its way; after the host's shutdown, the engine answers EPIPE.
 */
static inline enum tx_route route_tx(int fd, struct atlas_conn **kc)
{
	struct atlas_conn *c = atlas_fdtab_peek(fd);

	if (__builtin_expect(c == NULL, 1) || atlas_crash_depth != 0)
		return TX_LIBC;
	if (atlas_conn_path(c) < ATLAS_PATH_KERNEL_TX)
		return TX_ATLAS;
	return kernel_tx_begin(fd, kc);
}

/* A TX_KERNEL call returned r: the send is over. errno is kept. */
static inline ssize_t tx_done(struct atlas_conn *kc, ssize_t r)
{
	atlas_conn_tx_end(kc);
	return r;
}

/* Where a read on fd goes. */
enum route {
	ROUTE_LIBC,   /* not ours: libc's function, nothing else */
	ROUTE_KERNEL, /* kernel TLS decrypts: libc's function, then a look at EIO */
	ROUTE_ATLAS,  /* the engine: userspace TLS, a handshake to finish, or a closed stream */
};

static inline enum route route_rx(int fd)
{
	struct atlas_conn *c = atlas_fdtab_peek(fd);

	if (__builtin_expect(c == NULL, 1) || atlas_crash_depth != 0)
		return ROUTE_LIBC;
	if (atlas_conn_path(c) == ATLAS_PATH_KERNEL &&
	    !__atomic_load_n(&c->rx_closed, __ATOMIC_RELAXED))
		return ROUTE_KERNEL;
	return ROUTE_ATLAS;
}

/*
 * Is fd a TLS connection whose state lives in this process (anything but the
 * full kernel path)? Such an fd must not reach another program: it stays
 * close-on-exec and is not passed over SCM_RIGHTS. On the kernel path the
 * socket carries its own keys, and the fd may go where the host sends it.
 */
static inline bool bound_to_process(int fd)
{
	struct atlas_conn *c = atlas_fdtab_peek(fd);

	return c != NULL && atlas_conn_path(c) != ATLAS_PATH_KERNEL;
}

/* Takes the connection for one call; NULL (EBADF) if a concurrent close got there first. */
static struct atlas_conn *enter(int fd)
{
	struct atlas_conn *c = atlas_fdtab_get(fd);

	if (c == NULL) {
		errno = EBADF;
		return NULL;
	}
	atlas_crash_enter();
	return c;
}

static void leave(struct atlas_conn *c)
{
	int saved = errno;

	atlas_crash_leave();
	atlas_conn_put(c);
	errno = saved;
}

/* ---- receiving ---------------------------------------------------------- */

static ssize_t tls_recv(int fd, const struct iovec *iov, int iovcnt, int flags)
{
	struct atlas_conn *c;
	ssize_t r;

	if (flags & MSG_OOB) {
		errno = EINVAL; /* TLS has no urgent data; the kernel says EINVAL when there is none */
		return -1;
	}
	c = enter(fd);
	if (c == NULL)
		return -1;
	r = atlas_engine_recv(c, fd, iov, iovcnt, flags);
	leave(c);
	return r;
}

static ssize_t tls_recv_buf(int fd, void *buf, size_t len, int flags)
{
	struct iovec v = { .iov_base = buf, .iov_len = len };

	return tls_recv(fd, &v, 1, flags);
}

/*
 * After a kernel-RX call on fd failed: its connection, still on the kernel path (not
 * one that another thread's close and accept put under the same number meanwhile),
 * with a reference; NULL, errno kept, else.
 */
static struct atlas_conn *enter_kernel_rx(int fd)
{
	int saved = errno;
	struct atlas_conn *c = enter(fd);

	if (c != NULL && atlas_conn_path(c) != ATLAS_PATH_KERNEL) {
		leave(c);
		c = NULL;
	}
	errno = saved;
	return c;
}

/*
 * A kernel-RX read that failed with EIO met a record that is not data (an
 * alert, a KeyUpdate): Atlas reads and handles it (offload.c); one that reads
 * as end of file leaves errno as saved_errno, its value before the call, as a
 * successful read(2) would. EBADMSG (a record that failed authentication) is
 * logged and goes back to the host; anything else goes back as it is.
 */
static ssize_t kernel_rx_done(int fd, ssize_t r, int flags, int saved_errno)
{
	struct atlas_conn *c;

	if (__builtin_expect(r >= 0 || (errno != EIO && errno != EBADMSG), 1))
		return r;
	c = enter_kernel_rx(fd);
	if (c == NULL)
		return -1;
	if (errno == EBADMSG) {
		atlas_offload_bad_record(c, fd);
		r = -1;
	} else {
		r = atlas_offload_control(c, fd, flags, saved_errno);
	}
	leave(c);
	return r;
}

/* recvfrom/recvmsg report the sender: on a connected socket, the peer. */
static void fill_peer(int fd, struct sockaddr *addr, socklen_t *len)
{
	if (addr != NULL && len != NULL && getpeername(fd, addr, len) < 0)
		*len = 0;
}

ATLAS_HOOK ssize_t read(int fd, void *buf, size_t len)
{
	switch (route_rx(fd)) {
	case ROUTE_LIBC:
		return REAL(read)(fd, buf, len);
	case ROUTE_KERNEL: {
		int saved = errno;

		return kernel_rx_done(fd, REAL(read)(fd, buf, len), 0, saved);
	}
	default:
		return tls_recv_buf(fd, buf, len, 0);
	}
}

ATLAS_HOOK ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	switch (route_rx(fd)) {
	case ROUTE_LIBC:
		return REAL(read_chk)(fd, buf, len, buflen);
	case ROUTE_KERNEL: {
		int saved = errno;

		return kernel_rx_done(fd, REAL(read_chk)(fd, buf, len, buflen), 0, saved);
	}
	default:
		if (len > buflen)
			__chk_fail();
		return tls_recv_buf(fd, buf, len, 0);
	}
}

ATLAS_HOOK ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	switch (route_rx(fd)) {
	case ROUTE_LIBC:
		return REAL(readv)(fd, iov, iovcnt);
	case ROUTE_KERNEL: {
		int saved = errno;

		return kernel_rx_done(fd, REAL(readv)(fd, iov, iovcnt), 0, saved);
	}
	default:
		break;
	}
	if (iovcnt < 0 || iovcnt > IOV_MAX) {
		errno = EINVAL;
		return -1;
	}
	return tls_recv(fd, iov, iovcnt, 0);
}

ATLAS_HOOK ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	enum route r = route_rx(fd);

	if (r == ROUTE_LIBC || (flags & MSG_ERRQUEUE))
		return REAL(recv)(fd, buf, len, flags);
	if (r == ROUTE_KERNEL) {
		int saved = errno;

		return kernel_rx_done(fd, REAL(recv)(fd, buf, len, flags), flags, saved);
	}
	return tls_recv_buf(fd, buf, len, flags);
}

ATLAS_HOOK ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	enum route r = route_rx(fd);

	if (r == ROUTE_LIBC || (flags & MSG_ERRQUEUE))
		return REAL(recv_chk)(fd, buf, len, buflen, flags);
	if (r == ROUTE_KERNEL) {
		int saved = errno;

		return kernel_rx_done(fd, REAL(recv_chk)(fd, buf, len, buflen, flags), flags,
				      saved);
	}
	if (len > buflen)
		__chk_fail();
	return tls_recv_buf(fd, buf, len, flags);
}

ATLAS_HOOK ssize_t recvfrom(int fd, void *buf, size_t len, int flags, __SOCKADDR_ARG addr,
			    socklen_t *addrlen)
{
	enum route r = route_rx(fd);

	if (r == ROUTE_LIBC || (flags & MSG_ERRQUEUE))
		return REAL(recvfrom)(fd, buf, len, flags, addr.__sockaddr__, addrlen);
	if (r == ROUTE_KERNEL) {
		int saved = errno;

		return kernel_rx_done(
			fd, REAL(recvfrom)(fd, buf, len, flags, addr.__sockaddr__, addrlen), flags,
			saved);
	}
	fill_peer(fd, addr.__sockaddr__, addrlen);
	return tls_recv_buf(fd, buf, len, flags);
}

ATLAS_HOOK ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
				  __SOCKADDR_ARG addr, socklen_t *addrlen)
{
	enum route r = route_rx(fd);

	if (r == ROUTE_LIBC || (flags & MSG_ERRQUEUE))
		return REAL(recvfrom_chk)(fd, buf, len, buflen, flags, addr.__sockaddr__, addrlen);
	if (r == ROUTE_KERNEL) {
		int saved = errno;

		return kernel_rx_done(
			fd,
			REAL(recvfrom_chk)(fd, buf, len, buflen, flags, addr.__sockaddr__, addrlen),
			flags, saved);
	}
	if (len > buflen)
		__chk_fail();
	fill_peer(fd, addr.__sockaddr__, addrlen);
	return tls_recv_buf(fd, buf, len, flags);
}

/*
 * recvmsg on a kernel-RX socket, without the host's control buffer: given
 * one, the kernel returns a control record's bytes as if they were data.
 */
static ssize_t kernel_recvmsg(int fd, struct msghdr *msg, int flags)
{
	void *control = msg->msg_control;
	int saved = errno;
	ssize_t r;

	msg->msg_control = NULL;
	msg->msg_controllen = 0;
	r = REAL(recvmsg)(fd, msg, flags);
	msg->msg_control = control;
	return kernel_rx_done(fd, r, flags, saved);
}

/* Calls fn on each fd msg carries over SCM_RIGHTS, until fn returns true; true if one did. */
static bool each_passed_fd(const struct msghdr *msg, bool (*fn)(int fd))
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR((struct msghdr *)msg); cm != NULL;
	     cm = CMSG_NXTHDR((struct msghdr *)msg, cm)) {
		const unsigned char *data = CMSG_DATA(cm);
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int passed;

			memcpy(&passed, data + i * sizeof(int), sizeof(int));
			if (fn(passed))
				return true;
		}
	}
	return false;
}

/* A TLS fd whose state lives in this process: the receiver would read ciphertext. */
static bool refuse_bound(int fd)
{
	if (!bound_to_process(fd))
		return false;
	atlas_error("fd %d: a TLS connection cannot be passed to another process "
		    "(SCM_RIGHTS): its TLS state lives in this one",
		    fd);
	errno = EPERM;
	return true;
}

/*
 * A kernel-path fd went: the receiver owns the session now (atlas_accept_received
 * there), and this process's close of its copy must not end it with close_notify.
 */
static bool hand_off(int fd)
{
	struct atlas_conn *c = atlas_fdtab_get(fd);

	if (c != NULL) {
		pthread_mutex_lock(&c->lock);
		c->pid = 0;
		pthread_mutex_unlock(&c->lock);
		atlas_conn_put(c);
	}
	return false;
}

static bool adopt_received(int fd)
{
	atlas_accept_received(fd);
	return false;
}

ATLAS_HOOK ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	enum route r = route_rx(fd);

	if (r == ROUTE_LIBC || (flags & MSG_ERRQUEUE)) {
		ssize_t n = REAL(recvmsg)(fd, msg, flags);

		/* Ancillary data came: it may carry a kernel-path TLS fd from another process. */
		if (__builtin_expect(n >= 0 && msg->msg_controllen != 0, 0))
			each_passed_fd(msg, adopt_received);
		return n;
	}
	if (r == ROUTE_KERNEL)
		return kernel_recvmsg(fd, msg, flags);
	if (msg->msg_iovlen > IOV_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	fill_peer(fd, msg->msg_name, &msg->msg_namelen);
	msg->msg_controllen = 0; /* no ancillary data rides on a TLS stream */
	msg->msg_flags = 0;
	return tls_recv(fd, msg->msg_iov, (int)msg->msg_iovlen, flags);
}

/*
 * recvmmsg(2): on a TLS fd, one recvmsg per message, as the kernel fills them from a
 * stream (at most UIO_MAXIOV of them; at the end of the stream each further one
 * reads 0, and the count is vlen, as the kernel's); MSG_WAITFORONE makes every
 * message after the first non-blocking. The timeout, which the kernel looks at only
 * between messages, is not applied; an error after the first message ends the call
 * with what came, and the next call meets it again (a failed TLS stream stays
 * failed). On any other fd, libc's, and fds passed in ancillary data are taken as
 * recvmsg takes them.
 */
ATLAS_HOOK int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
			struct timespec *timeout)
{
	unsigned int i;

	if (route_rx(fd) == ROUTE_LIBC || vec == NULL) {
		int n = REAL(recvmmsg)(fd, vec, vlen, flags, timeout);

		for (int k = 0; k < n; k++)
			if (__builtin_expect(vec[k].msg_hdr.msg_controllen != 0, 0))
				each_passed_fd(&vec[k].msg_hdr, adopt_received);
		return n;
	}
	if (vlen > UIO_MAXIOV)
		vlen = UIO_MAXIOV;
	for (i = 0; i < vlen; i++) {
		int f = flags & ~MSG_WAITFORONE;
		ssize_t r;

		if (i > 0 && (flags & MSG_WAITFORONE))
			f |= MSG_DONTWAIT;
		r = recvmsg(fd, &vec[i].msg_hdr, f);
		if (r < 0)
			return i > 0 ? (int)i : -1;
		vec[i].msg_len = (unsigned int)r;
	}
	return (int)i;
}

/* ---- sending ------------------------------------------------------------ */

static ssize_t tls_send(int fd, const struct iovec *iov, int iovcnt, int flags)
{
	struct atlas_conn *c;
	ssize_t r;

	if (flags & MSG_OOB) {
		errno = EOPNOTSUPP;
		return -1;
	}
	c = enter(fd);
	if (c == NULL)
		return -1;
	r = atlas_engine_send(c, fd, iov, iovcnt, flags);
	leave(c);
	return r;
}

static ssize_t tls_send_buf(int fd, const void *buf, size_t len, int flags)
{
	struct iovec v = { .iov_base = (void *)buf, .iov_len = len };

	return tls_send(fd, &v, 1, flags);
}

ATLAS_HOOK ssize_t write(int fd, const void *buf, size_t len)
{
	struct atlas_conn *kc = NULL;
	enum tx_route t = route_tx(fd, &kc);

	if (__builtin_expect(t == TX_LIBC, 1))
		return REAL(write)(fd, buf, len);
	if (t == TX_KERNEL)
		return tx_done(kc, REAL(write)(fd, buf, len));
	return tls_send_buf(fd, buf, len, 0);
}

ATLAS_HOOK ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct atlas_conn *kc = NULL;
	enum tx_route t = route_tx(fd, &kc);

	if (__builtin_expect(t == TX_LIBC, 1))
		return REAL(writev)(fd, iov, iovcnt);
	if (t == TX_KERNEL)
		return tx_done(kc, REAL(writev)(fd, iov, iovcnt));
	if (iovcnt < 0 || iovcnt > IOV_MAX) {
		errno = EINVAL;
		return -1;
	}
	return tls_send(fd, iov, iovcnt, 0);
}

ATLAS_HOOK ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	struct atlas_conn *kc = NULL;
	enum tx_route t = route_tx(fd, &kc);

	if (__builtin_expect(t == TX_LIBC, 1))
		return REAL(send)(fd, buf, len, flags);
	if (t == TX_KERNEL)
		return tx_done(kc, REAL(send)(fd, buf, len, flags));
	return tls_send_buf(fd, buf, len, flags);
}

ATLAS_HOOK ssize_t sendto(int fd, const void *buf, size_t len, int flags, __CONST_SOCKADDR_ARG addr,
			  socklen_t addrlen)
{
	struct atlas_conn *kc = NULL;
	enum tx_route t = route_tx(fd, &kc);

	if (__builtin_expect(t == TX_LIBC, 1))
		return REAL(sendto)(fd, buf, len, flags, addr.__sockaddr__, addrlen);
	if (t == TX_KERNEL)
		return tx_done(kc, REAL(sendto)(fd, buf, len, flags, addr.__sockaddr__, addrlen));
	/* A connected TCP socket ignores the address (tcp(7)); so do we. */
	return tls_send_buf(fd, buf, len, flags);
}

/* sendmsg(2) with ancillary data on an fd that is not ours: it may pass TLS fds. */
static ssize_t send_passing_fds(int fd, const struct msghdr *msg, int flags)
{
	ssize_t r;

	if (each_passed_fd(msg, refuse_bound))
		return -1;
	r = REAL(sendmsg)(fd, msg, flags);
	if (r >= 0)
		each_passed_fd(msg, hand_off);
	return r;
}

ATLAS_HOOK ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct atlas_conn *kc = NULL;
	enum tx_route t = route_tx(fd, &kc);

	if (t != TX_ATLAS) {
		ssize_t r;

		if (__builtin_expect(msg != NULL && msg->msg_controllen != 0, 0))
			r = send_passing_fds(fd, msg, flags);
		else
			r = REAL(sendmsg)(fd, msg, flags);
		return t == TX_KERNEL ? tx_done(kc, r) : r;
	}
	if (msg->msg_iovlen > IOV_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	return tls_send(fd, msg->msg_iov, (int)msg->msg_iovlen, flags);
}

/* A message's bytes: sendmmsg stops after one that went only in part, as the kernel. */
static size_t msg_bytes(const struct msghdr *msg)
{
	size_t n = 0;

	for (size_t i = 0; i < msg->msg_iovlen; i++)
		n += msg->msg_iov[i].iov_len;
	return n;
}

/*
 * sendmmsg(2): on a TLS fd, or with ancillary data that may pass fds, one sendmsg per
 * message through the hook above, as the kernel sends them: at most UIO_MAXIOV, up to
 * the first message that went only in part, and ending at the first error after one.
 * Else libc's.
 */
ATLAS_HOOK int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	unsigned int i;

	if (vlen > UIO_MAXIOV)
		vlen = UIO_MAXIOV;
	if (vec == NULL || vlen == 0)
		return REAL(sendmmsg)(fd, vec, vlen, flags); /* nothing to send: EFAULT, or 0 */
	if (__builtin_expect(atlas_fdtab_peek(fd) == NULL, 1)) {
		for (i = 0; i < vlen && vec[i].msg_hdr.msg_controllen == 0; i++)
			;
		if (i == vlen)
			return REAL(sendmmsg)(fd, vec, vlen, flags);
	}
	for (i = 0; i < vlen; i++) {
		ssize_t r = sendmsg(fd, &vec[i].msg_hdr, flags);

		if (r < 0)
			return i > 0 ? (int)i : -1;
		vec[i].msg_len = (unsigned int)r;
		if ((size_t)r < msg_bytes(&vec[i].msg_hdr))
			return (int)i + 1;
	}
	return (int)i;
}

static ssize_t tls_sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	struct atlas_conn *c = enter(out_fd);
	ssize_t r;

	if (c == NULL)
		return -1;
	r = atlas_engine_sendfile(c, out_fd, in_fd, offset, count);
	leave(c);
	return r;
}

ATLAS_HOOK ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	struct atlas_conn *kc = NULL;
	enum tx_route t = route_tx(out_fd, &kc);

	if (__builtin_expect(t == TX_LIBC, 1))
		return REAL(sendfile)(out_fd, in_fd, offset, count);
	if (t == TX_KERNEL)
		return tx_done(kc, REAL(sendfile)(out_fd, in_fd, offset, count));
	return tls_sendfile(out_fd, in_fd, offset, count);
}

ATLAS_HOOK ssize_t sendfile64(int out_fd, int in_fd, off64_t *offset, size_t count)
{
	struct atlas_conn *kc = NULL;
	enum tx_route t = route_tx(out_fd, &kc);

	if (__builtin_expect(t == TX_LIBC, 1))
		return REAL(sendfile)(out_fd, in_fd, offset, count);
	if (t == TX_KERNEL)
		return tx_done(kc, REAL(sendfile)(out_fd, in_fd, offset, count));
	return tls_sendfile(out_fd, in_fd, offset, count);
}

ATLAS_HOOK ssize_t splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len,
			  unsigned int flags)
{
	/*
	 * A direction the kernel has needs nothing of Atlas: the kernel splices, and only
	 * a failure from kernel RX is looked at (a record that is not data).
	 */
	struct atlas_conn *kc = NULL;
	enum route rin = route_rx(fd_in);
	enum tx_route tout = route_tx(fd_out, &kc);
	bool in = rin == ROUTE_ATLAS, out = tout == TX_ATLAS;
	struct atlas_conn *c;
	ssize_t r;

	if (__builtin_expect(rin == ROUTE_LIBC && tout == TX_LIBC, 1))
		return REAL(splice)(fd_in, off_in, fd_out, off_out, len, flags);
	if (!in && !out) {
		int saved = errno;

		r = REAL(splice)(fd_in, off_in, fd_out, off_out, len, flags);
		if (tout == TX_KERNEL)
			tx_done(kc, r);
		if (r >= 0 || rin != ROUTE_KERNEL)
			return r;
		c = enter_kernel_rx(fd_in);
		if (c == NULL)
			return -1;
		r = atlas_offload_splice_failed(c, fd_in, flags, saved);
		leave(c);
		return r;
	}
	if (tout == TX_KERNEL) {
		tx_done(kc, 0);
		out = true; /* from a TLS socket to a TLS socket */
	}
	if (in && out) {
		errno = EINVAL; /* splice(2): neither end is a pipe */
		return -1;
	}
	c = enter(out ? fd_out : fd_in);
	if (c == NULL)
		return -1;
	if (out)
		r = atlas_engine_splice_to(c, fd_out, fd_in, off_in, len, flags);
	else
		r = atlas_engine_splice_from(c, fd_in, fd_out, off_out, len, flags);
	leave(c);
	return r;
}

/* ---- descriptors -------------------------------------------------------- */

ATLAS_HOOK int accept(int fd, __SOCKADDR_ARG addr, socklen_t *addrlen)
{
	int nfd = REAL(accept)(fd, addr.__sockaddr__, addrlen);

	if (nfd < 0 || atlas_init_mode == ATLAS_INERT)
		return nfd;
	return atlas_accept_adopt(nfd, 0, addr.__sockaddr__, addrlen);
}

ATLAS_HOOK int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *addrlen, int flags)
{
	int nfd = REAL(accept4)(fd, addr.__sockaddr__, addrlen, flags);

	if (nfd < 0 || atlas_init_mode == ATLAS_INERT)
		return nfd;
	return atlas_accept_adopt(nfd, flags, addr.__sockaddr__, addrlen);
}

ATLAS_HOOK int listen(int fd, int backlog)
{
	int r = REAL(listen)(fd, backlog);

	if (r == 0 && atlas_init_mode != ATLAS_INERT)
		atlas_accept_note_listener(fd);
	return r;
}

/*
 * The last fd of a connection is going: close_notify goes out through it
 * first. owned is atlas_fdtab_owned(): a vfork child closing its fds before
 * exec shares our table but not our fds, and must leave the table alone.
 */
static void release_slot(int fd, bool owned)
{
	struct atlas_conn *c;

	if (!owned)
		return;
	c = atlas_fdtab_take(fd);
	if (c == NULL)
		return;
	atlas_crash_enter();
	atlas_conn_fd_put(c, fd);
	atlas_crash_leave();
}

ATLAS_HOOK int close(int fd)
{
	if (ours(fd))
		release_slot(fd, atlas_fdtab_owned());
	return REAL(close)(fd);
}

/*
 * syscall(2) itself: some programs close sockets with syscall(SYS_close, fd)
 * to avoid close's cancellation point (libuv, hence node, does). A close that
 * no hook saw would leave a stale slot, and the next file or socket given that
 * number would be taken for a TLS connection. The arguments are forwarded as
 * glibc's own syscall() takes them: six machine words.
 */
ATLAS_HOOK long syscall(long number, ...)
{
	long a[6];
	va_list ap;

	va_start(ap, number);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (__builtin_expect(number == SYS_close, 0))
		return close((int)a[0]);
	if (__builtin_expect(number == SYS_close_range, 0))
		return close_range((unsigned)a[0], (unsigned)a[1], (int)a[2]);
	return REAL(syscall)(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* ioctl(2): FIONREAD (SIOCINQ) on a TLS fd counts plaintext (engine.c); the rest passes. */
ATLAS_HOOK int ioctl(int fd, unsigned long request, ...)
{
	struct atlas_conn *c;
	va_list ap;
	void *arg;
	int r;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (__builtin_expect(request != FIONREAD, 1) || !ours(fd) || arg == NULL)
		return REAL(ioctl)(fd, request, arg);
	c = enter(fd);
	if (c == NULL)
		return -1;
	r = atlas_engine_readable_bytes(c, fd, arg);
	leave(c);
	return r;
}

ATLAS_HOOK int close_range(unsigned int first, unsigned int last, int flags)
{
	size_t high = __atomic_load_n(&atlas_fdtab_high, __ATOMIC_RELAXED);
	int owned = -1; /* asked once, and only if a slot is in the range */

	/* CLOSE_RANGE_CLOEXEC only marks the fds; they stay open until exec. */
	if (!(flags & CLOSE_RANGE_CLOEXEC) && atlas_crash_depth == 0)
		for (size_t fd = first; fd <= last && fd < high; fd++) {
			if (atlas_fdtab_peek((int)fd) == NULL)
				continue;
			if (owned < 0)
				owned = atlas_fdtab_owned();
			release_slot((int)fd, owned);
		}
	return REAL(close_range)(first, last, flags);
}

/*
 * TCP_CORK and TCP_NODELAY on a connection the kernel does not encrypt for:
 * the cork is kept by Atlas, which gathers corked writes into one record
 * (engine.c). Everything else, and every other fd, goes to the kernel.
 */
ATLAS_HOOK int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct atlas_conn *c;
	int r;

	if (__builtin_expect(level != IPPROTO_TCP, 1) ||
	    (name != TCP_CORK && name != TCP_NODELAY) || val == NULL ||
	    len < (socklen_t)sizeof(int) || !ours_cork(fd))
		return REAL(setsockopt)(fd, level, name, val, len);
	c = enter(fd);
	if (c == NULL)
		return -1;
	r = atlas_engine_setsockopt_tcp(c, fd, name, *(const int *)val != 0);
	leave(c);
	return r;
}

ATLAS_HOOK int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct atlas_conn *c;

	if (__builtin_expect(level != IPPROTO_TCP, 1) || name != TCP_CORK || val == NULL ||
	    len == NULL || *len < (socklen_t)sizeof(int) || !ours_cork(fd))
		return REAL(getsockopt)(fd, level, name, val, len);
	c = enter(fd);
	if (c == NULL)
		return -1;
	*(int *)val = atlas_engine_corked(c);
	*len = sizeof(int);
	leave(c);
	return 0;
}

ATLAS_HOOK int shutdown(int fd, int how)
{
	struct atlas_conn *c;
	int r;

	if (!ours(fd))
		return REAL(shutdown)(fd, how);
	c = enter(fd);
	if (c == NULL)
		return -1;
	r = atlas_engine_shutdown(c, fd, how);
	leave(c);
	return r;
}

/*
 * newfd now refers to the same socket as oldfd: make it refer to the same
 * connection. If it cannot (newfd past the table), newfd must not stay open
 * as a plaintext view of a TLS socket. Like the first fd (accept.c), it is
 * close-on-exec: the TLS state cannot follow exec(2). cloexec says whether
 * the call that made newfd set it already.
 */
static int share(int oldfd, int newfd, bool cloexec)
{
	struct atlas_conn *c, *stale = NULL;

	if (!atlas_fdtab_owned()) {
		/* A vfork child (see release_slot): not its table, but its fd must not outlive exec. */
		if (!cloexec && bound_to_process(oldfd))
			REAL(fcntl)(newfd, F_SETFD, FD_CLOEXEC);
		return newfd;
	}
	c = atlas_fdtab_get(oldfd);
	if (c == NULL)
		return newfd;
	if (atlas_fdtab_set(newfd, c, &stale) < 0) {
		atlas_conn_put(c);
		REAL(close)(newfd);
		errno = EMFILE;
		return -1;
	}
	atlas_conn_fd_forget(stale);
	atlas_conn_put(c);
	atlas_fdtab_note_cloexec(newfd, cloexec);
	if (!cloexec && bound_to_process(newfd))
		REAL(fcntl)(newfd, F_SETFD, FD_CLOEXEC);
	return newfd;
}

ATLAS_HOOK int dup(int fd)
{
	int nfd = REAL(dup)(fd);

	if (nfd < 0 || !ours(fd))
		return nfd;
	return share(fd, nfd, false);
}

/* dup2/dup3 close newfd first: if it was a connection of ours, it closes as close() would. */
static int tls_dup_onto(int oldfd, int newfd, int flags, bool is_dup3)
{
	int r;

	if (REAL(fcntl)(oldfd, F_GETFD) < 0)
		return -1; /* EBADF, and newfd must stay as it is */
	if (oldfd != newfd && ours(newfd))
		release_slot(newfd, atlas_fdtab_owned());
	r = is_dup3 ? REAL(dup3)(oldfd, newfd, flags) : REAL(dup2)(oldfd, newfd);
	if (r < 0 || oldfd == newfd || !ours(oldfd))
		return r;
	return share(oldfd, r, (flags & O_CLOEXEC) != 0);
}

ATLAS_HOOK int dup2(int oldfd, int newfd)
{
	if (!ours(oldfd) && !ours(newfd))
		return REAL(dup2)(oldfd, newfd);
	return tls_dup_onto(oldfd, newfd, 0, false);
}

ATLAS_HOOK int dup3(int oldfd, int newfd, int flags)
{
	if (!ours(oldfd) && !ours(newfd))
		return REAL(dup3)(oldfd, newfd, flags);
	return tls_dup_onto(oldfd, newfd, flags, true);
}

static int tls_fcntl(int fd, int cmd, void *arg)
{
	int r;

	/*
	 * A TLS fd bound to this process stays close-on-exec (see share()); what the host
	 * asked for is kept, and applies once the kernel has the connection (offload.c).
	 */
	if (cmd == F_SETFD && ours(fd)) {
		atlas_fdtab_note_cloexec(fd, ((intptr_t)arg & FD_CLOEXEC) != 0);
		if (bound_to_process(fd))
			arg = (void *)((intptr_t)arg | FD_CLOEXEC);
	}
	r = REAL(fcntl)(fd, cmd, arg);
	if (r < 0 || (cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC) || !ours(fd))
		return r;
	return share(fd, r, cmd == F_DUPFD_CLOEXEC);
}

/* fcntl's third argument is an int or a pointer; glibc forwards it as a pointer too. */
ATLAS_HOOK int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return tls_fcntl(fd, cmd, arg);
}

/* The same function under glibc's 64-bit name (what python3 and nginx import). */
ATLAS_HOOK int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

/* ---- stdio and exec ----------------------------------------------------- */

/*
 * stdio reads and writes with libc's internal calls, which no hook sees. A
 * FILE opened on one of our fds is therefore a cookie stream whose I/O goes
 * through the hooks' own paths.
 */
static ssize_t cookie_read(void *cookie, char *buf, size_t size)
{
	int fd = (int)(intptr_t)cookie;

	if (!ours(fd))
		return REAL(read)(fd, buf, size);
	return tls_recv_buf(fd, buf, size, 0);
}

static ssize_t cookie_write(void *cookie, const char *buf, size_t size)
{
	int fd = (int)(intptr_t)cookie;

	if (!ours(fd))
		return REAL(write)(fd, buf, size);
	return tls_send_buf(fd, buf, size, 0);
}

static int cookie_close(void *cookie)
{
	return close((int)(intptr_t)cookie);
}

ATLAS_HOOK FILE *fdopen(int fd, const char *mode)
{
	static const cookie_io_functions_t io = {
		.read = cookie_read,
		.write = cookie_write,
		.seek = NULL, /* a socket cannot seek */
		.close = cookie_close,
	};

	if (!ours(fd))
		return REAL(fdopen)(fd, mode);
	return fopencookie((void *)(intptr_t)fd, mode, io);
}

/*
 * The TLS fds bound to this process are close-on-exec (accept.c, share()), so
 * the new program never sees them; say so, since a CGI-style server expects it
 * to. (A connection fully in the kernel follows exec like any socket.) Only execve(2)
 * itself is logged: glibc's execl/execv/execvp family calls its internal
 * __execve, which no hook sees (the fds are closed all the same).
 */
ATLAS_HOOK int execve(const char *path, char *const argv[], char *const envp[])
{
	size_t high = __atomic_load_n(&atlas_fdtab_high, __ATOMIC_RELAXED);

	for (size_t fd = 0; fd < high; fd++) {
		if (!bound_to_process((int)fd))
			continue;
		if (fd > 2) {
			atlas_warn(
				"fd %zu: a TLS connection cannot follow exec of %s (its TLS state "
				"lives in this process): the new program will not have it",
				fd, path);
			continue;
		}
		/*
		 * On stdin, stdout or stderr the connection was meant for the new program
		 * (CGI, inetd). It cannot have it, and a response cut short must not look
		 * complete: the socket is set to close abortively (SO_LINGER 0), so when
		 * the server closes it the client gets a reset, not a close_notify.
		 */
		atlas_error(
			"fd %zu: %s was to be handed a TLS connection, which cannot follow exec "
			"(its TLS state lives in this process): the connection will be reset",
			fd, path);
		atlas_engine_abort_on_close((int)fd);
	}
	return REAL(execve)(path, argv, envp);
}

/* ---- readiness (ready.c) ------------------------------------------------ */

/*
 * Each wait asks first whether any connection is listed (one load): bytes
 * waiting in OpenSSL, or a handshake waiting. If the host waits on one, the
 * question goes through ready.c: the kernel is asked without a timeout when
 * bytes wait, and for what a handshake needs while one waits; the answer
 * comes back in the host's terms.
 */
/*
 * glibc declares poll's array write-only (attribute access), though events is
 * read: GCC then calls reading it "maybe uninitialized". It is the caller's.
 */
/*
 * A wait with connections listed (ready.h): bytes gathered under TCP_CORK go
 * out first (the host is about to sleep), then the wait is translated.
 */
static bool ready_begin_poll(struct pollfd *fds, nfds_t n, struct atlas_ready_poll *w)
{
	atlas_engine_before_wait();
	return atlas_ready_poll_begin(fds, n, w);
}

static bool ready_begin_select(int nfds, fd_set **readfds, fd_set **writefds,
			       struct atlas_ready_select *w)
{
	atlas_engine_before_wait();
	return atlas_ready_select_begin(nfds, readfds, writefds, w);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
ATLAS_HOOK int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	struct atlas_ready_poll w;
	int r;

	if (__builtin_expect(!atlas_ready_any(), 1) || !ready_begin_poll(fds, n, &w))
		return REAL(poll)(fds, n, timeout);
	r = REAL(poll)(fds, n, w.no_wait ? 0 : timeout);
	return atlas_ready_poll_end(fds, n, &w, r);
}

ATLAS_HOOK int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout,
		     const sigset_t *sigmask)
{
	static const struct timespec now = { 0, 0 };
	struct atlas_ready_poll w;
	int r;

	if (__builtin_expect(!atlas_ready_any(), 1) || !ready_begin_poll(fds, n, &w))
		return REAL(ppoll)(fds, n, timeout, sigmask);
	r = REAL(ppoll)(fds, n, w.no_wait ? &now : timeout, sigmask);
	return atlas_ready_poll_end(fds, n, &w, r);
}
#pragma GCC diagnostic pop

ATLAS_HOOK int select(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds,
		      struct timeval *timeout)
{
	struct timeval now = { 0, 0 };
	struct atlas_ready_select w;
	fd_set *kread = readfds, *kwrite = writefds;
	int r;

	if (__builtin_expect(!atlas_ready_any(), 1) ||
	    !ready_begin_select(nfds, &kread, &kwrite, &w))
		return REAL(select)(nfds, readfds, writefds, exceptfds, timeout);
	r = REAL(select)(nfds, kread, kwrite, exceptfds, w.no_wait ? &now : timeout);
	return r < 0 ? r : atlas_ready_select_end(nfds, readfds, writefds, exceptfds, &w);
}

ATLAS_HOOK int pselect(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds,
		       const struct timespec *timeout, const sigset_t *sigmask)
{
	static const struct timespec now = { 0, 0 };
	struct atlas_ready_select w;
	fd_set *kread = readfds, *kwrite = writefds;
	int r;

	if (__builtin_expect(!atlas_ready_any(), 1) ||
	    !ready_begin_select(nfds, &kread, &kwrite, &w))
		return REAL(pselect)(nfds, readfds, writefds, exceptfds, timeout, sigmask);
	r = REAL(pselect)(nfds, kread, kwrite, exceptfds, w.no_wait ? &now : timeout, sigmask);
	return r < 0 ? r : atlas_ready_select_end(nfds, readfds, writefds, exceptfds, &w);
}

ATLAS_HOOK int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	if (__builtin_expect(atlas_fdtab_peek(fd) == NULL, 1))
		return REAL(epoll_ctl)(epfd, op, fd, ev);
	return atlas_ready_epoll_ctl(epfd, op, fd, ev);
}

/* The wait an epoll hook makes: which call, with its timeout and signal mask. */
struct epoll_call {
	enum { EPOLL_WAIT, EPOLL_PWAIT, EPOLL_PWAIT2 } which;
	int ms;
	const struct timespec *ts;
	const sigset_t *mask;
};

/* The host's call, through events[0..max), or without waiting at all (no_wait). */
static int epoll_real(const struct epoll_call *w, int epfd, struct epoll_event *events, int max,
		      bool no_wait)
{
	static const struct timespec now = { 0, 0 };

	switch (w->which) {
	case EPOLL_WAIT:
		return REAL(epoll_wait)(epfd, events, max, no_wait ? 0 : w->ms);
	case EPOLL_PWAIT:
		return REAL(epoll_pwait)(epfd, events, max, no_wait ? 0 : w->ms, w->mask);
	default:
		return REAL(epoll_pwait2)(epfd, events, max, no_wait ? &now : w->ts, w->mask);
	}
}

/*
 * The events of connections with bytes waiting first (k of them), then what
 * the kernel has: without waiting when k > 0, not at all when they fill the
 * array, and in the host's terms for a waiting handshake.
 */
static int epoll_hooked(const struct epoll_call *w, int epfd, struct epoll_event *events, int max)
{
	int k, kernel;

	atlas_engine_before_wait();
	k = atlas_ready_epoll_events(epfd, events, max);
	if (k == max)
		return k;
	kernel = epoll_real(w, epfd, events + k, max - k, k > 0);
	if (kernel < 0)
		return k > 0 ? k : kernel;
	atlas_ready_epoll_translate(epfd, events + k, kernel);
	return k + kernel;
}

/*
 * The fast path's end: a connection listed while the host waited (another thread's
 * write met a full socket, or its handshake began) gets its events in the host's
 * terms, and the room it waits for used, as epoll_hooked's would.
 */
static inline int epoll_fast_end(int epfd, struct epoll_event *events, int n)
{
	if (n > 0 && __builtin_expect(atlas_ready_any(), 0))
		atlas_ready_epoll_translate(epfd, events, n);
	return n;
}

ATLAS_HOOK int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout)
{
	if (__builtin_expect(!atlas_ready_any(), 1) || max <= 0)
		return epoll_fast_end(epfd, events, REAL(epoll_wait)(epfd, events, max, timeout));
	return epoll_hooked(&(struct epoll_call){ EPOLL_WAIT, timeout, NULL, NULL }, epfd, events,
			    max);
}

ATLAS_HOOK int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout,
			   const sigset_t *sigmask)
{
	if (__builtin_expect(!atlas_ready_any(), 1) || max <= 0)
		return epoll_fast_end(epfd, events,
				      REAL(epoll_pwait)(epfd, events, max, timeout, sigmask));
	return epoll_hooked(&(struct epoll_call){ EPOLL_PWAIT, timeout, NULL, sigmask }, epfd,
			    events, max);
}

ATLAS_HOOK int epoll_pwait2(int epfd, struct epoll_event *events, int max,
			    const struct timespec *timeout, const sigset_t *sigmask)
{
	/* Only a lookup by name reaches it where glibc has none (older than 2.35). */
	if (__builtin_expect(REAL(epoll_pwait2) == NULL, 0)) {
		errno = ENOSYS;
		return -1;
	}
	if (__builtin_expect(!atlas_ready_any(), 1) || max <= 0)
		return epoll_fast_end(epfd, events,
				      REAL(epoll_pwait2)(epfd, events, max, timeout, sigmask));
	return epoll_hooked(&(struct epoll_call){ EPOLL_PWAIT2, 0, timeout, sigmask }, epfd, events,
			    max);
}
