/*
 * Metadata calls off the I/O loop. A metaq owns a metadata store handle
 * and one worker thread; jobs submitted from the loop run on the worker,
 * in submission order, and complete back on the loop. So no metadata call
 * ever blocks the loop, however slow or unreachable the store is, and the
 * changes one caller submits are applied in the order it submitted them.
 *
 * A job's run() executes on the worker: it may use only the handle it is
 * given and the job's own fields (copies of what it needs), never the
 * caller's loop-side state. Its done() then runs on the loop with run()'s
 * result. The job must stay alive until done() has run.
 */
#ifndef TRIPLEX_METAQ_H
#define TRIPLEX_METAQ_H

#include <stdbool.h>
#include <stddef.h>

#include "loop.h"
#include "meta.h"

struct metaq;

struct metaq_job {
	int (*run)(struct meta *m, struct metaq_job *job);
	void (*done)(struct metaq_job *job, int res);
	/* Private to the queue. */
	struct metaq_job *next;
	int res;
};

/* Start a queue over the store m (taken over: closed by metaq_free).
 * Returns NULL on ENOMEM or if the thread cannot start. */
struct metaq *metaq_new(struct loop *loop, struct meta *m);

/* Queue job; done runs on the loop once run has run on the worker. */
void metaq_submit(struct metaq *q, struct metaq_job *job);

/* Jobs submitted and not yet done. */
size_t metaq_pending(const struct metaq *q);

/* Stop the worker after the job it is running (jobs not yet run are
 * dropped: their done never runs), join it, close the store. */
void metaq_free(struct metaq *q);

#endif
