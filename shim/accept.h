/*
 * The accept side: is a freshly accepted connection one of ours?
 */
#ifndef ATLAS_ACCEPT_H
#define ATLAS_ACCEPT_H

#include <sys/socket.h>

/*
 * Called with the fd accept() just returned (and only when the library is
 * configured). A connection to a TLS port gets a slot in the fd table; any
 * other passes untouched. Returns fd, or -1 with ECONNABORTED after closing a
 * connection that must be refused (broken configuration, out of memory): the
 * host's accept loop treats that as a client that went away, and goes on.
 *
 * A TLS connection's fd is made close-on-exec (unless accept_flags already
 * asked for SOCK_CLOEXEC, which saves the system call): its TLS state lives
 * in this process's memory, and a program started with exec(2) would write
 * plaintext to it. addr and addrlen are what accept() filled in (may be NULL):
 * the peer is kept for log lines without asking the socket again.
 */
int atlas_accept_adopt(int fd, int accept_flags, const struct sockaddr *addr,
		       const socklen_t *addrlen);

/*
 * Called after a successful listen(): a socket listening on a TLS port gets
 * one log line, from the process that listens (not from every process that
 * merely loaded the library).
 */
void atlas_accept_note_listener(int fd);

/*
 * Called for each fd that recvmsg() received over SCM_RIGHTS. A TLS
 * connection another process of the server offloaded fully to the kernel and
 * passed here (on a TLS port, keys in the kernel both ways) becomes one of
 * ours again, owned by this process: its control records are handled and its
 * close sends close_notify. Anything else passes untouched.
 */
void atlas_accept_received(int fd);

#endif
