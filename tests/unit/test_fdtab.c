/*
 * Unit tests for shim/fdtab.c with shim/conn.c: slots, references, dup'ed
 * fds sharing one connection, stale slots, the table across fork(), and the
 * count of the host's sends in flight.
 *
 * Every fd put in the table is a real socket (a socketpair); the connections
 * stay in state NEW, so the close_notify of the last atlas_conn_fd_put does
 * no I/O. Run under valgrind to check that the last reference frees.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conn.h"
#include "fdtab.h"
#include "real.h"
#include "stub_init.h"

struct fixture {
	int fd;	   /* one end of a socketpair: the "accepted" socket */
	int other; /* the other end, also open, never put in the table */
};

static int setup(void **state)
{
	struct fixture *f = malloc(sizeof(*f));
	int sv[2];

	atlas_real_init();
	if (f == NULL || atlas_fdtab_init() < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		free(f);
		return -1;
	}
	/* A new table has no slot yet; fini leaves the process-wide mark where it was. */
	atlas_fdtab_high = 0;
	f->fd = sv[0];
	f->other = sv[1];
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->fd);
	close(f->other);
	free(f);
	atlas_fdtab_fini();
	return 0;
}

static struct atlas_conn *new_conn(void)
{
	struct atlas_conn *c = atlas_conn_new(8443, 10000);

	assert_non_null(c);
	return c;
}

/* Puts c at fd and checks that the slot was empty. */
static void set_slot(int fd, struct atlas_conn *c)
{
	struct atlas_conn *old = (struct atlas_conn *)&old; /* anything but NULL */

	assert_int_equal(atlas_fdtab_set(fd, c, &old), 0);
	assert_null(old);
}

/* Empties fd's slot the way close() does: take, then drop the fd reference. */
static void close_slot(int fd, struct atlas_conn *want)
{
	struct atlas_conn *c = atlas_fdtab_take(fd);

	assert_ptr_equal(c, want);
	atlas_conn_fd_put(c, fd);
}

static void conn_new_has_one_reference_and_no_fd(void **state)
{
	struct atlas_conn *c = new_conn();

	(void)state;
	assert_int_equal(c->refs, 1);
	assert_int_equal(c->fds, 0);
	assert_int_equal(c->state, ATLAS_CONN_NEW);
	assert_int_equal(c->port, 8443);
	assert_null(c->ssl);
	atlas_conn_put(c);
}

static void empty_slot_is_null(void **state)
{
	struct fixture *f = *state;

	assert_null(atlas_fdtab_peek(f->fd));
	assert_null(atlas_fdtab_get(f->fd));
	assert_null(atlas_fdtab_take(f->fd));
	assert_null(atlas_fdtab_peek(0));
}

static void table_covers_every_fd_the_process_may_open(void **state)
{
	struct rlimit rl;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_true(atlas_fdtab_size >= 65536);
	if (rl.rlim_cur != RLIM_INFINITY)
		assert_true(atlas_fdtab_size >= rl.rlim_cur);
}

static void set_then_peek_and_get_find_the_conn(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();

	set_slot(f->fd, c);
	assert_int_equal(c->fds, 1);
	assert_int_equal(c->refs, 2); /* ours and the slot's */
	assert_ptr_equal(atlas_fdtab_peek(f->fd), c);
	assert_null(atlas_fdtab_peek(f->other));
	assert_ptr_equal(atlas_fdtab_get(f->fd), c);
	atlas_conn_put(c); /* the get's */
	atlas_conn_put(c); /* ours: the slot keeps it alive */
	assert_int_equal(c->refs, 1);
	assert_ptr_equal(atlas_fdtab_peek(f->fd), c);
	close_slot(f->fd, c);
	assert_null(atlas_fdtab_peek(f->fd));
}

static void get_takes_a_reference(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();

	set_slot(f->fd, c);
	atlas_conn_put(c);
	assert_int_equal(c->refs, 1);
	assert_ptr_equal(atlas_fdtab_get(f->fd), c);
	assert_int_equal(c->refs, 2);
	assert_ptr_equal(atlas_fdtab_get(f->fd), c);
	assert_int_equal(c->refs, 3);
	assert_int_equal(c->fds, 1); /* a call reference is not an fd */
	atlas_conn_put(c);
	atlas_conn_put(c);
	assert_int_equal(c->refs, 1);
	close_slot(f->fd, c);
}

