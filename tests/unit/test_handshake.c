/*
 * The handshake state machine driven as a real client would: client bytes
 * go into one end of a socketpair, the "server" reads them from the other
 * end, feeds them to nbd_hs_feed, writes hs->out back, and the client
 * checks every reply byte. Each test runs twice: with whatever arrives
 * fed at once, and fed one byte at a time.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "handshake.h"
#include "proto.h"

/* ---- the export table ------------------------------------------------- */

#define MiB (1024u * 1024)

static const struct nbd_export exp_disk = {
	.name = "disk",
	.description = "test disk",
	.size = 1024ull * MiB,
	.tflags = NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
		  NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
		  NBD_FLAG_SEND_FAST_ZERO | NBD_FLAG_CAN_MULTI_CONN |
		  NBD_FLAG_SEND_CACHE,
	.min_block = 1,
	.pref_block = 4096,
	.max_block = 32 * MiB,
};

static const struct nbd_export exp_ro = {
	.name = "ro",
	.size = 64 * MiB,
	/* FAST_ZERO without WRITE_ZEROES: must not reach the client. */
	.tflags = NBD_FLAG_READ_ONLY | NBD_FLAG_SEND_FLUSH |
		  NBD_FLAG_SEND_FAST_ZERO,
	.min_block = 512,
	.pref_block = 4096,
	.max_block = 1 * MiB,
};

/* Default block sizes (max >= size): BLOCK_SIZE only when asked. */
static const struct nbd_export exp_small = {
	.name = "small",
	.description = "small one",
	.size = 1 * MiB,
	.tflags = NBD_FLAG_SEND_FLUSH,
	.min_block = 1,
	.pref_block = 4096,
	.max_block = 32 * MiB,
};

static const struct nbd_export *const all_exports[] = {
	&exp_disk, &exp_ro, &exp_small,
};

static const struct nbd_export *t_find(void *ctx, const char *name)
{
	if (name[0] == '\0')
		return &exp_disk;
	for (size_t i = 0; i < 3; i++)
		if (strcmp(all_exports[i]->name, name) == 0)
			return all_exports[i];
	return NULL;
}

static const struct nbd_export *t_at(void *ctx, size_t i)
{
	return i < 3 ? all_exports[i] : NULL;
}

static const struct nbd_exports exports = { t_find, t_at, NULL };

#define DISK_TFLAGS (NBD_FLAG_HAS_FLAGS | exp_disk.tflags)
#define RO_TFLAGS \
	(NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY | NBD_FLAG_SEND_FLUSH)
#define SMALL_TFLAGS (NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH)

/* ---- fixture: a socketpair and the server side of it ------------------ */

struct fx {
	int cli, srv;
	size_t chunk; /* feed size; 0 = all that arrived */
	struct nbd_outbuf out;
	struct nbd_hs hs;
	uint8_t pend[NBD_HS_RECV_BUF];
	size_t plen;
	struct nbd_outbuf exp; /* expected reply bytes */
	struct nbd_outbuf req; /* client bytes being built */
};

static size_t whole = 0, bytewise = 1;

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	int sv[2];

	assert_non_null(f);
	f->chunk = *(size_t *)*state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	f->cli = sv[0];
	f->srv = sv[1];
	nbd_hs_init(&f->hs, &exports, &f->out);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	close(f->cli);
	close(f->srv);
	nbd_outbuf_free(&f->out);
	nbd_outbuf_free(&f->exp);
	nbd_outbuf_free(&f->req);
	free(f);
	return 0;
}

/* Feed n new bytes the way the server does: append to what is pending,
 * feed, keep what was not consumed. */
static void srv_feed(struct fx *f, const uint8_t *p, size_t n)
{
	ssize_t used;

	assert_true(n <= sizeof f->pend - f->plen);
	memcpy(f->pend + f->plen, p, n);
	f->plen += n;
	used = nbd_hs_feed(&f->hs, f->pend, f->plen);
	assert_true(used >= 0 && (size_t)used <= f->plen);
	memmove(f->pend, f->pend + used, f->plen - (size_t)used);
	f->plen -= (size_t)used;
}

static void srv_send_out(struct fx *f)
{
	size_t off = 0;
	ssize_t n;

	while (off < f->out.len) {
		n = write(f->srv, f->out.data + off, f->out.len - off);
		assert_true(n > 0);
		off += (size_t)n;
	}
	nbd_outbuf_consume(&f->out, f->out.len);
}

