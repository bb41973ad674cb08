/* Running the triplexd binary from triplexctl (dev up, single-node volume
 * creation): the CLI does not link the replica store. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"

void ctl_triplexd_path(char *out, size_t len)
{
	const char *env = getenv("TRIPLEXD");
	char self[PATH_MAX];
	ssize_t n;

	if (env) {
		snprintf(out, len, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	self[n > 0 ? n : 0] = '\0';
	if (strrchr(self, '/'))
		*strrchr(self, '/') = '\0';
	if ((size_t)snprintf(out, len, "%s/triplexd", self) >= len)
		snprintf(out, len, "triplexd");
}

int ctl_run_triplexd(const char *const *args)
{
	char bin[PATH_MAX];
	const char *argv[32] = { "triplexd" };
	int status, n = 1;
	pid_t pid;

	while (args[n - 1] && n < 31) {
		argv[n] = args[n - 1];
		n++;
	}
	argv[n] = NULL;
	ctl_triplexd_path(bin, sizeof bin);
	pid = fork();
	if (pid < 0)
		return ctl_fail("cannot run %s: %s", bin, strerror(errno));
	if (pid == 0) {
		execv(bin, (char *const *)argv);
		fprintf(stderr, "triplexctl: cannot run %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return ctl_fail("waiting for %s: %s", bin, strerror(errno));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
