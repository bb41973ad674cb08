/* Child processes of the node service (run.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "run.h"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* In the child: stdin from /dev/null, stdout to fd (or stderr), exec. */
static void child_exec(const char *const argv[], int out_fd)
{
	int null = open("/dev/null", O_RDONLY);

	if (null >= 0)
		dup2(null, 0);
	dup2(out_fd >= 0 ? out_fd : 2, 1);
	/* Nothing of the plugin's (its gRPC socket, the store) may live on
	 * in a tool, least of all in nbdfuse, which outlives it. */
	close_range(3, ~0u, 0);
	execvp(argv[0], (char *const *)argv);
	_exit(127);
}

/* Read the child's stdout until EOF or the deadline. */
static void read_out(int fd, char *out, size_t outlen, long long deadline)
{
	size_t got = 0;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		char sink[512];
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		if (out && got + 1 < outlen)
			n = read(fd, out + got, outlen - 1 - got);
		else
			n = read(fd, sink, sizeof sink);
		if (n <= 0)
			break;
		if (out && got + 1 < outlen)
			got += (size_t)n;
	}
	if (out && outlen)
		out[got] = '\0';
}

/* Wait for pid until the deadline, then kill it. Exit status or -errno. */
static int reap(pid_t pid, long long deadline)
{
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -EINTR;
		if (r < 0)
			return -errno;
		if (now_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -ETIMEDOUT;
		}
		usleep(5000);
	}
}

int run_cmd(const char *const argv[], char *out, size_t outlen,
	    int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int p[2] = { -1, -1 }, ret;
	pid_t pid;

	if (out && pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(p[0]);
		close(p[1]);
		return ret;
	}
	if (pid == 0)
		child_exec(argv, p[1]);
	if (out) {
		close(p[1]);
		read_out(p[0], out, outlen, deadline);
		close(p[0]);
	}
	ret = reap(pid, deadline);
	log_debug("csi: ran %s ...: %d", argv[0], ret);
	return ret;
}

pid_t run_detached(const char *const argv[], const char *log)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	pid_t pid;

	if (fd < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		setsid();
		dup2(fd, 2);
		child_exec(argv, fd);
	}
	close(fd);
	return pid < 0 ? -errno : pid;
}
