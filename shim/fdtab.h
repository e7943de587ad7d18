/*
 * The per-fd table: one slot per possible descriptor, NULL for every fd that
 * is not a TLS connection of ours.
 *
 * A hook's first line is atlas_fdtab_peek(): one load and a branch, no lock,
 * so an fd that is not ours costs next to nothing. Only when the slot is set
 * does the caller take a counted reference under a striped lock, which keeps
 * a concurrent close() from freeing the connection under it.
 */
#ifndef ATLAS_FDTAB_H
#define ATLAS_FDTAB_H

#include <stdbool.h>
#include <stddef.h>

struct atlas_conn;

extern struct atlas_conn **atlas_fdtab_slots;
extern size_t atlas_fdtab_size;
/* One past the highest fd ever given a slot: close_range() scans no further. */
extern size_t atlas_fdtab_high;

/*
 * Is this process the table's owner? Not in a vfork(2) child (Python's
 * subprocess uses vfork), which shares its parent's memory and so its table,
 * and runs no atfork handler: such a child must not change the table (its
 * close_range before exec would empty the parent's slots). Costs getpid(2):
 * call it only on the paths that change the table.
 */
bool atlas_fdtab_owned(void);

/* Maps the table, sized from RLIMIT_NOFILE's hard limit. 0, or -1 with errno. */
int atlas_fdtab_init(void);

/* Releases the table (tests only: the library keeps it for the process's life). */
void atlas_fdtab_fini(void);

/* The unlocked fast-path test: is fd possibly ours? */
static inline struct atlas_conn *atlas_fdtab_peek(int fd)
{
	if ((size_t)fd >= atlas_fdtab_size)
		return NULL;
	return __atomic_load_n(&atlas_fdtab_slots[fd], __ATOMIC_ACQUIRE);
}

/* The connection at fd with one call reference taken, or NULL. Pair with atlas_conn_put(). */
struct atlas_conn *atlas_fdtab_get(int fd);

/*
 * Puts c at fd, taking one fd reference on c. Whatever stood there before (a
 * connection whose fd was closed behind our back) is detached and returned so
 * the caller can drop it; usually NULL. -1 (EMFILE) if fd is past the table.
 */
int atlas_fdtab_set(int fd, struct atlas_conn *c, struct atlas_conn **old);

/* Empties the slot and hands its fd reference to the caller, or NULL. */
struct atlas_conn *atlas_fdtab_take(int fd);

/*
 * Close-on-exec. A TLS fd whose state lives in this process is kept
 * close-on-exec whatever the host asks (exec would hand plaintext to the next
 * program); the host's own choice for each fd is noted here, and given back
 * to every fd of c once the kernel has the connection (it may then follow
 * exec). fd is the one the handshake ran on.
 */
void atlas_fdtab_note_cloexec(int fd, bool cloexec);
void atlas_fdtab_give_back_cloexec(struct atlas_conn *c, int fd);

#endif