/* Read all that the client sent so far and answer it. */
static void srv_pump(struct fx *f)
{
	uint8_t buf[8192];
	size_t room;
	ssize_t n;

	for (;;) {
		/* Like the real server: never read more than fits. */
		room = sizeof f->pend - f->plen;
		if (room == 0)
			fail_msg("an option did not fit in NBD_HS_RECV_BUF");
		n = recv(f->srv, buf, room < sizeof buf ? room : sizeof buf,
			 MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		assert_true(n > 0);
		if (f->chunk == 0) {
			srv_feed(f, buf, (size_t)n);
			continue;
		}
		for (size_t i = 0; i < (size_t)n; i += f->chunk)
			srv_feed(f, buf + i,
				 (size_t)n - i < f->chunk ? (size_t)n - i
							  : f->chunk);
	}
	srv_send_out(f);
}

/* Client sends bytes (in pieces, so the socket never fills up). */
static void cli_send(struct fx *f, const void *p, size_t n)
{
	const uint8_t *b = p;
	ssize_t w;

	while (n) {
		w = write(f->cli, b, n < 32768 ? n : 32768);
		assert_true(w > 0);
		b += w;
		n -= (size_t)w;
		srv_pump(f);
	}
}

/* Send what was built in f->req. */
static void cli_send_req(struct fx *f)
{
	cli_send(f, f->req.data, f->req.len);
	nbd_outbuf_consume(&f->req, f->req.len);
}

/* The client receives exactly the bytes in f->exp, and nothing more. */
static void cli_expect(struct fx *f)
{
	uint8_t *got = malloc(f->exp.len + 1);
	size_t off = 0;
	ssize_t n;

	assert_non_null(got);
	while (off < f->exp.len) {
		n = recv(f->cli, got + off, f->exp.len - off, MSG_DONTWAIT);
		if (n <= 0)
			fail_msg("short reply: %zu of %zu bytes", off,
				 f->exp.len);
		off += (size_t)n;
	}
	for (size_t i = 0; i < f->exp.len; i++)
		if (got[i] != f->exp.data[i])
			fail_msg("reply byte %zu: got %#04x, want %#04x", i,
				 got[i], f->exp.data[i]);
	n = recv(f->cli, got, 1, MSG_DONTWAIT);
	if (n > 0)
		fail_msg("extra reply byte %#04x after %zu", got[0], off);
	free(got);
	nbd_outbuf_consume(&f->exp, f->exp.len);
}

/* ---- byte builders ---------------------------------------------------- */

static void b16(struct nbd_outbuf *b, uint16_t v)
{
	assert_int_equal(nbd_outbuf_be16(b, v), 0);
}

static void b32(struct nbd_outbuf *b, uint32_t v)
{
	assert_int_equal(nbd_outbuf_be32(b, v), 0);
}

static void b64(struct nbd_outbuf *b, uint64_t v)
{
	assert_int_equal(nbd_outbuf_be64(b, v), 0);
}

static void bstr(struct nbd_outbuf *b, const char *s)
{
	assert_int_equal(nbd_outbuf_append(b, s, strlen(s)), 0);
}

/* Client: option header. */
static void c_opt(struct fx *f, uint32_t opt, uint32_t len)
{
	b64(&f->req, NBD_IHAVEOPT);
	b32(&f->req, opt);
	b32(&f->req, len);
}

/* Client: INFO/GO with name and info requests. */
static void c_info(struct fx *f, uint32_t opt, const char *name,
		   const uint16_t *types, uint16_t n)
{
	c_opt(f, opt, 4 + (uint32_t)strlen(name) + 2 + 2u * n);
	b32(&f->req, (uint32_t)strlen(name));
	bstr(&f->req, name);
	b16(&f->req, n);
	for (uint16_t i = 0; i < n; i++)
		b16(&f->req, types[i]);
}

/* Client: LIST/SET_META_CONTEXT with queries. */
static void c_meta(struct fx *f, uint32_t opt, const char *name,
		   const char *const *q, uint32_t n)
{
	uint32_t len = 4 + (uint32_t)strlen(name) + 4;

	for (uint32_t i = 0; i < n; i++)
		len += 4 + (uint32_t)strlen(q[i]);
	c_opt(f, opt, len);
	b32(&f->req, (uint32_t)strlen(name));
	bstr(&f->req, name);
	b32(&f->req, n);
	for (uint32_t i = 0; i < n; i++) {
		b32(&f->req, (uint32_t)strlen(q[i]));
		bstr(&f->req, q[i]);
	}
}

/* Server: option reply header. */
static void e_rep(struct fx *f, uint32_t opt, uint32_t type, uint32_t len)
{
	b64(&f->exp, NBD_REP_MAGIC);
	b32(&f->exp, opt);
	b32(&f->exp, type);
	b32(&f->exp, len);
}

static void e_ack(struct fx *f, uint32_t opt)
{
	e_rep(f, opt, NBD_REP_ACK, 0);
}

static void e_err(struct fx *f, uint32_t opt, uint32_t type, const char *msg)
{
	e_rep(f, opt, type, (uint32_t)strlen(msg));
	bstr(&f->exp, msg);
}

static void e_info_export(struct fx *f, uint32_t opt, uint64_t size,
			  uint16_t tflags)
{
	e_rep(f, opt, NBD_REP_INFO, 12);
	b16(&f->exp, NBD_INFO_EXPORT);
	b64(&f->exp, size);
	b16(&f->exp, tflags);
}

static void e_info_str(struct fx *f, uint32_t opt, uint16_t type,
		       const char *s)
{
	e_rep(f, opt, NBD_REP_INFO, 2 + (uint32_t)strlen(s));
	b16(&f->exp, type);
	bstr(&f->exp, s);
}

static void e_info_bs(struct fx *f, uint32_t opt, uint32_t min,
		      uint32_t pref, uint32_t max)
{
	e_rep(f, opt, NBD_REP_INFO, 14);
	b16(&f->exp, NBD_INFO_BLOCK_SIZE);
	b32(&f->exp, min);
	b32(&f->exp, pref);
	b32(&f->exp, max);
}

static void e_meta(struct fx *f, uint32_t opt, uint32_t id)
{
	e_rep(f, opt, NBD_REP_META_CONTEXT, 4 + 15);
	b32(&f->exp, id);
	bstr(&f->exp, "base:allocation");
}

#define MSG_UNSUP "option not supported"
#define MSG_UNKNOWN "unknown export"
#define MSG_BAD_INFO "malformed INFO/GO request"
#define MSG_BAD_META "malformed meta context request"

/* ---- common openings -------------------------------------------------- */

static void expect_greeting(struct fx *f)
{
	srv_send_out(f);
	bstr(&f->exp, "NBDMAGIC");
	bstr(&f->exp, "IHAVEOPT");
	b16(&f->exp, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	cli_expect(f);
}

/* Greeting, then the client's flags. */
static void start(struct fx *f, uint32_t cflags)
{
	expect_greeting(f);
	b32(&f->req, cflags);
	cli_send_req(f);
}

static void start_fixed(struct fx *f)
{
	start(f, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
}

static void negotiate_structured(struct fx *f)
{
	c_opt(f, NBD_OPT_STRUCTURED_REPLY, 0);
	cli_send_req(f);
	e_ack(f, NBD_OPT_STRUCTURED_REPLY);
	cli_expect(f);
	assert_true(f->hs.structured);
}

static void assert_closed_silently(struct fx *f)
{
	assert_int_equal(f->hs.state, NBD_HS_CLOSED);
	assert_non_null(f->hs.close_reason);
	cli_expect(f); /* f->exp is empty: nothing was sent */
}

/* ---- greeting and client flags ---------------------------------------- */

static void test_greeting(void **state)
{
	struct fx *f = *state;

	assert_int_equal(f->hs.state, NBD_HS_CLIENT_FLAGS);
	expect_greeting(f);
}

static void test_flags_fixed_only(void **state)
{
	struct fx *f = *state;

	start(f, NBD_FLAG_C_FIXED_NEWSTYLE);
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
	assert_int_equal(f->hs.client_flags, NBD_FLAG_C_FIXED_NEWSTYLE);
}

static void test_flags_unknown_closes(void **state)
{
	struct fx *f = *state;

	start(f, NBD_FLAG_C_FIXED_NEWSTYLE | (1u << 2));
	assert_closed_silently(f);
}

static void test_flags_not_fixed_closes(void **state)
{
	struct fx *f = *state;

	start(f, NBD_FLAG_C_NO_ZEROES);
	assert_closed_silently(f);
}

static void test_bad_option_magic_closes(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	b64(&f->req, NBD_MAGIC);
	b32(&f->req, NBD_OPT_LIST);
	b32(&f->req, 0);
	cli_send_req(f);
	assert_closed_silently(f);
}

/* ---- EXPORT_NAME ------------------------------------------------------ */

static void test_export_name_no_zeroes(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_opt(f, NBD_OPT_EXPORT_NAME, 4);
	bstr(&f->req, "disk");
	cli_send_req(f);
	b64(&f->exp, exp_disk.size);
	b16(&f->exp, DISK_TFLAGS);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_DONE);
	assert_ptr_equal(f->hs.export, &exp_disk);
	assert_int_equal(f->hs.tflags, DISK_TFLAGS);
}

static void test_export_name_zeroes(void **state)
{
	static const uint8_t zeroes[124];
	struct fx *f = *state;

	start(f, NBD_FLAG_C_FIXED_NEWSTYLE);
	c_opt(f, NBD_OPT_EXPORT_NAME, 2);
	bstr(&f->req, "ro");
	cli_send_req(f);
	b64(&f->exp, exp_ro.size);
	b16(&f->exp, RO_TFLAGS);
	nbd_outbuf_append(&f->exp, zeroes, sizeof zeroes);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_DONE);
	assert_ptr_equal(f->hs.export, &exp_ro);
}

static void test_export_name_default_structured(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	negotiate_structured(f);
	c_opt(f, NBD_OPT_EXPORT_NAME, 0);
	cli_send_req(f);
	b64(&f->exp, exp_disk.size);
	b16(&f->exp, DISK_TFLAGS | NBD_FLAG_SEND_DF);
	cli_expect(f);
	assert_int_equal(f->hs.tflags, DISK_TFLAGS | NBD_FLAG_SEND_DF);
}

static void test_export_name_unknown_closes(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_opt(f, NBD_OPT_EXPORT_NAME, 4);
	bstr(&f->req, "nope");
	cli_send_req(f);
	assert_closed_silently(f);
}

static void test_export_name_nul_closes(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_opt(f, NBD_OPT_EXPORT_NAME, 5);
	nbd_outbuf_append(&f->req, "disk", 5);
	cli_send_req(f);
	assert_closed_silently(f);
}

/* ---- ABORT ------------------------------------------------------------ */

static void test_abort(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_opt(f, NBD_OPT_ABORT, 0);
	cli_send_req(f);
	e_ack(f, NBD_OPT_ABORT);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_CLOSED);
}

