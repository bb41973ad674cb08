/*
 * Transmission requests: decode, check against the session, encode reply
 * headers. The error for each malformed request is the one doc/proto.md
 * names ("Error values", "Block size constraints", "Request types").
 */
#include "request.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define NBD_NO_MAX_BLOCK 0xffffffffu

/* What the protocol allows for one command. */
struct cmd_rule {
	bool known;
	uint16_t flags;      /* command flags documented for it, FUA aside */
	uint16_t need_tflag; /* transmission flag that exposes it, or 0 */
	bool writes;         /* refused with EPERM on a read-only export */
	bool ranged;         /* offset and length address the export */
	bool max_limited;    /* length bounded by the maximum block size */
	uint32_t past_end;   /* error for a range beyond the export size */
};

/* Only READ and WRITE carry a payload the maximum block size bounds. The
 * others may be longer (doc/proto.md); this server's zeroing, trimming and
 * cache hints cost no more for a long range, so it accepts them. */
static const struct cmd_rule cmd_rules[] = {
	[NBD_CMD_READ] = { true, NBD_CMD_FLAG_DF, 0, false, true, true,
			   NBD_EINVAL },
	[NBD_CMD_WRITE] = { true, 0, 0, true, true, true, NBD_ENOSPC },
	[NBD_CMD_DISC] = { true, 0, 0, false, false, false, 0 },
	[NBD_CMD_FLUSH] = { true, 0, NBD_FLAG_SEND_FLUSH, false, false, false,
			    0 },
	[NBD_CMD_TRIM] = { true, 0, NBD_FLAG_SEND_TRIM, true, true, false,
			   NBD_EINVAL },
	[NBD_CMD_CACHE] = { true, 0, NBD_FLAG_SEND_CACHE, false, true, false,
			    NBD_EINVAL },
	[NBD_CMD_WRITE_ZEROES] = { true,
				   NBD_CMD_FLAG_NO_HOLE |
					   NBD_CMD_FLAG_FAST_ZERO,
				   NBD_FLAG_SEND_WRITE_ZEROES, true, true,
				   false, NBD_ENOSPC },
	[NBD_CMD_BLOCK_STATUS] = { true, NBD_CMD_FLAG_REQ_ONE, 0, false, true,
				   false, NBD_EINVAL },
};

static const struct cmd_rule *cmd_rule(uint16_t type)
{
	if (type < N_ELEMS(cmd_rules) && cmd_rules[type].known)
		return &cmd_rules[type];
	return NULL;
}

static uint32_t load_be32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof v);
	return be32toh(v);
}

static uint16_t load_be16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof v);
	return be16toh(v);
}

static uint64_t load_be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
	return be64toh(v);
}

int nbd_req_decode(const uint8_t buf[28], struct nbd_req *req)
{
	if (load_be32(buf) != NBD_REQUEST_MAGIC)
		return -1;
	req->flags = load_be16(buf + 4);
	req->type = load_be16(buf + 6);
	req->cookie = load_be64(buf + 8);
	req->offset = load_be64(buf + 16);
	req->count = load_be32(buf + 24);
	return 0;
}

uint32_t nbd_req_payload_len(const struct nbd_req *req)
{
	return req->type == NBD_CMD_WRITE ? req->count : 0;
}

bool nbd_req_payload_too_big(const struct nbd_req *req)
{
	return nbd_req_payload_len(req) > NBD_MAX_PAYLOAD;
}

/* Flags not documented for the command, or not negotiated: EINVAL. */
static uint32_t check_flags(const struct nbd_req *req,
			    const struct cmd_rule *r,
			    const struct nbd_session *s)
{
	uint16_t allowed = r->flags;

	/* FUA is valid on every command once SEND_FUA is advertised. */
	if (s->tflags & NBD_FLAG_SEND_FUA)
		allowed |= NBD_CMD_FLAG_FUA;
	/* DF needs structured replies (SEND_DF is set only then). */
	if (!s->structured)
		allowed &= (uint16_t)~NBD_CMD_FLAG_DF;
	if (!(s->tflags & NBD_FLAG_SEND_FAST_ZERO))
		allowed &= (uint16_t)~NBD_CMD_FLAG_FAST_ZERO;
	return req->flags & ~allowed ? NBD_EINVAL : 0;
}

/* Commands the client may only send once exposed or negotiated. */
static uint32_t check_negotiated(const struct nbd_req *req,
				 const struct cmd_rule *r,
				 const struct nbd_session *s)
{
	if (r->need_tflag && !(s->tflags & r->need_tflag))
		return NBD_EINVAL;
	if (req->type == NBD_CMD_BLOCK_STATUS &&
	    !(s->structured && s->meta_base_allocation))
		return NBD_EINVAL;
	return 0;
}

