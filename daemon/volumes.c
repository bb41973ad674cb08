#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "parse.h"

static int open_one(struct daemon *d, const char *dir, const char *name)
{
	char path[4096];
	struct store *st;
	struct vol *v, **vols;
	int ret;

	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
		return -ENAMETOOLONG;
	ret = store_open(path, d->store_io, &st);
	if (ret < 0) {
		log_error("volume %s: cannot open %s: %s", name, path, strerror(-ret));
		return ret;
	}
	vols = realloc(d->vols, (d->nvols + 1) * sizeof *vols);
	v = vols ? vol_new(name, st, &d->loop) : NULL;
	if (!v) {
		if (vols)
			d->vols = vols;
		store_close(st);
		return -ENOMEM;
	}
	d->vols = vols;
	d->vols[d->nvols++] = v;
	log_info("volume %s: %llu bytes%s", name,
		 (unsigned long long)store_size(st),
		 store_is_buffered(st) ? " (buffered I/O)" : "");
	return 0;
}

int daemon_open_volumes(struct daemon *d)
{
	char dir[4096];
	struct dirent **names;
	int n, ret = 0;

	if ((size_t)snprintf(dir, sizeof dir, "%s/volumes", d->opts.data_dir) >= sizeof dir)
		return -ENAMETOOLONG;
	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0 && errno == ENOENT && d->opts.meta)
		return 0;  /* a cluster node needs no local-only volumes */
	if (n < 0) {
		ret = -errno;
		log_error("cannot read %s: %s (create a volume with "
			  "'triplexctl volume create')", dir, strerror(errno));
		return ret;
	}
	/* A volume that does not open is logged and left out: the others are
	 * still served. Only running out of memory stops the daemon. */
	for (int i = 0; i < n; i++) {
		if (ret == 0 && parse_volume_name(names[i]->d_name) == 0 &&
		    open_one(d, dir, names[i]->d_name) == -ENOMEM)
			ret = -ENOMEM;
		free(names[i]);
	}
	free(names);
	if (ret == 0 && d->nvols == 0)
		log_warn("no volumes in %s: serving nothing", dir);
	return ret;
}

void daemon_close_volumes(struct daemon *d)
{
	for (size_t i = 0; i < d->nvols; i++)
		vol_free(d->vols[i]);
	free(d->vols);
	d->vols = NULL;
	d->nvols = 0;
}