static void test_abort_with_data_ignored(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_opt(f, NBD_OPT_ABORT, 3);
	bstr(&f->req, "xyz");
	cli_send_req(f);
	e_ack(f, NBD_OPT_ABORT);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_CLOSED);
}

/* ---- LIST ------------------------------------------------------------- */

static void e_server(struct fx *f, const char *name, const char *desc)
{
	size_t dl = desc ? strlen(desc) : 0;

	e_rep(f, NBD_OPT_LIST, NBD_REP_SERVER,
	      4 + (uint32_t)(strlen(name) + dl));
	b32(&f->exp, (uint32_t)strlen(name));
	bstr(&f->exp, name);
	if (desc)
		bstr(&f->exp, desc);
}

static void test_list(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_opt(f, NBD_OPT_LIST, 0);
	cli_send_req(f);
	e_server(f, "disk", "test disk");
	e_server(f, "ro", NULL);
	e_server(f, "small", "small one");
	e_ack(f, NBD_OPT_LIST);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
}

static void test_list_with_data_invalid(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_opt(f, NBD_OPT_LIST, 1);
	bstr(&f->req, "x");
	cli_send_req(f);
	e_err(f, NBD_OPT_LIST, NBD_REP_ERR_INVALID, "LIST takes no data");
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
}

/* ---- INFO and GO ------------------------------------------------------ */

static void test_info_unknown(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_info(f, NBD_OPT_INFO, "nope", NULL, 0);
	cli_send_req(f);
	e_err(f, NBD_OPT_INFO, NBD_REP_ERR_UNKNOWN, MSG_UNKNOWN);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
}

