/*
 * TLS sessions over memory BIOs; see tls.h. The SSL object reads
 * ciphertext from one memory BIO that the owner fills from the socket and
 * writes ciphertext to another that the owner drains to the socket.
 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "fileio.h"

#define TLS_IN_CAP (64u * 1024)
#define TLS_OUT_CAP (256u * 1024)
#define PSK_FILE_MAX (1u << 20)

struct tls_ctx {
	SSL_CTX *ssl_ctx;
	time_t cert_expiry;
};

/* The PSK table lives with the SSL_CTX (ex_data), so that sessions made
 * before a reload keep theirs. */
struct psk_table {
	struct tls_psk *keys;
	int n;
};

static int psk_index = -1;

struct tls_sess {
	SSL *ssl;
	BIO *rbio, *wbio;       /* ciphertext in, out (owned by ssl) */
	bool ready;
	char peer[TLS_IDENTITY_MAX];
	char psk_offered[TLS_PSK_MAX_IDENTITY + 1]; /* not proven yet */
	char error[320];
	uint8_t *in;            /* TLS_IN_CAP: the recv target */
	uint8_t *out;           /* TLS_OUT_CAP: ciphertext being sent */
	size_t out_off, out_len;
};

static void set_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[120] = "";

	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", buf);
	ERR_clear_error();
}

/* ---- PSK --------------------------------------------------------------- */

static void psk_table_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad,
			   int idx, long argl, void *argp)
{
	struct psk_table *t = ptr;

	if (!t)
		return;
	/* All of it: a failed parse leaves key bytes past n. */
	if (t->keys)
		OPENSSL_cleanse(t->keys, sizeof *t->keys * TLS_PSK_MAX_ENTRIES);
	free(t->keys);
	free(t);
}

static unsigned int psk_server_cb(SSL *ssl, const char *identity,
				  unsigned char *psk, unsigned int max_len)
{
	const struct psk_table *t =
		SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), psk_index);
	struct tls_sess *s = SSL_get_app_data(ssl);

	if (!t || !identity)
		return 0;
	for (int i = 0; i < t->n; i++) {
		if (strcmp(t->keys[i].identity, identity) != 0)
			continue;
		if (t->keys[i].key_len > max_len)
			return 0;
		memcpy(psk, t->keys[i].key, t->keys[i].key_len);
		/* Only a candidate: OpenSSL may still drop this PSK without
		 * checking its binder (a suite of another hash) and go on
		 * with the certificate; note_peer checks it was used. */
		if (s)
			snprintf(s->psk_offered, sizeof s->psk_offered, "%s", identity);
		return (unsigned int)t->keys[i].key_len;
	}
	return 0;  /* unknown identity: the handshake fails */
}

static int load_psk(SSL_CTX *c, const char *path, char *err, size_t errlen)
{
	struct psk_table *t = calloc(1, sizeof *t);
	char *text = NULL, why[96];
	size_t len;
	int r;

	if (!t)
		goto nomem;
	r = read_small_file(path, PSK_FILE_MAX, &text, &len);
	if (r < 0) {
		snprintf(err, errlen, "cannot read PSK file %s: %s", path, strerror(-r));
		free(t);
		return -1;
	}
	t->keys = calloc(TLS_PSK_MAX_ENTRIES, sizeof *t->keys);
	if (!t->keys)
		goto nomem;
	t->n = tls_psk_parse(text, len, t->keys, TLS_PSK_MAX_ENTRIES, why, sizeof why);
	OPENSSL_cleanse(text, len);
	free(text);
	text = NULL;
	if (t->n <= 0) {
		snprintf(err, errlen, "PSK file %s: %s", path,
			 t->n < 0 ? why : "no keys");
		psk_table_free(NULL, t, NULL, 0, 0, NULL);
		return -1;
	}
	SSL_CTX_set_ex_data(c, psk_index, t);
	SSL_CTX_set_psk_server_callback(c, psk_server_cb);
	/* TLS 1.3 takes these keys only with a SHA-256 suite: choose one
	 * first, or a server that also has a certificate picks a SHA-384
	 * suite and the PSK client is left without credentials. */
	SSL_CTX_set_ciphersuites(c, "TLS_AES_128_GCM_SHA256:"
				 "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384");
	SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE);
	return 0;
