/* The engine over three replicas (three local stores behind the crash
 * simulator, so faults can be injected): writes reach every in-sync
 * replica, a failing replica leaves the in-sync set through the hook before
 * the write is acknowledged, the set never shrinks below min_replicas (the
 * write waits, then fails with EIO), and a bad block is read from another
 * replica and repaired. A request every replica refuses as invalid fails at
 * once and drops nobody. The same engine over three replica services
 * reached through the replication protocol (socketpairs, as the daemon does
 * for its own replica) takes every command flag on every alignment. */
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "repl_client.h"
#include "repl_service.h"
#include "store.h"
#include "store_io_sim.h"
#include "volume.h"
#include "volume_int.h"

#define NREP 3
#define VOL_SIZE (1u << 20)
#define VID 42
#define TIMEOUT_MS 600

struct fixture;

struct rep_ctx {
	struct fixture *f;
	unsigned i;
};

struct fixture {
	char dir[64];
	struct loop loop;
	struct store_io_sim *sim[NREP];
	struct store *st[NREP];
	struct vol *vol;
	int hook_calls;
	int doubt_calls;
	int hook_ret;
	char removed[NREP][64];
	int lost_calls;             /* VOL_REC_LOST */
	bool defer;                 /* hold the record answers back */
	struct deferred { unsigned i; enum vol_record what; int res; } deferred[16];
	unsigned ndeferred;
	/* Remote fixture: replica services behind the replication protocol. */
	bool remote;
	struct repl_service *svc[NREP];
	struct rep_ctx ctx[NREP];
	int cfd[NREP];              /* engine end of each current connection */
};

struct op {
	struct vol_req r;
	bool done;
	int res;
	int hook_calls_at_done;
	struct fixture *f;
};

/* The engine's record hook: LEAVEs succeed unless hook_ret says otherwise;
 * with defer set, answers wait in deferred[] until answer_deferred(). */
static void record(struct vol *v, unsigned i, enum vol_record what, void *arg)
{
	struct fixture *f = arg;
	int res = what == VOL_REC_LEAVE ? f->hook_ret : 0;

	if (what == VOL_REC_LEAVE && res == 0)
		snprintf(f->removed[f->hook_calls++], 64, "%s", vol_replica(v, i)->node);
	f->lost_calls += what == VOL_REC_LOST;
	f->doubt_calls += what == VOL_REC_DOUBT;
	if (f->defer) {
		f->deferred[f->ndeferred++] = (struct deferred){ i, what, res };
		return;
	}
	vol_recorded(v, i, what, res);
}

