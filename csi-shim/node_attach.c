/*
 * An export as a block device without the kernel NBD client (this kernel
 * has no nbd module): nbdfuse serves it as a file on a FUSE mount, a loop
 * device reads that file. nbdfuse runs in its own session so that it
 * keeps serving the mounts while the plugin restarts.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "node_int.h"
#include "run.h"

#define ATTACH_WAIT_MS 30000

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static bool pidfile_ready(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_size > 0;
}

/* Whether pid (nbdfuse, maybe not our child after a restart) is gone. */
static bool pid_gone(pid_t pid)
{
	int st;

	if (pid <= 0)
		return true;
	if (waitpid(pid, &st, WNOHANG) == pid)
		return true;
	return kill(pid, 0) < 0 && errno == ESRCH;
}

/* Start nbdfuse and wait until its file is there. 0 or -1. */
static int fuse_start(struct node_state *s, const char *log, char *why,
		      size_t len)
{
	char file[NODE_PATH_MAX + 8], pidf[NODE_PATH_MAX + 8];
	const char *argv[] = { "nbdfuse", "-P", pidf, file, s->nbd_uri, NULL };
	pid_t pid;

	snprintf(file, sizeof file, "%s/disk", s->fuse_dir);
	snprintf(pidf, sizeof pidf, "%s.pid", s->fuse_dir);
	unlink(pidf);
	snprintf(file, sizeof file, "%s", s->fuse_dir);
	*strrchr(file, '/') = '\0';      /* STATE_DIR/fuse */
	if ((mkdir(file, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(s->fuse_dir, 0700) < 0 && errno != EEXIST)) {
		snprintf(why, len, "mkdir %s: %s", s->fuse_dir, strerror(errno));
		return -1;
	}
	snprintf(file, sizeof file, "%s/disk", s->fuse_dir);
	if ((pid = run_detached(argv, log)) < 0) {
		snprintf(why, len, "cannot start nbdfuse: %s", strerror(-pid));
		return -1;
	}
	s->fuse_pid = pid;
	for (int t = 0; t < ATTACH_WAIT_MS; t += 20) {
		if (pidfile_ready(pidf) && access(file, F_OK) == 0)
			return 0;
		if (pid_gone(pid))
			break;
		sleep_ms(20);
	}
	snprintf(why, len, "nbdfuse did not serve %s (see %s)", s->nbd_uri, log);
	node_detach(s, why + strlen(why), 0);
	return -1;
}

static int loop_start(struct node_state *s, char *why, size_t len)
{
	char file[NODE_PATH_MAX + 8], out[64];
	const char *argv[] = { "losetup", "--find", "--show", file, NULL };
	int r;

	snprintf(file, sizeof file, "%s/disk", s->fuse_dir);
	r = run_cmd(argv, out, sizeof out, NODE_TOOL_TIMEOUT_MS);
	out[strcspn(out, "\n")] = '\0';
	if (r != 0 || strncmp(out, "/dev/loop", 9) || strlen(out) >= sizeof s->loop) {
		snprintf(why, len, "losetup on %s failed (%d)", file, r);
		return -1;
	}
	snprintf(s->loop, sizeof s->loop, "%s", out);
	return 0;
}

int node_attach(struct node_state *s, const char *log, char *why, size_t len)
{
	if (node_is_mount(s->fuse_dir) && node_detach(s, why, len) < 0)
		return -1;     /* an earlier nbdfuse's mount, in the way */
	if (fuse_start(s, log, why, len) < 0)
		return -1;
	if (loop_start(s, why, len) < 0) {
		node_detach(s, why + strlen(why), 0);
		return -1;
	}
	return 0;
}

/* The backing file of a loop device, from sysfs ("" if none). */
static void loop_backing(const char *loop, char *out, size_t len)
{
	char path[96];
	ssize_t n;
	int fd;

	out[0] = '\0';
	snprintf(path, sizeof path, "/sys/block/%s/loop/backing_file",
		 loop + strlen("/dev/"));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = read(fd, out, len - 1);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

bool node_attached(const struct node_state *s)
{
	char file[NODE_PATH_MAX + 8], back[NODE_PATH_MAX + 8];

	if (!s->loop[0] || !node_is_mount(s->fuse_dir))
		return false;
	snprintf(file, sizeof file, "%s/disk", s->fuse_dir);
	loop_backing(s->loop, back, sizeof back);
	return !strcmp(back, file);
}

static int loop_stop(struct node_state *s, char *why, size_t len)
{
	char file[NODE_PATH_MAX + 8], back[NODE_PATH_MAX + 8];
	const char *argv[] = { "losetup", "-d", s->loop, NULL };

	snprintf(file, sizeof file, "%s/disk", s->fuse_dir);
	loop_backing(s->loop, back, sizeof back);
	if (strcmp(back, file))   /* gone, or someone else's by now */
		return 0;
	if (run_cmd(argv, NULL, 0, NODE_TOOL_TIMEOUT_MS) != 0) {
		snprintf(why, len, "losetup -d %s failed", s->loop);
		return -1;
	}
	return 0;
}

/* Whether pid is the nbdfuse serving s (its command line names s's
 * file): the pid may be another process's by now (a reboot). */
static bool is_our_fuse(const struct node_state *s, pid_t pid)
{
	char path[64], cmd[2 * NODE_PATH_MAX], file[NODE_PATH_MAX + 8];
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, cmd, sizeof cmd - 1);
	close(fd);
	if (n <= 0)
		return false;
	cmd[n] = '\0';
	snprintf(file, sizeof file, "%s/disk", s->fuse_dir);
	if (strcmp(cmd, "nbdfuse"))
		return false;
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(cmd + i) + 1)
		if (!strcmp(cmd + i, file))
			return true;
	return false;
}