static void test_info_default_sizes_not_asked(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_info(f, NBD_OPT_INFO, "small", NULL, 0);
	cli_send_req(f);
	e_info_export(f, NBD_OPT_INFO, exp_small.size, SMALL_TFLAGS);
	e_ack(f, NBD_OPT_INFO);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
	assert_null(f->hs.export);
}

static void test_info_all_requests(void **state)
{
	static const uint16_t types[] = { NBD_INFO_DESCRIPTION, 99,
					  NBD_INFO_NAME, NBD_INFO_BLOCK_SIZE,
					  NBD_INFO_EXPORT };
	struct fx *f = *state;

	start_fixed(f);
	c_info(f, NBD_OPT_INFO, "disk", types, 5);
	cli_send_req(f);
	e_info_export(f, NBD_OPT_INFO, exp_disk.size, DISK_TFLAGS);
	e_info_str(f, NBD_OPT_INFO, NBD_INFO_NAME, "disk");
	e_info_str(f, NBD_OPT_INFO, NBD_INFO_DESCRIPTION, "test disk");
	e_info_bs(f, NBD_OPT_INFO, 1, 4096, 32 * MiB);
	e_ack(f, NBD_OPT_INFO);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
}

/* No description: the request is ignored, not answered empty. */
static void test_info_no_description(void **state)
{
	static const uint16_t types[] = { NBD_INFO_DESCRIPTION };
	struct fx *f = *state;

	start_fixed(f);
	c_info(f, NBD_OPT_INFO, "ro", types, 1);
	cli_send_req(f);
	e_info_export(f, NBD_OPT_INFO, exp_ro.size, RO_TFLAGS);
	e_info_bs(f, NBD_OPT_INFO, 512, 4096, 1 * MiB);
	e_ack(f, NBD_OPT_INFO);
	cli_expect(f);
}

static void test_go_block_size(void **state)
{
	static const uint16_t types[] = { NBD_INFO_BLOCK_SIZE };
	struct fx *f = *state;

	start_fixed(f);
	c_info(f, NBD_OPT_GO, "small", types, 1);
	cli_send_req(f);
	e_info_export(f, NBD_OPT_GO, exp_small.size, SMALL_TFLAGS);
	e_info_bs(f, NBD_OPT_GO, 1, 4096, 32 * MiB);
	e_ack(f, NBD_OPT_GO);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_DONE);
	assert_ptr_equal(f->hs.export, &exp_small);
	assert_int_equal(f->hs.tflags, SMALL_TFLAGS);
}

/* Non-default constraints are advertised even when not asked for. */
static void test_go_nondefault_sizes_unasked(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_info(f, NBD_OPT_GO, "ro", NULL, 0);
	cli_send_req(f);
	e_info_export(f, NBD_OPT_GO, exp_ro.size, RO_TFLAGS);
	e_info_bs(f, NBD_OPT_GO, 512, 4096, 1 * MiB);
	e_ack(f, NBD_OPT_GO);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_DONE);
	assert_int_equal(f->hs.tflags, RO_TFLAGS);
}

/* Bytes after the option that completed the handshake are left to the
 * caller: they are the first transmission request. */
static void test_go_leaves_transmission_bytes(void **state)
{
	struct fx *f = *state;
	uint8_t rq[28];

	memset(rq, 0xab, sizeof rq);
	start_fixed(f);
	negotiate_structured(f);
	c_info(f, NBD_OPT_GO, "", NULL, 0);
	nbd_outbuf_append(&f->req, rq, sizeof rq);
	cli_send_req(f);
	e_info_export(f, NBD_OPT_GO, exp_disk.size,
		      DISK_TFLAGS | NBD_FLAG_SEND_DF);
	e_info_bs(f, NBD_OPT_GO, 1, 4096, 32 * MiB);
	e_ack(f, NBD_OPT_GO);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_DONE);
	assert_int_equal(f->plen, sizeof rq);
	assert_memory_equal(f->pend, rq, sizeof rq);
	assert_int_equal(nbd_hs_feed(&f->hs, f->pend, f->plen), 0);
}

static void test_go_unknown_then_go(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_info(f, NBD_OPT_GO, "nope", NULL, 0);
	cli_send_req(f);
	e_err(f, NBD_OPT_GO, NBD_REP_ERR_UNKNOWN, MSG_UNKNOWN);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
	c_info(f, NBD_OPT_GO, "small", NULL, 0);
	cli_send_req(f);
	e_info_export(f, NBD_OPT_GO, exp_small.size, SMALL_TFLAGS);
	e_ack(f, NBD_OPT_GO);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_DONE);
}

/* Every length inconsistency gets INVALID and haggling goes on. */
static void test_info_malformed(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	/* Too short for name length and count. */
	c_opt(f, NBD_OPT_INFO, 5);
	b32(&f->req, 0);
	nbd_outbuf_append(&f->req, "", 1);
	/* Name length past the end. */
	c_opt(f, NBD_OPT_INFO, 8);
	b32(&f->req, 100);
	b32(&f->req, 0);
	/* Count says 2 requests, 1 present. */
	c_opt(f, NBD_OPT_GO, 4 + 4 + 2 + 2);
	b32(&f->req, 4);
	bstr(&f->req, "disk");
	b16(&f->req, 2);
	b16(&f->req, NBD_INFO_NAME);
	/* Trailing byte. */
	c_opt(f, NBD_OPT_GO, 4 + 4 + 2 + 1);
	b32(&f->req, 4);
	bstr(&f->req, "disk");
	b16(&f->req, 0);
	nbd_outbuf_append(&f->req, "", 1);
	/* NUL inside the name. */
	c_opt(f, NBD_OPT_GO, 4 + 5 + 2);
	b32(&f->req, 5);
	nbd_outbuf_append(&f->req, "disk", 5);
	b16(&f->req, 0);
	cli_send_req(f);
	e_err(f, NBD_OPT_INFO, NBD_REP_ERR_INVALID, MSG_BAD_INFO);
	e_err(f, NBD_OPT_INFO, NBD_REP_ERR_INVALID, MSG_BAD_INFO);
	e_err(f, NBD_OPT_GO, NBD_REP_ERR_INVALID, MSG_BAD_INFO);
	e_err(f, NBD_OPT_GO, NBD_REP_ERR_INVALID, MSG_BAD_INFO);
	e_err(f, NBD_OPT_GO, NBD_REP_ERR_INVALID, MSG_BAD_INFO);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
}

