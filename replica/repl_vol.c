/*
 * The service's volume table (volume_id -> open store), the replicas'
 * directories, and fencing.
 *
 * Fencing rule (invariant 3), applied to every request on a volume in
 * arrival order, on the pair (epoch, session) compared epoch first:
 *   older than the volume's: refused with -ESTALE, the reply carries the
 *                     highest epoch;
 *   newer:            adopted (a higher epoch durably, store_set_epoch,
 *                     before anything else happens), then the request
 *                     waits until every request already in the store has
 *                     left it;
 *   equal:            executed.
 * A request that was in the store when the pair moved on is answered
 * -ESTALE whatever its outcome. So once a new engine has its first reply,
 * no older engine's request is still executing and none can ever be
 * acknowledged. The session is the engine's connection (a new one per
 * reconnect) and lives in memory only: a connection the engine gave up on
 * may still deliver requests the kernel had queued (TCP retransmits them
 * once a partition heals), and those must never land after a resync has
 * copied newer data. A restarted replica has no old connections left, and
 * a restarted engine serves at a new epoch.
 *
 * Volume states: a request runs at once, or waits in waitq while a drainer
 * (epoch rise or DELETE) waits for executing == 0; arrivals keep their
 * order behind it. DELETE marks the volume deleted; it is freed once its
 * queue has been answered (-ENOENT).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <stddef.h>

#include "log.h"
#include "repl_service_int.h"

#define ID_FILE "volume_id"

/* --- table ----------------------------------------------------------------- */

struct rvol *rvol_find(struct repl_service *svc, uint64_t id)
{
	for (struct rvol *v = svc->vols; v; v = v->next)
		if (v->id == id)
			return v;
	return NULL;
}

static struct rvol *rvol_by_name(struct repl_service *svc, const char *name)
{
	for (struct rvol *v = svc->vols; v; v = v->next)
		if (strcmp(v->name, name) == 0)
			return v;
	return NULL;
}

static void rvol_unlink(struct rvol *v)
{
	struct rvol **pp = &v->svc->vols;

	while (*pp && *pp != v)
		pp = &(*pp)->next;
	if (*pp)
		*pp = v->next;
	v->svc->stats.volumes_open--;
}

/* --- directories ------------------------------------------------------------ */

static int vol_path(const struct repl_service *svc, const char *name,
		    const char *file, char *out, size_t len)
{
	int n = file ? snprintf(out, len, "%s/%s/%s", svc->dir, name, file)
		     : snprintf(out, len, "%s/%s", svc->dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Remove a replica directory (flat: the store's files and ID_FILE).
 * "meta" goes first: a directory without it is not a volume. */
static int remove_dir(const char *path)
{
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *e;
	int ret = 0;

	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (unlinkat(dfd, "meta", 0) < 0 && errno != ENOENT)
		ret = -errno;
	if (ret == 0 && fsync(dfd) < 0)
		ret = -errno;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return ret ? ret : -errno;
	}
	while (ret == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    unlinkat(dfd, e->d_name, 0) < 0)
			ret = -errno;
	}
	closedir(d);
	if (ret == 0 && rmdir(path) < 0)
		ret = -errno;
	return ret;
}

static int read_id(const char *path, uint64_t *id)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	char *end;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = '\0';
	*id = strtoull(buf, &end, 10);
	return end != buf && (*end == '\n' || *end == '\0') ? 0 : -EINVAL;
}

/* Write ID_FILE durably (temp file, fsync, rename, fsync the directory). */
static int write_id(const struct repl_service *svc, const char *name,
		    uint64_t id)
{
	char tmp[PATH_MAX], path[PATH_MAX], dir[PATH_MAX], text[32];
	int fd, ret, n = snprintf(text, sizeof text, "%" PRIu64 "\n", id);

	if (vol_path(svc, name, ID_FILE ".tmp", tmp, sizeof tmp) < 0 ||
	    vol_path(svc, name, ID_FILE, path, sizeof path) < 0 ||
	    vol_path(svc, name, NULL, dir, sizeof dir) < 0)
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = write(fd, text, (size_t)n) == n && fsync(fd) == 0 ? 0 : -EIO;
	close(fd);
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	return ret < 0 ? ret : fsync_dir(dir);
}

