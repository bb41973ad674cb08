/*
 * Fixed newstyle handshake (doc/proto.md, "Handshake" and "Option types").
 *
 * States and the function that performs each transition:
 *   CLIENT_FLAGS -> OPTION        hs_client_flags (flags accepted)
 *   CLIENT_FLAGS -> CLOSED        hs_client_flags (unknown or missing flags)
 *   OPTION       -> OPTION        hs_option (option answered)
 *   OPTION       -> SKIP          hs_oversized (data over NBD_HS_MAX_OPT_LEN)
 *   SKIP         -> OPTION        hs_skip (oversized data discarded)
 *   OPTION       -> STARTTLS      opt_starttls (acknowledged)
 *   STARTTLS     -> OPTION        nbd_hs_tls_started (the caller's TLS is up)
 *   OPTION       -> DONE          hs_enter_transmission (GO, EXPORT_NAME)
 *   OPTION       -> CLOSED        hs_close (ABORT, bad magic, too many
 *                                 options, EXPORT_NAME that cannot be served)
 *
 * An option is answered only once its header and data are all in the
 * caller's buffer (NBD_HS_RECV_BUF bytes suffice), so nothing is buffered
 * here and partial feeds behave exactly like whole ones.
 */
#include "handshake.h"

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "proto.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define NBD_OPT_HDR_LEN 16u
#define NBD_CLIENT_FLAGS_KNOWN \
	(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)
#define NBD_EXPORT_NAME_PAD 124
#define NBD_INFO_EXPORT_LEN 12
#define NBD_INFO_BLOCK_SIZE_LEN 14
#define NBD_DEFAULT_PREF_BLOCK 4096u
#define NBD_NO_MAX_BLOCK 0xffffffffu

/* One option as received: its data is entirely in memory. */
struct opt_in {
	uint32_t opt;
	const uint8_t *data;
	uint32_t len;
};

/* A bounds-checked cursor over option data. */
struct rd {
	const uint8_t *p;
	size_t left;
};

/* Parsed NBD_OPT_INFO / NBD_OPT_GO request. */
struct info_req {
	char name[NBD_HS_MAX_STRING + 1];
	bool want_name;
	bool want_desc;
	bool want_block_size;
};

/* Parsed NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT request. */
struct meta_req {
	char name[NBD_HS_MAX_STRING + 1];
	bool base_allocation; /* some query selects base:allocation */
};

/* ---- reading ---------------------------------------------------------- */

static bool rd_bytes(struct rd *r, size_t n, const uint8_t **p)
{
	if (n > r->left)
		return false;
	*p = r->p;
	r->p += n;
	r->left -= n;
	return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	const uint8_t *p;

	if (!rd_bytes(r, sizeof *v, &p))
		return false;
	memcpy(v, p, sizeof *v);
	*v = be16toh(*v);
	return true;
}

static bool rd_u32(struct rd *r, uint32_t *v)
{
	const uint8_t *p;

	if (!rd_bytes(r, sizeof *v, &p))
		return false;
	memcpy(v, p, sizeof *v);
	*v = be32toh(*v);
	return true;
}

static uint32_t load_be32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof v);
	return be32toh(v);
}

static uint64_t load_be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
	return be64toh(v);
}

/* Read a length-prefixed string into buf (NUL-terminated). Returns 0 or
 * the NBD_REP_ERR_* that the malformed string deserves. */
static uint32_t rd_string(struct rd *r, char buf[NBD_HS_MAX_STRING + 1])
{
	const uint8_t *p;
	uint32_t n;

	if (!rd_u32(r, &n) || n > r->left)
		return NBD_REP_ERR_INVALID;
	if (n > NBD_HS_MAX_STRING)
		return NBD_REP_ERR_INVALID;
	rd_bytes(r, n, &p);
	/* Strings MUST NOT contain NUL: it would also truncate the lookup. */
	if (memchr(p, '\0', n))
		return NBD_REP_ERR_INVALID;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 0;
}

/* ---- replies ---------------------------------------------------------- */

