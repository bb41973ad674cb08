/*
 * A crash simulator behind struct store_io, for tests. Every op runs at
 * once on the real file with pread/pwrite/fdatasync/fallocate and completes
 * from the loop's next turn (loop_defer). Each write and fallocate since its
 * file's last fdatasync keeps a pre-image, so a test can stop the world at
 * a chosen op ("crash"), then undo unsynced writes as a power cut might
 * (drop all, drop a random subset, tear one 4 KiB block), then reopen.
 * It can also fail ops with an injected error and cut transfers short.
 */
#ifndef TRIPLEX_STORE_IO_SIM_H
#define TRIPLEX_STORE_IO_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "store_io.h"

struct store_io_sim;

enum sim_op { SIM_READ = 1, SIM_WRITE = 2, SIM_SYNC = 4, SIM_FALLOC = 8 };
#define SIM_MUTATING (SIM_WRITE | SIM_SYNC | SIM_FALLOC)

enum sim_cut {
	SIM_CUT_DROP_ALL,     /* every unsynced write and fallocate is lost */
	SIM_CUT_DROP_RANDOM,  /* each one is lost with probability 1/2 */
	SIM_CUT_TEAR_ONE,     /* one 4 KiB block of one is half old, half new */
};

/* A simulator completing on loop; seed drives every random choice.
 * Returns NULL on ENOMEM. */
struct store_io_sim *store_io_sim_new(struct loop *loop, uint64_t seed);
/* Frees pending completions too: discard the loop first if any remain. */
void store_io_sim_free(struct store_io_sim *sim);
struct store_io *store_io_sim_io(struct store_io_sim *sim);

/* Mutating ops (writes, syncs, fallocates) performed so far. */
uint64_t store_io_sim_ops(const struct store_io_sim *sim);
/* Of one kind (enum sim_op). */
uint64_t store_io_sim_count(const struct store_io_sim *sim, enum sim_op k);

/* Crash before mutating op number n (0-based) runs: from then on no op is
 * performed and none completes, as if the machine had stopped. */
void store_io_sim_crash_at(struct store_io_sim *sim, uint64_t n);
bool store_io_sim_crashed(const struct store_io_sim *sim);

/* Apply the power cut to the files (call after the crash, before the store
 * is freed, while its fds are open). Returns the number of writes undone
 * or torn, or -errno. */
int store_io_sim_power_cut(struct store_io_sim *sim, enum sim_cut how);

/* Fail `count` ops of the kinds in mask (enum sim_op bits), starting with
 * the `skip`-th such op from now, with -err; count < 0: every one. */
void store_io_sim_fail(struct store_io_sim *sim, unsigned mask,
		       uint64_t skip, int count, int err);

/* Complete the ops of each loop turn in a random order instead of the
 * order they were issued (io_uring gives no order either). */
void store_io_sim_reorder(struct store_io_sim *sim, bool on);

/* Cut every read and write to at most max bytes (0: no cap). */
void store_io_sim_short(struct store_io_sim *sim, size_t max);

#endif