/* The replica's own record of its volume_id must match: a replica left
 * behind by a deleted volume of the same name must not be taken for the
 * new one. A replica without the record (crash right after create) adopts
 * the id. */
static int check_id(const struct repl_service *svc, const char *name,
		    uint64_t id)
{
	char path[PATH_MAX];
	uint64_t have = 0;
	int ret = vol_path(svc, name, ID_FILE, path, sizeof path);

	if (ret == 0)
		ret = read_id(path, &have);
	if (ret == -ENOENT)
		return write_id(svc, name, id);
	if (ret < 0)
		return ret;
	if (have != id) {
		log_warn("replication: replica %s on disk belongs to volume id "
			 "%" PRIu64 ", not %" PRIu64 " (an older volume of that name, "
			 "or a metadata store made anew): refused; move %s/%s "
			 "aside to give this node to the new volume", name, have,
			 id, svc->dir, name);
		return -EEXIST;
	}
	return 0;
}

/* Make sure a complete replica exists: a directory without "meta" is the
 * remains of an interrupted create or delete, and is replaced. */
static int ensure_replica(const struct repl_service *svc,
			  const struct repl_open *o, uint64_t id, bool create,
			  bool *created)
{
	char dir[PATH_MAX], meta[PATH_MAX];
	struct stat st;
	int ret;

	if (vol_path(svc, o->name, NULL, dir, sizeof dir) < 0 ||
	    vol_path(svc, o->name, "meta", meta, sizeof meta) < 0)
		return -ENAMETOOLONG;
	if (stat(meta, &st) == 0)
		return check_id(svc, o->name, id);
	if (errno != ENOENT)
		return -errno;
	if (!create)
		return -ENOENT;
	ret = remove_dir(dir);
	if (ret == 0)
		ret = store_create(dir, o->size);
	if (ret == 0)
		ret = write_id(svc, o->name, id);
	if (ret == 0)
		ret = fsync_dir(svc->dir);
	if (ret == 0) {
		*created = true;
		log_info("replication: created replica %s (%" PRIu64 " bytes)",
			 o->name, o->size);
	}
	return ret;
}

/* What store_open says of files that are there but wrong: a truncated
 * data file, a lost crc or al file, a bad superblock. */
static bool store_damaged(int ret)
{
	/* Not -EIO: a passing disk error must not cost an intact replica. */
	return ret == -ENOENT || ret == -EINVAL || ret == -EBADMSG ||
	       ret == -EUCLEAN;
}

/* Move a damaged replica to DIR/.damaged/NAME-SECONDS (never deleted: an
 * operator may want it; a name starting with '.' is never a volume's). */
static int move_aside(const struct repl_service *svc, const char *name,
		      int why)
{
	char dir[PATH_MAX], aside[PATH_MAX + 64], top[PATH_MAX];
	int n = snprintf(top, sizeof top, "%s/.damaged", svc->dir);

	if (n < 0 || (size_t)n >= sizeof top ||
	    vol_path(svc, name, NULL, dir, sizeof dir) < 0)
		return -ENAMETOOLONG;
	if (mkdir(top, 0700) < 0 && errno != EEXIST)
		return -errno;
	n = snprintf(aside, sizeof aside, "%s/%s-%lld", top, name,
		     (long long)time(NULL));
	if (n < 0 || (size_t)n >= sizeof aside)
		return -ENAMETOOLONG;
	if (rename(dir, aside) < 0)
		return -errno;
	fsync_dir(top);
	fsync_dir(svc->dir);
	log_error("replication: replica %s is damaged (its store does not "
		  "open: %s, see above): moved aside to %s; it is rebuilt from "
		  "the other replicas", name, strerror(-why), aside);
	return 0;
}