static int reply_hdr(struct nbd_hs *hs, uint32_t opt, uint32_t type,
		     uint32_t len)
{
	int ret;

	ret = nbd_outbuf_be64(hs->out, NBD_REP_MAGIC);
	if (!ret)
		ret = nbd_outbuf_be32(hs->out, opt);
	if (!ret)
		ret = nbd_outbuf_be32(hs->out, type);
	if (!ret)
		ret = nbd_outbuf_be32(hs->out, len);
	return ret;
}

static int reply_ack(struct nbd_hs *hs, uint32_t opt)
{
	return reply_hdr(hs, opt, NBD_REP_ACK, 0);
}

/* An error reply carrying a message for the human at the client. */
static int reply_err(struct nbd_hs *hs, uint32_t opt, uint32_t type,
		     const char *msg)
{
	size_t n = strlen(msg);
	int ret;

	log_debug("nbd: option %s: error %#x: %s", nbd_opt_name(opt), type,
		  msg);
	ret = reply_hdr(hs, opt, type, (uint32_t)n);
	if (!ret)
		ret = nbd_outbuf_append(hs->out, msg, n);
	return ret;
}

/* Server-side strings are capped too: the spec's 4096-byte limit. */
static uint32_t capped_len(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n > NBD_HS_MAX_STRING ? NBD_HS_MAX_STRING : (uint32_t)n;
}

/* ---- exports and TLS identities --------------------------------------- */

/* Is peer one of the comma-separated names in list? */
static bool name_in_list(const char *list, const char *peer)
{
	size_t n = strlen(peer);

	if (n == 0)
		return false;
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == n && memcmp(p, peer, n) == 0)
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

/* 0 if this client may use e, else the NBD_REP_ERR_* to answer. */
static uint32_t export_denied(const struct nbd_hs *hs,
			      const struct nbd_export *e)
{
	if (!e->tls_allow)
		return 0;
	if (!hs->tls_active)
		return NBD_REP_ERR_TLS_REQD;
	return name_in_list(e->tls_allow, hs->tls_peer) ? 0 : NBD_REP_ERR_POLICY;
}

/* The export called name, if this client may see it (else NULL, with
 * *err the reply: UNKNOWN, TLS_REQD or POLICY). */
static const struct nbd_export *export_lookup(const struct nbd_hs *hs,
					      const char *name, uint32_t *err)
{
	const struct nbd_export *e = hs->exports->find(hs->exports->ctx, name);

	*err = e ? export_denied(hs, e) : NBD_REP_ERR_UNKNOWN;
	return *err ? NULL : e;
}

static const char *denied_msg(uint32_t err)
{
	switch (err) {
	case NBD_REP_ERR_TLS_REQD: return "this export is served over TLS only";
	case NBD_REP_ERR_POLICY: return "this TLS identity may not use this export";
	default: return "unknown export";
	}
}

/* ---- state changes ---------------------------------------------------- */

static int hs_close(struct nbd_hs *hs, const char *why)
{
	log_debug("nbd: handshake closed: %s", why);
	hs->state = NBD_HS_CLOSED;
	hs->close_reason = why;
	return 0;
}

/* Transmission flags for export e on this connection: DF only with
 * structured replies, FAST_ZERO only with WRITE_ZEROES (both MUSTs). */
static uint16_t export_tflags(const struct nbd_hs *hs,
			      const struct nbd_export *e)
{
	uint16_t f = e->tflags | NBD_FLAG_HAS_FLAGS;

	f &= (uint16_t)~NBD_FLAG_SEND_DF;
	if (hs->structured)
		f |= NBD_FLAG_SEND_DF;
	if (!(f & NBD_FLAG_SEND_WRITE_ZEROES))
		f &= (uint16_t)~NBD_FLAG_SEND_FAST_ZERO;
	return f;
}

static void hs_enter_transmission(struct nbd_hs *hs,
				  const struct nbd_export *e)
{
	hs->export = e;
	hs->tflags = export_tflags(hs, e);
	/* BLOCK_STATUS is allowed only for the export SET named. */
	if (hs->meta_export != e)
		hs->meta_base_allocation = false;
	hs->state = NBD_HS_DONE;
}

/* ---- NBD_OPT_EXPORT_NAME ---------------------------------------------- */