nomem:
	free(text);
	if (t)
		free(t->keys);
	free(t);
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* ---- certificates ------------------------------------------------------ */

static time_t cert_expiry(SSL_CTX *c)
{
	X509 *x = SSL_CTX_get0_certificate(c);
	struct tm tm;

	if (!x || !ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
		return 0;
	return timegm(&tm);
}

static int load_cert(SSL_CTX *c, const struct tls_config *cfg, char *err,
		     size_t errlen)
{
	char what[600];

	if (SSL_CTX_use_certificate_chain_file(c, cfg->cert_file) != 1) {
		snprintf(what, sizeof what, "certificate %s", cfg->cert_file);
		set_err(err, errlen, what);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(c, cfg->key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(c) != 1) {
		snprintf(what, sizeof what, "key %s (for %s)", cfg->key_file,
			 cfg->cert_file);
		set_err(err, errlen, what);
		return -1;
	}
	return 0;
}

static int load_ca(SSL_CTX *c, const struct tls_config *cfg, char *err,
		   size_t errlen)
{
	char what[600];

	if (SSL_CTX_load_verify_locations(c, cfg->ca_file, NULL) != 1) {
		snprintf(what, sizeof what, "CA file %s", cfg->ca_file);
		set_err(err, errlen, what);
		return -1;
	}
	/* A client certificate, when sent, must chain to the CA; with
	 * verify_peer one must be sent. */
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER |
			   (cfg->verify_peer ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
			   NULL);
	return 0;
}

static int ctx_configure(SSL_CTX *c, const struct tls_config *cfg, char *err,
			 size_t errlen)
{
	if (!!cfg->cert_file != !!cfg->key_file) {
		snprintf(err, errlen, "a certificate needs its key and a key its certificate");
		return -1;
	}
	if (!cfg->cert_file && !cfg->psk_file) {
		snprintf(err, errlen, "TLS needs a certificate and key, or a PSK file");
		return -1;
	}
	if (cfg->verify_peer && !cfg->ca_file) {
		snprintf(err, errlen, "verifying client certificates needs a CA file");
		return -1;
	}
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	/* PSK suites for TLS 1.2 clients; TLS 1.3 takes PSKs by itself. */
	SSL_CTX_set_cipher_list(c, "HIGH:!aNULL:!MD5:!RC4:PSK");
	SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* No tickets: a session is one connection's. */
	SSL_CTX_set_num_tickets(c, 0);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	/* Required once peers are verified, PSK sessions included. */
	SSL_CTX_set_session_id_context(c, (const unsigned char *)"triplex", 7);
	if (cfg->cert_file && load_cert(c, cfg, err, errlen) < 0)
		return -1;
	if (cfg->ca_file && load_ca(c, cfg, err, errlen) < 0)
		return -1;
	if (cfg->psk_file && load_psk(c, cfg->psk_file, err, errlen) < 0)
		return -1;
	return 0;
}

static struct tls_ctx *ctx_new(const SSL_METHOD *method,
			       const struct tls_config *cfg, char *err,
			       size_t errlen)
{
	struct tls_ctx *t = calloc(1, sizeof *t);

	if (psk_index < 0)
		psk_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
						     psk_table_free);
	if (!t || psk_index < 0) {
		free(t);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->ssl_ctx = SSL_CTX_new(method);
	if (!t->ssl_ctx) {
		set_err(err, errlen, "SSL_CTX_new");
		free(t);
		return NULL;
	}
	if (ctx_configure(t->ssl_ctx, cfg, err, errlen) < 0) {
		tls_ctx_free(t);
		return NULL;
	}
	t->cert_expiry = cert_expiry(t->ssl_ctx);
	return t;
}

struct tls_ctx *tls_ctx_new_server(const struct tls_config *cfg, char *err,
				   size_t errlen)
{
	return ctx_new(TLS_server_method(), cfg, err, errlen);
}

struct tls_ctx *tls_ctx_new_client(const struct tls_config *cfg, char *err,
				   size_t errlen)
{
	if (!cfg->ca_file || !cfg->cert_file || cfg->psk_file) {
		snprintf(err, errlen, "a TLS client needs a certificate, its "
			 "key and the CA that signed its servers");
		return NULL;
	}
	return ctx_new(TLS_client_method(), cfg, err, errlen);
}

void tls_ctx_free(struct tls_ctx *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ssl_ctx);  /* sessions hold their own reference */
	free(t);
}

time_t tls_ctx_cert_expiry(const struct tls_ctx *t)
{
	return t->cert_expiry;
}

/* ---- sessions ---------------------------------------------------------- */

static struct tls_sess *sess_new(struct tls_ctx *ctx)
{
	struct tls_sess *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->in = malloc(TLS_IN_CAP);
	s->out = malloc(TLS_OUT_CAP);
	s->ssl = SSL_new(ctx->ssl_ctx);
	s->rbio = BIO_new(BIO_s_mem());
	s->wbio = BIO_new(BIO_s_mem());
	if (!s->in || !s->out || !s->ssl || !s->rbio || !s->wbio) {
		BIO_free(s->rbio);
		BIO_free(s->wbio);
		SSL_free(s->ssl);
		free(s->in);
		free(s->out);
		free(s);
		ERR_clear_error();
		return NULL;
	}
	/* An empty input BIO means "wait", not end of file. */
	BIO_set_mem_eof_return(s->rbio, -1);
	SSL_set_bio(s->ssl, s->rbio, s->wbio);
	SSL_set_app_data(s->ssl, s);
	return s;
}

struct tls_sess *tls_sess_new_server(struct tls_ctx *ctx)
{
	struct tls_sess *s = sess_new(ctx);

	if (s)
		SSL_set_accept_state(s->ssl);
	return s;
}

struct tls_sess *tls_sess_new_client(struct tls_ctx *ctx, const char *peer_name)
{
	struct tls_sess *s;

	/* SSL_set1_host with "" checks no name at all: fail closed. */
	if (!peer_name || !peer_name[0])
		return NULL;
	s = sess_new(ctx);
	if (!s)
		return NULL;
	/* The server proves peer_name in a subjectAltName (DNS), never by
	 * its common name alone. */
	SSL_set_hostflags(s->ssl, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
			  X509_CHECK_FLAG_NO_WILDCARDS);
	if (SSL_set1_host(s->ssl, peer_name) != 1) {
		tls_sess_free(s);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_connect_state(s->ssl);
	return s;
}

void tls_sess_free(struct tls_sess *s)
{
	if (!s)
		return;
	SSL_free(s->ssl);
	free(s->in);
	free(s->out);
	free(s);
}

void *tls_sess_in_buf(struct tls_sess *s, size_t *len)
{
	*len = TLS_IN_CAP;
	return s->in;
}

int tls_sess_feed(struct tls_sess *s, const void *buf, size_t n)
{
	if (n == 0)
		return 0;
	if (BIO_write(s->rbio, buf, (int)n) != (int)n) {
		ERR_clear_error();
		return -ENOMEM;
	}
	return 0;
}

int tls_sess_in_done(struct tls_sess *s, size_t n)
{
	return tls_sess_feed(s, s->in, n);
}

static void sess_failed(struct tls_sess *s, const char *what, int sslerr)
{
	char what2[160];
	long v = SSL_get_verify_result(s->ssl);

	/* "certificate verify failed" alone does not say what to fix. */
	if (v != X509_V_OK)
		snprintf(what2, sizeof what2, "%s (SSL error %d; peer certificate: "
			 "%s)", what, sslerr, X509_verify_cert_error_string(v));
	else
		snprintf(what2, sizeof what2, "%s (SSL error %d)", what, sslerr);
	set_err(s->error, sizeof s->error, what2);
}

/* Did the handshake authenticate with the PSK? In TLS 1.3 an external
 * PSK is a resumption (no tickets or cache here make any other); in 1.2
 * a PSK suite leaves the identity in the session. */
static bool psk_used(const struct tls_sess *s)
{
	if (SSL_version(s->ssl) == TLS1_3_VERSION)
		return SSL_session_reused(s->ssl) == 1;
	return SSL_get_psk_identity(s->ssl) != NULL;
}

static void note_peer(struct tls_sess *s)
{
	X509 *x;
	int n;

	s->peer[0] = '\0';
	if (s->psk_offered[0] && psk_used(s)) {
		snprintf(s->peer, sizeof s->peer, "%s", s->psk_offered);
		return;
	}
	x = SSL_get0_peer_certificate(s->ssl);
	if (!x || SSL_get_verify_result(s->ssl) != X509_V_OK)
		return;
	/* Too long for s->peer: it would be cut to another name. */
	n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
				      NULL, 0);
	if (n < 0 || (size_t)n >= sizeof s->peer)
		return;
	n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
				      s->peer, sizeof s->peer);
	/* A CN with a NUL in it would name someone else. */
	if (n < 0 || (size_t)n != strlen(s->peer))
		s->peer[0] = '\0';
}