static int rvol_load(struct repl_service *svc, uint64_t id,
		     const struct repl_open *o, bool create, struct rvol **out)
{
	char dir[PATH_MAX];
	struct store *st;
	struct rvol *v;
	bool created = false, moved = false;
	int ret = ensure_replica(svc, o, id, create, &created);

	if (ret == 0)
		ret = vol_path(svc, o->name, NULL, dir, sizeof dir);
	if (ret == 0)
		ret = store_open(dir, svc->io, &st);
	if (ret < 0 && !created && store_damaged(ret)) {
		/* An in-sync replica is not recreated empty (no CREATE): the
		 * engine takes it out of the set first, then opens again. */
		ret = move_aside(svc, o->name, ret);
		moved = ret == 0;
		if (ret == 0)
			ret = ensure_replica(svc, o, id, create, &created);
		if (ret == 0)
			ret = store_open(dir, svc->io, &st);
	}
	if (ret < 0)
		return ret;
	/* A smaller replica grows when the OPEN executes (rvol_grow). */
	if (!(v = calloc(1, sizeof *v))) {
		store_close(st);
		return -ENOMEM;
	}
	v->svc = svc;
	v->id = id;
	memcpy(v->name, o->name, sizeof v->name);
	v->st = st;
	v->epoch = store_get_epoch(st);
	/* This process may have granted leases before it restarted, also for
	 * a replica it creates again (one moved aside after the restart); a
	 * volume new to this node never had any. */
	if (!created || moved)
		v->prior_lease_until = svc->started_ms + REPL_LEASE_MAX_MS;
	v->waitq_tail = &v->waitq;
	v->next = svc->vols;
	svc->vols = v;
	svc->stats.volumes_open++;
	*out = v;
	return 0;
}

int rvol_bind(struct repl_service *svc, uint64_t id,
	      const struct repl_open *o, bool create, struct rvol **out)
{
	struct rvol *v = rvol_by_name(svc, o->name);

	if (v) {
		if (v->id != id)
			return -EEXIST;
		*out = v;
		return 0;
	}
	if (rvol_find(svc, id))
		return -EEXIST;   /* the id is bound to another name */
	return rvol_load(svc, id, o, create, out);
}

int rvol_grow(struct rvol *v, uint64_t size)
{
	uint64_t have = store_size(v->st);
	int ret;

	if (size <= have)
		return 0;
	if (size > v->svc->max_volume_size)
		return -EFBIG;
	ret = store_grow(v->st, size);
	if (ret == 0)
		log_info("replication: %s grown from %" PRIu64 " to %" PRIu64
			 " bytes", v->name, have, size);
	return ret;
}

int rvol_delete(struct rvol *v)
{
	char dir[PATH_MAX];
	int ret = vol_path(v->svc, v->name, NULL, dir, sizeof dir);

	/* store_close would run the loop from inside this callback. */
	if (store_busy(v->st))
		return -EAGAIN;
	store_close(v->st);
	v->st = NULL;
	v->deleted = true;
	rvol_unlink(v);
	if (ret == 0)
		ret = remove_dir(dir);
	if (ret == 0)
		ret = fsync_dir(v->svc->dir);
	if (ret < 0)
		log_error("replication: deleting replica %s: %s", v->name,
			  strerror(-ret));
	else
		log_info("replication: deleted replica %s", v->name);
	return ret;
}

void rvol_close_all(struct repl_service *svc)
{
	while (svc->vols) {
		struct rvol *v = svc->vols;

		svc->vols = v->next;
		store_close(v->st);
		free(v);
	}
}

/* --- fencing and draining --------------------------------------------------- */

void rvol_exec_start(struct rvol *v, struct rreq *r)
{
	r->vol = v;
	v->executing++;
}

static void rvol_exec(struct rvol *v, struct rreq *r)
{
	if (rreq_orphaned(r))
		rreq_drop(r);   /* its connection is gone: nobody to answer */
	else
		repl_op_desc(r->q.op)->exec(v, r);
}

/* (epoch, session) of r against v's: <0 older, 0 same, >0 newer. */
static int rvol_order(const struct rvol *v, const struct rreq *r)
{
	if (r->q.epoch != v->epoch)
		return r->q.epoch < v->epoch ? -1 : 1;
	if (r->q.session != v->session)
		return r->q.session < v->session ? -1 : 1;
	return 0;
}

bool rvol_refuse_older(struct rvol *v, const struct rreq *r)
{
	if (rvol_order(v, r) >= 0)
		return false;
	if (r->q.epoch < v->epoch)
		v->svc->stats.fenced++;
	else
		v->svc->stats.superseded++;
	return true;
}

