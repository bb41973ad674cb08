/*
 * The replica store's file I/O, behind a small vtable so that tests can put
 * a crash simulator (store_io_sim) where the daemon uses io_uring
 * (store_io_uring). Every call is asynchronous: it completes by calling
 * op->cb(op, res, 0) from the loop, never from inside the call, with res as
 * io_uring would give it (bytes done, 0, or -errno; short transfers allowed).
 */
#ifndef TRIPLEX_STORE_IO_H
#define TRIPLEX_STORE_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop.h"

struct store_io;

struct store_io_ops {
	void (*pread)(struct store_io *io, struct loop_op *op, int fd,
		      void *buf, size_t len, uint64_t off);
	/* rwf: 0 or RWF_DSYNC */
	void (*pwrite)(struct store_io *io, struct loop_op *op, int fd,
		       const void *buf, size_t len, uint64_t off, int rwf);
	void (*fdatasync)(struct store_io *io, struct loop_op *op, int fd);
	/* Optional: a small buffered write done synchronously, for the crc
	 * file (io_uring would hand each one to a worker thread). Returns
	 * bytes written or -errno. NULL: use pwrite. */
	ssize_t (*pwrite_now)(struct store_io *io, int fd, const void *buf,
			      size_t len, uint64_t off);
	/* mode as fallocate(2): punch holes, zero ranges */
	void (*fallocate)(struct store_io *io, struct loop_op *op, int fd,
			  int mode, uint64_t off, uint64_t len);
};

struct store_io {
	const struct store_io_ops *ops;
	struct loop *loop;
};

/* The real backend: every call becomes one SQE on the loop's ring. */
void store_io_uring_init(struct store_io *io, struct loop *loop);

#endif
