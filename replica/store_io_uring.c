/* The real store_io backend: each call becomes one SQE on the loop's ring;
 * the loop submits them in one batch per turn. */
#include "store_io.h"

#include <errno.h>
#include <unistd.h>

/* One SQE moves at most this much; the store resubmits the rest. */
#define URING_MAX_IO (1u << 30)

static unsigned clamp_len(size_t len)
{
	return len > URING_MAX_IO ? URING_MAX_IO : (unsigned)len;
}

static void ur_pread(struct store_io *io, struct loop_op *op, int fd,
		     void *buf, size_t len, uint64_t off)
{
	struct io_uring_sqe *sqe = loop_get_sqe(io->loop, op);

	io_uring_prep_read(sqe, fd, buf, clamp_len(len), off);
}

static void ur_pwrite(struct store_io *io, struct loop_op *op, int fd,
		      const void *buf, size_t len, uint64_t off, int rwf)
{
	struct io_uring_sqe *sqe = loop_get_sqe(io->loop, op);

	io_uring_prep_write(sqe, fd, buf, clamp_len(len), off);
	sqe->rw_flags = rwf;
}

static ssize_t ur_pwrite_now(struct store_io *io, int fd, const void *buf,
			     size_t len, uint64_t off)
{
	ssize_t n;

	(void)io;
	n = pwrite(fd, buf, len, (off_t)off);
	return n < 0 ? -errno : n;
}

static void ur_fdatasync(struct store_io *io, struct loop_op *op, int fd)
{
	struct io_uring_sqe *sqe = loop_get_sqe(io->loop, op);

	io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
}

static void ur_fallocate(struct store_io *io, struct loop_op *op, int fd,
			 int mode, uint64_t off, uint64_t len)
{
	struct io_uring_sqe *sqe = loop_get_sqe(io->loop, op);

	io_uring_prep_fallocate(sqe, fd, mode, (off_t)off, (off_t)len);
}

static const struct store_io_ops uring_ops = {
	.pread = ur_pread,
	.pwrite = ur_pwrite,
	.fdatasync = ur_fdatasync,
	.pwrite_now = ur_pwrite_now,
	.fallocate = ur_fallocate,
};

void store_io_uring_init(struct store_io *io, struct loop *loop)
{
	io->ops = &uring_ops;
	io->loop = loop;
}
