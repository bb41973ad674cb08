#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

int loop_init(struct loop *l, unsigned entries)
{
	struct io_uring_params p;
	int ret;

	memset(l, 0, sizeof *l);
	memset(&p, 0, sizeof p);
	/* A roomy CQ: many sockets and disk ops complete in one turn. Only
	 * this thread touches the ring, and completion work can wait until
	 * the loop asks for it: fewer interruptions, fewer context switches. */
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
		  IORING_SETUP_DEFER_TASKRUN;
	p.cq_entries = entries * 4;
	ret = io_uring_queue_init_params(entries, &l->ring, &p);
	if (ret == -EINVAL) {  /* kernels before 6.1 */
		memset(&p, 0, sizeof p);
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = entries * 4;
		ret = io_uring_queue_init_params(entries, &l->ring, &p);
	}
	if (ret < 0)
		return ret;
	l->tasks_tail = &l->tasks_head;
	return 0;
}

void loop_fini(struct loop *l)
{
	io_uring_queue_exit(&l->ring);
}

struct io_uring_sqe *loop_get_sqe(struct loop *l, struct loop_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	while (sqe == NULL) {
		int ret = io_uring_submit(&l->ring);

		if (ret < 0 && ret != -EAGAIN && ret != -EBUSY && ret != -EINTR) {
			log_error("io_uring_submit: %s", strerror(-ret));
			abort();
		}
		sqe = io_uring_get_sqe(&l->ring);
	}
	io_uring_sqe_set_data(sqe, op);
	l->submitted++;
	return sqe;
}

void loop_defer(struct loop *l, struct loop_task *task)
{
	task->next = NULL;
	*l->tasks_tail = task;
	l->tasks_tail = &task->next;
}

static void timer_fired(struct loop_op *op, int res, uint32_t flags)
{
	struct loop_timer *t = (struct loop_timer *)op;

	(void)res;
	(void)flags;
	t->armed = false;
	t->fn(t);
}

void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t ms)
{
	struct io_uring_sqe *sqe;

	if (t->armed)
		return;
	t->armed = true;
	t->op.cb = timer_fired;
	t->ts.tv_sec = (long long)(ms / 1000);
	t->ts.tv_nsec = (long long)(ms % 1000) * 1000000;
	sqe = loop_get_sqe(l, &t->op);
	io_uring_prep_timeout(sqe, &t->ts, 0, 0);
}

void loop_timer_fire_now(struct loop *l, struct loop_timer *t)
{
	struct io_uring_sqe *sqe;

	if (!t->armed)
		return;
	/* The timeout completes with -ECANCELED: timer_fired runs fn. */
	sqe = loop_get_sqe(l, NULL);
	io_uring_prep_timeout_remove(sqe, (__u64)(uintptr_t)&t->op, 0);
}

static int run_tasks(struct loop *l)
{
	struct loop_task *list = l->tasks_head;
	int n = 0;

	/* Tasks deferred while running these wait for the next turn. */
	l->tasks_head = NULL;
	l->tasks_tail = &l->tasks_head;
	while (list) {
		struct loop_task *t = list;

		list = t->next;
		t->fn(t);
		n++;
	}
	return n;
}

static int reap(struct loop *l)
{
	struct io_uring_cqe *cqe;
	int n = 0;

	while (io_uring_peek_cqe(&l->ring, &cqe) == 0) {
		struct loop_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		uint32_t flags = cqe->flags;

		io_uring_cqe_seen(&l->ring, cqe);
		l->completed++;
		if (op)
			op->cb(op, res, flags);
		n++;
	}
	return n;
}

int loop_poll(struct loop *l)
{
	int n = run_tasks(l);
	/* Also runs deferred completion work (DEFER_TASKRUN). */
	int ret = io_uring_submit_and_get_events(&l->ring);

	if (ret < 0 && ret != -EAGAIN && ret != -EBUSY && ret != -EINTR)
		return ret;
	return n + reap(l);
}

int loop_run(struct loop *l)
{
	while (!l->stopping) {
		int ret;

		run_tasks(l);
		if (l->stopping)
			break;
		/* With tasks waiting, only collect what is ready: with deferred
		 * task work a wait of 0 would not even enter the kernel. */
		if (l->tasks_head)
			ret = io_uring_submit_and_get_events(&l->ring);
		else
			ret = io_uring_submit_and_wait(&l->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY &&
		    ret != -ETIME)
			return ret;
		reap(l);
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stopping = true;
}

uint64_t loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
