/*
 * For tests and fuzzers of common/tls.c: a throwaway self-signed server
 * certificate written to files, and an OpenSSL client over memory BIOs
 * whose bytes the test carries to and from a tls_sess by hand.
 */
#ifndef TRIPLEX_TLS_FIXTURE_H
#define TRIPLEX_TLS_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls.h"

/* Write a P-256 key and a self-signed certificate for CN=name (with
 * subjectAltName DNS:name unless san is false) to dir/fx-<name>-key.pem
 * and dir/fx-<name>-cert.pem. 0 or -1. */
static inline int fx_make_named_cert(const char *dir, const char *name,
				     bool san, char *cert, char *key, size_t len)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	char alt[128];
	FILE *f;
	int ok;

	snprintf(cert, len, "%s/fx-%s-cert.pem", dir, name);
	snprintf(key, len, "%s/fx-%s-key.pem", dir, name);
	snprintf(alt, sizeof alt, "DNS:%s", name);
	if (!k || !x)
		return -1;
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)name, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (san) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL,
							NID_subject_alt_name, alt);

		ok = e && X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
		if (!ok) {
			X509_free(x);
			EVP_PKEY_free(k);
			return -1;
		}
	}
	ok = X509_sign(x, k, EVP_sha256()) > 0;
	f = fopen(cert, "w");
	ok = ok && f && PEM_write_X509(f, x);
	if (f)
		fclose(f);
	f = fopen(key, "w");
	ok = ok && f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	if (f)
		fclose(f);
	X509_free(x);
	EVP_PKEY_free(k);
	return ok ? 0 : -1;
}

/* The server certificate of most tests: CN=localhost, no SAN. */
static inline int fx_make_cert(const char *dir, char *cert, char *key,
			       size_t len)
{
	return fx_make_named_cert(dir, "localhost", false, cert, key, len);
}

struct fx_client {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *rbio, *wbio;
};

static const char *fx_psk_identity;
static const uint8_t *fx_psk_key;
static size_t fx_psk_len;

static inline unsigned int fx_psk_cb(SSL *ssl, const char *hint, char *id,
				     unsigned int id_len, unsigned char *psk,
				     unsigned int psk_len)
{
	snprintf(id, id_len, "%s", fx_psk_identity);
	memcpy(psk, fx_psk_key, fx_psk_len);
	return (unsigned int)fx_psk_len;
}

/* A client that trusts no one (the tests look at the server side) or,
 * with identity set, offers that pre-shared key. */
static inline int fx_client_new(struct fx_client *c, const char *identity,
				const uint8_t *key, size_t key_len)
{
	memset(c, 0, sizeof *c);
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (!c->ctx)
		return -1;
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
	if (identity) {
		fx_psk_identity = identity;
		fx_psk_key = key;
		fx_psk_len = key_len;
		SSL_CTX_set_psk_client_callback(c->ctx, fx_psk_cb);
		SSL_CTX_set_ciphersuites(c->ctx, "TLS_AES_128_GCM_SHA256");
	}
	c->ssl = SSL_new(c->ctx);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(c->rbio, -1);
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_connect_state(c->ssl);
	return 0;
}

static inline void fx_client_free(struct fx_client *c)
{
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
}

static const uint8_t *fx_sess_key;

/* A TLS 1.3 external PSK offered as a session with a SHA-256 suite. */
static inline int fx_use_session_cb(SSL *ssl, const EVP_MD *md,
				    const unsigned char **id, size_t *idlen,
				    SSL_SESSION **sess)
{
	static const unsigned char aes128gcm[] = { 0x13, 0x01 };
	SSL_SESSION *s = SSL_SESSION_new();

	if (!s)
		return 0;
	SSL_SESSION_set1_master_key(s, fx_sess_key, 32);
	SSL_SESSION_set_cipher(s, SSL_CIPHER_find(ssl, aes128gcm));
	SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION);
	*sess = s;
	*id = (const unsigned char *)fx_psk_identity;
	*idlen = strlen(fx_psk_identity);
	return 1;
}

/* A client that offers identity with a (wrong) key while allowing only
 * the SHA-384 suite: a server that chose that suite cannot use the key,
 * so the handshake goes on with the certificate, the key unproven. */
static inline int fx_client_new_sha384_psk(struct fx_client *c,
					   const char *identity,
					   const uint8_t key[32])
{
	if (fx_client_new(c, NULL, NULL, 0) < 0)
		return -1;
	fx_psk_identity = identity;
	fx_sess_key = key;
	SSL_set_ciphersuites(c->ssl, "TLS_AES_256_GCM_SHA384");
	SSL_set_psk_use_session_callback(c->ssl, fx_use_session_cb);
	return 0;
}

/* Carry bytes both ways once; returns how many moved. */
static inline size_t fx_shuttle(struct fx_client *c, struct tls_sess *s)
{
	uint8_t buf[16384];
	const void *p;
	size_t moved = 0, n;
	int r;

	while ((r = BIO_read(c->wbio, buf, sizeof buf)) > 0) {
		tls_sess_feed(s, buf, (size_t)r);
		moved += (size_t)r;
	}
	while ((n = tls_sess_out(s, &p)) > 0) {
		BIO_write(c->rbio, p, (int)n);
		tls_sess_out_done(s, n);
		moved += n;
	}
	return moved;
}

/* Run both handshakes to the end: 1 both done, -1 the server failed,
 * 0 stuck (the client failed). */
static inline int fx_handshake(struct fx_client *c, struct tls_sess *s)
{
	for (int i = 0; i < 20; i++) {
		int cr = SSL_do_handshake(c->ssl), sr;

		fx_shuttle(c, s);
		sr = tls_sess_handshake(s);
		if (sr < 0)
			return -1;
		fx_shuttle(c, s);
		if (cr == 1 && sr == 1)
			return 1;
	}
	return 0;
}

#endif
