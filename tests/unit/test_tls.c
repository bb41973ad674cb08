/* common/tls.c: the PSK file parser, and sessions over memory BIOs
 * against an OpenSSL client (certificate, PSK, wrong PSK, plaintext). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "tls_fixture.h"

static int parse(const char *text, struct tls_psk *out, size_t max, char *err)
{
	return tls_psk_parse(text, strlen(text), out, max, err, 96);
}

static void test_psk_parse(void **state)
{
	struct tls_psk k[4];
	char err[96];

	assert_int_equal(parse("# keys\n\nalice:00ff10\r\nbob:0123456789abcdefABCDEF00",
			       k, 4, err), 2);
	assert_string_equal(k[0].identity, "alice");
	assert_int_equal(k[0].key_len, 3);
	assert_int_equal(k[0].key[1], 0xff);
	assert_string_equal(k[1].identity, "bob");
	assert_int_equal(k[1].key_len, 12);
	assert_int_equal(parse("", k, 4, err), 0);
	/* Each bad line is refused by number. */
	assert_int_equal(parse("alice:00\nnocolon\n", k, 4, err), -1);
	assert_string_equal(err, "line 2: no ':' between identity and key");
	assert_int_equal(parse(":00", k, 4, err), -1);
	assert_int_equal(parse("a:0", k, 4, err), -1);      /* odd hex */
	assert_int_equal(parse("a:zz", k, 4, err), -1);
	assert_string_equal(err, "line 1: key is not hex");
	assert_int_equal(parse("a:", k, 4, err), -1);
	assert_int_equal(parse("a:00\na:11", k, 4, err), -1);
	assert_string_equal(err, "line 2: identity given twice");
	assert_int_equal(parse("a:00\nb:00\nc:00", k, 2, err), -1);
	assert_string_equal(err, "line 3: more than 2 keys");
	{
		char line[300];

		memset(line, 'k', 2 + 2 * TLS_PSK_MAX_KEY);
		memcpy(line, "a:", 2);
		line[2 + 2 * TLS_PSK_MAX_KEY] = '\0';
		assert_int_equal(parse(line, k, 4, err), -1); /* 65-byte key */
		memset(line, 'i', 200);
		strcpy(line + 200, ":00");
		assert_int_equal(parse(line, k, 4, err), -1); /* long identity */
	}
}

static char dir[64], cert[128], key[128], pskfile[128];

static int setup(void **state)
{
	FILE *f;

	snprintf(dir, sizeof dir, "/tmp/tpx-test-tls.XXXXXX");
	if (!mkdtemp(dir) || fx_make_cert(dir, cert, key, sizeof cert) < 0)
		return -1;
	snprintf(pskfile, sizeof pskfile, "%s/keys.psk", dir);
	f = fopen(pskfile, "w");
	if (!f)
		return -1;
	fputs("alice:000102030405060708090a0b0c0d0e0f\n", f);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	unlink(cert);
	unlink(key);
	unlink(pskfile);
	rmdir(dir);
	return 0;
}

