/* The engine over three replicas (three local stores behind the crash
 * simulator, so faults can be injected): writes reach every in-sync
 * replica, a failing replica leaves the in-sync set through the hook before
 * the write is acknowledged, the set never shrinks below min_replicas (the
 * write waits, then fails with EIO), and a bad block is read from another
 * replica and repaired. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store_io_sim.h"
#include "volume.h"

#define NREP 3
#define VOL_SIZE (1u << 20)

struct fixture {
	char dir[64];
	struct loop loop;
	struct store_io_sim *sim[NREP];
	struct store *st[NREP];
	struct vol *vol;
	int hook_calls;
	int hook_ret;
	char removed[NREP][64];
};

struct op {
	struct vol_req r;
	bool done;
	int res;
	int hook_calls_at_done;
	struct fixture *f;
};

static int isr_remove(struct vol *v, struct replica *r, void *arg)
{
	struct fixture *f = arg;

	if (f->hook_ret < 0)
		return f->hook_ret;
	snprintf(f->removed[f->hook_calls++], 64, "%s", r->node);
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct replica *reps[NREP];
	struct vol_config cfg = { .name = "v", .size = VOL_SIZE, .min_replicas = 2,
				  .write_timeout_ms = 600, .on_isr_remove = isr_remove };

	strcpy(f->dir, "/tmp/tpx-volrep-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(loop_init(&f->loop, 256), 0);
	for (int i = 0; i < NREP; i++) {
		char path[96], node[8];

		snprintf(path, sizeof path, "%s/r%d", f->dir, i);
		snprintf(node, sizeof node, "n%d", i + 1);
		assert_int_equal(store_create(path, VOL_SIZE), 0);
		f->sim[i] = store_io_sim_new(&f->loop, (uint64_t)i + 1);
		assert_int_equal(store_open(path, store_io_sim_io(f->sim[i]), &f->st[i]), 0);
		reps[i] = replica_local_new(node, f->st[i]);
	}
	cfg.arg = f;
	f->vol = vol_new_replicated(&cfg, &f->loop, reps, NREP);
	assert_non_null(f->vol);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[96];

	vol_free(f->vol);
	for (int i = 0; i < NREP; i++) {
		store_close(f->st[i]);
		store_io_sim_free(f->sim[i]);
	}
	loop_fini(&f->loop);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void op_done(struct vol_req *r, int res)
{
	struct op *o = r->priv;

	o->done = true;
	o->res = res;
	o->hook_calls_at_done = o->f->hook_calls;
}

static void run(struct fixture *f, struct op *o)
{
	for (long spins = 0; !o->done; spins++) {
		assert_true(spins < 50000000);
		assert_true(loop_poll(&f->loop) >= 0);
	}
}

static int do_io(struct fixture *f, enum vol_op op, uint64_t off, uint64_t len,
		 uint8_t *buf, struct op *o)
{
	memset(o, 0, sizeof *o);
	o->f = f;
	o->r.done = op_done;
	o->r.priv = o;
	vol_submit(f->vol, &o->r, op, off, len, buf, 0);
	run(f, o);
	vol_req_fini(&o->r);
	return o->res;
}

static uint8_t *pattern(uint64_t len, uint8_t seed)
{
	uint8_t *b = NULL;

	assert_int_equal(posix_memalign((void **)&b, 4096, len), 0);
	for (uint64_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed + i * 31 + (i >> 12));
	return b;
}

struct sync_read {
	bool done;
	int res;
};

static void sync_read_done(struct store_req *s, int res)
{
	struct sync_read *sr = s->priv;

	sr->done = true;
	sr->res = res;
}

/* Read [off, +len) straight from one replica's store. */
static void store_read_sync(struct fixture *f, int i, uint64_t off, uint64_t len,
			    uint8_t *out)
{
	struct sync_read sr = { 0 };
	struct store_req sreq = { .done = sync_read_done, .priv = &sr };

	store_read(f->st[i], &sreq, off, len, out, NULL);
	for (long spins = 0; !sr.done; spins++) {
		assert_true(spins < 50000000);
		assert_true(loop_poll(&f->loop) >= 0);
	}
	assert_int_equal(sr.res, 0);
}

static void assert_replica_has(struct fixture *f, int i, uint64_t off,
			       uint64_t len, const uint8_t *want)
{
	uint8_t *got = NULL;

	assert_int_equal(posix_memalign((void **)&got, 4096, len), 0);
	store_read_sync(f, i, off, len, got);
	assert_memory_equal(got, want, len);
	free(got);
}

