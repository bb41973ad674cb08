/*
 * The event loop: one io_uring per process carries disk I/O and socket I/O.
 *
 * Every SQE's user_data points at a struct loop_op embedded in whatever owns
 * the operation; its callback runs once with cqe->res. The owner must keep
 * the op (and any buffer the kernel uses) alive until that callback has run.
 * SQEs are batched: nothing reaches the kernel until the loop goes to wait,
 * or the SQ ring fills.
 */
#ifndef TRIPLEX_LOOP_H
#define TRIPLEX_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <liburing.h>

struct loop_op;
typedef void loop_cb_fn(struct loop_op *op, int res, uint32_t cqe_flags);

struct loop_op {
	loop_cb_fn *cb;
};

/* Work to run on the loop's next turn, before it waits for the kernel. */
struct loop_task {
	struct loop_task *next;
	void (*fn)(struct loop_task *task);
};

struct loop_timer {
	struct loop_op op;
	struct __kernel_timespec ts;
	void (*fn)(struct loop_timer *timer);
	bool armed;
};

struct loop {
	struct io_uring ring;
	struct loop_task *tasks_head;
	struct loop_task **tasks_tail;
	bool stopping;
	uint64_t submitted;  /* SQEs handed out, for metrics */
	uint64_t completed;  /* CQEs reaped */
};

/* Set up a ring of about `entries` SQEs. Returns 0 or -errno. */
int loop_init(struct loop *l, unsigned entries);
void loop_fini(struct loop *l);

/* An SQE whose completion calls op->cb (op may be NULL: completion ignored).
 * Never NULL: a full SQ is flushed to the kernel first. */
struct io_uring_sqe *loop_get_sqe(struct loop *l, struct loop_op *op);

/* Run task->fn on the next turn of the loop (never from inside this call). */
void loop_defer(struct loop *l, struct loop_task *task);

/* Call timer->fn once, ms milliseconds from now. The timer must stay alive
 * until fn has run; arming an armed timer does nothing. */
void loop_timer_arm(struct loop *l, struct loop_timer *timer, uint64_t ms);

/* An armed timer's fn runs on the next turn instead of when it is due
 * (its timeout is removed); nothing if it is not armed. */
void loop_timer_fire_now(struct loop *l, struct loop_timer *timer);

/* Milliseconds on the monotonic clock, for deadlines and pacing. */
uint64_t loop_now_ms(void);

/* Run until loop_stop(). Returns 0, or -errno if the ring failed. */
int loop_run(struct loop *l);

/* Process what is ready without waiting; returns the number of callbacks
 * run. For tests that drive a loop step by step. */
int loop_poll(struct loop *l);

/* Make loop_run() return after the current turn. */
void loop_stop(struct loop *l);

#endif
