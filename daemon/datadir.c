/*
 * One triplexd per data directory: DIR/triplexd.lock is held with flock()
 * for the daemon's whole life (the kernel drops it when the process dies,
 * however it dies), and holds the holder's pid for the error message.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int daemon_lock_data_dir(const char *dir)
{
	char path[4096], pid[32] = "";
	int fd, n;

	if ((size_t)snprintf(path, sizeof path, "%s/triplexd.lock", dir) >= sizeof path)
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "triplexd: cannot open %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		n = (int)pread(fd, pid, sizeof pid - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (e == EWOULDBLOCK)
			fprintf(stderr, "triplexd: data directory %s is in use by "
				"another triplexd (pid %s); one daemon per "
				"directory\n", dir, pid[0] ? pid : "unknown");
		else
			fprintf(stderr, "triplexd: cannot lock %s: %s\n", path,
				strerror(e));
		close(fd);
		return -e;
	}
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		fprintf(stderr, "triplexd: cannot write %s (going on)\n", path);
	return fd; /* kept open: the lock lives as long as the process */
}