static void test_write_reaches_every_replica(void **state)
{
	struct fixture *f = *state;
	uint8_t *b = pattern(65536, 7);
	struct op o;

	assert_int_equal(do_io(f, VOL_WRITE, 8192, 65536, b, &o), 0);
	for (int i = 0; i < NREP; i++)
		assert_replica_has(f, i, 8192, 65536, b);
	assert_int_equal(f->hook_calls, 0);
	free(b);
}

static void test_failed_replica_leaves_isr_before_ack(void **state)
{
	struct fixture *f = *state;
	uint8_t *b = pattern(4096, 9);
	struct op o;

	store_io_sim_fail(f->sim[2], SIM_WRITE, 0, -1, EIO);
	assert_int_equal(do_io(f, VOL_WRITE, 0, 4096, b, &o), 0);
	assert_int_equal(o.hook_calls_at_done, 1);
	assert_string_equal(f->removed[0], "n3");
	assert_false(vol_replica(f->vol, 2)->in_sync);
	assert_int_equal(vol_in_sync_count(f->vol), 2);
	assert_replica_has(f, 0, 0, 4096, b);
	assert_replica_has(f, 1, 0, 4096, b);
	/* Later writes are acknowledged by the two in-sync replicas alone. */
	assert_int_equal(do_io(f, VOL_WRITE, 4096, 4096, b, &o), 0);
	assert_int_equal(f->hook_calls, 1);
	free(b);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_never_below_min_write_fails_after_timeout(void **state)
{
	struct fixture *f = *state;
	uint8_t *b = pattern(4096, 11);
	struct op o;
	uint64_t t0;

	store_io_sim_fail(f->sim[1], SIM_WRITE, 0, -1, EIO);
	store_io_sim_fail(f->sim[2], SIM_WRITE, 0, -1, EIO);
	t0 = mono_ms();
	assert_int_equal(do_io(f, VOL_WRITE, 0, 4096, b, &o), -EIO);
	assert_true(mono_ms() - t0 >= 600);
	/* One replica left the set; the other could not (min_replicas 2). */
	assert_int_equal(f->hook_calls, 1);
	assert_int_equal(vol_in_sync_count(f->vol), 2);
	assert_true(vol_get_stats(f->vol)->write_waits >= 1);
	free(b);
}

static void test_transient_failure_retried_within_timeout(void **state)
{
	struct fixture *f = *state;
	uint8_t *b = pattern(4096, 13);
	struct op o;

	/* Drop n3 first so that n2 cannot leave (min 2), then fail n2 twice:
	 * the write waits, is retried, and succeeds. */
	store_io_sim_fail(f->sim[2], SIM_WRITE, 0, -1, EIO);
	assert_int_equal(do_io(f, VOL_WRITE, 0, 4096, b, &o), 0);
	store_io_sim_fail(f->sim[1], SIM_WRITE, 0, 2, EIO);
	assert_int_equal(do_io(f, VOL_WRITE, 4096, 4096, b, &o), 0);
	assert_int_equal(f->hook_calls, 1);
	assert_replica_has(f, 1, 4096, 4096, b);
	free(b);
}

static void test_hook_failure_fails_write(void **state)
{
	struct fixture *f = *state;
	uint8_t *b = pattern(4096, 15);
	struct op o;

	f->hook_ret = -EIO;
	store_io_sim_fail(f->sim[0], SIM_WRITE, 0, -1, EIO);
	assert_int_equal(do_io(f, VOL_WRITE, 0, 4096, b, &o), -EIO);
	assert_true(vol_replica(f->vol, 0)->in_sync);
	free(b);
}

static void test_bad_block_read_elsewhere_and_repaired(void **state)
{
	struct fixture *f = *state;
	uint8_t *b = pattern(16384, 17), *out = NULL;
	char path[128];
	uint8_t junk[512];
	struct op o;
	int fd;

	assert_int_equal(do_io(f, VOL_WRITE, 0, 16384, b, &o), 0);
	/* Corrupt replica n1 (read first: it is local) in block 2. */
	snprintf(path, sizeof path, "%s/r0/data", f->dir);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	memset(junk, 0x5a, sizeof junk);
	assert_int_equal(pwrite(fd, junk, sizeof junk, 8192 + 100), (ssize_t)sizeof junk);
	close(fd);
	assert_int_equal(posix_memalign((void **)&out, 4096, 16384), 0);
	assert_int_equal(do_io(f, VOL_READ, 0, 16384, out, &o), 0);
	assert_memory_equal(out, b, 16384);
	assert_int_equal(vol_get_stats(f->vol)->repairs, 1);
	assert_true(vol_get_stats(f->vol)->csum_errors >= 1);
	assert_replica_has(f, 0, 0, 16384, b);
	free(out);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_reaches_every_replica, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_replica_leaves_isr_before_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_below_min_write_fails_after_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transient_failure_retried_within_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hook_failure_fails_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_block_read_elsewhere_and_repaired, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
