/* triplexctl volume create NAME --size SIZE --data-dir DIR */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl.h"
#include "parse.h"
#include "store.h"

static int volume_create(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const char *size_arg = NULL, *dir = NULL, *name;
	char path[4096];
	uint64_t size;
	int c, ret;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 's')
			size_arg = optarg;
		else if (c == 'd')
			dir = optarg;
		else
			return ctl_fail("volume create: unknown or incomplete option '%s'",
					argv[optind - 1]);
	}
	if (optind != argc - 1)
		return ctl_fail("usage: triplexctl volume create NAME --size SIZE --data-dir DIR");
	name = argv[optind];
	if (parse_volume_name(name) < 0)
		return ctl_fail("bad volume name '%s': use 1-63 of A-Z a-z 0-9 . _ -", name);
	if (!size_arg || parse_size(size_arg, &size) < 0 || size % STORE_BLOCK)
		return ctl_fail("--size must be a positive multiple of 4096 bytes "
				"(e.g. 1G, 512M), got '%s'", size_arg ? size_arg : "");
	if (!dir)
		return ctl_fail("--data-dir is required");
	if ((size_t)snprintf(path, sizeof path, "%s/volumes", dir) >= sizeof path)
		return ctl_fail("--data-dir is too long");
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return ctl_fail("cannot create %s: %s", dir, strerror(errno));
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return ctl_fail("cannot create %s: %s", path, strerror(errno));
	if ((size_t)snprintf(path, sizeof path, "%s/volumes/%s", dir, name) >= sizeof path)
		return ctl_fail("--data-dir is too long");
	ret = store_create(path, size);
	if (ret == -EEXIST)
		return ctl_fail("volume '%s' already exists in %s", name, dir);
	if (ret < 0)
		return ctl_fail("cannot create volume '%s': %s", name, strerror(-ret));
	printf("created volume %s (%llu bytes) in %s\n", name,
	       (unsigned long long)size, path);
	return 0;
}

int volume_main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "create"))
		return volume_create(argc - 1, argv + 1);
	return ctl_fail("usage: triplexctl volume create NAME --size SIZE --data-dir DIR");
}
