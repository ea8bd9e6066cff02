/*
 * tls.h: the TLS settings moat uses on both sides of SMTP.
 *
 * One place decides protocol versions, ciphers, groups and options, so
 * the server (smtpd-session) and the client (delivery-agent) agree and
 * a reviewer reads the policy once: TLS 1.2 and 1.3 only, forward
 * secret AEAD ciphers only, no renegotiation, no compression.
 */
#ifndef MOAT_UTIL_TLS_H
#define MOAT_UTIL_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/*
 * A server context: TLS 1.2 and 1.3 only; TLS 1.2 ciphers ECDHE with
 * AES-GCM or ChaCha20-Poly1305 only; server cipher preference; no
 * renegotiation (SSL_OP_NO_RENEGOTIATION); no compression; ECDH groups
 * X25519, P-256, P-384; session tickets off (each session is a fresh
 * process: nothing to resume).  No certificate: the caller adds it.
 * NULL with err set on failure.
 */
SSL_CTX	*tls_server_ctx(char *err, size_t errlen);
/*
 * A client context with the same versions and ciphers; ca_file (may be
 * NULL) is loaded now, into memory: the agent runs chrooted afterwards.
 * NULL with err set on failure.
 */
SSL_CTX	*tls_client_ctx(const char *ca_file, char *err, size_t errlen);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
void	 tls_describe(const SSL *ssl, char *dst, size_t dstsz);
/* OpenSSL's error queue as one line (and clears it); returns dst. */
const char *tls_errstr(char *dst, size_t dstsz);

#endif
