/*
 * The accept side: is a freshly accepted connection one of ours?
 */
#ifndef ATLAS_ACCEPT_H
#define ATLAS_ACCEPT_H

/*
 * Called with the fd accept() just returned (and only when the library is
 * configured). A connection to a TLS port gets a slot in the fd table; any
 * other passes untouched. Returns fd, or -1 with ECONNABORTED after closing a
 * connection that must be refused (broken configuration, out of memory): the
 * host's accept loop treats that as a client that went away, and goes on.
 */
int atlas_accept_adopt(int fd);

/*
 * Called after a successful listen(): a socket listening on a TLS port gets
 * one log line, from the process that listens (not from every process that
 * merely loaded the library).
 */
void atlas_accept_note_listener(int fd);

#endif
