/* Replication protocol: header encode/decode and validation (see
 * repl_proto.h and docs/replication-protocol.md). Wire order is
 * little-endian; fields are packed by hand, never by casting the buffer. */
#include "repl_proto.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "crc32c.h"

/* What each op may carry. */
struct op_rule {
	const char *name;
	uint32_t flags;   /* flags the op accepts */
	bool range;       /* offset/length address blocks */
	bool capped;      /* length <= REPL_MAX_DATA */
};

static const struct op_rule rules[REPL_OP_MAX] = {
	[REPL_OP_HELLO] = { "HELLO", 0, false, false },
	[REPL_OP_OPEN] = { "OPEN", REPL_FLAG_CREATE, false, false },
	[REPL_OP_READ] = { "READ", 0, true, true },
	[REPL_OP_WRITE] = { "WRITE", REPL_FLAG_FUA, true, true },
	[REPL_OP_FLUSH] = { "FLUSH", 0, false, false },
	[REPL_OP_TRIM] = { "TRIM", REPL_FLAG_FUA, true, false },
	[REPL_OP_ZERO] = { "ZERO", REPL_FLAG_FUA | REPL_FLAG_NO_HOLE, true,
			   false },
	[REPL_OP_CRCS] = { "CRCS", 0, true, true },
	[REPL_OP_DIRTY] = { "DIRTY", 0, false, false },
	[REPL_OP_FENCE] = { "FENCE", 0, false, false },
	[REPL_OP_DELETE] = { "DELETE", 0, false, false },
	[REPL_OP_RESIZE] = { "RESIZE", 0, false, false },
	[REPL_OP_LEASE] = { "LEASE", 0, false, false },
};

const char *repl_op_name(unsigned op)
{
	return op < REPL_OP_MAX && rules[op].name ? rules[op].name : "?";
}

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

void repl_req_encode(const struct repl_req *in, uint8_t out[64])
{
	put32(out + 0, REPL_REQ_MAGIC);
	put16(out + 4, in->version);
	put16(out + 6, in->op);
	put64(out + 8, in->req_id);
	put64(out + 16, in->volume_id);
	put64(out + 24, in->epoch);
	put64(out + 32, in->session);
	put64(out + 40, in->offset);
	put32(out + 48, in->length);
	put32(out + 52, in->flags);
	put32(out + 56, in->payload_len);
	put32(out + 60, crc32c(out, 60));
}

static void req_unpack(const uint8_t in[64], struct repl_req *out)
{
	out->magic = get32(in + 0);
	out->version = get16(in + 4);
	out->op = get16(in + 6);
	out->req_id = get64(in + 8);
	out->volume_id = get64(in + 16);
	out->epoch = get64(in + 24);
	out->session = get64(in + 32);
	out->offset = get64(in + 40);
	out->length = get32(in + 48);
	out->flags = get32(in + 52);
	out->payload_len = get32(in + 56);
	out->hdr_crc = get32(in + 60);
}

static uint64_t write_payload_len(uint32_t length)
{
	return (uint64_t)length + length / 4096 * 4;
}

/* The payload length an op must carry, checked before anything else about
 * the request: a peer that gets this wrong has lost the framing. */
static bool payload_ok(const struct repl_req *q)
{
	switch (q->op) {
	case REPL_OP_WRITE:
		return q->length <= REPL_MAX_DATA &&
		       q->payload_len == write_payload_len(q->length);
	case REPL_OP_HELLO:
		return q->payload_len <= REPL_MAX_HELLO;
	case REPL_OP_OPEN:
		return q->payload_len == sizeof(struct repl_open);
	case REPL_OP_RESIZE:
		return q->payload_len == REPL_RESIZE_SIZE;
	case REPL_OP_LEASE:
		return q->payload_len == REPL_LEASE_SIZE;
	default:
		return q->payload_len == 0;
	}
}

