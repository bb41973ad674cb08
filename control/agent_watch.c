/*
 * Changes reach the agent in milliseconds, not at its next poll: a thread
 * of its own waits on the metadata store (meta_wait_change on a handle of
 * its own: an etcd watch, or SQLite's revision read every 20 ms) and wakes
 * the loop through an eventfd; the loop then polls at once. The poll once
 * a second stays: it renews the lease, it is the clock of the failover
 * rules, and it catches anything a watch missed (a watch is a hint).
 *
 * The thread is detached and owns what it uses (its handle, its own
 * descriptor of the eventfd, this struct): the loop only raises `stop`
 * and never touches the struct again, so stopping never waits for a watch
 * that is blocked in the store.
 */
#include "agent_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

#define WATCH_TIMEOUT_MS 5000
#define WATCH_RETRY_US (1000 * 1000)

struct agent_watch {
	_Atomic bool stop;
	int efd;                 /* the thread's descriptor of the eventfd */
	char url[];
};

static void *watch_thread(void *arg)
{
	struct agent_watch *w = arg;
	struct meta *m = NULL;
	int64_t rev = -1;
	uint64_t one = 1;
	char err[256];

	while (!atomic_load(&w->stop)) {
		int r;

		if (!m && meta_open(w->url, &m, err, sizeof err) < 0) {
			m = NULL;
			usleep(WATCH_RETRY_US);
			continue;
		}
		r = meta_wait_change(m, CLUSTER_PREFIX, &rev, WATCH_TIMEOUT_MS);
		if (r == 1 && !atomic_load(&w->stop) &&
		    write(w->efd, &one, sizeof one) < 0)
			log_warn("cluster: watch: cannot wake the loop: %s",
				 strerror(errno));
		if (r < 0) {
			rev = -1;  /* learn it again: we may have missed changes */
			usleep(WATCH_RETRY_US);
		}
	}
	meta_close(m);
	close(w->efd);
	free(w);
	return NULL;
}

static void on_watch_event(struct loop_op *op, int res, uint32_t flags)
{
	struct agent *cm = (struct agent *)((char *)op - offsetof(struct agent, watch_op));

	(void)flags;
	if (cm->stopping || res < 0)
		return;
	agent_poll_now(cm);
	agent_watch_arm(cm);
}

void agent_watch_arm(struct agent *cm)
{
	struct io_uring_sqe *sqe;

	cm->watch_op.cb = on_watch_event;
	sqe = loop_get_sqe(cm->loop, &cm->watch_op);
	io_uring_prep_read(sqe, cm->watch_efd, &cm->watch_buf,
			   sizeof cm->watch_buf, 0);
}

int agent_watch_start(struct agent *cm, const char *url)
{
	size_t n = strlen(url);
	struct agent_watch *w = calloc(1, sizeof *w + n + 1);
	pthread_attr_t attr;
	pthread_t t;
	int r;

	if (!w)
		return -ENOMEM;
	memcpy(w->url, url, n + 1);
	cm->watch_efd = eventfd(0, EFD_CLOEXEC);
	w->efd = cm->watch_efd >= 0 ? dup(cm->watch_efd) : -1;
	if (w->efd < 0) {
		r = -errno;
		goto fail;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = -pthread_create(&t, &attr, watch_thread, w);
	pthread_attr_destroy(&attr);
	if (r < 0)
		goto fail;
	cm->watch = w;
	agent_watch_arm(cm);
	return 0;
fail:
	if (w->efd >= 0)
		close(w->efd);
	free(w);
	if (cm->watch_efd >= 0)
		close(cm->watch_efd);
	cm->watch_efd = -1;
	return r;
}

void agent_watch_stop(struct agent *cm)
{
	if (cm->watch)
		atomic_store(&cm->watch->stop, true);
	cm->watch = NULL;  /* the thread frees it */
}

void agent_watch_close(struct agent *cm)
{
	if (cm->watch_efd >= 0)
		close(cm->watch_efd);
	cm->watch_efd = -1;
}
