/* store_io_fault: without a fault it passes calls through; a delay holds
 * a call until it is due or the fault is cleared (then at the next turn,
 * never later: a shutdown clears it so no call outlives its store); an
 * ENOSPC fault fails writes and syncs but not reads; both are counted. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"
#include "store_io.h"
#include "store_io_fault.h"

struct fx {
	struct loop loop;
	struct store_io uring;
	struct store_io_fault fault;
	char path[64];
	int fd;
};

struct done_op {
	struct loop_op op;
	int res;
	bool done;
};

static void on_done(struct loop_op *op, int res, uint32_t flags)
{
	struct done_op *d = (struct done_op *)op;

	(void)flags;
	d->res = res;
	d->done = true;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	assert_int_equal(loop_init(&f->loop, 64), 0);
	store_io_uring_init(&f->uring, &f->loop);
	store_io_fault_init(&f->fault, &f->uring);
	snprintf(f->path, sizeof f->path, "/tmp/tpx-fault-XXXXXX");
	f->fd = mkstemp(f->path);
	assert_true(f->fd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	close(f->fd);
	unlink(f->path);
	loop_fini(&f->loop);
	free(f);
	return 0;
}

/* Turn the loop until d is done: the number of turns (0: never, in 5 s). */
static int run_until(struct fx *f, struct done_op *d)
{
	for (int i = 1; i <= 5000; i++) {
		loop_poll(&f->loop);
		if (d->done)
			return i;
		usleep(1000);
	}
	return 0;
}

static void write_via(struct fx *f, struct done_op *d, const char *buf)
{
	*d = (struct done_op){ .op = { on_done } };
	f->fault.io.ops->pwrite(&f->fault.io, &d->op, f->fd, buf, strlen(buf), 0, 0);
}

static void test_passes_through(void **state)
{
	struct fx *f = *state;
	struct done_op d;

	write_via(f, &d, "hello");
	assert_true(run_until(f, &d) > 0);
	assert_int_equal(d.res, 5);
	assert_int_equal(f->fault.delayed, 0);
	assert_int_equal(f->fault.failed, 0);
}

static void test_clear_releases_delayed(void **state)
{
	struct fx *f = *state;
	struct done_op d;
	int turns;

	store_io_fault_set(&f->fault, STORE_IO_FAULT_MAX_DELAY_MS, 0, 60000);
	write_via(f, &d, "late");
	for (int i = 0; i < 20; i++)
		loop_poll(&f->loop);
	assert_false(d.done);  /* held by the delay */
	assert_int_equal(f->fault.delayed, 1);
	store_io_fault_set(&f->fault, 0, 0, 0);
	/* Passed on at the next turn, the write done a few turns later:
	 * far fewer than the 2000 turns of 1 ms the delay would take. */
	turns = run_until(f, &d);
	assert_true(turns > 0 && turns < 1000);
	assert_int_equal(d.res, 4);
	assert_null(f->fault.waiting);
}

static void test_enospc_fails_writes_not_reads(void **state)
{
	struct fx *f = *state;
	struct done_op d;
	char buf[8];

	store_io_fault_set(&f->fault, 0, ENOSPC, 60000);
	write_via(f, &d, "full");
	assert_int_equal(d.done, false);  /* never from inside the call */
	assert_true(run_until(f, &d) > 0);
	assert_int_equal(d.res, -ENOSPC);
	d = (struct done_op){ .op = { on_done } };
	f->fault.io.ops->fdatasync(&f->fault.io, &d.op, f->fd);
	assert_true(run_until(f, &d) > 0);
	assert_int_equal(d.res, -ENOSPC);
	d = (struct done_op){ .op = { on_done } };
	f->fault.io.ops->pread(&f->fault.io, &d.op, f->fd, buf, sizeof buf, 0);
	assert_true(run_until(f, &d) > 0);
	assert_true(d.res >= 0);
	assert_int_equal(f->fault.failed, 2);
	store_io_fault_set(&f->fault, 0, 0, 0);
	assert_false(store_io_fault_active(&f->fault));
}

static void test_delay_capped(void **state)
{
	struct fx *f = *state;

	store_io_fault_set(&f->fault, 60000, 0, 1000);
	assert_int_equal(f->fault.delay_ms, STORE_IO_FAULT_MAX_DELAY_MS);
	assert_true(store_io_fault_active(&f->fault));
	store_io_fault_set(&f->fault, 0, 0, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_passes_through, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clear_releases_delayed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enospc_fails_writes_not_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delay_capped, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