bool tls_sess_peer_has_dns(const struct tls_sess *s, const char *name)
{
	X509 *x = s->ready ? SSL_get0_peer_certificate(s->ssl) : NULL;
	char *matched = NULL;
	bool ok;

	if (!x || !name || !name[0] ||
	    SSL_get_verify_result(s->ssl) != X509_V_OK)
		return false;
	/* X509_check_host ignores case: compare what it matched exactly. */
	ok = X509_check_host(x, name, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
			     X509_CHECK_FLAG_NO_WILDCARDS, &matched) == 1 &&
	     matched && strcmp(matched, name) == 0;
	OPENSSL_free(matched);
	return ok;
}

int tls_sess_handshake(struct tls_sess *s)
{
	int r, e;

	if (s->ready)
		return 1;
	r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		s->ready = true;
		note_peer(s);
		return 1;
	}
	e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	sess_failed(s, "handshake failed", e);
	return -EPROTO;
}

bool tls_sess_ready(const struct tls_sess *s)
{
	return s->ready;
}

ssize_t tls_sess_read(struct tls_sess *s, void *buf, size_t n)
{
	size_t got = 0;
	int r, e;

	r = SSL_read_ex(s->ssl, buf, n, &got);
	if (r == 1)
		return (ssize_t)got;
	e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	if (e == SSL_ERROR_ZERO_RETURN)
		return -ECONNRESET;
	sess_failed(s, "read failed", e);
	return -EPROTO;
}

