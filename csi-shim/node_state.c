/* Staging records of the node service (node_state.h). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node_state.h"
#include "parse.h"

static int str_field(json_t *o, const char *key, char *out, size_t len,
		     bool required)
{
	json_t *v = json_object_get(o, key);
	const char *s;

	if (!v)
		return required ? -EBADMSG : 0;
	if (!json_is_string(v) || !(s = json_string_value(v)) ||
	    strlen(s) >= len || strlen(s) != json_string_length(v))
		return -EBADMSG;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int state_check(const struct node_state *s)
{
	if (parse_volume_name(s->volume) || s->staging_path[0] != '/' ||
	    s->fuse_dir[0] != '/' || strncmp(s->nbd_uri, "nbd", 3) ||
	    (s->loop[0] && strncmp(s->loop, "/dev/loop", 9)) ||
	    (s->fs_type[0] && strcmp(s->fs_type, "ext4") &&
	     strcmp(s->fs_type, "xfs")) || s->block == !!s->fs_type[0])
		return -EBADMSG;
	return 0;
}

int node_state_from_json(const char *text, size_t len, struct node_state *out)
{
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *pid, *block;
	int r = -EBADMSG;

	memset(out, 0, sizeof *out);
	if (!json_is_object(o))
		goto out;
	pid = json_object_get(o, "fuse_pid");
	block = json_object_get(o, "block");
	if ((pid && (!json_is_integer(pid) || json_integer_value(pid) < 0 ||
		     json_integer_value(pid) > 0x7fffffff)) ||
	    (block && !json_is_boolean(block)))
		goto out;
	out->fuse_pid = pid ? (pid_t)json_integer_value(pid) : 0;
	out->block = block && json_is_true(block);
	if (str_field(o, "volume", out->volume, sizeof out->volume, true) ||
	    str_field(o, "staging_path", out->staging_path,
		      sizeof out->staging_path, true) ||
	    str_field(o, "nbd_uri", out->nbd_uri, sizeof out->nbd_uri, true) ||
	    str_field(o, "fuse_dir", out->fuse_dir, sizeof out->fuse_dir, true) ||
	    str_field(o, "loop", out->loop, sizeof out->loop, false) ||
	    str_field(o, "fs_type", out->fs_type, sizeof out->fs_type, false))
		goto out;
	r = state_check(out);
out:
	json_decref(o);
	return r;
}

char *node_state_to_json(const struct node_state *s)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I}",
			      "volume", s->volume, "staging_path",
			      s->staging_path, "nbd_uri", s->nbd_uri,
			      "fuse_dir", s->fuse_dir, "loop", s->loop,
			      "fs_type", s->fs_type, "block", s->block,
			      "fuse_pid", (json_int_t)s->fuse_pid);
	char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;

	json_decref(o);
	return text;
}

/* tmp written and synced, renamed over path, the directory synced. */
static int write_atomic(const char *tmp, const char *path, const char *dir,
			const char *data, size_t len)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t done = 0;
	int r = 0;

	if (fd < 0)
		return -errno;
	while (r == 0 && done < len) {
		ssize_t n = write(fd, data + done, len - done);

		if (n < 0 && errno != EINTR)
			r = -errno;
		else if (n > 0)
			done += (size_t)n;
	}
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;
}

static void state_path(const char *dir, const char *volume, char *out,
		       size_t len, const char *suffix)
{
	snprintf(out, len, "%s/staged/%s.json%s", dir, volume, suffix);
}

int node_state_load(const char *dir, const char *volume, struct node_state *out)
{
	char path[NODE_PATH_MAX + 64], buf[8192];
	ssize_t n;
	int fd, r;

	state_path(dir, volume, path, sizeof path, "");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	n = read(fd, buf, sizeof buf);
	r = n < 0 ? -errno : n == (ssize_t)sizeof buf ? -EBADMSG : 0;
	close(fd);
	if (r < 0)
		return r;
	r = node_state_from_json(buf, (size_t)n, out);
	if (r == 0 && strcmp(out->volume, volume))
		r = -EBADMSG;
	return r;
}

int node_state_save(const char *dir, const struct node_state *s)
{
	char sub[NODE_PATH_MAX + 16], path[NODE_PATH_MAX + 64];
	char tmp[NODE_PATH_MAX + 64], *text;
	int r;

	snprintf(sub, sizeof sub, "%s/staged", dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(sub, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (!(text = node_state_to_json(s)))
		return -ENOMEM;
	state_path(dir, s->volume, path, sizeof path, "");
	state_path(dir, s->volume, tmp, sizeof tmp, ".tmp");
	r = write_atomic(tmp, path, sub, text, strlen(text));
	free(text);
	return r;
}

int node_state_remove(const char *dir, const char *volume)
{
	char path[NODE_PATH_MAX + 64];

	state_path(dir, volume, path, sizeof path, "");
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}