/* r is newer: make its epoch (durably) and session the volume's. */
static int rvol_adopt(struct rvol *v, struct rreq *r)
{
	int ret;

	if (r->q.epoch > v->epoch) {
		ret = store_set_epoch(v->st, r->q.epoch);
		if (ret < 0)
			return ret;
		/* The old engine's read lease is no longer renewed here. */
		if (v->lease_until > v->prior_lease_until)
			v->prior_lease_until = v->lease_until;
		v->lease_until = 0;
		log_info("replication: %s: epoch %" PRIu64 " -> %" PRIu64,
			 v->name, v->epoch, r->q.epoch);
		v->epoch = r->q.epoch;
	} else {
		log_info("replication: %s: session %" PRIu64 " replaces %" PRIu64
			 " (epoch %" PRIu64 ")", v->name, r->q.session,
			 v->session, v->epoch);
	}
	v->session = r->q.session;
	return 0;
}

static void rvol_run(struct rvol *v, struct rreq *r);
static void rvol_release(struct rvol *v);

static void epoch_retry_fired(struct loop_timer *t)
{
	struct rvol *v = (struct rvol *)((char *)t - offsetof(struct rvol, retry));
	struct rreq *r = v->drainer;

	v->drainer = NULL;
	v->epoch_waiting = false;
	rvol_run(v, r);
	rvol_release(v);
}

/* r waits as the drainer (the queue behind it keeps its order) for the
 * agent to learn what the metadata store says; asked again in 10 ms. */
static void wait_for_store(struct rvol *v, struct rreq *r)
{
	v->drainer = r;
	v->epoch_waiting = true;  /* not for rvol_exec_end to run */
	v->retry.fn = epoch_retry_fired;
	loop_timer_arm(v->svc->loop, &v->retry, 10);
}

/* Is the wait for the store over for r? (Its deadline starts now if unset.) */
static bool store_wait_over(struct repl_service *svc, struct rreq *r)
{
	uint64_t now = loop_now_ms();

	if (!r->epoch_deadline_ms)
		r->epoch_deadline_ms = now + svc->epoch_wait_ms;
	return now >= r->epoch_deadline_ms;
}

/* May r, from the node its certificate names, change v: does that node
 * hold the volume's attachment at r's epoch? The answer is kept for the
 * epoch, so the check runs once per engine and epoch. true: go on. */
static bool holder_ok(struct rvol *v, struct rreq *r, int order)
{
	struct repl_service *svc = v->svc;
	const char *peer = rreq_peer(r);
	int ok;

	/* A newer session or epoch of any op would cut the engine off. */
	if (!svc->holder_check || !peer ||
	    (!repl_op_desc(r->q.op)->changes && order <= 0))
		return true;
	if (peer[0] && v->holder_epoch == r->q.epoch && !strcmp(v->holder, peer))
		return true;
	ok = svc->shutting_down || !peer[0] ? -EACCES :
		svc->holder_check(svc->holder_arg, v->id, r->q.epoch, peer);
	if (ok > 0) {
		if (strlen(peer) < sizeof v->holder) {
			v->holder_epoch = r->q.epoch;
			snprintf(v->holder, sizeof v->holder, "%s", peer);
		}
		return true;
	}
	if (ok == 0 && !store_wait_over(svc, r)) {
		wait_for_store(v, r);
		return false;
	}
	if (ok == 0)
		ok = -EACCES;
	svc->stats.auth_refused++;
	log_warn("replication: %s: node '%s' %s at epoch %" PRIu64 " (op %u): "
		 "refused", v->name, peer, ok == -ESTALE ?
		 "asked for an epoch the metadata store has moved past" :
		 "does not hold the attachment", r->q.epoch, r->q.op);
	rreq_reply(r, ok, v->epoch);
	return false;
}

/* May r raise v's epoch: has the metadata store recorded it? If not known
 * yet, r waits (wait_for_store); refused once the wait is over. true: go on. */
