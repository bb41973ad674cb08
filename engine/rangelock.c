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
	/* Only entries queued after e can have been waiting on it. Grant
	 * callbacks never release synchronously (store I/O completes from
	 * the loop), so the list is stable while we walk it. */
	for (struct rl_entry *w = next; w; w = w->next) {
		if (w->granted || w->lo >= e->hi || e->lo >= w->hi)
			continue;
		if (can_grant(w)) {
			w->granted = true;
			w->grant(w);
		}
	}
}
