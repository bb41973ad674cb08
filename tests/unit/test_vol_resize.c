/* The engine's online resize (vol_resize) over three replica services
 * reached through the replication protocol (socketpairs): every connected
 * replica grows before the engine's size does, a replica that is not
 * connected grows when it connects again, a replica that refuses to grow
 * fails the resize and the size stays, and writes go on meanwhile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repl_client.h"
#include "repl_service.h"
#include "store.h"
#include "volume.h"
#include "volume_int.h"

#define NREP 3
#define OLD_SIZE (1u << 20)
#define NEW_SIZE (3u << 20)
#define VID 42
#define B 4096u
#define SPINS 50000000L

struct fixture;

struct rep_ctx {
	struct fixture *f;
	unsigned i;
};

struct fixture {
	char dir[64];
	struct loop loop;
	struct store_io io;
	struct repl_service *svc[NREP];
	struct rep_ctx ctx[NREP];
	bool refuse[NREP];          /* connect_replica fails */
	int cfd[NREP];
	struct vol *vol;
	bool resized;
	int resize_res;
};

static void record(struct vol *v, unsigned i, enum vol_record what, void *arg)
{
	vol_recorded(v, i, what, 0);
}

static int connect_replica(void *arg)
{
	struct rep_ctx *c = arg;
	int sv[2];

	if (c->f->refuse[c->i])
		return -ECONNREFUSED;
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

	if (x->f->vol)
		vol_replica_set_up(x->f->vol, x->i, up);
}

static bool may_create(void *arg) { return true; }

static bool is_up(struct fixture *f, unsigned i)
{
	return vol_replica(f->vol, i)->up;
}

static void poll_until(struct fixture *f, bool (*cond)(struct fixture *f))
{
	for (long spins = 0; !cond(f); spins++) {
		assert_true(spins < SPINS);
		assert_true(loop_poll(&f->loop) >= 0);
	}
}

static bool all_up(struct fixture *f)
{
	for (unsigned i = 0; i < NREP; i++)
		if (!is_up(f, i))
			return false;
	return true;
}

