#include "rangelock.h"

#include <stddef.h>

static bool conflicts(const struct rl_entry *a, const struct rl_entry *b)
{
	return a->lo < b->hi && b->lo < a->hi && (a->excl || b->excl);
}

static bool can_grant(const struct rl_entry *e)
{
	for (const struct rl_entry *p = e->prev; p; p = p->prev)
		if (conflicts(p, e))
			return false;
	return true;
}

bool rl_acquire(struct rangelock *rl, struct rl_entry *e, uint64_t lo,
		uint64_t hi, bool excl)
{
	e->lo = lo;
	e->hi = hi;
	e->excl = excl;
	e->next = NULL;
	e->prev = rl->tail;
	if (rl->tail)
		rl->tail->next = e;
	else
		rl->head = e;
	rl->tail = e;
	rl->count++;
	e->granted = can_grant(e);
	return e->granted;
}

/* Grant the entries from `from` on that [lo, hi) was blocking and nothing
 * else blocks. All are marked first and called back after the walk: a
 * callback may release its entry at once (a request with nothing to do),
 * which changes the list under a walk. */
static void grant_waiters(struct rl_entry *from, uint64_t lo, uint64_t hi)
{
	struct rl_entry *ready = NULL, **tail = &ready;

	for (struct rl_entry *w = from; w; w = w->next) {
		if (w->granted || w->lo >= hi || lo >= w->hi || !can_grant(w))
			continue;
		w->granted = true;
		w->ready_next = NULL;
		*tail = w;
		tail = &w->ready_next;
	}
	while (ready) {
		struct rl_entry *w = ready;

		ready = w->ready_next;
		w->grant(w);
	}
}

void rl_release(struct rangelock *rl, struct rl_entry *e)
{
	struct rl_entry *next = e->next;

	if (e->prev)
		e->prev->next = e->next;
	else
		rl->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		rl->tail = e->prev;
	rl->count--;
	e->prev = e->next = NULL;
	grant_waiters(next, e->lo, e->hi);
}
