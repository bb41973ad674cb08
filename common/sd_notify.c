/* tpx_sd_notify: the sd_notify(3) datagram. Written here rather than
 * linking libsystemd for one sendto(): the protocol is a stable interface
 * (sd_notify(3), "Notes"), and triplexd then runs the same with or
 * without systemd. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sd_notify.h"

int tpx_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n;
	socklen_t len;
	ssize_t sent;
	int fd, err;

	if (!path || !path[0])
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof sa.sun_path)
		return -EINVAL;
	memcpy(sa.sun_path, path, n);
	/* An abstract name starts with a NUL and is not NUL-terminated. */
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
			  (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
		      (struct sockaddr *)&sa, len);
	err = errno;
	close(fd);
	return sent < 0 ? -err : 1;
}
