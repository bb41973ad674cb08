/* Running the tools the node service drives (nbdfuse, losetup, blkid,
 * mkfs, resize2fs): fork and exec, never a shell, every wait bounded. */
#ifndef TRIPLEX_CSI_RUN_H
#define TRIPLEX_CSI_RUN_H

#include <stddef.h>
#include <sys/types.h>

/* Run argv (argv[0] looked up in PATH) to its end, at most timeout_ms:
 * its exit status (0..255), or -errno (-ETIMEDOUT: killed). Its stdout,
 * up to outlen - 1 bytes and NUL-terminated, goes to out if not NULL;
 * stderr (and stdout when out is NULL) to the plugin's log. */
int run_cmd(const char *const argv[], char *out, size_t outlen,
	    int timeout_ms);

/* Start argv in its own session, to outlive the plugin (nbdfuse must keep
 * serving the mounts across a plugin restart); output to log (a file).
 * Its pid, or -errno. */
pid_t run_detached(const char *const argv[], const char *log);

#endif