static const uint8_t alice_key[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

/* Data both ways after a handshake, through the memory BIOs. */
static void exchange(struct fx_client *c, struct tls_sess *s)
{
	uint8_t big[100000], back[100000];
	size_t got = 0;
	ssize_t n;

	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(tls_sess_write(s, big, sizeof big), 0);
	assert_true(tls_sess_out_backlog(s) > sizeof big);
	while (got < sizeof back) {
		size_t r = 0;

		fx_shuttle(c, s);
		if (SSL_read_ex(c->ssl, back + got, sizeof back - got, &r) == 1)
			got += r;
		else
			break;
	}
	assert_int_equal(got, sizeof back);
	assert_memory_equal(big, back, sizeof big);
	assert_int_equal(tls_sess_out_backlog(s), 0);
	assert_int_equal(SSL_write(c->ssl, "hello", 5), 5);
	fx_shuttle(c, s);
	n = tls_sess_read(s, back, sizeof back);
	assert_int_equal(n, 5);
	assert_memory_equal(back, "hello", 5);
	assert_int_equal(tls_sess_read(s, back, sizeof back), 0); /* wants more */
	SSL_shutdown(c->ssl);
	fx_shuttle(c, s);
	assert_int_equal(tls_sess_read(s, back, sizeof back), -ECONNRESET);
}

static void test_session_cert(void **state)
{
	struct tls_config cfg = { .cert_file = cert, .key_file = key };
	char err[256];
	struct tls_ctx *ctx = tls_ctx_new_server(&cfg, err, sizeof err);
	struct tls_sess *s;
	struct fx_client c;

	assert_non_null(ctx);
	assert_true(tls_ctx_cert_expiry(ctx) > time(NULL) + 86000);
	s = tls_sess_new_server(ctx);
	tls_ctx_free(ctx);  /* the session keeps what it needs */
	assert_non_null(s);
	assert_int_equal(fx_client_new(&c, NULL, NULL, 0), 0);
	assert_int_equal(fx_handshake(&c, s), 1);
	assert_true(tls_sess_ready(s));
	assert_string_equal(tls_sess_peer(s), "");  /* no client certificate */
	exchange(&c, s);
	fx_client_free(&c);
	tls_sess_free(s);
}

static void test_session_psk(void **state)
{
	struct tls_config cfg = { .cert_file = cert, .key_file = key, .psk_file = pskfile };
	char err[256];
	struct tls_ctx *ctx = tls_ctx_new_server(&cfg, err, sizeof err);
	uint8_t wrong[16] = { 1 };
	struct tls_sess *s;
	struct fx_client c;

	assert_non_null(ctx);
	s = tls_sess_new_server(ctx);
	assert_int_equal(fx_client_new(&c, "alice", alice_key, 16), 0);
	assert_int_equal(fx_handshake(&c, s), 1);
	assert_string_equal(tls_sess_peer(s), "alice");
	exchange(&c, s);
	fx_client_free(&c);
	tls_sess_free(s);

	/* A wrong key or an unknown identity fails on the server. */
	s = tls_sess_new_server(ctx);
	assert_int_equal(fx_client_new(&c, "alice", wrong, 16), 0);
	assert_true(fx_handshake(&c, s) <= 0);
	assert_false(tls_sess_ready(s));
	fx_client_free(&c);
	tls_sess_free(s);
	/* An unknown identity is not used: with a certificate the client
	 * may go on anonymously (peer ""), never as the name it gave. */
	s = tls_sess_new_server(ctx);
	assert_int_equal(fx_client_new(&c, "mallory", alice_key, 16), 0);
	if (fx_handshake(&c, s) == 1)
		assert_string_equal(tls_sess_peer(s), "");
	fx_client_free(&c);
	tls_sess_free(s);
	tls_ctx_free(ctx);
	/* Without a certificate it fails. */
	cfg.cert_file = cfg.key_file = NULL;
	ctx = tls_ctx_new_server(&cfg, err, sizeof err);
	assert_non_null(ctx);
	s = tls_sess_new_server(ctx);
	assert_int_equal(fx_client_new(&c, "mallory", alice_key, 16), 0);
	assert_true(fx_handshake(&c, s) <= 0);
	assert_false(tls_sess_ready(s));
	fx_client_free(&c);
	tls_sess_free(s);
	tls_ctx_free(ctx);
}

/* A PSK identity counts only once its key is proven: offered beside a
 * suite the key cannot be used with, the handshake may go on with the
 * certificate, but anonymously. */
static void test_psk_identity_unproven(void **state)
{
	struct tls_config cfg = { .cert_file = cert, .key_file = key, .psk_file = pskfile };
	char err[256];
	struct tls_ctx *ctx = tls_ctx_new_server(&cfg, err, sizeof err);
	uint8_t junk[32] = { 0x42 };
	struct tls_sess *s;
	struct fx_client c;
	int r;

	assert_non_null(ctx);
	s = tls_sess_new_server(ctx);
	assert_int_equal(fx_client_new_sha384_psk(&c, "alice", junk), 0);
	r = fx_handshake(&c, s);
	if (r == 1)
		assert_string_equal(tls_sess_peer(s), "");
	fx_client_free(&c);
	tls_sess_free(s);
	tls_ctx_free(ctx);
}

/* Plaintext where a ClientHello belongs fails the handshake. */
static void test_session_plaintext(void **state)
{
	struct tls_config cfg = { .psk_file = pskfile };
	char err[256];
	struct tls_ctx *ctx = tls_ctx_new_server(&cfg, err, sizeof err);
	struct tls_sess *s = tls_sess_new_server(ctx);
	static const char opt[] = "IHAVEOPT\0\0\0\3\0\0\0\0";

	assert_non_null(s);
	assert_int_equal(tls_ctx_cert_expiry(ctx), 0);
	assert_int_equal(tls_sess_feed(s, opt, sizeof opt - 1), 0);
	assert_int_equal(tls_sess_handshake(s), -EPROTO);
	assert_non_null(strstr(tls_sess_error(s), "handshake failed"));
	tls_sess_free(s);
	tls_ctx_free(ctx);
}

/* Carry ciphertext both ways between two of our sessions until neither
 * has more to say; returns the bytes moved. */
static size_t pair_shuttle(struct tls_sess *a, struct tls_sess *b)
{
	size_t moved = 0, n;

	for (int round = 0; round < 20; round++) {
		struct tls_sess *from = round % 2 ? b : a, *to = round % 2 ? a : b;
		const void *p;

		while ((n = tls_sess_out(from, &p)) > 0) {
			assert_int_equal(tls_sess_feed(to, p, n), 0);
			tls_sess_out_done(from, n);
			moved += n;
		}
		tls_sess_handshake(to);
	}
	return moved;
}

struct node_certs {
	char cert[3][256], key[3][256], ca[256];
};

/* n1 and n2 trusted (the "cluster CA" file holds both self-signed
 * certificates), n3 not; n2 also without a SAN for the CN-only case. */
static void make_node_certs(struct node_certs *nc, char nosan_cert[256],
			    char nosan_key[256])
{
	const char *names[3] = { "n1", "n2", "n3" };
	char text[8192];
	size_t len = 0;

	for (int i = 0; i < 3; i++)
		assert_int_equal(fx_make_named_cert(dir, names[i], true, nc->cert[i],
						    nc->key[i], 256), 0);
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(nc->cert[i], "r");

		assert_non_null(f);
		len += fread(text + len, 1, sizeof text - len, f);
		fclose(f);
	}
	snprintf(nc->ca, sizeof nc->ca, "%s/fx-cluster-ca.pem", dir);
	FILE *f = fopen(nc->ca, "w");

	assert_non_null(f);
	fwrite(text, 1, len, f);
	fclose(f);
	assert_int_equal(fx_make_named_cert(dir, "n2-nosan", false, nosan_cert,
					    nosan_key, 256), 0);
}

