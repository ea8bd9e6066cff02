/*
 * smtp_tls.c: TLS for an smtpd-session.
 *
 * smtp_tls_setup() runs in main() before priv_drop(): it reads the
 * certificate chain files of smtpd_tls_cert_files and hands
 * smtp_session.c the calls below through s->tls_ops; the contexts, with
 * the keyholder's keys (tls_server.c, tls_keys.c), are built only when a
 * client asks for TLS (smtp_tls_prepare()).  smtp_session.c itself names
 * no TLS function, so smtpd-session-plain, built from the same sources
 * without this file, carries no TLS library at all: moatd starts it when
 * no certificate is configured, and it starts faster (no libcrypto to
 * relocate) with less code in the address space that faces the client.
 */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "smtp_session.h"
#include "tls_server.h"
#include "util/log.h"

_Static_assert(TLS_SERVER_DESC_MAX <= SMTP_TLS_DESC_MAX,
    "s->tls_desc holds tls_server_describe()'s text");

/*
 * The contexts, built when a client first asks for TLS: OpenSSL's start
 * and one SSL_CTX per certificate cost far more than the rest of a
 * session, and most of it would be wasted on the clients that never say
 * STARTTLS.  Runs inside the sandbox: the chains were read before it
 * (smtp_tls_setup()), no configuration file is loaded (moat sets its own
 * policy, common/util/tls.c), and the random generator seeds itself
 * with getrandom(2).  A failure is logged once and leaves TLS not ready.
 */
static int smtp_tls_keys_fd = -1;
static int smtp_tls_built;

static int
smtp_tls_prepare(struct smtp_session *s)
{
	char err[512];

	/* Not ready from the start (no chains, no keyholder): nothing to build. */
	if (smtp_tls_built || !s->tls_ready)
		return s->tls_ready ? 0 : -1;
	smtp_tls_built = 1;
	if (OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT |
	    OPENSSL_INIT_NO_LOAD_CONFIG, NULL) != 1)
		log_warn("client=%s tls: OpenSSL initialisation failed", s->client_addr);
	if (tls_server_build(s->tls, smtp_tls_keys_fd, err, sizeof(err)) == -1) {
		log_warn("client=%s tls unavailable: %s", s->client_addr, err);
		s->tls_ready = 0;
		return -1;
	}
	return 0;
}

/* Handshake, then one log line with what was agreed. */
static int
smtp_tls_start(struct smtp_session *s, const char *how)
{
	char err[256], sni[TLS_SERVER_NAME_MAX * 4 + 1];
	const SSL_CIPHER *c;

	if (smtp_tls_prepare(s) == -1) {
		log_info("tls client=%s mode=%s handshake failed: TLS not available",
		    s->client_addr, how);
		return -1;
	}
	s->ssl = tls_server_accept(s->tls, s->client_fd, s->timeout_ms,
	    err, sizeof(err));
	if (s->ssl == NULL) {
		log_info("tls client=%s mode=%s handshake failed: %s",
		    s->client_addr, how, err);
		return -1;
	}
	tls_server_describe(s->ssl, s->tls_desc, sizeof(s->tls_desc));
	log_sanitize(sni, sizeof(sni), s->tls->sni, strlen(s->tls->sni));
	c = SSL_get_current_cipher(s->ssl);
	/* moat asks clients for no certificate: "none" unless one came. */
	log_info("tls client=%s mode=%s version=%s cipher=%s bits=%d sni=%s "
	    "cert=%zu client_cert=%s", s->client_addr, how,
	    SSL_get_version(s->ssl),
	    c != NULL ? SSL_CIPHER_get_name(c) : "unknown",
	    c != NULL ? SSL_CIPHER_get_bits(c, NULL) : 0,
	    sni[0] != '\0' ? sni : "-", s->tls->chosen + 1,
	    SSL_get0_peer_certificate(s->ssl) == NULL ? "none" :
	    SSL_get_verify_result(s->ssl) == X509_V_OK ? "verified" :
	    "unverified");
	return 0;
}

static ssize_t
smtp_tls_read(struct smtp_session *s, void *p, size_t n, short *wait,
    char *err, size_t errlen)
{
	return tls_server_read(s->ssl, p, n, wait, err, errlen);
}

static ssize_t
smtp_tls_write(struct smtp_session *s, const void *p, size_t n, short *wait,
    char *err, size_t errlen)
{
	return tls_server_write(s->ssl, p, n, wait, err, errlen);
}

static int
smtp_tls_pending(const struct smtp_session *s)
{
	return SSL_has_pending(s->ssl);
}

/* close_notify, without waiting for the client's. */
static void
smtp_tls_shutdown(struct smtp_session *s)
{
	(void)SSL_shutdown(s->ssl);
}

static const struct smtp_tls_ops smtp_tls_ops = {
	.prepare = smtp_tls_prepare,
	.start = smtp_tls_start,
	.read = smtp_tls_read,
	.write = smtp_tls_write,
	.pending = smtp_tls_pending,
	.shutdown = smtp_tls_shutdown,
};

/*
 * Before priv_drop(): read the chain files and check the keyholder
 * channel, nothing more (smtp_tls_prepare() does the rest on demand).
 * A failure is logged and leaves TLS set up but not ready: STARTTLS then
 * answers 454 and an implicit-TLS connection is closed.  A session
 * without TLS gives up its keyholder channel at once.
 */
void
smtp_tls_setup(struct smtp_session *s, int keys_fd)
{
	static struct tls_server ts;
	char err[512];

	if (s->tls_mode == TLS_LISTEN_NONE ||
	    conf_words(s->cfg, CONF_SMTPD_TLS_CERT_FILES)->n == 0) {
		(void)close(keys_fd);
		return;
	}
	s->tls = &ts;
	s->tls_ops = &smtp_tls_ops;
	if (tls_server_load(&ts, s->cfg, err, sizeof(err)) == -1)
		log_warn("client=%s tls unavailable: %s", s->client_addr, err);
	else if (fcntl(keys_fd, F_GETFD) == -1)
		log_warn("client=%s tls unavailable: no channel to the keyholder "
		    "(descriptor %d)", s->client_addr, keys_fd);
	else {
		smtp_tls_keys_fd = keys_fd;
		s->tls_ready = 1;
	}
}
