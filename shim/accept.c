#define _GNU_SOURCE
#include "accept.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "conn.h"
#include "ktls.h"
#include "offload.h"
#include "fdtab.h"
#include "init.h"
#include "log.h"
#include "real.h"
#include "secrets.h"

/* The local port of a TCP socket (IPv4 or IPv6, dual-stack included), or 0. */
static unsigned local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0; /* AF_UNIX and the rest are never TLS */
}

/* Whether this process has logged why its TLS ports are refused (at listen or first refusal). */
static int refusal_logged;

void atlas_accept_note_listener(int fd)
{
	unsigned port = local_port(fd);

	if (port == 0)
		return;
	if (atlas_init_mode == ATLAS_REFUSING_ALL) {
		__atomic_store_n(&refusal_logged, 1, __ATOMIC_RELAXED);
		atlas_error("fd %d: port %u: %s; no port may serve plaintext, so every connection "
			    "will be refused",
			    fd, port, atlas_init_refusal());
		return;
	}
	if (!atlas_config_port_is_tls(&atlas_init_config, (uint16_t)port))
		return;
	if (atlas_init_tls() == ATLAS_SERVING) {
		atlas_info("fd %d: listening with TLS on port %u; ATLAS_KTLS=%s; path %s", fd, port,
			   atlas_config_ktls_name(atlas_init_config.ktls),
			   atlas_offload_describe());
		atlas_secrets_note_listener(&atlas_init_config, fd);
	} else if (__atomic_exchange_n(&refusal_logged, 1, __ATOMIC_RELAXED) == 0)
		atlas_error("fd %d: port %u is a TLS port but %s: its connections will be refused",
			    fd, port, atlas_init_refusal());
}

static int refuse(int fd, unsigned port, const char *why)
{
	/* The reason is an error once; every further refused connection is routine. */
	if (__atomic_exchange_n(&refusal_logged, 1, __ATOMIC_RELAXED) == 0)
		atlas_error("fd %d port %u: connection refused: %s", fd, port, why);
	else
		atlas_info("fd %d port %u: connection refused: %s", fd, port, why);
	atlas_real.close(fd);
	errno = ECONNABORTED;
	return -1;
}

int atlas_accept_adopt(int fd, int accept_flags, const struct sockaddr *addr,
		       const socklen_t *addrlen)
{
	unsigned port = local_port(fd);
	struct atlas_conn *c, *stale = NULL;

	if (port == 0 || (atlas_init_mode == ATLAS_SERVING &&
			  !atlas_config_port_is_tls(&atlas_init_config, (uint16_t)port))) {
		/* Not ours. A slot at this number is stale (its fd was closed where no hook saw). */
		if (__builtin_expect(atlas_fdtab_peek(fd) != NULL, 0))
			atlas_conn_fd_forget(atlas_fdtab_take(fd));
		return fd;
	}
	switch (atlas_init_mode) {
	case ATLAS_SERVING:
		if (atlas_init_tls() == ATLAS_SERVING)
			break;
		return refuse(fd, port, atlas_init_refusal());
	case ATLAS_REFUSING:
		if (!atlas_config_port_is_tls(&atlas_init_config, (uint16_t)port))
			return fd;
		return refuse(fd, port, atlas_init_refusal());
	case ATLAS_REFUSING_ALL:
		return refuse(fd, port, atlas_init_refusal());
	case ATLAS_INERT:
	default:
		return fd;
	}
	c = atlas_conn_new((uint16_t)port, atlas_init_config.handshake_timeout_ms);
	if (c == NULL)
		return refuse(fd, port, "out of memory");
	atlas_conn_set_peer(c, fd, addr, addrlen != NULL ? *addrlen : 0);
	if (atlas_fdtab_set(fd, c, &stale) < 0) {
		atlas_conn_put(c);
		return refuse(fd, port, "the fd is beyond Atlas's fd table");
	}
	atlas_conn_fd_forget(stale);
	atlas_fdtab_note_cloexec(fd, (accept_flags & SOCK_CLOEXEC) != 0);
	if (!(accept_flags & SOCK_CLOEXEC))
		atlas_real.fcntl(fd, F_SETFD, FD_CLOEXEC);
	atlas_conn_put(c); /* the slot holds its own reference now */
	return fd;
}

void atlas_accept_received(int fd)
{
	unsigned port = local_port(fd);
	struct atlas_conn *c, *stale = NULL;
	char who[128];

	/* The kernel reused a number whose fd was closed where no hook saw: that slot is stale. */
	if (__builtin_expect(atlas_fdtab_peek(fd) != NULL, 0))
		atlas_conn_fd_forget(atlas_fdtab_take(fd));
	if (port == 0 || atlas_init_mode != ATLAS_SERVING ||
	    !atlas_config_port_is_tls(&atlas_init_config, (uint16_t)port))
		return;
	/* Only a kernel-path fd is ever passed (the sender refuses the rest), and only one
	 * whose kernel has both directions can be served here without OpenSSL's state. */
	if (atlas_ktls_directions(fd) != (ATLAS_KTLS_TX | ATLAS_KTLS_RX))
		return;
	c = atlas_conn_new((uint16_t)port, atlas_init_config.handshake_timeout_ms);
	if (c == NULL) {
		atlas_error("fd %d port %u: a TLS connection received over SCM_RIGHTS is served "
			    "without Atlas (out of memory): no close_notify at its end",
			    fd, port);
		return;
	}
	atlas_conn_set_peer(c, fd, NULL, 0);
	c->ktls = ATLAS_KTLS_TX | ATLAS_KTLS_RX;
	atlas_conn_set_path(c, ATLAS_PATH_KERNEL);
	c->state = ATLAS_CONN_OPEN; /* c->pid: this process owns the session now */
	if (atlas_fdtab_set(fd, c, &stale) == 0)
		atlas_info("%s: received over SCM_RIGHTS, path kernel (TX and RX)",
			   atlas_conn_describe(c, fd, who, sizeof(who)));
	atlas_conn_fd_forget(stale);
	atlas_conn_put(c); /* the slot holds its own reference, if it took one */
}