/* Client n1 dials expecting `expect`; the server presents server_i's
 * certificate and demands a client certificate. 1 if both ends are
 * ready, else 0; *peer gets what the server saw. */
static int mutual(const struct node_certs *nc, int client_i, const char *srv_cert,
		  const char *srv_key, const char *expect, char peer[64])
{
	struct tls_config scfg = { .cert_file = srv_cert, .key_file = srv_key,
				   .ca_file = nc->ca, .verify_peer = true };
	struct tls_config ccfg = { .cert_file = nc->cert[client_i],
				   .key_file = nc->key[client_i],
				   .ca_file = nc->ca };
	char err[256];
	struct tls_ctx *sc = tls_ctx_new_server(&scfg, err, sizeof err);
	struct tls_ctx *cc = tls_ctx_new_client(&ccfg, err, sizeof err);
	struct tls_sess *s, *c;
	int ok;

	assert_non_null(sc);
	assert_non_null(cc);
	s = tls_sess_new_server(sc);
	c = tls_sess_new_client(cc, expect);
	assert_non_null(s);
	assert_non_null(c);
	tls_sess_handshake(c);  /* the ClientHello */
	pair_shuttle(c, s);
	ok = tls_sess_ready(s) && tls_sess_ready(c);
	snprintf(peer, 64, "%s", tls_sess_ready(s) ? tls_sess_peer(s) : "");
	if (ok) {
		char buf[8];

		assert_int_equal(tls_sess_write(c, "ping", 4), 0);
		pair_shuttle(c, s);
		assert_int_equal(tls_sess_read(s, buf, sizeof buf), 4);
		assert_memory_equal(buf, "ping", 4);
	}
	tls_sess_free(s);
	tls_sess_free(c);
	tls_ctx_free(sc);
	tls_ctx_free(cc);
	return ok;
}

/* Node to node: both certificates must chain to the cluster CA, and the
 * client accepts only the node it meant to reach, named in a SAN. */
static void test_client_mutual(void **state)
{
	struct node_certs nc;
	char nosan_cert[256], nosan_key[256], peer[64];

	make_node_certs(&nc, nosan_cert, nosan_key);
	assert_int_equal(mutual(&nc, 0, nc.cert[1], nc.key[1], "n2", peer), 1);
	assert_string_equal(peer, "n1");
	/* Another trusted node answering where n2 was expected. */
	assert_int_equal(mutual(&nc, 0, nc.cert[0], nc.key[0], "n2", peer), 0);
	/* A server outside the cluster CA, even named right. */
	assert_int_equal(mutual(&nc, 0, nc.cert[2], nc.key[2], "n3", peer), 0);
	/* A client outside the cluster CA. */
	assert_int_equal(mutual(&nc, 2, nc.cert[1], nc.key[1], "n2", peer), 0);
	assert_string_equal(peer, "");
	/* CN=n2 without a SAN is not n2 (and is not in the CA file either). */
	assert_int_equal(mutual(&nc, 0, nosan_cert, nosan_key, "n2-nosan", peer), 0);
}

static void test_ctx_errors(void **state)
{
	struct tls_config none = { 0 }, halfcert = { .cert_file = cert },
		verify = { .psk_file = pskfile, .verify_peer = true },
		badcert = { .cert_file = pskfile, .key_file = key },
		nofile = { .psk_file = "/nonexistent/keys.psk" };
	char err[256];

	assert_null(tls_ctx_new_server(&none, err, sizeof err));
	assert_non_null(strstr(err, "needs a certificate"));
	assert_null(tls_ctx_new_server(&halfcert, err, sizeof err));
	assert_null(tls_ctx_new_server(&verify, err, sizeof err));
	assert_non_null(strstr(err, "CA file"));
	assert_null(tls_ctx_new_server(&badcert, err, sizeof err));
	assert_non_null(strstr(err, "certificate"));
	assert_null(tls_ctx_new_server(&nofile, err, sizeof err));
	assert_non_null(strstr(err, "cannot read PSK file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_psk_parse),
		cmocka_unit_test(test_session_cert),
		cmocka_unit_test(test_session_psk),
		cmocka_unit_test(test_psk_identity_unproven),
		cmocka_unit_test(test_session_plaintext),
		cmocka_unit_test(test_client_mutual),
		cmocka_unit_test(test_ctx_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
