#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "sd_notify.h"

#define STOP_GRACE_MS 10000

static void force_stop(struct loop_timer *t)
{
	struct daemon *d = (struct daemon *)((char *)t - offsetof(struct daemon, stop_timer));

	log_warn("shutdown: requests still in flight after %d ms, stopping",
		 STOP_GRACE_MS);
	d->exit_code = 1;
	loop_stop(&d->loop);
}

static void wait_idle(struct loop_timer *t)
{
	struct daemon *d = (struct daemon *)((char *)t - offsetof(struct daemon, idle_timer));

	if (!agent_idle(d->cluster)) {
		loop_timer_arm(&d->loop, &d->idle_timer, 10);
		return;
	}
	log_info("shutdown: all connections closed");
	loop_stop(&d->loop);
}

/* NBD clients are gone and nothing is in flight: only now let go of the
 * volumes and the replica service, so that no request of ours fails on the
 * way out and takes a replica (our own) out of the in-sync set. */
static void drained(void *arg)
{
	struct daemon *d = arg;

	agent_stop(d->cluster);
	d->idle_timer.fn = wait_idle;
	wait_idle(&d->idle_timer);
}

static void arm_signal_read(struct daemon *d)
{
	struct io_uring_sqe *sqe = loop_get_sqe(&d->loop, &d->sig_op);

	io_uring_prep_read(sqe, d->sig_fd, &d->sig_info, sizeof d->sig_info, 0);
}

static void on_signal(struct loop_op *op, int res, uint32_t flags)
{
	struct daemon *d = (struct daemon *)((char *)op - offsetof(struct daemon, sig_op));
	const struct signalfd_siginfo *si = &d->sig_info;

	if (res < (int)sizeof *si) {
		log_error("signalfd read: %s", res < 0 ? strerror(-res) : "short");
		loop_stop(&d->loop);
		return;
	}
	if (si->ssi_signo == SIGHUP) {
		daemon_tls_reload(d);
		arm_signal_read(d);
		return;
	}
	log_info("shutdown: signal %u", si->ssi_signo);
	d->state = DAEMON_STOPPING;  /* /readyz says 503 while we drain */
	/* No injected delay may hold a store's I/O past its close. */
	store_io_fault_set(&d->fault, 0, 0, 0);
	/* systemd shows "deactivating" rather than a failed service. */
	if (tpx_sd_notify("STOPPING=1") < 0)
		log_warn("sd_notify STOPPING=1 failed");
	d->stop_timer.fn = force_stop;
	loop_timer_arm(&d->loop, &d->stop_timer, STOP_GRACE_MS);
	nbd_server_shutdown(d->nbd, drained, d);
}

int daemon_watch_signals(struct daemon *d)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	d->sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (d->sig_fd < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	d->sig_op.cb = on_signal;
	arm_signal_read(d);
	return 0;
}
