/* The engine's range lock: FIFO order among overlapping exclusive ranges,
 * shared readers, and grants on release. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rangelock.h"

static int granted_order[16];
static int ngranted;

struct item {
	struct rl_entry e;
	int id;
};

static void on_grant(struct rl_entry *e)
{
	granted_order[ngranted++] = ((struct item *)e)->id;
}

static void init_items(struct item *it, int n)
{
	ngranted = 0;
	for (int i = 0; i < n; i++) {
		it[i].id = i;
		it[i].e.grant = on_grant;
	}
}

static void test_disjoint_granted(void **state)
{
	struct rangelock rl = { 0 };
	struct item it[2];

	init_items(it, 2);
	assert_true(rl_acquire(&rl, &it[0].e, 0, 4, true));
	assert_true(rl_acquire(&rl, &it[1].e, 4, 8, true));
	rl_release(&rl, &it[0].e);
	rl_release(&rl, &it[1].e);
	assert_int_equal(ngranted, 0);
	assert_null(rl.head);
}

static void test_overlap_waits_fifo(void **state)
{
	struct rangelock rl = { 0 };
	struct item it[3];

	init_items(it, 3);
	assert_true(rl_acquire(&rl, &it[0].e, 0, 4, true));
	assert_false(rl_acquire(&rl, &it[1].e, 2, 6, true));
	assert_false(rl_acquire(&rl, &it[2].e, 5, 7, true)); /* behind 1 */
	rl_release(&rl, &it[0].e);
	assert_int_equal(ngranted, 1);
	assert_int_equal(granted_order[0], 1);
	rl_release(&rl, &it[1].e);
	assert_int_equal(ngranted, 2);
	assert_int_equal(granted_order[1], 2);
	rl_release(&rl, &it[2].e);
	assert_int_equal(rl.count, 0);
}

static void test_readers_share_writer_waits(void **state)
{
	struct rangelock rl = { 0 };
	struct item it[4];

	init_items(it, 4);
	assert_true(rl_acquire(&rl, &it[0].e, 0, 8, false));
	assert_true(rl_acquire(&rl, &it[1].e, 2, 3, false));
	assert_false(rl_acquire(&rl, &it[2].e, 1, 2, true));
	/* A reader after a waiting writer waits too: no overtaking. */
	assert_false(rl_acquire(&rl, &it[3].e, 1, 2, false));
	rl_release(&rl, &it[1].e);
	assert_int_equal(ngranted, 0);
	rl_release(&rl, &it[0].e);
	assert_int_equal(ngranted, 1);
	assert_int_equal(granted_order[0], 2);
	rl_release(&rl, &it[2].e);
	assert_int_equal(ngranted, 2);
	assert_int_equal(granted_order[1], 3);
	rl_release(&rl, &it[3].e);
}

static void test_release_grants_several(void **state)
{
	struct rangelock rl = { 0 };
	struct item it[3];

	init_items(it, 3);
	assert_true(rl_acquire(&rl, &it[0].e, 0, 10, true));
	assert_false(rl_acquire(&rl, &it[1].e, 0, 1, false));
	assert_false(rl_acquire(&rl, &it[2].e, 9, 10, false));
	rl_release(&rl, &it[0].e);
	assert_int_equal(ngranted, 2);
	rl_release(&rl, &it[1].e);
	rl_release(&rl, &it[2].e);
}

/* A grant callback that releases its entry at once (a request with nothing
 * to do): the waiters behind it are still granted. Found by fuzz_conn: a
 * sub-block TRIM between two overlapping writes hung the third one. */
static struct rangelock *sync_rl;

static void on_grant_release(struct rl_entry *e)
{
	on_grant(e);
	rl_release(sync_rl, e);
}

static void test_grant_may_release(void **state)
{
	struct rangelock rl = { 0 };
	struct item it[3];

	(void)state;
	sync_rl = &rl;
	init_items(it, 3);
	it[1].e.grant = on_grant_release;
	assert_true(rl_acquire(&rl, &it[0].e, 0, 3, true));
	assert_false(rl_acquire(&rl, &it[1].e, 2, 3, true));
	assert_false(rl_acquire(&rl, &it[2].e, 0, 2, true));
	rl_release(&rl, &it[0].e);
	assert_int_equal(ngranted, 2);
	assert_int_equal(granted_order[0], 1);
	assert_int_equal(granted_order[1], 2);
	assert_true(it[2].e.granted);
	assert_int_equal(rl.count, 1);
	rl_release(&rl, &it[2].e);
	assert_int_equal(rl.count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disjoint_granted),
		cmocka_unit_test(test_overlap_waits_fifo),
		cmocka_unit_test(test_readers_share_writer_waits),
		cmocka_unit_test(test_release_grants_several),
		cmocka_unit_test(test_grant_may_release),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
