/*
 * Closed connections with bytes still to send.
 *
 * The kernel keeps a closed socket's send queue and sends it on. Bytes the
 * host wrote under TCP_CORK are gathered in Atlas (engine.c) and counted as
 * written, and so are the last bytes of a write that met a full socket
 * (engine.c); when the host closes the connection while the socket cannot take
 * them yet (the client reads slowly), they must still go out, then
 * close_notify. A thread started on first need keeps such sockets open (a
 * duplicate fd of Atlas's own, close-on-exec), sends as they become writable,
 * and closes each when done, when the connection fails, or after a minute.
 */
#ifndef ATLAS_LINGER_H
#define ATLAS_LINGER_H

#include <stdbool.h>

struct atlas_conn;

/*
 * The host is closing fd, c's last fd: c (a reference is taken) and a duplicate
 * of fd are kept until c's waiting bytes and close_notify are out, for up to a
 * minute (notify_only, when nothing but close_notify waits: 3 s, as nginx gives its
 * own SSL_shutdown). When the duplicate or the thread cannot be had, the bytes are
 * dropped and a warning logged.
 */
void atlas_linger_adopt(struct atlas_conn *c, int fd, bool notify_only);

#endif