static void answer_deferred(struct fixture *f)
{
	for (unsigned k = 0; k < f->ndeferred; k++)
		vol_recorded(f->vol, f->deferred[k].i, f->deferred[k].what,
			     f->deferred[k].res);
	f->ndeferred = 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct vol_replica_spec reps[NREP];
	static const char *const nodes[NREP] = { "n1", "n2", "n3" };
	struct vol_config cfg = { .name = "v", .size = VOL_SIZE, .min_replicas = 2,
				  .write_timeout_ms = TIMEOUT_MS, .record = record };

	strcpy(f->dir, "/tmp/tpx-volrep-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(loop_init(&f->loop, 256), 0);
	for (int i = 0; i < NREP; i++) {
		char path[96];

		snprintf(path, sizeof path, "%s/r%d", f->dir, i);
		assert_int_equal(store_create(path, VOL_SIZE), 0);
		f->sim[i] = store_io_sim_new(&f->loop, (uint64_t)i + 1);
		assert_int_equal(store_open(path, store_io_sim_io(f->sim[i]), &f->st[i]), 0);
		reps[i] = (struct vol_replica_spec){ .node = nodes[i], .store = f->st[i],
						     .in_sync = true };
	}
	cfg.arg = f;
	f->vol = vol_new_replicated(&cfg, &f->loop, reps, NREP);
	assert_non_null(f->vol);
	*state = f;
	return 0;
}

/* --- the remote fixture: three replica services, one per "node" ------- */

static int connect_replica(void *arg)
{
	struct rep_ctx *c = arg;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (repl_service_add_fd(c->f->svc[c->i], sv[0]) < 0) {
		close(sv[1]);
		return -ESHUTDOWN;
	}
	c->f->cfd[c->i] = sv[1];
	return sv[1];
}

static void replica_state(struct repl_client *c, bool up, int err, void *arg)
{
	struct rep_ctx *x = arg;

	if (!x->f->vol)
		return;
	vol_replica_set_up(x->f->vol, x->i, up);
}

static bool may_create(void *arg) { return true; }

static void poll_until_up(struct fixture *f)
{
	for (long spins = 0;; spins++) {
		unsigned up = 0;

		for (unsigned i = 0; i < NREP; i++)
			up += vol_replica(f->vol, i)->up;
		if (up == NREP)
			return;
		assert_true(spins < 50000000);
		assert_true(loop_poll(&f->loop) >= 0);
	}
}

static int setup_remote_sized(void **state, uint64_t size)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct vol_replica_spec reps[NREP];
	static const char *const nodes[NREP] = { "n1", "n2", "n3" };
	struct vol_config cfg = { .name = "v", .size = size, .min_replicas = 2,
				  .write_timeout_ms = TIMEOUT_MS, .record = record };

	f->remote = true;
	strcpy(f->dir, "/tmp/tpx-volrep-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(loop_init(&f->loop, 256), 0);
	for (unsigned i = 0; i < NREP; i++) {
		struct repl_client_opts o = {
			.addr = "socketpair", .node_id = "engine", .volume_id = VID,
			.volume_name = "v", .volume_size = size, .epoch = 1,
			.io_timeout_ms = 5000, .connect_fd = connect_replica,
			.may_create = may_create, .on_state = replica_state,
			.arg = &f->ctx[i],
		};
		char path[96];

		snprintf(path, sizeof path, "%s/s%u", f->dir, i);
		assert_int_equal(mkdir(path, 0700), 0);
		f->sim[i] = store_io_sim_new(&f->loop, (uint64_t)i + 1);
		f->svc[i] = repl_service_new(&f->loop, store_io_sim_io(f->sim[i]),
					     path, nodes[i]);
		assert_non_null(f->svc[i]);
		f->ctx[i] = (struct rep_ctx){ f, i };
		reps[i] = (struct vol_replica_spec){ .node = nodes[i], .in_sync = true,
						     .client = repl_client_new(&f->loop, &o) };
		assert_non_null(reps[i].client);
	}
	cfg.arg = f;
	f->vol = vol_new_replicated(&cfg, &f->loop, reps, NREP);
	assert_non_null(f->vol);
	poll_until_up(f);
	for (unsigned i = 0; i < NREP; i++) {
		f->st[i] = repl_service_store(f->svc[i], VID);
		assert_non_null(f->st[i]);
	}
	*state = f;
	return 0;
}

static int setup_remote(void **state)
{
	return setup_remote_sized(state, VOL_SIZE);
}

/* Room for the largest NBD request (32 MiB) at any offset. */
#define BIG_VOL_SIZE (40u << 20)

static int setup_remote_big(void **state)
{
	return setup_remote_sized(state, BIG_VOL_SIZE);
}

static void teardown_remote(struct fixture *f)
{
	vol_free(f->vol);
	for (long spins = 0; repl_client_live() > 0; spins++) {
		assert_true(spins < 50000000);
		assert_true(loop_poll(&f->loop) >= 0);
	}
	for (int i = 0; i < NREP; i++) {
		repl_service_shutdown(f->svc[i], NULL, NULL);
		for (long spins = 0; !repl_service_drained(f->svc[i]); spins++) {
			assert_true(spins < 50000000);
			assert_true(loop_poll(&f->loop) >= 0);
		}
		repl_service_free(f->svc[i]);
		store_io_sim_free(f->sim[i]);
	}
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[96];

	if (f->remote) {
		teardown_remote(f);
	} else {
		vol_free(f->vol);
		for (int i = 0; i < NREP; i++) {
			store_close(f->st[i]);
			store_io_sim_free(f->sim[i]);
		}
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

static int do_io_flags(struct fixture *f, enum vol_op op, uint64_t off,
		       uint64_t len, uint8_t *buf, unsigned flags, struct op *o)
{
	memset(o, 0, sizeof *o);
	o->f = f;
	o->r.done = op_done;
	o->r.priv = o;
	vol_submit(f->vol, &o->r, op, off, len, buf, flags);
	run(f, o);
	vol_req_fini(&o->r);
	return o->res;
}

static int do_io(struct fixture *f, enum vol_op op, uint64_t off, uint64_t len,
		 uint8_t *buf, struct op *o)
{
	return do_io_flags(f, op, off, len, buf, 0, o);
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
	/* n1 applied the failed write, n3 (still in sync) did not: n3 is in
	 * doubt, recorded through the hook, and reads go to n1 while it can
	 * serve them, so they keep returning what they returned. */
	assert_false(vol_replica(f->vol, 0)->doubt);
	assert_true(vol_replica(f->vol, 2)->doubt);
	assert_int_equal(f->doubt_calls, 1);
	assert_int_equal(vol_pick_reader(f->vol, 0), 0);
	assert_int_equal(vol_pick_reader(f->vol, 1u << 0), 2);  /* n1 gone */
	store_io_sim_fail(f->sim[2], SIM_WRITE, 0, 0, 0);
	{
		uint8_t *rb = pattern(4096, 0);

		assert_int_equal(do_io(f, VOL_READ, 0, 4096, rb, &o), 0);
		assert_memory_equal(rb, b, 4096);
		free(rb);
	}
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

/* The metadata store refuses the departure: the failed replica stays in
 * the set, so the write cannot be acknowledged without it; it waits,
 * retries (the departure is asked for again), and fails at its timeout. */
static void test_hook_failure_fails_write(void **state)
{
	struct fixture *f = *state;
	uint8_t *b = pattern(4096, 15);
	uint64_t t0 = mono_ms();
	struct op o;

	f->hook_ret = -EIO;
	store_io_sim_fail(f->sim[0], SIM_WRITE, 0, -1, EIO);
	assert_int_equal(do_io(f, VOL_WRITE, 0, 4096, b, &o), -EIO);
	assert_true(mono_ms() - t0 >= TIMEOUT_MS);
	assert_true(vol_replica(f->vol, 0)->in_sync);
	free(b);
}

/* Invariant 2 with the store answering later, as the agent's worker
 * does: the write completes only once the departure of the replica that
 * failed it is recorded, and without anything recorded it keeps waiting. */
static void test_write_waits_for_the_record(void **state)
{
	struct fixture *f = *state;
	uint8_t *b = pattern(4096, 17);
	struct op o = { .f = f };

	f->defer = true;
	store_io_sim_fail(f->sim[1], SIM_WRITE, 0, -1, EIO);
	o.r.done = op_done;
	o.r.priv = &o;
	vol_submit(f->vol, &o.r, VOL_WRITE, 0, 4096, b, 0);
	for (int k = 0; k < 2000 && f->ndeferred == 0; k++)
		assert_true(loop_poll(&f->loop) >= 0);
	assert_int_equal(f->ndeferred, 1);           /* the departure asked for */
	assert_int_equal(f->deferred[0].what, VOL_REC_LEAVE);
	for (int k = 0; k < 2000; k++)
		assert_true(loop_poll(&f->loop) >= 0);
	assert_false(o.done);                         /* not without the record */
	assert_true(vol_replica(f->vol, 1)->in_sync);
	answer_deferred(f);
	assert_false(vol_replica(f->vol, 1)->in_sync);
	run(f, &o);
	assert_int_equal(o.res, 0);
	vol_req_fini(&o.r);
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

/* --- command flags and refusals ------------------------------------------ */

#define BLKSZ 4096u

/* Nothing waited, nobody left the set, nothing failed. */
static void assert_clean(struct fixture *f)
{
	const struct vol_stats *st = vol_get_stats(f->vol);

	assert_int_equal(st->write_waits, 0);
	assert_int_equal(st->isr_removals, 0);
	assert_int_equal(st->io_errors, 0);
	assert_int_equal(f->hook_calls, 0);
	assert_int_equal(vol_in_sync_count(f->vol), NREP);
}

/* Every replica holds model[lo, hi). */
static void assert_all_have(struct fixture *f, const uint8_t *model,
			    uint64_t lo, uint64_t hi)
{
	for (int i = 0; i < NREP; i++)
		assert_replica_has(f, i, lo, hi - lo, model + lo);
}

static uint64_t dn(uint64_t x) { return x / BLKSZ * BLKSZ; }
static uint64_t up(uint64_t x) { return dn(x + BLKSZ - 1); }

/* op on [off, +len) with flags, checked byte for byte on every replica
 * against model (updated), in [off - 1 block, end + 1 block), which was
 * first filled with a pattern so that zeroes show. */
static void flag_case(struct fixture *f, uint8_t *model, enum vol_op op,
		      uint64_t off, uint64_t len, unsigned flags, uint8_t seed)
{
	uint64_t lo = dn(off) >= BLKSZ ? dn(off) - BLKSZ : 0;
	uint64_t hi = up(off + len) + BLKSZ <= VOL_SIZE ? up(off + len) + BLKSZ
							 : VOL_SIZE;
	uint8_t *fill = pattern(hi - lo, seed), *buf = NULL;
	uint64_t t0 = mono_ms();
	struct op o;
	int res;

	assert_int_equal(do_io(f, VOL_WRITE, lo, hi - lo, fill, &o), 0);
	memcpy(model + lo, fill, hi - lo);
	if (op == VOL_WRITE) {
		uint8_t *src = pattern(len, (uint8_t)(seed + 101));

		assert_int_equal(posix_memalign((void **)&buf, BLKSZ, vol_span(off, len)), 0);
		memcpy(buf + off % BLKSZ, src, len);
		memcpy(model + off, src, len);
		free(src);
	} else if (op == VOL_ZERO) {
		memset(model + off, 0, len);
	} else if (op == VOL_TRIM && up(off) < dn(off + len)) {
		/* Whole blocks read as zeroes; partial ones are left alone. */
		memset(model + up(off), 0, dn(off + len) - up(off));
	}
	res = do_io_flags(f, op, op == VOL_FLUSH ? 0 : off, op == VOL_FLUSH ? 0 : len,
			  buf, flags, &o);
	if (res != 0)
		print_error("op %d [%llu, +%llu) flags %#x: %s\n", (int)op,
			    (unsigned long long)off, (unsigned long long)len,
			    flags, strerror(-res));
	assert_int_equal(res, 0);
	assert_true(mono_ms() - t0 < TIMEOUT_MS);
	assert_all_have(f, model, lo, hi);
	assert_clean(f);
	free(buf);
	free(fill);
}

/* The issue: a WRITE_ZEROES with NO_HOLE that is not 4 KiB-aligned. Its
 * edge blocks are WRITEs, which may carry FUA only: sent with NO_HOLE,
 * every replica refused them, one left the in-sync set and the zero waited
 * until the write timeout and failed with EIO. */
static void test_unaligned_no_hole_zero(void **state)
{
	struct fixture *f = *state;
	uint8_t *model = calloc(1, VOL_SIZE);

	flag_case(f, model, VOL_ZERO, 0, 10, VOL_NO_HOLE, 1);
	/* Partial head block, two whole blocks, partial tail block. */
	flag_case(f, model, VOL_ZERO, BLKSZ + 100, 3 * BLKSZ + 100, VOL_NO_HOLE, 2);
	flag_case(f, model, VOL_ZERO, 5000, 10, VOL_NO_HOLE | VOL_FUA, 3);
	free(model);
}

/* Every op with every combination of the engine's flags, on every
 * alignment: each replica op gets only the flags it may carry. */
static void test_every_flag_and_alignment(void **state)
{
	static const struct { uint64_t off, len; } cases[] = {
		{ 0, 1 }, { 0, 10 }, { 5000, 10 }, { 4095, 2 },
		{ BLKSZ + 100, 3 * BLKSZ + 100 }, { 8 * BLKSZ, 2 * BLKSZ },
		{ 16 * BLKSZ + 7, 2 * BLKSZ - 7 }, { VOL_SIZE - 5, 5 },
		{ VOL_SIZE - 3 * BLKSZ - 7, 3 * BLKSZ + 7 },
	};
	static const enum vol_op ops[] = { VOL_WRITE, VOL_ZERO, VOL_TRIM, VOL_FLUSH };
	struct fixture *f = *state;
	uint8_t *model = calloc(1, VOL_SIZE);
	uint8_t seed = 0;

	for (unsigned o = 0; o < sizeof ops / sizeof ops[0]; o++)
		for (unsigned flags = 0; flags <= (VOL_FUA | VOL_NO_HOLE); flags++)
			for (unsigned c = 0; c < sizeof cases / sizeof cases[0]; c++)
				flag_case(f, model, ops[o], cases[c].off, cases[c].len,
					  flags, ++seed);
	free(model);
}

/* A request that every replica refuses as invalid (here: past the end of
 * the volume, which the engine's callers never send) fails at once with
 * the replicas' answer, and nobody leaves the in-sync set. */
static void test_refused_by_every_replica(void **state)
{
	struct fixture *f = *state;
	uint8_t *b = pattern(BLKSZ, 21);
	uint64_t t0 = mono_ms();
	struct op o;

	assert_int_equal(do_io(f, VOL_WRITE, VOL_SIZE, BLKSZ, b, &o), -EINVAL);
	assert_int_equal(do_io(f, VOL_ZERO, VOL_SIZE, 2 * BLKSZ, NULL, &o), -EINVAL);
	/* Refused at its first step, the read of its head block. */
	assert_int_equal(do_io_flags(f, VOL_ZERO, VOL_SIZE + 1, 10, NULL,
				     VOL_NO_HOLE, &o), -EINVAL);
	assert_int_equal(do_io(f, VOL_TRIM, VOL_SIZE, 2 * BLKSZ, NULL, &o), -EINVAL);
	assert_true(mono_ms() - t0 < TIMEOUT_MS);
	assert_int_equal(f->hook_calls, 0);
	assert_int_equal(vol_get_stats(f->vol)->write_waits, 0);
	assert_int_equal(vol_get_stats(f->vol)->isr_removals, 0);
	assert_int_equal(vol_in_sync_count(f->vol), NREP);
	/* The volume goes on. */
	assert_int_equal(do_io(f, VOL_WRITE, 0, BLKSZ, b, &o), 0);
	for (int i = 0; i < NREP; i++)
		assert_replica_has(f, i, 0, BLKSZ, b);
	free(b);
}

/* The same over the replication protocol, and over local stores. */
static void test_every_flag_and_alignment_local(void **state)
{
	test_every_flag_and_alignment(state);
}

static void test_refused_by_every_replica_remote(void **state)
{
	test_refused_by_every_replica(state);
}

static const int refusals[] = { EINVAL, EOPNOTSUPP, EBADMSG };
static const int failures[] = { EIO, ETIMEDOUT, ENOTCONN, ECONNRESET, ENOSPC,
				ESTALE };

/* Every replica answers err. A refusal (the request is bad): it fails at
 * once with err and nobody leaves. A failure of their own: one leaves, the
 * other cannot (min_replicas 2), the write waits and fails with EIO. */
static void answered_by_all(int err, bool refusal)
{
	struct fixture *f;
	uint8_t *b = pattern(BLKSZ, 23);
	uint64_t t0, ms;
	struct op o;

	setup((void **)&f);
	for (int i = 0; i < NREP; i++)
		store_io_sim_fail(f->sim[i], SIM_WRITE, 0, -1, err);
	t0 = mono_ms();
	assert_int_equal(do_io(f, VOL_WRITE, 0, BLKSZ, b, &o),
			 refusal ? -err : -EIO);
	ms = mono_ms() - t0;
	assert_true(refusal ? ms < TIMEOUT_MS : ms >= TIMEOUT_MS);
	assert_int_equal(f->hook_calls, refusal ? 0 : 1);
	assert_int_equal(vol_in_sync_count(f->vol), refusal ? NREP : NREP - 1);
	if (refusal)
		assert_int_equal(vol_get_stats(f->vol)->write_waits, 0);
	else
		assert_true(vol_get_stats(f->vol)->write_waits >= 1);
	teardown((void **)&f);
	free(b);
}

/* One replica answers err, the others succeed: it leaves before the ack
 * (invariant 1), whatever err is. */
static void failed_by_one(int err)
{
	struct fixture *f;
	uint8_t *b = pattern(BLKSZ, 25);
	struct op o;

	setup((void **)&f);
	store_io_sim_fail(f->sim[1], SIM_WRITE, 0, -1, err);
	assert_int_equal(do_io(f, VOL_WRITE, 0, BLKSZ, b, &o), 0);
	assert_int_equal(o.hook_calls_at_done, 1);
	assert_string_equal(f->removed[0], "n2");
	assert_false(vol_replica(f->vol, 1)->in_sync);
	assert_int_equal(vol_get_stats(f->vol)->write_waits, 0);
	assert_replica_has(f, 0, 0, BLKSZ, b);
	assert_replica_has(f, 2, 0, BLKSZ, b);
	teardown((void **)&f);
	free(b);
}

static void test_refusal_by_all_fails_at_once(void **state)
{
	for (unsigned i = 0; i < sizeof refusals / sizeof refusals[0]; i++)
		answered_by_all(refusals[i], true);
}

static void test_refusal_by_one_leaves(void **state)
{
	for (unsigned i = 0; i < sizeof refusals / sizeof refusals[0]; i++)
		failed_by_one(refusals[i]);
}

static void test_failures_unchanged(void **state)
{
	for (unsigned i = 0; i < sizeof failures / sizeof failures[0]; i++) {
		failed_by_one(failures[i]);
		answered_by_all(failures[i], false);
	}
}

/* Two refuse, the third fails on its own and nobody executed the write:
 * the failing one leaves (its state is unknown), the request is refused at
 * once, the refusers stay. */
static void test_refusal_beside_failure(void **state)
{
	struct fixture *f = *state;
	uint8_t *b = pattern(BLKSZ, 29);
	uint64_t t0 = mono_ms();
	struct op o;

	store_io_sim_fail(f->sim[0], SIM_WRITE, 0, -1, EINVAL);
	store_io_sim_fail(f->sim[1], SIM_WRITE, 0, -1, EINVAL);
	store_io_sim_fail(f->sim[2], SIM_WRITE, 0, -1, EIO);
	assert_int_equal(do_io(f, VOL_WRITE, 0, BLKSZ, b, &o), -EINVAL);
	assert_true(mono_ms() - t0 < TIMEOUT_MS);
	assert_int_equal(o.hook_calls_at_done, 1);
	assert_string_equal(f->removed[0], "n3");
	assert_true(vol_replica(f->vol, 0)->in_sync);
	assert_true(vol_replica(f->vol, 1)->in_sync);
	assert_int_equal(vol_get_stats(f->vol)->write_waits, 0);
	free(b);
}

/* A replica being resynced gets every write: if it refuses one the others
 * executed, it missed it (its resync starts over); if every replica
 * refused, it missed nothing. */
static void test_refusal_by_receiving_replica(void **state)
{
	struct fixture *f = *state;
	struct replica *r3 = vol_replica(f->vol, 2);
	uint8_t *b = pattern(BLKSZ, 31);
	struct op o;

	r3->in_sync = false;
	r3->receiving = true;
	store_io_sim_fail(f->sim[0], SIM_WRITE, 0, 1, EINVAL);
	store_io_sim_fail(f->sim[1], SIM_WRITE, 0, 1, EINVAL);
	store_io_sim_fail(f->sim[2], SIM_WRITE, 0, 1, EINVAL);
	assert_int_equal(do_io(f, VOL_WRITE, 0, BLKSZ, b, &o), -EINVAL);
	assert_int_equal(f->lost_calls, 0);
	assert_true(r3->receiving);
	store_io_sim_fail(f->sim[2], SIM_WRITE, 0, 1, EINVAL);
	assert_int_equal(do_io(f, VOL_WRITE, 0, BLKSZ, b, &o), 0);
	assert_int_equal(f->lost_calls, 1);
	assert_false(r3->receiving);
	assert_int_equal(f->hook_calls, 0);
	assert_int_equal(vol_in_sync_count(f->vol), 2);
	free(b);
}

/* Over the protocol: a connection lost under a write still takes its
 * replica out of the set before the ack. */
static void test_lost_connection_leaves(void **state)
{
	struct fixture *f = *state;
	uint8_t *b = pattern(2 * BLKSZ, 33);
	struct op o;

	memset(&o, 0, sizeof o);
	o.f = f;
	o.r.done = op_done;
	o.r.priv = &o;
	vol_submit(f->vol, &o.r, VOL_WRITE, 0, 2 * BLKSZ, b, VOL_FUA);
	shutdown(f->cfd[2], SHUT_RDWR);
	run(f, &o);
	vol_req_fini(&o.r);
	assert_int_equal(o.res, 0);
	assert_int_equal(o.hook_calls_at_done, 1);
	assert_string_equal(f->removed[0], "n3");
	assert_int_equal(vol_get_stats(f->vol)->write_waits, 0);
	assert_replica_has(f, 0, 0, 2 * BLKSZ, b);
	assert_replica_has(f, 1, 0, 2 * BLKSZ, b);
	free(b);
}

/* The largest request NBD allows (32 MiB) at an offset that is not 4 KiB
 * aligned spans 32 MiB + 4 KiB of blocks: the replicas take it in one
 * request, it reaches all of them, and nobody leaves the in-sync set. */
static void test_largest_request_unaligned(void **state)
{
	struct fixture *f = *state;
	const uint64_t len = 32u << 20, offs[] = { 1, 4095, BIG_VOL_SIZE - len - 7 };
	const uint64_t span = len + 4096;   /* vol_span of each */
	uint8_t *w = pattern(span, 5), *r = NULL;
	struct op o;

	assert_int_equal(posix_memalign((void **)&r, 4096, span), 0);
	for (unsigned k = 0; k < sizeof offs / sizeof offs[0]; k++) {
		uint64_t in = offs[k] % 4096;

		assert_int_equal(vol_span(offs[k], len), span);
		w[in] = (uint8_t)k;   /* each write its own bytes */
		assert_int_equal(do_io(f, VOL_WRITE, offs[k], len, w, &o), 0);
		assert_int_equal(do_io(f, VOL_READ, offs[k], len, r, &o), 0);
		assert_memory_equal(r + in, w + in, len);
	}
	assert_int_equal(f->hook_calls, 0);
	assert_int_equal(vol_in_sync_count(f->vol), NREP);
	assert_int_equal(vol_get_stats(f->vol)->write_waits, 0);
	/* Every replica holds the last one: its first whole block, 8 MiB. */
	for (int i = 0; i < NREP; i++)
		assert_replica_has(f, i, 8u << 20, 4096, w + 4096);
	free(w);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_reaches_every_replica, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_replica_leaves_isr_before_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_below_min_write_fails_after_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transient_failure_retried_within_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hook_failure_fails_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_waits_for_the_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_block_read_elsewhere_and_repaired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unaligned_no_hole_zero, setup_remote, teardown),
		cmocka_unit_test_setup_teardown(test_every_flag_and_alignment, setup_remote, teardown),
		cmocka_unit_test_setup_teardown(test_every_flag_and_alignment_local, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_by_every_replica, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_by_every_replica_remote, setup_remote, teardown),
		cmocka_unit_test(test_refusal_by_all_fails_at_once),
		cmocka_unit_test(test_refusal_by_one_leaves),
		cmocka_unit_test(test_failures_unchanged),
		cmocka_unit_test_setup_teardown(test_refusal_beside_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusal_by_receiving_replica, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_connection_leaves, setup_remote, teardown),
		cmocka_unit_test_setup_teardown(test_largest_request_unaligned, setup_remote_big, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