/* Well framed; is it a request this version serves? */
static int req_check(const struct repl_req *q)
{
	const struct op_rule *r;

	if (q->op == 0 || q->op >= REPL_OP_MAX)
		return -EINVAL;
	r = &rules[q->op];
	if (q->flags & ~r->flags)
		return -EINVAL;
	if (!r->range)
		return q->offset == 0 && q->length == 0 ? 0 : -EINVAL;
	if (q->offset % 4096 || q->length % 4096)
		return -EINVAL;
	if (r->capped && q->length > REPL_MAX_DATA)
		return -EINVAL;
	return 0;
}

int repl_req_decode(const uint8_t in[64], struct repl_req *out)
{
	req_unpack(in, out);
	if (out->magic != REPL_REQ_MAGIC || out->hdr_crc != crc32c(in, 60))
		return -EPROTO;
	/* Another version's HELLO gets an answer it can read: the reply
	 * header's first fields never change between versions. */
	if (out->version != REPL_VERSION)
		return out->op == REPL_OP_HELLO ? -EPROTONOSUPPORT : -EPROTO;
	if (!payload_ok(out))
		return -EPROTO;
	return req_check(out);
}

void repl_rep_encode(const struct repl_rep *in, uint8_t out[40])
{
	put32(out + 0, REPL_REP_MAGIC);
	put16(out + 4, in->version);
	put16(out + 6, in->op);
	put64(out + 8, in->req_id);
	put64(out + 16, in->epoch);
	put32(out + 24, (uint32_t)in->status);
	put32(out + 28, in->payload_len);
	put32(out + 32, 0);
	put32(out + 36, crc32c(out, 36));
}

int repl_rep_decode(const uint8_t in[40], struct repl_rep *out)
{
	out->magic = get32(in + 0);
	out->version = get16(in + 4);
	out->op = get16(in + 6);
	out->req_id = get64(in + 8);
	out->epoch = get64(in + 16);
	out->status = (int32_t)get32(in + 24);
	out->payload_len = get32(in + 28);
	out->reserved = get32(in + 32);
	out->hdr_crc = get32(in + 36);
	if (out->magic != REPL_REP_MAGIC || out->hdr_crc != crc32c(in, 36))
		return -EPROTO;
	if (out->version != REPL_VERSION || out->reserved != 0 ||
	    out->payload_len > REPL_MAX_PAYLOAD || out->status > 0)
		return -EPROTO;
	return 0;
}

bool repl_name_valid(const char *name)
{
	size_t n = strnlen(name, REPL_MAX_NAME + 1);

	if (n == 0 || n > REPL_MAX_NAME || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == '-'))
			return false;
	}
	return true;
}

static bool size_ok(uint64_t size)
{
	return size != 0 && size % 4096 == 0 && size <= REPL_MAX_VOLUME_SIZE;
}

int repl_open_decode(const uint8_t *p, size_t len, struct repl_open *out)
{
	if (len != sizeof *out)
		return -EINVAL;
	out->size = get64(p);
	memcpy(out->name, p + 8, sizeof out->name);
	if (memchr(out->name, '\0', sizeof out->name) == NULL)
		return -EINVAL;
	if (!size_ok(out->size))
		return -EINVAL;
	return repl_name_valid(out->name) ? 0 : -EINVAL;
}

void repl_open_encode(uint64_t size, const char *name,
		      uint8_t out[sizeof(struct repl_open)])
{
	memset(out, 0, sizeof(struct repl_open));
	put64(out, size);
	memcpy(out + 8, name, strnlen(name, REPL_MAX_NAME));
}

int repl_resize_decode(const uint8_t *p, size_t len, uint64_t *size)
{
	if (len != REPL_RESIZE_SIZE)
		return -EINVAL;
	*size = get64(p);
	return size_ok(*size) ? 0 : -EINVAL;
}

void repl_resize_encode(uint64_t size, uint8_t out[REPL_RESIZE_SIZE])
{
	put64(out, size);
}

int repl_lease_decode(const uint8_t *p, size_t len, bool request,
		      uint64_t *ms)
{
	if (len != REPL_LEASE_SIZE)
		return -EINVAL;
	*ms = get64(p);
	return *ms <= REPL_LEASE_MAX_MS && (*ms > 0 || !request) ? 0 : -EINVAL;
}

void repl_lease_encode(uint64_t ms, uint8_t out[REPL_LEASE_SIZE])
{
	put64(out, ms);
}