static bool epoch_recorded(struct rvol *v, struct rreq *r)
{
	struct repl_service *svc = v->svc;
	int ok;

	if (!svc->epoch_check)
		return true;
	ok = svc->shutting_down ? -1 :
				  svc->epoch_check(svc->epoch_arg, v->id, r->q.epoch);
	if (ok > 0)
		return true;
	if (ok < 0 || store_wait_over(svc, r)) {
		svc->stats.epoch_refused++;
		log_warn("replication: %s: epoch %" PRIu64 " asked (op %u) is "
			 "not recorded in the metadata store: refused (the "
			 "replica stays at epoch %" PRIu64 ")", v->name,
			 r->q.epoch, r->q.op, v->epoch);
		rreq_reply(r, -EPERM, v->epoch);
		return false;
	}
	wait_for_store(v, r);
	return false;
}

/* Apply the fencing rule to r; run it, or park it as the drainer. */
static void rvol_run(struct rvol *v, struct rreq *r)
{
	int order = rvol_order(v, r), ret;

	if (v->deleted) {
		rreq_reply(r, -ENOENT, 0);
		return;
	}
	if (rvol_refuse_older(v, r)) {
		rreq_reply(r, -ESTALE, v->epoch);
		return;
	}
	if (order > 0 && r->q.epoch > v->epoch && !epoch_recorded(v, r))
		return;
	if (!holder_ok(v, r, order))
		return;
	if (order > 0 && (ret = rvol_adopt(v, r)) < 0) {
		rreq_reply(r, ret, v->epoch);
		return;
	}
	if ((order > 0 || repl_op_desc(r->q.op)->exclusive) && v->executing > 0) {
		v->drainer = r;
		return;
	}
	rvol_exec(v, r);
}

/* Run what waited, in order, until another drain starts; free a deleted
 * volume once nothing refers to it. */
static void rvol_release(struct rvol *v)
{
	while (!v->drainer && v->waitq) {
		struct rreq *r = v->waitq;

		v->waitq = r->next;
		if (!v->waitq)
			v->waitq_tail = &v->waitq;
		r->next = NULL;
		rvol_run(v, r);
	}
	if (v->deleted && !v->drainer && !v->waitq && v->executing == 0)
		free(v);
}

static void rvol_retry_fired(struct loop_timer *t)
{
	struct rvol *v = (struct rvol *)((char *)t - offsetof(struct rvol, retry));
	struct rreq *r = v->drainer;

	v->drainer = NULL;
	rvol_exec(v, r);
	rvol_release(v);
}

void rvol_retry_later(struct rvol *v, struct rreq *r)
{
	v->drainer = r;   /* holds back the queue and keeps v alive */
	v->retry.fn = rvol_retry_fired;
	loop_timer_arm(v->svc->loop, &v->retry, 1);
}

void rvol_admit(struct rvol *v, struct rreq *r)
{
	if (v->drainer || v->waitq) {
		r->next = NULL;
		*v->waitq_tail = r;
		v->waitq_tail = &r->next;
		return;
	}
	rvol_run(v, r);
	rvol_release(v);
}

void rvol_exec_end(struct rvol *v)
{
	struct rreq *r = v->drainer;

	if (--v->executing > 0 || !r || v->epoch_waiting)
		return;
	v->drainer = NULL;
	rvol_exec(v, r);
	rvol_release(v);
}

/* The replica of a deleted volume: only if it carries that volume's id, so
 * that a re-created volume of the same name is never touched. */
int repl_service_delete_replica(struct repl_service *svc, const char *name,
				uint64_t id)
{
	struct rvol *v = rvol_find(svc, id);
	char path[PATH_MAX];
	uint64_t have;
	int ret;

	if (v) {
		if (strcmp(v->name, name))
			return -EINVAL;
		if (v->executing || v->waitq || v->drainer)
			return -EAGAIN;
		ret = rvol_delete(v);
		if (v->deleted)
			free(v); /* idle: nothing refers to it */
		return ret;
	}
	if ((ret = vol_path(svc, name, ID_FILE, path, sizeof path)) < 0)
		return ret;
	if ((ret = read_id(path, &have)) < 0)
		return ret; /* -ENOENT: none here, or not known to be ours */
	if (have != id)
		return -ENOENT;
	if ((ret = vol_path(svc, name, NULL, path, sizeof path)) < 0)
		return ret;
	ret = remove_dir(path);
	if (ret == 0)
		ret = fsync_dir(svc->dir);
	if (ret == 0)
		log_info("replication: deleted replica %s (volume id %" PRIu64 ")",
			 name, id);
	return ret;
}