static void test_info_name_too_long(void **state)
{
	struct fx *f = *state;
	char *name = malloc(NBD_HS_MAX_STRING + 2);

	memset(name, 'a', NBD_HS_MAX_STRING + 1);
	name[NBD_HS_MAX_STRING + 1] = '\0';
	start_fixed(f);
	c_info(f, NBD_OPT_INFO, name, NULL, 0);
	cli_send_req(f);
	e_err(f, NBD_OPT_INFO, NBD_REP_ERR_INVALID, MSG_BAD_INFO);
	cli_expect(f);
	free(name);
}

/* ---- STRUCTURED_REPLY ------------------------------------------------- */

static void test_structured_twice_invalid(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	negotiate_structured(f);
	c_opt(f, NBD_OPT_STRUCTURED_REPLY, 0);
	cli_send_req(f);
	e_err(f, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_INVALID,
	      "structured replies already negotiated");
	cli_expect(f);
	assert_true(f->hs.structured);
}

static void test_structured_with_data_invalid(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_opt(f, NBD_OPT_STRUCTURED_REPLY, 2);
	bstr(&f->req, "hi");
	cli_send_req(f);
	e_err(f, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_INVALID,
	      "STRUCTURED_REPLY takes no data");
	cli_expect(f);
	assert_false(f->hs.structured);
}

/* ---- meta contexts ---------------------------------------------------- */

static const char *const q_alloc[] = { "base:allocation" };

static void test_set_meta_needs_structured(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_meta(f, NBD_OPT_SET_META_CONTEXT, "disk", q_alloc, 1);
	cli_send_req(f);
	e_err(f, NBD_OPT_SET_META_CONTEXT, NBD_REP_ERR_INVALID,
	      "SET_META_CONTEXT needs structured replies");
	cli_expect(f);
	assert_false(f->hs.meta_base_allocation);
}

static void test_set_meta_then_go(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	negotiate_structured(f);
	c_meta(f, NBD_OPT_SET_META_CONTEXT, "disk", q_alloc, 1);
	cli_send_req(f);
	e_meta(f, NBD_OPT_SET_META_CONTEXT, NBD_META_ID_BASE_ALLOCATION);
	e_ack(f, NBD_OPT_SET_META_CONTEXT);
	cli_expect(f);
	assert_true(f->hs.meta_base_allocation);
	/* "" is the default export, which is "disk": same export. */
	c_info(f, NBD_OPT_GO, "", NULL, 0);
	cli_send_req(f);
	e_info_export(f, NBD_OPT_GO, exp_disk.size,
		      DISK_TFLAGS | NBD_FLAG_SEND_DF);
	e_info_bs(f, NBD_OPT_GO, 1, 4096, 32 * MiB);
	e_ack(f, NBD_OPT_GO);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_DONE);
	assert_true(f->hs.meta_base_allocation);
}

/* The selection only holds for the export SET named. */
static void test_set_meta_other_export_dropped(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	negotiate_structured(f);
	c_meta(f, NBD_OPT_SET_META_CONTEXT, "disk", q_alloc, 1);
	c_info(f, NBD_OPT_GO, "small", NULL, 0);
	cli_send_req(f);
	e_meta(f, NBD_OPT_SET_META_CONTEXT, NBD_META_ID_BASE_ALLOCATION);
	e_ack(f, NBD_OPT_SET_META_CONTEXT);
	e_info_export(f, NBD_OPT_GO, exp_small.size,
		      SMALL_TFLAGS | NBD_FLAG_SEND_DF);
	e_ack(f, NBD_OPT_GO);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_DONE);
	assert_false(f->hs.meta_base_allocation);
}

/* "base:" and unknown namespaces select nothing in SET; a later SET
 * replaces an earlier selection. */
static void test_set_meta_wildcard_and_replace(void **state)
{
	static const char *const q[] = { "base:", "qemu:dirty-bitmap:b",
					 "nocolon" };
	struct fx *f = *state;

	start_fixed(f);
	negotiate_structured(f);
	c_meta(f, NBD_OPT_SET_META_CONTEXT, "disk", q_alloc, 1);
	c_meta(f, NBD_OPT_SET_META_CONTEXT, "disk", q, 3);
	cli_send_req(f);
	e_meta(f, NBD_OPT_SET_META_CONTEXT, NBD_META_ID_BASE_ALLOCATION);
	e_ack(f, NBD_OPT_SET_META_CONTEXT);
	e_ack(f, NBD_OPT_SET_META_CONTEXT);
	cli_expect(f);
	assert_false(f->hs.meta_base_allocation);
}

static void test_set_meta_zero_queries(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	negotiate_structured(f);
	c_meta(f, NBD_OPT_SET_META_CONTEXT, "disk", NULL, 0);
	cli_send_req(f);
	e_ack(f, NBD_OPT_SET_META_CONTEXT);
	cli_expect(f);
	assert_false(f->hs.meta_base_allocation);
}