/* peek takes no reference: it is the lock-free fast path. */
static void peek_takes_no_reference(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();

	set_slot(f->fd, c);
	atlas_conn_put(c);
	assert_ptr_equal(atlas_fdtab_peek(f->fd), c);
	assert_ptr_equal(atlas_fdtab_peek(f->fd), c);
	assert_int_equal(c->refs, 1);
	close_slot(f->fd, c);
}

static void take_empties_the_slot_and_hands_over_its_reference(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();

	set_slot(f->fd, c);
	atlas_conn_put(c);
	assert_ptr_equal(atlas_fdtab_take(f->fd), c);
	/* The slot's references now belong to the caller: nothing was dropped. */
	assert_int_equal(c->refs, 1);
	assert_int_equal(c->fds, 1);
	assert_null(atlas_fdtab_peek(f->fd));
	assert_null(atlas_fdtab_get(f->fd));
	assert_null(atlas_fdtab_take(f->fd));
	atlas_conn_fd_put(c, f->fd);
}

static void negative_fd_is_never_ours(void **state)
{
	static const int bad[] = { -1, -2, INT_MIN };
	struct atlas_conn *c = new_conn();
	struct atlas_conn *old = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(atlas_fdtab_peek(bad[i]));
		assert_null(atlas_fdtab_get(bad[i]));
		assert_null(atlas_fdtab_take(bad[i]));
		errno = 0;
		assert_int_equal(atlas_fdtab_set(bad[i], c, &old), -1);
		assert_int_equal(errno, EMFILE);
	}
	/* A refused set takes no reference. */
	assert_int_equal(c->refs, 1);
	assert_int_equal(c->fds, 0);
	atlas_conn_put(c);
}

static void fd_past_the_table_is_refused(void **state)
{
	const int past[] = { (int)atlas_fdtab_size, (int)atlas_fdtab_size + 1, INT_MAX };
	struct atlas_conn *c = new_conn();
	struct atlas_conn *old = NULL;

	(void)state;
	assert_true(atlas_fdtab_size < INT_MAX);
	for (size_t i = 0; i < sizeof(past) / sizeof(past[0]); i++) {
		assert_null(atlas_fdtab_peek(past[i]));
		assert_null(atlas_fdtab_get(past[i]));
		assert_null(atlas_fdtab_take(past[i]));
		errno = 0;
		assert_int_equal(atlas_fdtab_set(past[i], c, &old), -1);
		assert_int_equal(errno, EMFILE);
	}
	assert_int_equal(c->refs, 1);
	assert_int_equal(c->fds, 0);
	/* The last slot is still usable. */
	set_slot((int)atlas_fdtab_size - 1, c);
	assert_ptr_equal(atlas_fdtab_peek((int)atlas_fdtab_size - 1), c);
	assert_ptr_equal(atlas_fdtab_take((int)atlas_fdtab_size - 1), c);
	atlas_conn_fd_forget(c);
	atlas_conn_put(c);
}

/* dup(): one connection at two slots, counted as two fds. */
static void dup_puts_one_conn_at_two_slots(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();
	int fd2 = dup(f->fd);

	assert_true(fd2 >= 0);
	set_slot(f->fd, c);
	set_slot(fd2, c);
	atlas_conn_put(c);
	assert_int_equal(c->fds, 2);
	assert_int_equal(c->refs, 2);
	assert_ptr_equal(atlas_fdtab_peek(f->fd), c);
	assert_ptr_equal(atlas_fdtab_peek(fd2), c);
	close_slot(fd2, c);
	close(fd2);
	close_slot(f->fd, c);
}

/* Closing one of two dup'ed fds leaves the connection working at the other. */
static void closing_one_dup_leaves_the_other_working(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();
	int fd2 = dup(f->fd);

	assert_true(fd2 >= 0);
	set_slot(f->fd, c);
	set_slot(fd2, c);
	atlas_conn_put(c);
	close_slot(f->fd, c);
	close(f->fd);
	f->fd = dup(fd2); /* keep the fixture's fd valid for teardown */
	assert_int_equal(c->fds, 1);
	assert_int_equal(c->refs, 1);
	assert_ptr_equal(atlas_fdtab_get(fd2), c);
	assert_int_equal(c->refs, 2);
	assert_int_equal(c->state, ATLAS_CONN_NEW);
	atlas_conn_put(c);
	close_slot(fd2, c);
	close(fd2);
	assert_null(atlas_fdtab_peek(fd2));
}

