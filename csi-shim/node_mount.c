/* Filesystems and mounts of the node service (node_int.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "node_int.h"
#include "run.h"

bool node_is_mount(const char *path)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS,
		  &stx) < 0)
		return false;
	return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	       (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

int64_t node_dev_size(const char *dev)
{
	uint64_t size;
	int fd = open(dev, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, BLKGETSIZE64, &size) < 0)
		r = -errno;
	close(fd);
	return r < 0 ? r : (int64_t)size;
}

/* The filesystem type on dev: 0 with type ("" if the device is blank), or
 * -1 when blkid cannot tell (then nothing may be made on it). */
static int fs_probe(const char *dev, char *type, size_t len, char *why,
		    size_t wlen)
{
	const char *argv[] = { "blkid", "-p", "-o", "value", "-s", "TYPE",
			       dev, NULL };
	int r = run_cmd(argv, type, len, NODE_TOOL_TIMEOUT_MS);

	type[strcspn(type, "\n")] = '\0';
	if (r == 2) {          /* blkid: nothing found */
		type[0] = '\0';
		return 0;
	}
	if (r != 0 || !type[0]) {
		snprintf(why, wlen, "blkid on %s failed (%d): not formatting "
			 "a device that may hold data", dev, r);
		return -1;
	}
	return 0;
}

static int fs_make(const char *dev, const char *fs, char *why, size_t len)
{
	const char *ext4[] = { "mkfs.ext4", "-q", "-F", "-E", "nodiscard", dev,
			       NULL };
	const char *xfs[] = { "mkfs.xfs", "-q", "-K", dev, NULL };
	int r = run_cmd(!strcmp(fs, "xfs") ? xfs : ext4, NULL, 0,
			NODE_TOOL_TIMEOUT_MS);

	if (r != 0) {
		snprintf(why, len, "mkfs.%s on %s failed (%d)", fs, dev, r);
		return -1;
	}
	log_info("csi: made %s on %s", fs, dev);
	return 0;
}

int node_fs_grow(const char *dev, const char *fs, const char *path,
		 char *why, size_t len)
{
	const char *ext4[] = { "resize2fs", dev, NULL };
	const char *xfs[] = { "xfs_growfs", path, NULL };
	int r = run_cmd(!strcmp(fs, "xfs") ? xfs : ext4, NULL, 0,
			NODE_TOOL_TIMEOUT_MS);

	if (r != 0) {
		snprintf(why, len, "growing %s on %s failed (%d)", fs, dev, r);
		return -1;
	}
	return 0;
}

/* Grow an unmounted ext4 to its device: no online resize, which needs
 * CAP_SYS_RESOURCE. resize2fs may want a check first. */
static int ext4_grow_offline(const char *dev, char *why, size_t len)
{
	const char *grow[] = { "resize2fs", dev, NULL };
	const char *fsck[] = { "e2fsck", "-f", "-p", dev, NULL };

	if (run_cmd(grow, NULL, 0, NODE_TOOL_TIMEOUT_MS) == 0)
		return 0;
	if (run_cmd(fsck, NULL, 0, NODE_TOOL_TIMEOUT_MS) <= 1 &&
	    run_cmd(grow, NULL, 0, NODE_TOOL_TIMEOUT_MS) == 0)
		return 0;
	snprintf(why, len, "cannot grow ext4 on %s to the device", dev);
	return -1;
}

int node_fs_mount(const char *dev, const char *fs, const char *flags,
		  const char *path, char *why, size_t len)
{
	const char *argv[] = { "mount", "-t", fs, "-o", flags[0] ? flags :
			       "defaults", dev, path, NULL };
	char have[32];

	if (fs_probe(dev, have, sizeof have, why, len) < 0)
		return -1;
	if (have[0] && strcmp(have, fs)) {
		snprintf(why, len, "%s holds %s, not %s", dev, have, fs);
		return -1;
	}
	if (!have[0] && fs_make(dev, fs, why, len) < 0)
		return -1;
	/* A volume grown while it was not staged: the filesystem follows. */
	if (!strcmp(fs, "ext4") && ext4_grow_offline(dev, why, len) < 0)
		return -1;
	if (mkdir(path, 0750) < 0 && errno != EEXIST) {
		snprintf(why, len, "mkdir %s: %s", path, strerror(errno));
		return -1;
	}
	if (run_cmd(argv, NULL, 0, NODE_TOOL_TIMEOUT_MS) != 0) {
		snprintf(why, len, "mount -t %s %s %s failed", fs, dev, path);
		return -1;
	}
	return strcmp(fs, "xfs") ? 0 : node_fs_grow(dev, fs, path, why, len);
}

static int target_make(const char *target, bool file, char *why, size_t len)
{
	int fd;

	if (!file) {
		if (mkdir(target, 0750) == 0 || errno == EEXIST)
			return 0;
	} else if ((fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC,
			      0600)) >= 0) {
		close(fd);
		return 0;
	}
	snprintf(why, len, "cannot create %s: %s", target, strerror(errno));
	return -1;
}

int node_bind(const char *src, const char *target, bool ro, char *why,
	      size_t len)
{
	struct stat st;

	if (stat(src, &st) < 0) {
		snprintf(why, len, "%s: %s", src, strerror(errno));
		return -1;
	}
	if (target_make(target, !S_ISDIR(st.st_mode), why, len) < 0)
		return -1;
	if (mount(src, target, NULL, MS_BIND, NULL) < 0) {
		snprintf(why, len, "bind %s on %s: %s", src, target,
			 strerror(errno));
		return -1;
	}
	if (ro && mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY,
			NULL) < 0) {
		snprintf(why, len, "read-only remount of %s: %s", target,
			 strerror(errno));
		umount2(target, 0);
		return -1;
	}
	return 0;
}

int node_umount(const char *path, char *why, size_t len)
{
	if (!node_is_mount(path))
		return 0;
	if (umount2(path, 0) < 0) {
		snprintf(why, len, "umount %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
