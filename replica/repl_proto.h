/*
 * The replication protocol between an engine and a replica store on
 * another node (docs/replication-protocol.md). Binary, versioned, every
 * multi-byte field little-endian, every header protected by a CRC-32C.
 * Requests are pipelined: many in flight on one connection, replies in any
 * order, matched by req_id.
 *
 * Every request names the volume (volume_id) and carries the engine's
 * epoch. A replica persists the highest epoch it has seen for each volume
 * and refuses requests from a lower one with -ESTALE (fencing, invariant 3).
 * Within an epoch, the session (one per engine connection) does the same
 * in memory: a connection the engine has replaced can never write again.
 * Data travels with the CRC-32C of each 4 KiB block, verified on arrival.
 */
#ifndef TRIPLEX_REPL_PROTO_H
#define TRIPLEX_REPL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPL_REQ_MAGIC 0x52585054u   /* "TPXR" little-endian */
#define REPL_REP_MAGIC 0x41585054u   /* "TPXA" little-endian */
#define REPL_VERSION 4
/* Largest READ/WRITE/CRCS length: the block span of the largest NBD
 * request (32 MiB) at an offset that is not 4 KiB aligned. */
#define REPL_MAX_DATA ((32u << 20) + 4096)
#define REPL_MAX_NAME 63
#define REPL_MAX_VOLUME_SIZE (1ull << 50)   /* bytes (OPEN, RESIZE) */
#define REPL_RESIZE_SIZE 8                 /* RESIZE payload: u64 size */
#define REPL_LEASE_SIZE 8                  /* LEASE payload and reply: u64 ms */
#define REPL_LEASE_MAX_MS 3000             /* longest read lease granted */
#define REPL_MAX_HELLO 64                  /* HELLO payload: node id bytes */
/* Largest payload either way: a READ reply or WRITE request (crcs + data). */
#define REPL_MAX_PAYLOAD (REPL_MAX_DATA + REPL_MAX_DATA / 4096 * 4)
#define REPL_REQ_SIZE 64
#define REPL_REP_SIZE 40

enum repl_op {
	REPL_OP_HELLO = 1,        /* payload: node id string; reply: node id */
	REPL_OP_OPEN = 2,         /* payload: struct repl_open; creates if absent */
	REPL_OP_READ = 3,         /* reply payload: crcs[n] then data */
	REPL_OP_WRITE = 4,        /* payload: crcs[n] then data; flags FUA */
	REPL_OP_FLUSH = 5,
	REPL_OP_TRIM = 6,         /* flags FUA */
	REPL_OP_ZERO = 7,         /* flags FUA, NO_HOLE */
	REPL_OP_CRCS = 8,         /* reply payload: crcs[n] of [offset, +length) */
	REPL_OP_DIRTY = 9,        /* reply payload: u64 region size, then u64
				     offsets of regions the activity log holds
				     dirty (recovered at open or written since
				     the last flush); -EOVERFLOW if they would
				     not fit in REPL_MAX_PAYLOAD */
	REPL_OP_FENCE = 10,       /* persist epoch as the volume's highest */
	REPL_OP_DELETE = 11,      /* remove the volume's local replica */
	REPL_OP_RESIZE = 12,      /* payload: u64 size; the replica grows to
				     hold at least size bytes (never shrinks) */
	REPL_OP_LEASE = 13,       /* payload: u64 ms of read lease asked for;
				     reply payload: u64 ms until the read
				     lease granted at an older epoch ends */
	REPL_OP_MAX
};

enum repl_flag {
	REPL_FLAG_FUA = 1,
	REPL_FLAG_NO_HOLE = 2,
	REPL_FLAG_CREATE = 4,     /* OPEN: create the replica if it is absent */
};