static void test_set_meta_duplicate_once(void **state)
{
	static const char *const q[] = { "base:allocation",
					 "base:allocation" };
	struct fx *f = *state;

	start_fixed(f);
	negotiate_structured(f);
	c_meta(f, NBD_OPT_SET_META_CONTEXT, "", q, 2);
	cli_send_req(f);
	e_meta(f, NBD_OPT_SET_META_CONTEXT, NBD_META_ID_BASE_ALLOCATION);
	e_ack(f, NBD_OPT_SET_META_CONTEXT);
	cli_expect(f);
	assert_true(f->hs.meta_base_allocation);
}

static void test_set_meta_unknown_export(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	negotiate_structured(f);
	c_meta(f, NBD_OPT_SET_META_CONTEXT, "disk", q_alloc, 1);
	c_meta(f, NBD_OPT_SET_META_CONTEXT, "nope", q_alloc, 1);
	cli_send_req(f);
	e_meta(f, NBD_OPT_SET_META_CONTEXT, NBD_META_ID_BASE_ALLOCATION);
	e_ack(f, NBD_OPT_SET_META_CONTEXT);
	e_err(f, NBD_OPT_SET_META_CONTEXT, NBD_REP_ERR_UNKNOWN, MSG_UNKNOWN);
	cli_expect(f);
	assert_false(f->hs.meta_base_allocation); /* failed SET replaces */
}

static void test_meta_malformed(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	negotiate_structured(f);
	/* Query length past the end of the option. */
	c_opt(f, NBD_OPT_SET_META_CONTEXT, 4 + 4 + 4 + 4 + 3);
	b32(&f->req, 4);
	bstr(&f->req, "disk");
	b32(&f->req, 1);
	b32(&f->req, 15);
	bstr(&f->req, "bas");
	/* Query count larger than the data could hold. */
	c_opt(f, NBD_OPT_LIST_META_CONTEXT, 4 + 0 + 4);
	b32(&f->req, 0);
	b32(&f->req, 1000000);
	/* Trailing bytes after the last query. */
	c_opt(f, NBD_OPT_LIST_META_CONTEXT, 4 + 0 + 4 + 2);
	b32(&f->req, 0);
	b32(&f->req, 0);
	b16(&f->req, 0);
	/* Export name length past the end. */
	c_opt(f, NBD_OPT_LIST_META_CONTEXT, 4);
	b32(&f->req, 1);
	cli_send_req(f);
	e_err(f, NBD_OPT_SET_META_CONTEXT, NBD_REP_ERR_INVALID, MSG_BAD_META);
	e_err(f, NBD_OPT_LIST_META_CONTEXT, NBD_REP_ERR_INVALID, MSG_BAD_META);
	e_err(f, NBD_OPT_LIST_META_CONTEXT, NBD_REP_ERR_INVALID, MSG_BAD_META);
	e_err(f, NBD_OPT_LIST_META_CONTEXT, NBD_REP_ERR_INVALID, MSG_BAD_META);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
}

static void test_meta_too_many_queries(void **state)
{
	const char *q[NBD_HS_MAX_QUERIES + 1];
	struct fx *f = *state;

	for (size_t i = 0; i < NBD_HS_MAX_QUERIES + 1; i++)
		q[i] = "x-a:b";
	start_fixed(f);
	negotiate_structured(f);
	c_meta(f, NBD_OPT_SET_META_CONTEXT, "disk", q, NBD_HS_MAX_QUERIES + 1);
	c_meta(f, NBD_OPT_SET_META_CONTEXT, "disk", q, NBD_HS_MAX_QUERIES);
	cli_send_req(f);
	e_err(f, NBD_OPT_SET_META_CONTEXT, NBD_REP_ERR_TOO_BIG, MSG_BAD_META);
	e_ack(f, NBD_OPT_SET_META_CONTEXT);
	cli_expect(f);
}

/* LIST works without structured replies; ids are reserved (zero). */
static void test_list_meta(void **state)
{
	static const char *const q_base[] = { "base:" };
	static const char *const q_both[] = { "base:", "base:allocation" };
	static const char *const q_other[] = { "qemu:dirty-bitmap:",
					       "base:nothing" };
	struct fx *f = *state;

	start_fixed(f);
	c_meta(f, NBD_OPT_LIST_META_CONTEXT, "disk", NULL, 0);
	c_meta(f, NBD_OPT_LIST_META_CONTEXT, "", q_base, 1);
	c_meta(f, NBD_OPT_LIST_META_CONTEXT, "ro", q_alloc, 1);
	c_meta(f, NBD_OPT_LIST_META_CONTEXT, "disk", q_both, 2);
	c_meta(f, NBD_OPT_LIST_META_CONTEXT, "disk", q_other, 2);
	c_meta(f, NBD_OPT_LIST_META_CONTEXT, "nope", NULL, 0);
	cli_send_req(f);
	for (int i = 0; i < 4; i++) {
		e_meta(f, NBD_OPT_LIST_META_CONTEXT, 0);
		e_ack(f, NBD_OPT_LIST_META_CONTEXT);
	}
	e_ack(f, NBD_OPT_LIST_META_CONTEXT);
	e_err(f, NBD_OPT_LIST_META_CONTEXT, NBD_REP_ERR_UNKNOWN, MSG_UNKNOWN);
	cli_expect(f);
	assert_false(f->hs.meta_base_allocation);
}

/* ---- STARTTLS and unsupported options --------------------------------- */

