/* Synchronous file reads for the rare paths (open, recovery). */
#ifndef TRIPLEX_FILEIO_H
#define TRIPLEX_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Read exactly len bytes at off, retrying short reads and EINTR.
 * Returns 0, -errno, or -EIO if the file ends first. */
int pread_full(int fd, void *buf, size_t len, uint64_t off);

/* Read a whole file of at most max bytes into a new NUL-terminated buffer
 * (*text, *len without the NUL). Returns 0, -errno, or -EFBIG. */
int read_small_file(const char *path, size_t max, char **text, size_t *len);

#endif