/* No error reply exists for EXPORT_NAME: every failure closes. */
static int opt_export_name(struct nbd_hs *hs, const struct opt_in *in)
{
	static const uint8_t zeroes[NBD_EXPORT_NAME_PAD];
	char name[NBD_HS_MAX_STRING + 1];
	const struct nbd_export *e;
	uint32_t err;
	int ret;

	if (in->len > NBD_HS_MAX_STRING || memchr(in->data, '\0', in->len))
		return hs_close(hs, "EXPORT_NAME: invalid export name");
	memcpy(name, in->data, in->len);
	name[in->len] = '\0';
	e = export_lookup(hs, name, &err);
	if (!e)
		return hs_close(hs, "EXPORT_NAME: unknown or refused export");
	hs_enter_transmission(hs, e);
	ret = nbd_outbuf_be64(hs->out, e->size);
	if (!ret)
		ret = nbd_outbuf_be16(hs->out, hs->tflags);
	if (!ret && !(hs->client_flags & NBD_FLAG_C_NO_ZEROES))
		ret = nbd_outbuf_append(hs->out, zeroes, sizeof zeroes);
	return ret;
}

/* ---- NBD_OPT_ABORT ---------------------------------------------------- */

/* Any data is ignored, as the spec asks. */
static int opt_abort(struct nbd_hs *hs, const struct opt_in *in)
{
	int ret = reply_ack(hs, in->opt);

	hs_close(hs, "client sent ABORT");
	return ret;
}

/* ---- NBD_OPT_LIST ----------------------------------------------------- */

/* NBD_REP_SERVER: name, then the description as display text. */
static int reply_server(struct nbd_hs *hs, uint32_t opt,
			const struct nbd_export *e)
{
	uint32_t nlen = capped_len(e->name), dlen = capped_len(e->description);
	int ret;

	ret = reply_hdr(hs, opt, NBD_REP_SERVER, 4 + nlen + dlen);
	if (!ret)
		ret = nbd_outbuf_be32(hs->out, nlen);
	if (!ret)
		ret = nbd_outbuf_append(hs->out, e->name, nlen);
	if (!ret && dlen)
		ret = nbd_outbuf_append(hs->out, e->description, dlen);
	return ret;
}

static int opt_list(struct nbd_hs *hs, const struct opt_in *in)
{
	const struct nbd_export *e;
	int ret = 0;

	if (in->len)
		return reply_err(hs, in->opt, NBD_REP_ERR_INVALID,
				 "LIST takes no data");
	for (size_t i = 0; !ret; i++) {
		e = hs->exports->at(hs->exports->ctx, i);
		if (!e)
			break;
		if (!export_denied(hs, e))
			ret = reply_server(hs, in->opt, e);
	}
	return ret ? ret : reply_ack(hs, in->opt);
}

/* ---- NBD_OPT_INFO / NBD_OPT_GO ---------------------------------------- */

/* Layout: u32 name length, name, u16 count, count x u16 info types; the
 * lengths must add up to the option length exactly. */
static uint32_t parse_info(const struct opt_in *in, struct info_req *q)
{
	struct rd r = { in->data, in->len };
	uint16_t n, type;
	uint32_t err;

	err = rd_string(&r, q->name);
	if (err)
		return err;
	if (!rd_u16(&r, &n) || r.left != (size_t)n * 2)
		return NBD_REP_ERR_INVALID;
	while (n--) {
		if (!rd_u16(&r, &type))
			return NBD_REP_ERR_INVALID;
		/* Unknown requests MUST be ignored. */
		q->want_name |= type == NBD_INFO_NAME;
		q->want_desc |= type == NBD_INFO_DESCRIPTION;
		q->want_block_size |= type == NBD_INFO_BLOCK_SIZE;
	}
	return 0;
}

static int reply_info_export(struct nbd_hs *hs, uint32_t opt,
			     const struct nbd_export *e)
{
	int ret;

	ret = reply_hdr(hs, opt, NBD_REP_INFO, NBD_INFO_EXPORT_LEN);
	if (!ret)
		ret = nbd_outbuf_be16(hs->out, NBD_INFO_EXPORT);
	if (!ret)
		ret = nbd_outbuf_be64(hs->out, e->size);
	if (!ret)
		ret = nbd_outbuf_be16(hs->out, export_tflags(hs, e));
	return ret;
}

