/* The metadata worker: jobs run off the loop thread, in order, and their
 * done callbacks run on the loop; a job stuck in the store does not stop
 * the loop from turning (timers fire meanwhile). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "meta.h"
#include "metaq.h"

#define NJOBS 64

static pthread_t loop_thread;

struct fx {
	char dir[64];
	struct loop loop;
	struct metaq *q;
	struct meta *m;     /* the worker's handle */
};

struct job {
	struct metaq_job j;
	int n;
	pthread_t ran_on;
	int64_t rev;
	int *order;         /* done() appends n here */
	int *norder;
	int sleep_ms;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	char url[128], err[256];

	loop_thread = pthread_self();
	snprintf(f->dir, sizeof f->dir, "/tmp/tpx-metaq-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(url, sizeof url, "sqlite:%s/meta.db", f->dir);
	assert_int_equal(loop_init(&f->loop, 64), 0);
	assert_int_equal(meta_open(url, &f->m, err, sizeof err), 0);
	f->q = metaq_new(&f->loop, f->m);
	assert_non_null(f->q);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	metaq_free(f->q);
	loop_fini(&f->loop);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int put_run(struct meta *m, struct metaq_job *j)
{
	struct job *x = (struct job *)j;
	char val[16];

	x->ran_on = pthread_self();
	if (x->sleep_ms)
		usleep((useconds_t)x->sleep_ms * 1000);
	snprintf(val, sizeof val, "%d", x->n);
	return meta_put(m, "/k", val, strlen(val), -1, 0, &x->rev);
}

static void put_done(struct metaq_job *j, int res)
{
	struct job *x = (struct job *)j;

	assert_int_equal(res, 0);
	assert_true(pthread_equal(pthread_self(), loop_thread));  /* on the loop */
	x->order[(*x->norder)++] = x->n;
}

static void test_order_and_threads(void **state)
{
	struct fx *f = *state;
	struct job jobs[NJOBS];
	int order[NJOBS], norder = 0;
	pthread_t me = pthread_self();

	for (int i = 0; i < NJOBS; i++) {
		jobs[i] = (struct job){ .j = { .run = put_run, .done = put_done },
					.n = i, .order = order, .norder = &norder };
		metaq_submit(f->q, &jobs[i].j);
	}
	assert_int_equal(metaq_pending(f->q), NJOBS);
	for (long spins = 0; norder < NJOBS; spins++) {
		assert_true(spins < 10000000);
		assert_true(loop_poll(&f->loop) >= 0);
	}
	assert_int_equal(metaq_pending(f->q), 0);
	for (int i = 0; i < NJOBS; i++) {
		assert_int_equal(order[i], i);              /* done in order */
		assert_false(pthread_equal(jobs[i].ran_on, me));  /* off the loop */
		if (i)
			assert_true(jobs[i].rev > jobs[i - 1].rev);   /* applied in order */
	}
}

struct ticker {
	struct loop_timer t;
	int ticks;
};

static void tick(struct loop_timer *t)
{
	((struct ticker *)((char *)t - offsetof(struct ticker, t)))->ticks++;
}

/* A job that takes 1 s in the store: the loop keeps turning meanwhile. */
static void test_slow_job_does_not_block_the_loop(void **state)
{
	struct fx *f = *state;
	struct ticker tk = { .t = { .fn = tick } };
	int order[1], norder = 0;
	struct job slow = { .j = { .run = put_run, .done = put_done }, .n = 7,
			    .order = order, .norder = &norder, .sleep_ms = 1000 };
	int ticks_while_slow = 0;

	metaq_submit(f->q, &slow.j);
	for (long spins = 0; norder == 0; spins++) {
		assert_true(spins < 100000000);
		if (!tk.t.armed) {
			ticks_while_slow = tk.ticks;
			loop_timer_arm(&f->loop, &tk.t, 10);
		}
		assert_true(loop_poll(&f->loop) >= 0);
	}
	/* About 100 ticks of 10 ms fit in the second the job took; a loop
	 * blocked by the job would have seen none. */
	assert_true(ticks_while_slow >= 10);
	print_message("  %d loop timer ticks while a 1 s job ran\n", ticks_while_slow);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_order_and_threads),
		T(test_slow_job_does_not_block_the_loop),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