static void test_starttls_policy(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_opt(f, NBD_OPT_STARTTLS, 0);
	c_opt(f, NBD_OPT_STARTTLS, 1);
	bstr(&f->req, "x");
	cli_send_req(f);
	e_err(f, NBD_OPT_STARTTLS, NBD_REP_ERR_POLICY,
	      "TLS is not configured on this server");
	e_err(f, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID,
	      "STARTTLS takes no data");
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
}

/* --tls require: plaintext options get TLS_REQD; after STARTTLS's ACK
 * nothing more is consumed until TLS is up. */
static void test_starttls_require(void **state)
{
	struct fx *f = *state;

	f->hs.tls = NBD_TLS_REQUIRE;
	start_fixed(f);
	c_opt(f, NBD_OPT_LIST, 0);
	c_opt(f, NBD_OPT_STRUCTURED_REPLY, 0);
	c_opt(f, NBD_OPT_STARTTLS, 0);
	c_opt(f, NBD_OPT_LIST, 0);  /* behind STARTTLS: never answered */
	cli_send_req(f);
	e_err(f, NBD_OPT_LIST, NBD_REP_ERR_TLS_REQD,
	      "TLS is required: send STARTTLS first");
	e_err(f, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_TLS_REQD,
	      "TLS is required: send STARTTLS first");
	e_ack(f, NBD_OPT_STARTTLS);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_STARTTLS);
	assert_int_equal(f->plen, 16);  /* the LIST, left for the TLS layer */
	assert_false(f->hs.structured);
}

/* --tls on: what plaintext negotiated is gone after STARTTLS. */
static void test_starttls_resets(void **state)
{
	struct fx *f = *state;

	f->hs.tls = NBD_TLS_ON;
	start_fixed(f);
	c_opt(f, NBD_OPT_STRUCTURED_REPLY, 0);
	c_opt(f, NBD_OPT_STARTTLS, 0);
	cli_send_req(f);
	e_ack(f, NBD_OPT_STRUCTURED_REPLY);
	e_ack(f, NBD_OPT_STARTTLS);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_STARTTLS);
	nbd_hs_tls_started(&f->hs, "alice");
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
	assert_false(f->hs.structured);
	assert_string_equal(f->hs.tls_peer, "alice");
	c_opt(f, NBD_OPT_STARTTLS, 0);
	c_opt(f, NBD_OPT_STRUCTURED_REPLY, 0);
	cli_send_req(f);
	e_err(f, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID, "TLS is already running");
	e_ack(f, NBD_OPT_STRUCTURED_REPLY);
	cli_expect(f);
	assert_true(f->hs.structured);
}

static void test_unsupported_then_go(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_opt(f, NBD_OPT_PEEK_EXPORT, 0);
	c_opt(f, NBD_OPT_EXTENDED_HEADERS, 0);
	c_opt(f, 0x12345678, 3);
	bstr(&f->req, "abc");
	c_opt(f, 0, 0);
	c_info(f, NBD_OPT_GO, "small", NULL, 0);
	cli_send_req(f);
	e_err(f, NBD_OPT_PEEK_EXPORT, NBD_REP_ERR_UNSUP, MSG_UNSUP);
	e_err(f, NBD_OPT_EXTENDED_HEADERS, NBD_REP_ERR_UNSUP, MSG_UNSUP);
	e_err(f, 0x12345678, NBD_REP_ERR_UNSUP, MSG_UNSUP);
	e_err(f, 0, NBD_REP_ERR_UNSUP, MSG_UNSUP);
	e_info_export(f, NBD_OPT_GO, exp_small.size, SMALL_TFLAGS);
	e_ack(f, NBD_OPT_GO);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_DONE);
}

/* ---- limits ----------------------------------------------------------- */

/* TOO_BIG is answered from the header; the data is skipped, not held. */
static void test_oversized_skipped(void **state)
{
	uint32_t len = NBD_HS_MAX_OPT_LEN * 5 + 7;
	uint8_t *junk = malloc(len);
	struct fx *f = *state;

	memset(junk, 'j', len);
	start_fixed(f);
	c_opt(f, NBD_OPT_INFO, len);
	cli_send_req(f);
	e_err(f, NBD_OPT_INFO, NBD_REP_ERR_TOO_BIG, "option too long");
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_SKIP);
	cli_send(f, junk, len);
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
	assert_int_equal(f->plen, 0);
	c_opt(f, NBD_OPT_LIST, 0);
	cli_send_req(f);
	e_server(f, "disk", "test disk");
	e_server(f, "ro", NULL);
	e_server(f, "small", "small one");
	e_ack(f, NBD_OPT_LIST);
	cli_expect(f);
	free(junk);
}

/* --tls require: an oversized option gets TLS_REQD too, and is skipped. */
static void test_oversized_tls_required(void **state)
{
	uint32_t len = NBD_HS_MAX_OPT_LEN + 1;
	uint8_t *junk = calloc(1, len);
	struct fx *f = *state;

	f->hs.tls = NBD_TLS_REQUIRE;
	start_fixed(f);
	c_opt(f, NBD_OPT_GO, len);
	cli_send_req(f);
	e_err(f, NBD_OPT_GO, NBD_REP_ERR_TLS_REQD, "TLS is required: send STARTTLS first");
	cli_expect(f);
	cli_send(f, junk, len);
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
	free(junk);
}