static void wait_gone(pid_t pid, int ms)
{
	for (int t = 0; t < ms && !pid_gone(pid); t += 20)
		sleep_ms(20);
}

/* Unmount nbdfuse's FUSE mount and wait for it to exit. One whose server
 * went away does not exit by itself: it is stopped (SIGTERM, then
 * SIGKILL) once its command line shows it is ours. */
static int fuse_stop(struct node_state *s, char *why, size_t len)
{
	const char *u[] = { "fusermount3", "-u", s->fuse_dir, NULL };
	const char *uz[] = { "fusermount3", "-uz", s->fuse_dir, NULL };

	if (node_is_mount(s->fuse_dir) &&
	    run_cmd(u, NULL, 0, NODE_TOOL_TIMEOUT_MS) != 0 &&
	    run_cmd(uz, NULL, 0, NODE_TOOL_TIMEOUT_MS) != 0) {
		snprintf(why, len, "cannot unmount %s", s->fuse_dir);
		return -1;
	}
	wait_gone(s->fuse_pid, 2000);
	if (!pid_gone(s->fuse_pid) && is_our_fuse(s, s->fuse_pid)) {
		log_info("csi: nbdfuse (pid %d) of %s still runs after its "
			 "unmount: stopping it", (int)s->fuse_pid, s->volume);
		kill(s->fuse_pid, SIGTERM);
		wait_gone(s->fuse_pid, 5000);
		if (!pid_gone(s->fuse_pid))
			kill(s->fuse_pid, SIGKILL);
		wait_gone(s->fuse_pid, 5000);
	}
	if (!pid_gone(s->fuse_pid))
		log_warn("csi: nbdfuse (pid %d) of %s still runs", (int)s->fuse_pid,
			 s->volume);
	return 0;
}

int node_detach(struct node_state *s, char *why, size_t len)
{
	if (s->loop[0] && loop_stop(s, why, len) < 0)
		return -1;
	s->loop[0] = '\0';
	if (fuse_stop(s, why, len) < 0)
		return -1;
	s->fuse_pid = 0;
	return 0;
}