static bool resized(struct fixture *f) { return f->resized; }

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct vol_replica_spec reps[NREP];
	static const char *const nodes[NREP] = { "n1", "n2", "n3" };
	struct vol_config cfg = { .name = "v", .size = OLD_SIZE, .min_replicas = 2,
				  .write_timeout_ms = 2000, .record = record,
				  .arg = f };

	strcpy(f->dir, "/tmp/tpx-volresize-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(loop_init(&f->loop, 256), 0);
	store_io_uring_init(&f->io, &f->loop);
	for (unsigned i = 0; i < NREP; i++) {
		struct repl_client_opts o = {
			.addr = "socketpair", .node_id = "engine", .volume_id = VID,
			.volume_name = "v", .volume_size = OLD_SIZE, .epoch = 1,
			.io_timeout_ms = 5000, .connect_fd = connect_replica,
			.may_create = may_create, .on_state = replica_state,
			.arg = &f->ctx[i],
		};
		char path[96];

		snprintf(path, sizeof path, "%s/s%u", f->dir, i);
		assert_int_equal(mkdir(path, 0700), 0);
		f->svc[i] = repl_service_new(&f->loop, &f->io, path, nodes[i]);
		assert_non_null(f->svc[i]);
		f->ctx[i] = (struct rep_ctx){ f, i };
		reps[i] = (struct vol_replica_spec){ .node = nodes[i], .in_sync = true,
						     .client = repl_client_new(&f->loop, &o) };
		assert_non_null(reps[i].client);
	}
	f->vol = vol_new_replicated(&cfg, &f->loop, reps, NREP);
	assert_non_null(f->vol);
	poll_until(f, all_up);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[96];

	vol_free(f->vol);
	for (long spins = 0; repl_client_live() > 0; spins++) {
		assert_true(spins < SPINS);
		assert_true(loop_poll(&f->loop) >= 0);
	}
	for (int i = 0; i < NREP; i++) {
		repl_service_shutdown(f->svc[i], NULL, NULL);
		for (long spins = 0; !repl_service_drained(f->svc[i]); spins++) {
			assert_true(spins < SPINS);
			assert_true(loop_poll(&f->loop) >= 0);
		}
		repl_service_free(f->svc[i]);
	}
	loop_fini(&f->loop);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void on_resized(struct vol *v, int res, void *arg)
{
	struct fixture *f = arg;

	assert_false(f->resized);
	f->resized = true;
	f->resize_res = res;
}

static int resize(struct fixture *f, uint64_t size)
{
	int ret;

	f->resized = false;
	ret = vol_resize(f->vol, size, on_resized, f);
	if (ret < 0)
		return ret;
	poll_until(f, resized);
	return f->resize_res;
}

struct op {
	struct vol_req r;
	bool done;
	int res;
};

static void op_done(struct vol_req *r, int res)
{
	struct op *o = r->priv;

	o->done = true;
	o->res = res;
}

static void op_start(struct fixture *f, struct op *o, enum vol_op op,
		     uint64_t off, uint64_t len, uint8_t *buf)
{
	memset(o, 0, sizeof *o);
	o->r.done = op_done;
	o->r.priv = o;
	vol_submit(f->vol, &o->r, op, off, len, buf, 0);
}

static int op_wait(struct fixture *f, struct op *o)
{
	for (long spins = 0; !o->done; spins++) {
		assert_true(spins < SPINS);
		assert_true(loop_poll(&f->loop) >= 0);
	}
	vol_req_fini(&o->r);
	return o->res;
}

static int do_io(struct fixture *f, enum vol_op op, uint64_t off, uint64_t len,
		 uint8_t *buf)
{
	struct op o;

	op_start(f, &o, op, off, len, buf);
	return op_wait(f, &o);
}

static uint8_t *pattern(uint64_t len, uint8_t seed)
{
	uint8_t *b = NULL;

	assert_int_equal(posix_memalign((void **)&b, 4096, len), 0);
	for (uint64_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed + i * 31 + (i >> 12));
	return b;
}

static uint64_t store_size_of(struct fixture *f, unsigned i)
{
	struct store *st = repl_service_store(f->svc[i], VID);

	assert_non_null(st);
	return store_size(st);
}

/* Every replica connected: all grow, then the engine; a write across the
 * old end reads back. */
static void test_resize_all_up(void **state)
{
	struct fixture *f = *state;
	uint8_t *w = pattern(8 * B, 1), *r = pattern(8 * B, 0);

	assert_int_equal(resize(f, NEW_SIZE), 0);
	assert_int_equal(vol_size(f->vol), NEW_SIZE);
	for (unsigned i = 0; i < NREP; i++)
		assert_int_equal(store_size_of(f, i), NEW_SIZE);
	assert_int_equal(do_io(f, VOL_WRITE, OLD_SIZE - 4 * B, 8 * B, w), 0);
	assert_int_equal(do_io(f, VOL_READ, OLD_SIZE - 4 * B, 8 * B, r), 0);
	assert_memory_equal(w, r, 8 * B);
	assert_int_equal(vol_in_sync_count(f->vol), NREP);
	free(w);
	free(r);
}

static void test_resize_bad_args(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(vol_resize(f->vol, OLD_SIZE, on_resized, f), -EALREADY);
	assert_int_equal(vol_resize(f->vol, OLD_SIZE - B, on_resized, f), -EINVAL);
	assert_int_equal(vol_resize(f->vol, OLD_SIZE + 1, on_resized, f), -EINVAL);
	assert_int_equal(vol_resize(f->vol, NEW_SIZE, on_resized, f), 0);
	assert_int_equal(vol_resize(f->vol, 2 * NEW_SIZE, on_resized, f), -EBUSY);
	poll_until(f, resized);
	assert_int_equal(f->resize_res, 0);
	assert_int_equal(vol_size(f->vol), NEW_SIZE);
}

static bool n3_up(struct fixture *f) { return is_up(f, 2); }
static bool n3_down(struct fixture *f) { return !is_up(f, 2); }

/* n3 is not connected during the resize: the engine grows with the two
 * others, and n3's replica grows with the OPEN of its next connection. */
static void test_resize_replica_down(void **state)
{
	struct fixture *f = *state;
	uint8_t *w = pattern(B, 2);

	f->refuse[2] = true;
	shutdown(f->cfd[2], SHUT_RDWR);
	poll_until(f, n3_down);
	assert_int_equal(resize(f, NEW_SIZE), 0);
	assert_int_equal(vol_size(f->vol), NEW_SIZE);
	assert_int_equal(store_size_of(f, 0), NEW_SIZE);
	assert_int_equal(store_size_of(f, 1), NEW_SIZE);
	assert_int_equal(store_size_of(f, 2), OLD_SIZE);
	/* n3 leaves the in-sync set on this write (it is not reachable). */
	assert_int_equal(do_io(f, VOL_WRITE, NEW_SIZE - B, B, w), 0);
	f->refuse[2] = false;
	poll_until(f, n3_up);
	assert_int_equal(store_size_of(f, 2), NEW_SIZE);
	free(w);
}

/* n2's service refuses sizes above OLD_SIZE: the resize fails, the
 * engine keeps its size, and I/O goes on. */
static void test_resize_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t *w = pattern(B, 3);

	repl_service_set_max_volume_size(f->svc[1], OLD_SIZE);
	assert_int_equal(resize(f, NEW_SIZE), -EFBIG);
	assert_int_equal(vol_size(f->vol), OLD_SIZE);
	assert_int_equal(store_size_of(f, 1), OLD_SIZE);
	assert_int_equal(do_io(f, VOL_WRITE, OLD_SIZE - B, B, w), 0);
	assert_int_equal(vol_in_sync_count(f->vol), NREP);
	repl_service_set_max_volume_size(f->svc[1], NEW_SIZE);
	assert_int_equal(resize(f, NEW_SIZE), 0);
	assert_int_equal(vol_size(f->vol), NEW_SIZE);
	free(w);
}

/* Writes in flight while the replicas grow: every one succeeds, and the
 * replicas agree afterwards. */
static void test_resize_under_writes(void **state)
{
	struct fixture *f = *state;
	enum { N = 32 };
	struct op ops[N];
	uint8_t *w = pattern(N * B, 4), *r = pattern(N * B, 0);

	for (unsigned k = 0; k < N; k++)
		op_start(f, &ops[k], VOL_WRITE, OLD_SIZE - N * B + k * B, B,
			 w + k * B);
	f->resized = false;
	assert_int_equal(vol_resize(f->vol, NEW_SIZE, on_resized, f), 0);
	for (unsigned k = 0; k < N; k++)
		assert_int_equal(op_wait(f, &ops[k]), 0);
	poll_until(f, resized);
	assert_int_equal(f->resize_res, 0);
	assert_int_equal(do_io(f, VOL_WRITE, OLD_SIZE, N * B, w), 0);
	assert_int_equal(do_io(f, VOL_READ, OLD_SIZE - N * B, N * B, r), 0);
	assert_memory_equal(w, r, N * B);
	assert_int_equal(vol_in_sync_count(f->vol), NREP);
	free(w);
	free(r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_resize_all_up),
		T(test_resize_bad_args),
		T(test_resize_replica_down),
		T(test_resize_refused),
		T(test_resize_under_writes),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