/* Request header, 64 bytes on the wire. */
struct repl_req {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint64_t req_id;
	uint64_t volume_id;
	uint64_t epoch;
	uint64_t session;      /* the engine's connection to this replica:
				  (epoch, session) orders requests, see
				  docs/replication-protocol.md */
	uint64_t offset;       /* bytes, multiple of 4096 */
	uint32_t length;       /* bytes addressed, multiple of 4096 */
	uint32_t flags;
	uint32_t payload_len;  /* bytes following the header */
	uint32_t hdr_crc;      /* CRC-32C of the 60 bytes before it */
} __attribute__((packed));
_Static_assert(sizeof(struct repl_req) == 64, "repl_req");

/* Reply header, 40 bytes on the wire. */
struct repl_rep {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint64_t req_id;
	uint64_t epoch;        /* the replica's highest epoch for the volume */
	int32_t status;        /* 0 or -errno (-ESTALE: fenced) */
	uint32_t payload_len;
	uint32_t reserved;     /* zero */
	uint32_t hdr_crc;      /* CRC-32C of the 36 bytes before it */
} __attribute__((packed));
_Static_assert(sizeof(struct repl_rep) == 40, "repl_rep");

/* REPL_OP_OPEN payload. */
struct repl_open {
	uint64_t size;
	char name[REPL_MAX_NAME + 1];   /* NUL-terminated volume name */
} __attribute__((packed));
_Static_assert(sizeof(struct repl_open) == 72, "repl_open");

/* Encode a request header (host order in, wire bytes out). */
void repl_req_encode(const struct repl_req *in, uint8_t out[64]);
/* Decode and validate: magic, version, header CRC, op known, offset and
 * length 4 KiB aligned, length <= REPL_MAX_DATA for READ/WRITE/CRCS,
 * payload_len consistent with op (WRITE: length/4096*4 + length; HELLO up
 * to 64 bytes; OPEN exactly sizeof(struct repl_open); others 0).
 * Returns 0 or -EPROTO (close the connection) or -EINVAL (reply with it,
 * after reading payload_len bytes), or -EPROTONOSUPPORT for a well-formed
 * HELLO of another version (reply with it, then close). out is filled
 * whenever the result is not -EPROTO. */
int repl_req_decode(const uint8_t in[64], struct repl_req *out);

void repl_rep_encode(const struct repl_rep *in, uint8_t out[40]);
/* Returns 0 or -EPROTO (magic, version, CRC, reserved, payload_len over
 * REPL_MAX_PAYLOAD). */
int repl_rep_decode(const uint8_t in[40], struct repl_rep *out);

/* Validate an OPEN payload (NUL within the name, name valid, size a
 * non-zero multiple of 4096). Returns 0 or -EINVAL. */
int repl_open_decode(const uint8_t *p, size_t len, struct repl_open *out);
/* Wire form of an OPEN payload (name truncated to REPL_MAX_NAME). */
void repl_open_encode(uint64_t size, const char *name,
		      uint8_t out[sizeof(struct repl_open)]);

/* Validate a RESIZE payload (a non-zero multiple of 4096, at most
 * REPL_MAX_VOLUME_SIZE). Returns 0 or -EINVAL. */
int repl_resize_decode(const uint8_t *p, size_t len, uint64_t *size);
void repl_resize_encode(uint64_t size, uint8_t out[REPL_RESIZE_SIZE]);

/* LEASE payloads both ways: ms, at most REPL_LEASE_MAX_MS (the request's
 * also non-zero). Returns 0 or -EINVAL. */
int repl_lease_decode(const uint8_t *p, size_t len, bool request,
		      uint64_t *ms);
void repl_lease_encode(uint64_t ms, uint8_t out[REPL_LEASE_SIZE]);

/* A volume name a replica accepts: 1..63 bytes of [A-Za-z0-9._-], not
 * starting with '.' (it names a directory). */
bool repl_name_valid(const char *name);

/* Op name for logs ("READ"), "?" if unknown. */
const char *repl_op_name(unsigned op);

#endif
