/*
 * The node's identity in its data directory: DIR/node.json holds the node
 * id the directory belongs to and a random instance id, written once on
 * the first start in cluster mode. The instance tells this directory's own
 * earlier run (killed, its lease still running) from another daemon that
 * claims the same node id; the node id keeps a directory full of n1's
 * replicas from being started as n2.
 */
#include "agent_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <jansson.h>

static int read_identity(const char *path, char *id, size_t idlen,
			 char *instance, size_t ilen, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *o = json_load_file(path, 0, &jerr);
	const char *i, *n;

	if (!o && errno == ENOENT && access(path, F_OK) < 0)
		return -ENOENT;
	n = json_string_value(json_object_get(o, "node_id"));
	i = json_string_value(json_object_get(o, "instance"));
	if (!n || !i || strlen(n) >= idlen || strlen(i) != 32 ||
	    strspn(i, "0123456789abcdef") != 32) {
		snprintf(err, errlen, "%s is damaged (%s): move it aside only "
			 "if this directory holds no replicas", path,
			 o ? "bad fields" : jerr.text);
		json_decref(o);
		return -EBADMSG;
	}
	snprintf(id, idlen, "%s", n);
	snprintf(instance, ilen, "%s", i);
	json_decref(o);
	return 0;
}

static int write_identity(const char *dir, const char *path,
			  const char *node_id, char *instance, size_t ilen)
{
	unsigned char raw[16];
	char tmp[CLUSTER_PATH_MAX + 32];
	json_t *o;
	int fd, r;

	if (getrandom(raw, sizeof raw, 0) != sizeof raw || ilen < 33)
		return -EIO;
	for (int k = 0; k < 16; k++)
		snprintf(instance + 2 * k, 3, "%02x", raw[k]);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	o = json_pack("{s:s, s:s}", "node_id", node_id, "instance", instance);
	r = o ? json_dump_file(o, tmp, JSON_INDENT(2)) : -1;
	json_decref(o);
	if (r < 0)
		return -EIO;
	fd = open(tmp, O_RDONLY | O_CLOEXEC);
	r = fd >= 0 && fsync(fd) == 0 ? 0 : -EIO;
	if (fd >= 0)
		close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (fsync(fd) < 0 && r == 0)
			r = -errno;
		close(fd);
	}
	return r;
}

int agent_identity(const char *dir, const char *node_id, char *instance,
		   size_t ilen, char *err, size_t errlen)
{
	char path[CLUSTER_PATH_MAX + 16], owner[CLUSTER_NAME_MAX];
	int r;

	snprintf(path, sizeof path, "%s/node.json", dir);
	r = read_identity(path, owner, sizeof owner, instance, ilen, err,
			  errlen);
	if (r == -ENOENT) {
		r = write_identity(dir, path, node_id, instance, ilen);
		if (r < 0)
			snprintf(err, errlen, "cannot write %s: %s", path,
				 strerror(-r));
		return r;
	}
	if (r == 0 && strcmp(owner, node_id)) {
		snprintf(err, errlen, "%s belongs to node %s, not %s: start it "
			 "with --node-id %s, or give %s a data directory of its "
			 "own", dir, owner, node_id, owner, node_id);
		return -EEXIST;
	}
	return r;
}