/* Just over the cap is too big; exactly the cap is parsed. */
static void test_opt_len_boundary(void **state)
{
	uint8_t *junk = calloc(1, NBD_HS_MAX_OPT_LEN + 1);
	struct fx *f = *state;

	start_fixed(f);
	c_opt(f, NBD_OPT_LIST, NBD_HS_MAX_OPT_LEN + 1);
	nbd_outbuf_append(&f->req, junk, NBD_HS_MAX_OPT_LEN + 1);
	c_opt(f, NBD_OPT_LIST, NBD_HS_MAX_OPT_LEN);
	nbd_outbuf_append(&f->req, junk, NBD_HS_MAX_OPT_LEN);
	cli_send_req(f);
	e_err(f, NBD_OPT_LIST, NBD_REP_ERR_TOO_BIG, "option too long");
	e_err(f, NBD_OPT_LIST, NBD_REP_ERR_INVALID, "LIST takes no data");
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
	free(junk);
}

static void test_oversized_export_name_closes(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_opt(f, NBD_OPT_EXPORT_NAME, NBD_HS_MAX_OPT_LEN + 1);
	cli_send_req(f);
	assert_closed_silently(f);
}

static void test_oversized_abort_acked(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	c_opt(f, NBD_OPT_ABORT, 0xffffffff);
	cli_send_req(f);
	e_ack(f, NBD_OPT_ABORT);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_CLOSED);
}

static void test_too_many_options_closes(void **state)
{
	struct fx *f = *state;

	start_fixed(f);
	for (int i = 0; i < NBD_HS_MAX_OPTIONS; i++)
		c_opt(f, NBD_OPT_PEEK_EXPORT, 0);
	cli_send_req(f);
	for (int i = 0; i < NBD_HS_MAX_OPTIONS; i++)
		e_err(f, NBD_OPT_PEEK_EXPORT, NBD_REP_ERR_UNSUP, MSG_UNSUP);
	cli_expect(f);
	assert_int_equal(f->hs.state, NBD_HS_OPTION);
	/* One more, even a valid GO, closes without a reply. */
	c_info(f, NBD_OPT_GO, "disk", NULL, 0);
	cli_send_req(f);
	assert_closed_silently(f);
	assert_null(f->hs.export);
}

/* ---- nbd_outbuf -------------------------------------------------------- */

static void test_outbuf(void **state)
{
	static const uint8_t want[] = { 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef,
					0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
					0x07, 0x08, 'x' };
	struct nbd_outbuf b = { 0 };

	assert_int_equal(nbd_outbuf_be16(&b, 0x1234), 0);
	assert_int_equal(nbd_outbuf_be32(&b, 0xdeadbeef), 0);
	assert_int_equal(nbd_outbuf_be64(&b, 0x0102030405060708ull), 0);
	assert_int_equal(nbd_outbuf_append(&b, "x", 1), 0);
	assert_int_equal(b.len, sizeof want);
	assert_memory_equal(b.data, want, sizeof want);
	nbd_outbuf_consume(&b, 6);
	assert_int_equal(b.len, sizeof want - 6);
	assert_memory_equal(b.data, want + 6, sizeof want - 6);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(nbd_outbuf_be32(&b, (uint32_t)i), 0);
	assert_int_equal(b.len, sizeof want - 6 + 40000);
	nbd_outbuf_consume(&b, b.len + 5);
	assert_int_equal(b.len, 0);
	nbd_outbuf_free(&b);
	nbd_outbuf_free(&b);
	nbd_outbuf_free(NULL);
}

static void test_names(void **state)
{
	assert_string_equal(nbd_opt_name(NBD_OPT_GO), "GO");
	assert_string_equal(nbd_opt_name(NBD_OPT_SET_META_CONTEXT),
			    "SET_META_CONTEXT");
	assert_string_equal(nbd_opt_name(0), "?");
	assert_string_equal(nbd_opt_name(0xffffffff), "?");
	assert_string_equal(nbd_cmd_name(NBD_CMD_BLOCK_STATUS),
			    "BLOCK_STATUS");
	assert_string_equal(nbd_cmd_name(99), "?");
}

#define T(fn)                                                           \
	{ #fn " (whole)", fn, fx_setup, fx_teardown, &whole },          \
	{ #fn " (bytewise)", fn, fx_setup, fx_teardown, &bytewise }

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_greeting),
		T(test_flags_fixed_only),
		T(test_flags_unknown_closes),
		T(test_flags_not_fixed_closes),
		T(test_bad_option_magic_closes),
		T(test_export_name_no_zeroes),
		T(test_export_name_zeroes),
		T(test_export_name_default_structured),
		T(test_export_name_unknown_closes),
		T(test_export_name_nul_closes),
		T(test_abort),
		T(test_abort_with_data_ignored),
		T(test_list),
		T(test_list_with_data_invalid),
		T(test_info_unknown),
		T(test_info_default_sizes_not_asked),
		T(test_info_all_requests),
		T(test_info_no_description),
		T(test_go_block_size),
		T(test_go_nondefault_sizes_unasked),
		T(test_go_leaves_transmission_bytes),
		T(test_go_unknown_then_go),
		T(test_info_malformed),
		T(test_info_name_too_long),
		T(test_structured_twice_invalid),
		T(test_structured_with_data_invalid),
		T(test_set_meta_needs_structured),
		T(test_set_meta_then_go),
		T(test_set_meta_other_export_dropped),
		T(test_set_meta_wildcard_and_replace),
		T(test_set_meta_zero_queries),
		T(test_set_meta_duplicate_once),
		T(test_set_meta_unknown_export),
		T(test_meta_malformed),
		T(test_meta_too_many_queries),
		T(test_list_meta),
		T(test_starttls_policy),
		T(test_starttls_require),
		T(test_starttls_resets),
		T(test_unsupported_then_go),
		T(test_oversized_skipped),
		T(test_oversized_tls_required),
		T(test_opt_len_boundary),
		T(test_oversized_export_name_closes),
		T(test_oversized_abort_acked),
		T(test_too_many_options_closes),
		cmocka_unit_test(test_outbuf),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