/* The last fd_put frees: valgrind shows a leak if it does not, a bad access if too early. */
static void last_fd_put_frees_the_conn(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();
	int fd2 = dup(f->fd);

	assert_true(fd2 >= 0);
	set_slot(f->fd, c);
	set_slot(fd2, c);
	atlas_conn_put(c);
	assert_ptr_equal(atlas_fdtab_take(f->fd), c);
	assert_ptr_equal(atlas_fdtab_take(fd2), c);
	atlas_conn_fd_put(c, f->fd);
	assert_int_equal(c->refs, 1); /* still alive: one fd left */
	assert_int_equal(c->fds, 1);
	atlas_conn_fd_put(c, fd2); /* frees c */
	assert_null(atlas_fdtab_peek(f->fd));
	assert_null(atlas_fdtab_peek(fd2));
	close(fd2);
}

/* A call reference outlives the fd: the conn is freed by the call's put, not by close. */
static void call_reference_outlives_the_last_fd(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();
	struct atlas_conn *held;

	set_slot(f->fd, c);
	atlas_conn_put(c);
	held = atlas_fdtab_get(f->fd);
	assert_ptr_equal(held, c);
	close_slot(f->fd, c);
	assert_int_equal(held->refs, 1);
	assert_int_equal(held->fds, 0);
	assert_int_equal(held->port, 8443);
	atlas_conn_put(held);
}

/* A slot whose fd was closed behind our back: set hands back the stale conn. */
static void set_over_a_stale_slot_returns_the_old_conn(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *stale = new_conn();
	struct atlas_conn *fresh = new_conn();
	struct atlas_conn *old = NULL;

	set_slot(f->fd, stale);
	assert_int_equal(atlas_fdtab_set(f->fd, fresh, &old), 0);
	assert_ptr_equal(old, stale);
	assert_ptr_equal(atlas_fdtab_peek(f->fd), fresh);
	assert_int_equal(fresh->fds, 1);
	assert_int_equal(fresh->refs, 2);
	/* The stale conn still holds the slot's references until the caller drops them. */
	assert_int_equal(stale->fds, 1);
	assert_int_equal(stale->refs, 2);
	atlas_conn_fd_forget(old);
	assert_int_equal(stale->fds, 0);
	assert_int_equal(stale->refs, 1);
	atlas_conn_put(stale);
	atlas_conn_put(fresh);
	close_slot(f->fd, fresh);
}

static void fd_forget_and_put_accept_null(void **state)
{
	(void)state;
	atlas_conn_fd_forget(NULL);
	atlas_conn_put(NULL);
	assert_true(1);
}

/* fdtab.h: one past the highest fd ever given a slot. */
static void high_moves_up_with_the_highest_fd(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();
	int hi = fcntl(f->fd, F_DUPFD_CLOEXEC, f->fd + 8);

	assert_true(hi >= f->fd + 8);
	assert_int_equal(atlas_fdtab_high, 0);
	set_slot(hi, c);
	assert_int_equal(atlas_fdtab_high, (size_t)hi + 1);
	/* A lower fd does not move it down. */
	set_slot(f->fd, c);
	assert_int_equal(atlas_fdtab_high, (size_t)hi + 1);
	/* Nor does emptying the highest slot. */
	close_slot(hi, c);
	close(hi);
	assert_int_equal(atlas_fdtab_high, (size_t)hi + 1);
	atlas_conn_put(c);
	close_slot(f->fd, c);
}

/* The child's verdict, as its exit status. */
enum child_result {
	CHILD_OK = 0,
	CHILD_PEEK_MISSING = 10,
	CHILD_GET_MISSING,
	CHILD_REFS_WRONG,
	CHILD_OTHER_SLOT_SET,
	CHILD_DUP_SLOT_MISSING,
};

static int child_checks(int fd, int fd2, int other, const struct atlas_conn *c)
{
	struct atlas_conn *got;

	if (atlas_fdtab_peek(fd) != c)
		return CHILD_PEEK_MISSING;
	if (atlas_fdtab_peek(fd2) != c)
		return CHILD_DUP_SLOT_MISSING;
	if (atlas_fdtab_peek(other) != NULL)
		return CHILD_OTHER_SLOT_SET;
	got = atlas_fdtab_get(fd);
	if (got != c)
		return CHILD_GET_MISSING;
	/* The child has its own copy: two fd slots plus its get. */
	if (got->refs != 3 || got->fds != 2)
		return CHILD_REFS_WRONG;
	atlas_conn_put(got);
	return CHILD_OK;
}