static int reply_info_string(struct nbd_hs *hs, uint32_t opt,
			     uint16_t type, const char *s)
{
	uint32_t n = capped_len(s);
	int ret;

	ret = reply_hdr(hs, opt, NBD_REP_INFO, 2 + n);
	if (!ret)
		ret = nbd_outbuf_be16(hs->out, type);
	if (!ret)
		ret = nbd_outbuf_append(hs->out, s, n);
	return ret;
}

/* Block sizes as advertised; 0 in the export table means the default. */
static void export_block_sizes(const struct nbd_export *e, uint32_t *min,
			       uint32_t *pref, uint32_t *max)
{
	*min = e->min_block ? e->min_block : 1;
	*pref = e->pref_block ? e->pref_block : NBD_DEFAULT_PREF_BLOCK;
	if (*pref < *min)
		*pref = *min;
	*max = e->max_block ? e->max_block : NBD_NO_MAX_BLOCK;
}

/* The spec's defaults: min 1, preferred 4096, max unlimited (or at least
 * the export size). Anything else MUST be advertised. */
static bool export_block_sizes_default(const struct nbd_export *e)
{
	uint32_t min, pref, max;

	export_block_sizes(e, &min, &pref, &max);
	return min == 1 && pref == NBD_DEFAULT_PREF_BLOCK &&
	       (max == NBD_NO_MAX_BLOCK || max >= e->size);
}

static int reply_info_block_size(struct nbd_hs *hs, uint32_t opt,
				 const struct nbd_export *e)
{
	uint32_t min, pref, max;
	int ret;

	export_block_sizes(e, &min, &pref, &max);
	ret = reply_hdr(hs, opt, NBD_REP_INFO, NBD_INFO_BLOCK_SIZE_LEN);
	if (!ret)
		ret = nbd_outbuf_be16(hs->out, NBD_INFO_BLOCK_SIZE);
	if (!ret)
		ret = nbd_outbuf_be32(hs->out, min);
	if (!ret)
		ret = nbd_outbuf_be32(hs->out, pref);
	if (!ret)
		ret = nbd_outbuf_be32(hs->out, max);
	return ret;
}

/* NBD_INFO_EXPORT always; the others when asked. BLOCK_SIZE also goes
 * unasked when the export's constraints are not the defaults, since the
 * server MUST advertise those. */
static int reply_infos(struct nbd_hs *hs, uint32_t opt,
		       const struct nbd_export *e, const struct info_req *q)
{
	int ret = reply_info_export(hs, opt, e);

	if (!ret && q->want_name)
		ret = reply_info_string(hs, opt, NBD_INFO_NAME, e->name);
	if (!ret && q->want_desc && e->description)
		ret = reply_info_string(hs, opt, NBD_INFO_DESCRIPTION,
					e->description);
	if (!ret && (q->want_block_size || !export_block_sizes_default(e)))
		ret = reply_info_block_size(hs, opt, e);
	return ret;
}

static int opt_info_go(struct nbd_hs *hs, const struct opt_in *in)
{
	struct info_req q = { 0 };
	const struct nbd_export *e;
	uint32_t err;
	int ret;

	err = parse_info(in, &q);
	if (err)
		return reply_err(hs, in->opt, err, "malformed INFO/GO request");
	e = export_lookup(hs, q.name, &err);
	if (!e)
		return reply_err(hs, in->opt, err, denied_msg(err));
	ret = reply_infos(hs, in->opt, e, &q);
	if (!ret)
		ret = reply_ack(hs, in->opt);
	if (!ret && in->opt == NBD_OPT_GO)
		hs_enter_transmission(hs, e);
	return ret;
}

/* ---- NBD_OPT_STRUCTURED_REPLY ----------------------------------------- */

static int opt_structured_reply(struct nbd_hs *hs, const struct opt_in *in)
{
	if (in->len)
		return reply_err(hs, in->opt, NBD_REP_ERR_INVALID,
				 "STRUCTURED_REPLY takes no data");
	if (hs->structured)
		return reply_err(hs, in->opt, NBD_REP_ERR_INVALID,
				 "structured replies already negotiated");
	hs->structured = true;
	return reply_ack(hs, in->opt);
}

