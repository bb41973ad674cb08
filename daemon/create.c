/* triplexd --create-volume: a single-replica volume in a data directory
 * (triplexctl volume create --data-dir runs this: the CLI never opens a
 * replica store itself). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon.h"
#include "parse.h"
#include "store.h"

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr; the exit status. */
static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("triplexd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int daemon_create_volume(const char *data_dir, const char *name,
			 uint64_t size)
{
	char path[4096];
	int ret;

	if (parse_volume_name(name) < 0)
		return fail("bad volume name '%s': use 1-63 of A-Z a-z 0-9 . _ -",
			    name);
	if (mkdir(data_dir, 0755) < 0 && errno != EEXIST)
		return fail("cannot create %s: %s", data_dir, strerror(errno));
	if ((size_t)snprintf(path, sizeof path, "%s/volumes", data_dir) >= sizeof path)
		return fail("--data-dir is too long");
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return fail("cannot create %s: %s", path, strerror(errno));
	if ((size_t)snprintf(path, sizeof path, "%s/volumes/%s", data_dir, name) >= sizeof path)
		return fail("--data-dir is too long");
	ret = store_create(path, size);
	if (ret == -EEXIST)
		return fail("volume '%s' already exists in %s", name, data_dir);
	if (ret < 0)
		return fail("cannot create volume '%s': %s", name, strerror(-ret));
	printf("created volume %s (%llu bytes) in %s\n", name,
	       (unsigned long long)size, path);
	return 0;
}
