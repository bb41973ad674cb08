/*
 * TLS over memory BIOs (OpenSSL 3). The owner of a socket moves the
 * ciphertext between the socket and a session with its own io_uring I/O;
 * nothing here touches a socket, so the protocol code above only ever sees
 * plaintext and the fuzzers can drive a session in memory.
 *
 * A session:  recv into tls_sess_in_buf, report with tls_sess_in_done;
 *             tls_sess_handshake until it returns 1; then tls_sess_read
 *             plaintext out and tls_sess_write plaintext in; send what
 *             tls_sess_out points at and report with tls_sess_out_done.
 */
#ifndef TRIPLEX_TLS_H
#define TRIPLEX_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define TLS_PSK_MAX_IDENTITY 128
#define TLS_PSK_MAX_KEY 64
#define TLS_PSK_MAX_ENTRIES 1024
#define TLS_IDENTITY_MAX 256

struct tls_config {
	const char *cert_file;   /* PEM certificate (chain); with key_file */
	const char *key_file;
	const char *ca_file;     /* CA bundle to verify peer certificates */
	bool verify_peer;        /* server: a client certificate is required */
	const char *psk_file;    /* lines "identity:hexkey" */
};

struct tls_psk {
	char identity[TLS_PSK_MAX_IDENTITY + 1];
	uint8_t key[TLS_PSK_MAX_KEY];
	size_t key_len;
};

/* Parse a PSK file's text (NUL not needed). Blank lines and lines starting
 * with '#' are skipped. Returns the number of entries stored in out (at
 * most max), or -1 with a message naming the line in err. */
int tls_psk_parse(const char *text, size_t len, struct tls_psk *out,
		  size_t max, char *err, size_t errlen);

struct tls_ctx;

/* A server context from cfg: needs a certificate and key, a PSK file, or
 * both. Returns NULL with a one-line reason in err. */
struct tls_ctx *tls_ctx_new_server(const struct tls_config *cfg, char *err,
				   size_t errlen);
/* A client context: cfg's certificate and key are presented, servers must
 * chain to cfg's CA. NULL with a reason in err. */
struct tls_ctx *tls_ctx_new_client(const struct tls_config *cfg, char *err,
				   size_t errlen);
/* Sessions made from ctx keep what they need: ctx may go before them. */
void tls_ctx_free(struct tls_ctx *ctx);
/* The certificate's notAfter (unix seconds); 0 without a certificate. */
time_t tls_ctx_cert_expiry(const struct tls_ctx *ctx);

struct tls_sess;

/* A server-side session; NULL on ENOMEM. */
struct tls_sess *tls_sess_new_server(struct tls_ctx *ctx);
/* A client session that accepts only a server whose certificate names
 * peer_name in a DNS subjectAltName. NULL on ENOMEM or a bad name. */
struct tls_sess *tls_sess_new_client(struct tls_ctx *ctx, const char *peer_name);
void tls_sess_free(struct tls_sess *s);

/* Where the next recv of ciphertext goes, and how much fits. */
void *tls_sess_in_buf(struct tls_sess *s, size_t *len);
/* n bytes of ciphertext arrived in the in-buffer. 0 or -ENOMEM. */
int tls_sess_in_done(struct tls_sess *s, size_t n);
/* Ciphertext that arrived some other way (bytes read before the switch). */
int tls_sess_feed(struct tls_sess *s, const void *buf, size_t n);

/* Advance the handshake: 1 done, 0 more input needed, -EPROTO failed
 * (the reason is in tls_sess_error). Output may be pending afterwards. */
int tls_sess_handshake(struct tls_sess *s);
bool tls_sess_ready(const struct tls_sess *s);

/* Decrypt up to n bytes: >0 bytes, 0 more input needed, -ECONNRESET
 * the peer closed (close_notify), -EPROTO a TLS error. */
ssize_t tls_sess_read(struct tls_sess *s, void *buf, size_t n);
/* Encrypt n bytes (all of them, or -EPROTO / -ENOMEM). */
int tls_sess_write(struct tls_sess *s, const void *buf, size_t n);
/* Queue a close_notify. */
void tls_sess_shutdown(struct tls_sess *s);

/* Ciphertext waiting to be sent: *p and its length (0: none). */
size_t tls_sess_out(struct tls_sess *s, const void **p);
void tls_sess_out_done(struct tls_sess *s, size_t n);
/* Ciphertext not sent yet, in bytes (for flow control). */
size_t tls_sess_out_backlog(const struct tls_sess *s);

/* Who the peer proved to be: its PSK identity, or its certificate's
 * common name; "" if it did neither. Valid once ready. */
const char *tls_sess_peer(const struct tls_sess *s);
/* Whether the verified peer certificate has name, exactly (case and all),
 * as a DNS subjectAltName: a node certificate names its node there. */
bool tls_sess_peer_has_dns(const struct tls_sess *s, const char *name);
/* The last failure, for the log. */
const char *tls_sess_error(const struct tls_sess *s);

#endif