static void fork_child_sees_the_same_slots(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();
	int fd2 = dup(f->fd);
	int status;
	pid_t pid;

	assert_true(fd2 >= 0);
	set_slot(f->fd, c);
	set_slot(fd2, c);
	atlas_conn_put(c);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_checks(f->fd, fd2, f->other, c));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), CHILD_OK);
	/* The child's references were its own: the parent's counts are unchanged. */
	assert_int_equal(c->refs, 2);
	assert_int_equal(c->fds, 2);
	close_slot(fd2, c);
	close(fd2);
	close_slot(f->fd, c);
}

static bool is_cloexec(int fd)
{
	return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

/* Offload gives each fd of the connection the close-on-exec its host asked for, dups too. */
static void give_back_cloexec_restores_each_fds_own_choice(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();
	int wants_open = dup(f->fd), wants_cloexec = dup(f->fd);
	bool other_was = is_cloexec(f->other);

	assert_true(wants_open >= 0 && wants_cloexec >= 0);
	set_slot(f->fd, c);
	set_slot(wants_open, c);
	set_slot(wants_cloexec, c);
	atlas_conn_put(c);
	atlas_fdtab_note_cloexec(f->fd, false);
	atlas_fdtab_note_cloexec(wants_open, false);
	atlas_fdtab_note_cloexec(wants_cloexec, true);
	/* Atlas forces close-on-exec on all three while the TLS state is in the process. */
	for (int fd = 0; fd <= wants_cloexec; fd++)
		if (atlas_fdtab_peek(fd) == c)
			assert_int_equal(fcntl(fd, F_SETFD, FD_CLOEXEC), 0);
	atlas_fdtab_give_back_cloexec(c, f->fd);
	assert_false(is_cloexec(f->fd));
	assert_false(is_cloexec(wants_open));
	assert_true(is_cloexec(wants_cloexec));
	assert_int_equal(is_cloexec(f->other), other_was); /* not the connection's: untouched */
	close_slot(wants_cloexec, c);
	close(wants_cloexec);
	close_slot(wants_open, c);
	close(wants_open);
	close_slot(f->fd, c);
}

/* The only fd of a connection: no scan of the table, the fd alone. */
static void give_back_cloexec_single_fd(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();

	set_slot(f->fd, c);
	atlas_conn_put(c);
	atlas_fdtab_note_cloexec(f->fd, true);
	assert_int_equal(fcntl(f->fd, F_SETFD, FD_CLOEXEC), 0);
	atlas_fdtab_give_back_cloexec(c, f->fd);
	assert_true(is_cloexec(f->fd));
	atlas_fdtab_note_cloexec(f->fd, false);
	atlas_fdtab_give_back_cloexec(c, f->fd);
	assert_false(is_cloexec(f->fd));
	close_slot(f->fd, c);
}

/* The other thread: takes the lock, says so, and keeps it until told to let go. */
struct holder {
	struct atlas_conn *c;
	int held[2];	/* pipe: the holder writes a byte once it has the lock */
	int release[2]; /* pipe: the holder unlocks when it reads a byte */
};

static void *hold_lock(void *arg)
{
	struct holder *h = arg;
	char b = 0;

	pthread_mutex_lock(&h->c->lock);
	if (write(h->held[1], &b, 1) != 1 || read(h->release[0], &b, 1) != 1)
		b = 1;
	pthread_mutex_unlock(&h->c->lock);
	return NULL;
}

/*
 * A thread holds the connection's lock at fork(), and is still holding it: the
 * child (one thread, the holder not among them) can still take it. The holder
 * stays alive until the child is done, as in a threaded server; a holder that
 * exited with the lock would be a different (and invalid) program, which
 * ThreadSanitizer rightly calls a double lock when the child takes it.
 */
static void fork_child_can_lock_a_conn_another_thread_held(void **state)
{
	struct fixture *f = *state;
	struct holder h = { .c = new_conn() };
	pthread_t t;
	int status;
	pid_t pid;
	char b = 0;

	set_slot(f->fd, h.c);
	atlas_conn_put(h.c);
	assert_int_equal(pipe(h.held), 0);
	assert_int_equal(pipe(h.release), 0);
	assert_int_equal(pthread_create(&t, NULL, hold_lock, &h), 0);
	assert_int_equal(read(h.held[0], &b, 1), 1);
	assert_int_equal(pthread_mutex_trylock(&h.c->lock), EBUSY);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(pthread_mutex_trylock(&h.c->lock) == 0 ? CHILD_OK : CHILD_REFS_WRONG);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(write(h.release[1], &b, 1), 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	for (int i = 0; i < 2; i++) {
		close(h.held[i]);
		close(h.release[i]);
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), CHILD_OK);
	close_slot(f->fd, h.c);
}

/* A send counts on the connection, whichever fd it came on, also after that fd's close. */
static void a_send_in_flight_counts_on_the_connection(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();
	int fd2 = dup(f->fd);

	assert_true(fd2 >= 0);
	set_slot(f->fd, c);
	set_slot(fd2, c);
	atlas_conn_put(c);
	assert_false(atlas_conn_sending(c));
	atlas_conn_get(c);		     /* the send's reference, as the hooks take it */
	assert_true(atlas_conn_tx_begin(c)); /* a send on fd2 */
	assert_true(atlas_conn_sending(c));
	assert_int_equal(c->refs, 3); /* two fd slots and the send */
	close_slot(fd2, c);
	close(fd2);
	assert_true(atlas_conn_sending(c)); /* fd2 closed under the send: still under way */
	errno = EAGAIN;
	atlas_conn_tx_end(c);
	assert_int_equal(errno, EAGAIN); /* the send's errno is kept */
	assert_false(atlas_conn_sending(c));
	assert_int_equal(c->refs, 1);
	close_slot(f->fd, c);
}

/* After the host's shutdown no send begins, and nothing is taken (the hooks then say EPIPE). */
static void no_send_begins_after_a_shutdown(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();

	set_slot(f->fd, c);
	atlas_conn_put(c);
	c->wr_closed = 1;
	atlas_conn_get(c);
	assert_false(atlas_conn_tx_begin(c));
	assert_false(atlas_conn_sending(c));
	assert_int_equal(c->refs, 2); /* the caller's reference stays the caller's */
	atlas_conn_put(c);
	close_slot(f->fd, c);
}

/* A fork child starts with no send in flight: the parent's threads' are not its own. */
static void fork_child_has_no_send_in_flight(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();
	int status;
	pid_t pid;

	set_slot(f->fd, c);
	atlas_conn_get(c);
	atlas_conn_put(c);
	assert_true(atlas_conn_tx_begin(c));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(atlas_conn_sending(c) ? 1 : 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(atlas_conn_sending(c));
	atlas_conn_tx_end(c);
	close_slot(f->fd, c);
}

static void *exit_inside_a_send(void *arg)
{
	atlas_conn_get(arg);
	assert_true(atlas_conn_tx_begin(arg));
	pthread_exit(NULL); /* as pthread_cancel ends a thread blocked in write() */
}

/* A thread that ends inside a send ends the send: its count and its reference go. */
static void a_thread_that_ends_inside_a_send_ends_it(void **state)
{
	struct fixture *f = *state;
	struct atlas_conn *c = new_conn();
	pthread_t t;

	set_slot(f->fd, c);
	atlas_conn_put(c);
	assert_int_equal(pthread_create(&t, NULL, exit_inside_a_send, c), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_false(atlas_conn_sending(c));
	assert_int_equal(c->refs, 1);
	close_slot(f->fd, c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(conn_new_has_one_reference_and_no_fd),
		T(empty_slot_is_null),
		T(table_covers_every_fd_the_process_may_open),
		T(set_then_peek_and_get_find_the_conn),
		T(get_takes_a_reference),
		T(peek_takes_no_reference),
		T(take_empties_the_slot_and_hands_over_its_reference),
		T(negative_fd_is_never_ours),
		T(fd_past_the_table_is_refused),
		T(dup_puts_one_conn_at_two_slots),
		T(closing_one_dup_leaves_the_other_working),
		T(last_fd_put_frees_the_conn),
		T(call_reference_outlives_the_last_fd),
		T(set_over_a_stale_slot_returns_the_old_conn),
		T(fd_forget_and_put_accept_null),
		T(high_moves_up_with_the_highest_fd),
		T(fork_child_sees_the_same_slots),
		T(fork_child_can_lock_a_conn_another_thread_held),
		T(give_back_cloexec_restores_each_fds_own_choice),
		T(give_back_cloexec_single_fd),
		T(a_send_in_flight_counts_on_the_connection),
		T(no_send_begins_after_a_shutdown),
		T(fork_child_has_no_send_in_flight),
		T(a_thread_that_ends_inside_a_send_ends_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
