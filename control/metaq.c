/*
 * The metadata worker (see metaq.h). The worker takes jobs from `todo` in
 * order and puts them on `finished`; each time it signals an eventfd that
 * the loop keeps a read armed on, and the loop runs the finished jobs'
 * done callbacks. Both lists are guarded by one mutex.
 */
#include "metaq.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

struct metaq {
	struct loop *loop;
	struct meta *meta;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct metaq_job *todo, **todo_tail;
	struct metaq_job *finished, **finished_tail;
	bool stop;
	int efd;
	uint64_t evbuf;
	struct loop_op ev_op;
	size_t pending;           /* loop side: submitted, not yet done */
};

static void push(struct metaq_job ***tail, struct metaq_job *job)
{
	job->next = NULL;
	**tail = job;
	*tail = &job->next;
}

static void *worker(void *arg)
{
	struct metaq *q = arg;
	const uint64_t one = 1;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		struct metaq_job *job;

		while (!q->stop && !q->todo)
			pthread_cond_wait(&q->cond, &q->mu);
		if (q->stop)
			break;
		job = q->todo;
		q->todo = job->next;
		if (!q->todo)
			q->todo_tail = &q->todo;
		pthread_mutex_unlock(&q->mu);
		job->res = job->run(q->meta, job);
		pthread_mutex_lock(&q->mu);
		push(&q->finished_tail, job);
		if (write(q->efd, &one, sizeof one) < 0)
			log_error("metadata worker: eventfd: cannot wake the loop");
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

static void arm(struct metaq *q);

/* On the loop: run the done callbacks of what the worker finished. */
static void on_event(struct loop_op *op, int res, uint32_t flags)
{
	struct metaq *q = (struct metaq *)((char *)op - offsetof(struct metaq, ev_op));
	struct metaq_job *list;

	(void)res;
	(void)flags;
	pthread_mutex_lock(&q->mu);
	list = q->finished;
	q->finished = NULL;
	q->finished_tail = &q->finished;
	pthread_mutex_unlock(&q->mu);
	arm(q);
	while (list) {
		struct metaq_job *job = list;

		list = job->next;
		q->pending--;
		job->done(job, job->res);
	}
}

static void arm(struct metaq *q)
{
	struct io_uring_sqe *sqe = loop_get_sqe(q->loop, &q->ev_op);

	q->ev_op.cb = on_event;
	io_uring_prep_read(sqe, q->efd, &q->evbuf, sizeof q->evbuf, 0);
}

struct metaq *metaq_new(struct loop *loop, struct meta *m)
{
	struct metaq *q = calloc(1, sizeof *q);

	if (!q)
		return NULL;
	q->loop = loop;
	q->meta = m;
	q->todo_tail = &q->todo;
	q->finished_tail = &q->finished;
	q->efd = eventfd(0, EFD_CLOEXEC);
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cond, NULL);
	if (q->efd < 0 || pthread_create(&q->thread, NULL, worker, q) != 0) {
		if (q->efd >= 0)
			close(q->efd);
		pthread_mutex_destroy(&q->mu);
		pthread_cond_destroy(&q->cond);
		free(q);
		return NULL;
	}
	arm(q);
	return q;
}

void metaq_submit(struct metaq *q, struct metaq_job *job)
{
	q->pending++;
	pthread_mutex_lock(&q->mu);
	push(&q->todo_tail, job);
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->mu);
}

size_t metaq_pending(const struct metaq *q)
{
	return q ? q->pending : 0;
}

/* After the loop has stopped: nothing writes the eventfd once the worker
 * is joined, so the read still armed on it never completes into q. */
void metaq_free(struct metaq *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	close(q->efd);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cond);
	meta_close(q->meta);
	free(q);
}