int tls_sess_write(struct tls_sess *s, const void *buf, size_t n)
{
	size_t put = 0;

	if (n == 0)
		return 0;
	/* Memory BIOs grow: a write takes everything or fails. */
	if (SSL_write_ex(s->ssl, buf, n, &put) != 1 || put != n) {
		sess_failed(s, "write failed", SSL_get_error(s->ssl, 0));
		return -EPROTO;
	}
	return 0;
}

void tls_sess_shutdown(struct tls_sess *s)
{
	if (s->ready)
		SSL_shutdown(s->ssl);
	ERR_clear_error();
}

size_t tls_sess_out(struct tls_sess *s, const void **p)
{
	if (s->out_off == s->out_len) {
		int n = BIO_read(s->wbio, s->out, TLS_OUT_CAP);

		s->out_off = 0;
		s->out_len = n > 0 ? (size_t)n : 0;
	}
	*p = s->out + s->out_off;
	return s->out_len - s->out_off;
}

void tls_sess_out_done(struct tls_sess *s, size_t n)
{
	s->out_off += n;
}

size_t tls_sess_out_backlog(const struct tls_sess *s)
{
	return BIO_ctrl_pending(s->wbio) + (s->out_len - s->out_off);
}

const char *tls_sess_peer(const struct tls_sess *s)
{
	return s->peer;
}

const char *tls_sess_error(const struct tls_sess *s)
{
	return s->error[0] ? s->error : "no error";
}
