/*
 * The fixed newstyle handshake as a pure state machine: bytes in, bytes
 * out, no sockets. The server feeds it what it receives and sends what it
 * appends to `out`; the fuzzer drives it the same way.
 *
 * Bounded: an option's data is capped (NBD_HS_MAX_OPT_LEN; longer ones are
 * answered NBD_REP_ERR_TOO_BIG and skipped), the number of options is capped
 * (NBD_HS_MAX_OPTIONS, then the connection is closed), strings are capped at
 * NBD_HS_MAX_STRING. Nothing is allocated for a volume before GO or
 * EXPORT_NAME picks one.
 */
#ifndef TRIPLEX_NBD_HANDSHAKE_H
#define TRIPLEX_NBD_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

#define NBD_HS_MAX_OPT_LEN 16384
#define NBD_HS_MAX_OPTIONS 256
#define NBD_HS_MAX_STRING 4096
#define NBD_HS_MAX_QUERIES 64
/* nbd_hs_feed needs a whole option (header and data) in one call: the
 * caller's receive buffer must hold at least this many bytes. */
#define NBD_HS_RECV_BUF (16 + NBD_HS_MAX_OPT_LEN)

/* What the server offers under one export name. */
struct nbd_export {
	const char *name;
	const char *description;  /* may be NULL */
	uint64_t size;
	uint16_t tflags;          /* transmission flags, without NBD_FLAG_SEND_DF */
	uint32_t min_block;       /* 1 = any alignment accepted */
	uint32_t pref_block;
	uint32_t max_block;       /* largest payload accepted */
	/* TLS identities (PSK identity or certificate common name) that may
	 * use this export, comma-separated; NULL: anyone. Such an export is
	 * served only over TLS. */
	const char *tls_allow;
	void *volume;             /* the server's handle, opaque here */
};

/* --tls: off (STARTTLS refused), on (optional), require (every option but
 * STARTTLS and ABORT refused with TLS_REQD until TLS is up). */
enum nbd_tls_mode { NBD_TLS_OFF, NBD_TLS_ON, NBD_TLS_REQUIRE };
#define NBD_TLS_PEER_MAX 256

/* The server's export table. */
struct nbd_exports {
	/* The export called name ("" is the default export); NULL if none. */
	const struct nbd_export *(*find)(void *ctx, const char *name);
	/* The i-th export for NBD_OPT_LIST; NULL past the end. */
	const struct nbd_export *(*at)(void *ctx, size_t i);
	void *ctx;
};

enum nbd_hs_state {
	NBD_HS_CLIENT_FLAGS,  /* waiting for the client's 32-bit flags */
	NBD_HS_OPTION,        /* waiting for an option (header and data) */
	NBD_HS_SKIP,          /* discarding the data of an oversized option */
	NBD_HS_STARTTLS,      /* STARTTLS acknowledged: once the ACK is sent,
	                       * the caller runs the TLS handshake, then
	                       * nbd_hs_tls_started; nothing is consumed until */
	NBD_HS_DONE,          /* an export was chosen: transmission begins */
	NBD_HS_CLOSED,        /* ABORT, or a fatal error: close the socket */
};

struct nbd_hs {
	const struct nbd_exports *exports;
	struct nbd_outbuf *out;
	enum nbd_hs_state state;
	uint32_t client_flags;
	unsigned options_seen;
	uint64_t skip_left;           /* NBD_HS_SKIP: bytes still to discard */
	bool structured;              /* NBD_OPT_STRUCTURED_REPLY agreed */
	bool meta_base_allocation;    /* base:allocation selected by SET */
	/* The export the last SET_META_CONTEXT named: the selection only
	 * holds if GO picks the same one (doc/proto.md). */
	const struct nbd_export *meta_export;
	const struct nbd_export *export; /* set when state becomes DONE */
	uint16_t tflags;              /* flags sent to the client for export */
	const char *close_reason;     /* set when state becomes CLOSED */
	enum nbd_tls_mode tls;        /* set by the caller after init */
	bool tls_active;              /* options now arrive over TLS */
	char tls_peer[NBD_TLS_PEER_MAX]; /* who TLS said the client is */
};

/* Start: appends the server greeting to out. */
void nbd_hs_init(struct nbd_hs *hs, const struct nbd_exports *exports,
		 struct nbd_outbuf *out);

/* Consume bytes from the client. Returns how many were used (0 when more
 * are needed before anything can be parsed); the caller keeps the rest and
 * calls again when more arrive. Stops consuming once the state is DONE (what
 * follows is transmission) or CLOSED. Returns -ENOMEM if out could not
 * grow. */
/* The TLS handshake after STARTTLS succeeded; peer is the identity it
 * proved ("" if none). Everything negotiated in plaintext is forgotten
 * (doc/proto.md; nbdkit's CVE-2021-3716), and options are read again. */
void nbd_hs_tls_started(struct nbd_hs *hs, const char *peer);

ssize_t nbd_hs_feed(struct nbd_hs *hs, const uint8_t *buf, size_t len);

#endif
