/*
 * tls.c: moat's TLS settings, shared by the SMTP server and client (see
 * tls.h).
 *
 * Both sides get the same floor: TLS 1.2 and 1.3, AEAD ciphers with
 * forward secrecy, three key-exchange groups, no compression, no
 * renegotiation, no session resumption.  A handshake that cannot meet it
 * fails; nothing falls back to something weaker.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "util/tls.h"

/* TLS 1.2: ECDHE only, AES-GCM or ChaCha20-Poly1305 only, strongest first. */
#define TLS_CIPHERS12 \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
/* TLS 1.3 suites are all AEAD with forward secrecy; fix their order. */
#define TLS_CIPHERS13 \
	"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
#define TLS_GROUPS	"X25519:P-256:P-384"

const char *
tls_errstr(char *dst, size_t dstsz)
{
	const char *reason;
	unsigned long e;
	size_t len = 0;
	int n;

	if (dstsz == 0) {
		ERR_clear_error();
		return dst;
	}
	dst[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		if (len >= dstsz - 1)
			continue;	/* keep emptying the queue */
		/* A failed system call (an unreadable file) carries errno. */
		if (ERR_SYSTEM_ERROR(e))
			reason = strerror((int)ERR_GET_REASON(e));
		else
			reason = ERR_reason_error_string(e);
		if (reason != NULL)
			n = snprintf(dst + len, dstsz - len, "%s%s",
			    len > 0 ? "; " : "", reason);
		else
			n = snprintf(dst + len, dstsz - len, "%serror:%08lX",
			    len > 0 ? "; " : "", e);
		if (n < 0)
			break;
		len += (size_t)n < dstsz - len ? (size_t)n : dstsz - len - 1;
	}
	ERR_clear_error();
	if (dst[0] == '\0')
		snprintf(dst, dstsz, "unknown TLS error");
	return dst;
}

/* Record why building a context failed, with OpenSSL's reason. */
static SSL_CTX *
tls_ctx_fail(SSL_CTX *ctx, const char *what, char *err, size_t errlen)
{
	char ossl[256];

	snprintf(err, errlen, "%s: %s", what, tls_errstr(ossl, sizeof(ossl)));
	SSL_CTX_free(ctx);
	return NULL;
}

/* The settings both sides share; NULL (ctx freed) on failure. */
static SSL_CTX *
tls_ctx_common(SSL_CTX *ctx, char *err, size_t errlen)
{
	if (ctx == NULL)
		return tls_ctx_fail(NULL, "SSL_CTX_new", err, errlen);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
		return tls_ctx_fail(ctx, "protocol versions", err, errlen);
	if (SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS12) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, TLS_CIPHERS13) != 1)
		return tls_ctx_fail(ctx, "cipher list", err, errlen);
	if (SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1)
		return tls_ctx_fail(ctx, "groups", err, errlen);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_TICKET);
	/* Every session and every agent connection starts afresh. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

SSL_CTX *
tls_server_ctx(char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if ((ctx = tls_ctx_common(SSL_CTX_new(TLS_server_method()), err,
	    errlen)) == NULL)
		return NULL;
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* TLS 1.3 would otherwise send tickets nobody can redeem. */
	if (SSL_CTX_set_num_tickets(ctx, 0) != 1)
		return tls_ctx_fail(ctx, "session tickets", err, errlen);
	return ctx;
}

SSL_CTX *
tls_client_ctx(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if ((ctx = tls_ctx_common(SSL_CTX_new(TLS_client_method()), err,
	    errlen)) == NULL)
		return NULL;
	/*
	 * The caller judges the chain after the handshake (by policy), so
	 * OpenSSL must not abort it.  A CA file is read whole into the
	 * store now; nothing is looked up on disk later.
	 */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (ca_file != NULL && ca_file[0] != '\0' &&
	    SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		char what[300];

		snprintf(what, sizeof(what), "CA file %s", ca_file);
		return tls_ctx_fail(ctx, what, err, errlen);
	}
	return ctx;
}

void
tls_describe(const SSL *ssl, char *dst, size_t dstsz)
{
	const SSL_CIPHER *c;

	if (dstsz == 0)
		return;
	if (ssl == NULL || (c = SSL_get_current_cipher(ssl)) == NULL) {
		dst[0] = '\0';
		return;
	}
	snprintf(dst, dstsz, "%s %s", SSL_get_version(ssl), SSL_CIPHER_get_name(c));
}