/* ---- NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT ------------- */

static bool str_is(const uint8_t *p, uint32_t n, const char *s)
{
	return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* Our one context is base:allocation. "base:" is a wildcard for LIST
 * and MUST be ignored by SET; other namespaces are ignored. */
static bool query_matches(const uint8_t *p, uint32_t n, bool list)
{
	if (str_is(p, n, NBD_META_BASE_ALLOCATION))
		return true;
	return list && str_is(p, n, "base:");
}

/* Layout: u32 name length, name, u32 query count, then each query as u32
 * length and string; everything must fit the option length exactly. */
static uint32_t parse_meta(const struct opt_in *in, bool list,
			   struct meta_req *q)
{
	struct rd r = { in->data, in->len };
	const uint8_t *p;
	uint32_t err, n, qlen;

	err = rd_string(&r, q->name);
	if (err)
		return err;
	if (!rd_u32(&r, &n) || (uint64_t)n * 4 > r.left)
		return NBD_REP_ERR_INVALID;
	if (n > NBD_HS_MAX_QUERIES)
		return NBD_REP_ERR_TOO_BIG;
	/* No query: LIST lists everything, SET selects nothing. */
	q->base_allocation = list && n == 0;
	while (n--) {
		if (!rd_u32(&r, &qlen) || !rd_bytes(&r, qlen, &p))
			return NBD_REP_ERR_INVALID;
		if (qlen > NBD_HS_MAX_STRING)
			return NBD_REP_ERR_INVALID;
		q->base_allocation |= query_matches(p, qlen, list);
	}
	return r.left ? NBD_REP_ERR_INVALID : 0;
}

static int reply_meta_context(struct nbd_hs *hs, uint32_t opt, uint32_t id)
{
	uint32_t n = (uint32_t)strlen(NBD_META_BASE_ALLOCATION);
	int ret;

	ret = reply_hdr(hs, opt, NBD_REP_META_CONTEXT, 4 + n);
	if (!ret)
		ret = nbd_outbuf_be32(hs->out, id);
	if (!ret)
		ret = nbd_outbuf_append(hs->out, NBD_META_BASE_ALLOCATION, n);
	return ret;
}

/* Parse and look the export up; on failure the error is already sent
 * and *e stays NULL. */
static int meta_request(struct nbd_hs *hs, const struct opt_in *in,
			bool list, struct meta_req *q,
			const struct nbd_export **e)
{
	uint32_t err = parse_meta(in, list, q);

	*e = NULL;
	if (err)
		return reply_err(hs, in->opt, err,
				 "malformed meta context request");
	*e = export_lookup(hs, q->name, &err);
	if (!*e)
		return reply_err(hs, in->opt, err, denied_msg(err));
	return 0;
}

/* Context ids in LIST replies are reserved: zero. */
static int opt_list_meta_context(struct nbd_hs *hs, const struct opt_in *in)
{
	const struct nbd_export *e;
	struct meta_req q = { 0 };
	int ret;

	ret = meta_request(hs, in, true, &q, &e);
	if (ret || !e)
		return ret;
	if (q.base_allocation)
		ret = reply_meta_context(hs, in->opt, 0);
	return ret ? ret : reply_ack(hs, in->opt);
}

static int opt_set_meta_context(struct nbd_hs *hs, const struct opt_in *in)
{
	const struct nbd_export *e;
	struct meta_req q = { 0 };
	int ret;

	/* SET replaces the selection even when it fails. */
	hs->meta_base_allocation = false;
	hs->meta_export = NULL;
	if (!hs->structured)
		return reply_err(hs, in->opt, NBD_REP_ERR_INVALID,
				 "SET_META_CONTEXT needs structured replies");
	ret = meta_request(hs, in, false, &q, &e);
	if (ret || !e)
		return ret;
	if (q.base_allocation)
		ret = reply_meta_context(hs, in->opt,
					 NBD_META_ID_BASE_ALLOCATION);
	if (ret)
		return ret;
	hs->meta_base_allocation = q.base_allocation;
	hs->meta_export = e;
	return reply_ack(hs, in->opt);
}

/* ---- NBD_OPT_STARTTLS and unknown options ----------------------------- */

/* Without TLS configured: POLICY, never TLS_REQD. Once acknowledged,
 * nothing more is parsed until the caller has TLS running. */
static int opt_starttls(struct nbd_hs *hs, const struct opt_in *in)
{
	int ret;

	if (in->len)
		return reply_err(hs, in->opt, NBD_REP_ERR_INVALID,
				 "STARTTLS takes no data");
	if (hs->tls == NBD_TLS_OFF)
		return reply_err(hs, in->opt, NBD_REP_ERR_POLICY,
				 "TLS is not configured on this server");
	if (hs->tls_active)
		return reply_err(hs, in->opt, NBD_REP_ERR_INVALID,
				 "TLS is already running");
	ret = reply_ack(hs, in->opt);
	if (!ret)
		hs->state = NBD_HS_STARTTLS;
	return ret;
}

static int opt_unsupported(struct nbd_hs *hs, const struct opt_in *in)
{
	return reply_err(hs, in->opt, NBD_REP_ERR_UNSUP,
			 "option not supported");
}

/* ---- dispatch --------------------------------------------------------- */

static const struct opt_handler {
	uint32_t opt;
	int (*fn)(struct nbd_hs *hs, const struct opt_in *in);
} opt_table[] = {
	{ NBD_OPT_EXPORT_NAME, opt_export_name },
	{ NBD_OPT_ABORT, opt_abort },
	{ NBD_OPT_LIST, opt_list },
	{ NBD_OPT_STARTTLS, opt_starttls },
	{ NBD_OPT_INFO, opt_info_go },
	{ NBD_OPT_GO, opt_info_go },
	{ NBD_OPT_STRUCTURED_REPLY, opt_structured_reply },
	{ NBD_OPT_LIST_META_CONTEXT, opt_list_meta_context },
	{ NBD_OPT_SET_META_CONTEXT, opt_set_meta_context },
};

/* With --tls require, only STARTTLS and ABORT are answered in plaintext. */
static bool tls_required(const struct nbd_hs *hs, uint32_t opt)
{
	return hs->tls == NBD_TLS_REQUIRE && !hs->tls_active &&
	       opt != NBD_OPT_STARTTLS && opt != NBD_OPT_ABORT;
}

static int hs_dispatch(struct nbd_hs *hs, const struct opt_in *in)
{
	log_debug("nbd: option %s (%u), %u bytes", nbd_opt_name(in->opt),
		  in->opt, in->len);
	if (tls_required(hs, in->opt)) {
		if (in->opt == NBD_OPT_EXPORT_NAME)
			return hs_close(hs, "EXPORT_NAME before STARTTLS");
		return reply_err(hs, in->opt, NBD_REP_ERR_TLS_REQD,
				 "TLS is required: send STARTTLS first");
	}
	for (size_t i = 0; i < N_ELEMS(opt_table); i++)
		if (opt_table[i].opt == in->opt)
			return opt_table[i].fn(hs, in);
	return opt_unsupported(hs, in);
}

/* Count one more option; false (and CLOSED) once past the cap. */
static bool hs_count_option(struct nbd_hs *hs)
{
	if (++hs->options_seen <= NBD_HS_MAX_OPTIONS)
		return true;
	hs_close(hs, "too many options");
	return false;
}

/* Data too long to hold: answer from the header alone. EXPORT_NAME has
 * no error reply and ABORT needs no data; others are skipped. */
static int hs_oversized(struct nbd_hs *hs, uint32_t opt, uint32_t len)
{
	if (opt == NBD_OPT_EXPORT_NAME)
		return hs_close(hs, "EXPORT_NAME: export name too long");
	if (opt == NBD_OPT_ABORT) {
		struct opt_in in = { opt, NULL, 0 };

		return opt_abort(hs, &in);
	}
	hs->skip_left = len;
	hs->state = NBD_HS_SKIP;
	if (tls_required(hs, opt))
		return reply_err(hs, opt, NBD_REP_ERR_TLS_REQD,
				 "TLS is required: send STARTTLS first");
	return reply_err(hs, opt, NBD_REP_ERR_TOO_BIG, "option too long");
}

/* ---- input steps: each returns bytes used, 0 if more are needed ------- */

static ssize_t hs_client_flags(struct nbd_hs *hs, const uint8_t *buf,
			       size_t len)
{
	if (len < 4)
		return 0;
	hs->client_flags = load_be32(buf);
	if (hs->client_flags & ~NBD_CLIENT_FLAGS_KNOWN)
		hs_close(hs, "unknown client flags");
	else if (!(hs->client_flags & NBD_FLAG_C_FIXED_NEWSTYLE))
		hs_close(hs, "client does not use fixed newstyle");
	else
		hs->state = NBD_HS_OPTION;
	return 4;
}

static ssize_t hs_option(struct nbd_hs *hs, const uint8_t *buf, size_t len)
{
	struct opt_in in;
	int ret;

	if (len < NBD_OPT_HDR_LEN)
		return 0;
	if (load_be64(buf) != NBD_IHAVEOPT) {
		hs_close(hs, "bad option magic");
		return NBD_OPT_HDR_LEN;
	}
	in.opt = load_be32(buf + 8);
	in.len = load_be32(buf + 12);
	in.data = buf + NBD_OPT_HDR_LEN;
	if (in.len > NBD_HS_MAX_OPT_LEN) {
		if (hs_count_option(hs)) {
			ret = hs_oversized(hs, in.opt, in.len);
			if (ret < 0)
				return ret;
		}
		return NBD_OPT_HDR_LEN;
	}
	if (len - NBD_OPT_HDR_LEN < in.len)
		return 0;
	if (hs_count_option(hs)) {
		ret = hs_dispatch(hs, &in);
		if (ret < 0)
			return ret;
	}
	return NBD_OPT_HDR_LEN + in.len;
}

static ssize_t hs_skip(struct nbd_hs *hs, size_t len)
{
	size_t n = len < hs->skip_left ? len : (size_t)hs->skip_left;

	hs->skip_left -= n;
	if (hs->skip_left == 0)
		hs->state = NBD_HS_OPTION;
	return (ssize_t)n;
}

static ssize_t hs_step(struct nbd_hs *hs, const uint8_t *buf, size_t len)
{
	switch (hs->state) {
	case NBD_HS_CLIENT_FLAGS:
		return hs_client_flags(hs, buf, len);
	case NBD_HS_OPTION:
		return hs_option(hs, buf, len);
	case NBD_HS_SKIP:
		return hs_skip(hs, len);
	case NBD_HS_STARTTLS:
	case NBD_HS_DONE:
	case NBD_HS_CLOSED:
		break;
	}
	return 0;
}

/* ---- public ----------------------------------------------------------- */

void nbd_hs_init(struct nbd_hs *hs, const struct nbd_exports *exports,
		 struct nbd_outbuf *out)
{
	memset(hs, 0, sizeof *hs);
	hs->exports = exports;
	hs->out = out;
	hs->state = NBD_HS_CLIENT_FLAGS;
	/* The caller checks out->len: a failed append leaves it short. */
	if (nbd_outbuf_be64(out, NBD_MAGIC) < 0 ||
	    nbd_outbuf_be64(out, NBD_IHAVEOPT) < 0 ||
	    nbd_outbuf_be16(out, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES) < 0)
		hs_close(hs, "out of memory");
}

void nbd_hs_tls_started(struct nbd_hs *hs, const char *peer)
{
	hs->tls_active = true;
	hs->structured = false;
	hs->meta_base_allocation = false;
	hs->meta_export = NULL;
	snprintf(hs->tls_peer, sizeof hs->tls_peer, "%s", peer ? peer : "");
	hs->state = NBD_HS_OPTION;
}

ssize_t nbd_hs_feed(struct nbd_hs *hs, const uint8_t *buf, size_t len)
{
	size_t used = 0;
	ssize_t n;

	while (used < len) {
		n = hs_step(hs, buf + used, len - used);
		if (n < 0) {
			hs_close(hs, "out of memory");
			return n;
		}
		if (n == 0)
			break;
		assert((size_t)n <= len - used);
		used += (size_t)n;
	}
	return (ssize_t)used;
}
