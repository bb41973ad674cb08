/*
 * libFuzzer harness for STARTTLS: the handshake with TLS negotiated over
 * an in-memory transport. Input byte 0 picks the mode and how the first
 * part is split; the first part goes to the handshake in plaintext. If it
 * reaches STARTTLS, an OpenSSL client completes TLS against tls_sess and
 * sends the rest encrypted (mode bit 0 clear) or the rest goes raw into
 * the session as ciphertext (bit set). Mode bit 1 parses the whole input
 * as a PSK file instead. Checks: no crash; nothing before STARTTLS is
 * answered once it is acknowledged; after TLS no plaintext negotiation
 * state survives; the handshake's output stays bounded.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "handshake.h"
#include "proto.h"
#include "../unit/tls_fixture.h"

static struct nbd_export fz_export = {
	.name = "disk", .size = 1u << 20, .tflags = NBD_FLAG_SEND_FLUSH,
	.min_block = 1, .pref_block = 4096, .max_block = 1u << 20,
};
static struct nbd_export fz_locked = {
	.name = "locked", .size = 4096, .min_block = 1, .pref_block = 4096,
	.max_block = 4096, .tls_allow = "alice,bob",
};

static const struct nbd_export *fz_find(void *ctx, const char *name)
{
	if (!*name || !strcmp(name, "disk"))
		return &fz_export;
	return strcmp(name, "locked") ? NULL : &fz_locked;
}

static const struct nbd_export *fz_at(void *ctx, size_t i)
{
	return i == 0 ? &fz_export : i == 1 ? &fz_locked : NULL;
}

static const struct nbd_exports fz_table = { fz_find, fz_at, NULL };
static struct tls_ctx *server_ctx;

static void init_once(void)
{
	char dir[] = "/tmp/tpx-fuzz-tls.XXXXXX", cert[128], key[128], err[256];
	struct tls_config cfg = { 0 };

	if (server_ctx)
		return;
	if (!mkdtemp(dir) || fx_make_cert(dir, cert, key, sizeof cert) < 0)
		abort();
	cfg.cert_file = cert;
	cfg.key_file = key;
	server_ctx = tls_ctx_new_server(&cfg, err, sizeof err);
	unlink(cert);
	unlink(key);
	rmdir(dir);
	if (!server_ctx)
		abort();
}

/* Feed len bytes through a buffer of NBD_HS_RECV_BUF as the server does;
 * returns the bytes left unconsumed in buf. */
static size_t feed(struct nbd_hs *hs, uint8_t *buf, size_t have,
		   const uint8_t *p, size_t len)
{
	while (len > 0 && hs->state != NBD_HS_CLOSED && hs->state != NBD_HS_DONE &&
	       hs->state != NBD_HS_STARTTLS) {
		size_t n = NBD_HS_RECV_BUF - have < len ? NBD_HS_RECV_BUF - have : len;
		ssize_t used;

		memcpy(buf + have, p, n);
		have += n;
		p += n;
		len -= n;
		used = nbd_hs_feed(hs, buf, have);
		if (used < 0)
			return 0;
		memmove(buf, buf + used, have - (size_t)used);
		have -= (size_t)used;
		if (have == NBD_HS_RECV_BUF)
			abort();  /* an option did not fit */
	}
	return have;
}

/* left: bytes the client sent behind STARTTLS, which the server hands
 * to TLS as ciphertext (they break the handshake: never options). */
static void after_tls(struct nbd_hs *hs, struct nbd_outbuf *out,
		      const uint8_t *left, size_t nleft,
		      const uint8_t *rest, size_t len, bool raw)
{
	struct tls_sess *s = tls_sess_new_server(server_ctx);
	struct fx_client c;
	uint8_t buf[NBD_HS_RECV_BUF], plain[4096];
	size_t have = 0;
	ssize_t n;

	if (!s || fx_client_new(&c, NULL, NULL, 0) < 0)
		abort();
	tls_sess_feed(s, left, nleft);
	if (raw) {
		tls_sess_feed(s, rest, len);
		(void)tls_sess_handshake(s);
	} else if (fx_handshake(&c, s) == 1) {
		nbd_hs_tls_started(hs, tls_sess_peer(s));
		assert(!hs->structured && !hs->meta_base_allocation);
		nbd_outbuf_consume(out, out->len);
		if (len)
			SSL_write(c.ssl, rest, (int)len);
		fx_shuttle(&c, s);
		while ((n = tls_sess_read(s, plain, sizeof plain)) > 0)
			have = feed(hs, buf, have, plain, (size_t)n);
		/* Replies go back through TLS. */
		if (out->len)
			tls_sess_write(s, out->data, out->len);
		fx_shuttle(&c, s);
	}
	fx_client_free(&c);
	tls_sess_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nbd_outbuf out = { 0 };
	struct nbd_hs hs;
	uint8_t buf[NBD_HS_RECV_BUF];
	size_t first, mode, have;

	if (size < 3)
		return 0;
	mode = data[0];
	if (mode & 2) {
		struct tls_psk *k = calloc(8, sizeof *k);
		char err[96];

		tls_psk_parse((const char *)data + 1, size - 1, k, 8, err, sizeof err);
		free(k);
		return 0;
	}
	init_once();
	first = ((size_t)data[1] << 8 | data[2]) % (size - 2);
	data += 3;
	size -= 3;
	nbd_hs_init(&hs, &fz_table, &out);
	hs.tls = mode & 4 ? NBD_TLS_ON : NBD_TLS_REQUIRE;
	have = feed(&hs, buf, 0, data, first);
	if (hs.state == NBD_HS_STARTTLS)
		after_tls(&hs, &out, buf, have, data + first, size - first, mode & 1);
	else if (hs.tls == NBD_TLS_REQUIRE)
		assert(hs.state != NBD_HS_DONE);  /* nothing served in plaintext */
	assert(out.len < (1u << 22));
	nbd_outbuf_free(&out);
	return 0;
}