/* Zero-length requests are unspecified by the protocol: refused, so the
 * engine never sees one (and BLOCK_STATUS could not answer one). */
static uint32_t check_range(const struct nbd_req *req,
			    const struct cmd_rule *r,
			    const struct nbd_session *s)
{
	if (req->count == 0)
		return NBD_EINVAL;
	if (req->offset > s->size || req->count > s->size - req->offset)
		return r->past_end;
	return 0;
}

/* Effective maximum length; 0 in the session means no limit. */
static uint32_t max_len(const struct nbd_req *req,
			const struct nbd_session *s)
{
	uint32_t max = s->max_block ? s->max_block : NBD_NO_MAX_BLOCK;

	/* READ and WRITE carry the data: never more than we buffer. */
	if ((req->type == NBD_CMD_READ || req->type == NBD_CMD_WRITE) &&
	    max > NBD_MAX_PAYLOAD)
		max = NBD_MAX_PAYLOAD;
	return max;
}

/* Alignment to the minimum block size, length within the maximum. */
static uint32_t check_block_size(const struct nbd_req *req,
				 const struct cmd_rule *r,
				 const struct nbd_session *s)
{
	uint32_t min = s->min_block ? s->min_block : 1;

	if (req->offset % min || req->count % min)
		return NBD_EINVAL;
	if (r->max_limited && req->count > max_len(req, s))
		return NBD_EINVAL;
	return 0;
}

uint32_t nbd_req_check(const struct nbd_req *req, const struct nbd_session *s)
{
	const struct cmd_rule *r = cmd_rule(req->type);
	uint32_t err;

	if (!r)
		return NBD_EINVAL;
	/* DISC has no reply: nothing to report, the caller disconnects. */
	if (req->type == NBD_CMD_DISC)
		return 0;
	err = check_flags(req, r, s);
	if (!err)
		err = check_negotiated(req, r, s);
	if (!err && r->writes && (s->tflags & NBD_FLAG_READ_ONLY))
		err = NBD_EPERM;
	if (err)
		return err;
	if (!r->ranged)
		/* FLUSH: offset and length are reserved, MUST be zero. */
		return req->offset || req->count ? NBD_EINVAL : 0;
	err = check_range(req, r, s);
	if (!err)
		err = check_block_size(req, r, s);
	return err;
}

uint32_t nbd_errno_to_wire(int err)
{
	/* Unsigned: -INT_MIN does not fit an int. */
	unsigned int e = err < 0 ? 0u - (unsigned int)err : (unsigned int)err;

	switch (e) {
	case 0:
		return 0;
	case EPERM:
	case EROFS:
		return NBD_EPERM;
	case ENOMEM:
		return NBD_ENOMEM;
	case EINVAL:
		return NBD_EINVAL;
	case ENOSPC:
	case EFBIG:
	case EDQUOT:
		return NBD_ENOSPC;
	case EOVERFLOW:
		return NBD_EOVERFLOW;
#if EOPNOTSUPP != ENOTSUP
	case EOPNOTSUPP:
#endif
	case ENOTSUP:
		return NBD_ENOTSUP;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	case EIO:
	case EBADMSG: /* checksum mismatch that could not be repaired */
	default:
		return NBD_EIO;
	}
}

static void store_be16(uint8_t *p, uint16_t v)
{
	v = htobe16(v);
	memcpy(p, &v, sizeof v);
}

static void store_be32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, sizeof v);
}

static void store_be64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, sizeof v);
}

size_t nbd_encode_simple_reply(uint8_t buf[16], uint64_t cookie,
			       uint32_t error)
{
	store_be32(buf, NBD_SIMPLE_REPLY_MAGIC);
	store_be32(buf + 4, error);
	store_be64(buf + 8, cookie);
	return 16;
}

size_t nbd_encode_chunk_header(uint8_t buf[20], uint16_t flags,
			       uint16_t type, uint64_t cookie,
			       uint32_t length)
{
	store_be32(buf, NBD_STRUCTURED_REPLY_MAGIC);
	store_be16(buf + 4, flags);
	store_be16(buf + 6, type);
	store_be64(buf + 8, cookie);
	store_be32(buf + 16, length);
	return 20;
}

size_t nbd_encode_error_chunk(uint8_t buf[26], uint64_t cookie,
			      uint32_t error)
{
	size_t n = nbd_encode_chunk_header(buf, NBD_REPLY_FLAG_DONE,
					   NBD_REPLY_TYPE_ERROR, cookie, 6);

	/* An error chunk MUST carry a nonzero error. */
	store_be32(buf + n, error ? error : NBD_EIO);
	store_be16(buf + n + 4, 0); /* no message */
	return n + 6;
}
