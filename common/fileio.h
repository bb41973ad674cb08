/* Synchronous file reads for the rare paths (open, recovery). */
#ifndef TRIPLEX_FILEIO_H
#define TRIPLEX_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Read exactly len bytes at off, retrying short reads and EINTR.
 * Returns 0, -errno, or -EIO if the file ends first. */
int pread_full(int fd, void *buf, size_t len, uint64_t off);

#endif
