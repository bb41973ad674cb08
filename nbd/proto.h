/*
 * NBD wire format (NetworkBlockDevice/nbd doc/proto.md). Every multi-byte
 * field on the wire is big-endian; the structs below hold wire bytes and are
 * converted with be*toh/htobe* at the edges.
 */
#ifndef TRIPLEX_NBD_PROTO_H
#define TRIPLEX_NBD_PROTO_H

#include <stdint.h>

#define NBD_MAGIC UINT64_C(0x4e42444d41474943)          /* "NBDMAGIC" */
#define NBD_IHAVEOPT UINT64_C(0x49484156454F5054)       /* "IHAVEOPT" */
#define NBD_REP_MAGIC UINT64_C(0x0003e889045565a9)
#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES (1u << 1)

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS (1u << 0)
#define NBD_FLAG_READ_ONLY (1u << 1)
#define NBD_FLAG_SEND_FLUSH (1u << 2)
#define NBD_FLAG_SEND_FUA (1u << 3)
#define NBD_FLAG_ROTATIONAL (1u << 4)
#define NBD_FLAG_SEND_TRIM (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN (1u << 8)
#define NBD_FLAG_SEND_RESIZE (1u << 9)
#define NBD_FLAG_SEND_CACHE (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO (1u << 11)

/* Options. */
#define NBD_OPT_EXPORT_NAME 1
#define NBD_OPT_ABORT 2
#define NBD_OPT_LIST 3
#define NBD_OPT_PEEK_EXPORT 4
#define NBD_OPT_STARTTLS 5
#define NBD_OPT_INFO 6
#define NBD_OPT_GO 7
#define NBD_OPT_STRUCTURED_REPLY 8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT 10
#define NBD_OPT_EXTENDED_HEADERS 11

/* Option replies. */
#define NBD_REP_ACK 1
#define NBD_REP_SERVER 2
#define NBD_REP_INFO 3
#define NBD_REP_META_CONTEXT 4
#define NBD_REP_FLAG_ERROR (1u << 31)
#define NBD_REP_ERR_UNSUP (NBD_REP_FLAG_ERROR | 1)
#define NBD_REP_ERR_POLICY (NBD_REP_FLAG_ERROR | 2)
#define NBD_REP_ERR_INVALID (NBD_REP_FLAG_ERROR | 3)
#define NBD_REP_ERR_PLATFORM (NBD_REP_FLAG_ERROR | 4)
#define NBD_REP_ERR_TLS_REQD (NBD_REP_FLAG_ERROR | 5)
#define NBD_REP_ERR_UNKNOWN (NBD_REP_FLAG_ERROR | 6)
#define NBD_REP_ERR_SHUTDOWN (NBD_REP_FLAG_ERROR | 7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_FLAG_ERROR | 8)
#define NBD_REP_ERR_TOO_BIG (NBD_REP_FLAG_ERROR | 9)

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT 0
#define NBD_INFO_NAME 1
#define NBD_INFO_DESCRIPTION 2
#define NBD_INFO_BLOCK_SIZE 3

/* Commands. */
#define NBD_CMD_READ 0
#define NBD_CMD_WRITE 1
#define NBD_CMD_DISC 2
#define NBD_CMD_FLUSH 3
#define NBD_CMD_TRIM 4
#define NBD_CMD_CACHE 5
#define NBD_CMD_WRITE_ZEROES 6
#define NBD_CMD_BLOCK_STATUS 7

/* Command flags. */
#define NBD_CMD_FLAG_FUA (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* Structured reply chunks. */
#define NBD_REPLY_FLAG_DONE (1u << 0)
#define NBD_REPLY_TYPE_NONE 0
#define NBD_REPLY_TYPE_OFFSET_DATA 1
#define NBD_REPLY_TYPE_OFFSET_HOLE 2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_ERROR ((1u << 15) | 1)
#define NBD_REPLY_TYPE_ERROR_OFFSET ((1u << 15) | 2)

/* base:allocation status flags. */
#define NBD_STATE_HOLE (1u << 0)
#define NBD_STATE_ZERO (1u << 1)

/* Error values on the wire. */
#define NBD_EPERM 1
#define NBD_EIO 5
#define NBD_ENOMEM 12
#define NBD_EINVAL 22
#define NBD_ENOSPC 28
#define NBD_EOVERFLOW 75
#define NBD_ENOTSUP 95
#define NBD_ESHUTDOWN 108

#define NBD_META_BASE_ALLOCATION "base:allocation"
/* The one meta context this server offers; its id on the wire. */
#define NBD_META_ID_BASE_ALLOCATION 1


/* Option request header: magic, option, length, then length bytes. */
struct nbd_opt_header {
	uint64_t magic;
	uint32_t option;
	uint32_t length;
} __attribute__((packed));
_Static_assert(sizeof(struct nbd_opt_header) == 16, "opt header");

/* Option reply header: magic, option, reply type, length. */
struct nbd_opt_reply {
	uint64_t magic;
	uint32_t option;
	uint32_t reply;
	uint32_t length;
} __attribute__((packed));
_Static_assert(sizeof(struct nbd_opt_reply) == 20, "opt reply");

/* Transmission request. */
struct nbd_request {
	uint32_t magic;
	uint16_t flags;
	uint16_t type;
	uint64_t cookie;
	uint64_t offset;
	uint32_t count;
} __attribute__((packed));
_Static_assert(sizeof(struct nbd_request) == 28, "request");

struct nbd_simple_reply {
	uint32_t magic;
	uint32_t error;
	uint64_t cookie;
} __attribute__((packed));
_Static_assert(sizeof(struct nbd_simple_reply) == 16, "simple reply");

struct nbd_structured_reply {
	uint32_t magic;
	uint16_t flags;
	uint16_t type;
	uint64_t cookie;
	uint32_t length;
} __attribute__((packed));
_Static_assert(sizeof(struct nbd_structured_reply) == 20, "structured reply");

/* Name of an option, command or error for logs ("?" if unknown). */
const char *nbd_opt_name(uint32_t opt);
const char *nbd_cmd_name(uint16_t cmd);

#endif
