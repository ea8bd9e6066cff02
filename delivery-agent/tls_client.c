/*
 * tls_client.c: STARTTLS for the relay transport (see tls_client.h).
 *
 * The policy decides what a failure means: under "may" a server that
 * does not offer STARTTLS gets the mail in clear, but once STARTTLS is
 * offered and tried, a failed handshake defers the mail like under
 * "encrypt" (the connection is in an unknown state by then; going on in
 * clear on it would be a downgrade an attacker could choose).  The peer
 * certificate is always checked, so logs can say verified=yes|no, but
 * only "verify" refuses to go on when the check fails.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mail/table.h"
#include "smtp_conn.h"
#include "smtp_reply.h"
#include "tls_client.h"
#include "util/conf.h"
#include "util/log.h"
#include "util/tls.h"
#include "util/xmalloc.h"

struct tls_client {
	SSL_CTX			*ctx;
	enum tls_policy		 def;	/* relay_tls */
	struct table		*map;	/* relay_tls_policy_maps, or NULL */
};

/* A policy word; an unknown word (the config checks values) is verify. */
static enum tls_policy
tls_client_policy_word(const char *w)
{
	if (strcasecmp(w, "none") == 0)
		return TLS_POLICY_NONE;
	if (strcasecmp(w, "may") == 0)
		return TLS_POLICY_MAY;
	if (strcasecmp(w, "encrypt") == 0)
		return TLS_POLICY_ENCRYPT;
	return TLS_POLICY_VERIFY;
}

/*
 * Our own copy of the policy table: the agent frees its configuration
 * once it has started, and the table must outlive it.  The text was
 * checked when the configuration was loaded.
 */
static int
tls_client_map(const struct conf *cfg, struct tls_client *tc, char *err,
    size_t errlen)
{
	const struct conf_value *v = &cfg->v[CONF_RELAY_TLS_POLICY_MAPS];

	if (conf_table(cfg, CONF_RELAY_TLS_POLICY_MAPS) == NULL ||
	    v->table_text == NULL)
		return 0;
	if (table_parse(conf_str(cfg, CONF_RELAY_TLS_POLICY_MAPS), v->table_text,
	    v->table_len, NULL, &tc->map, stderr) != 0) {
		snprintf(err, errlen, "relay_tls_policy_maps: cannot be parsed again");
		return -1;
	}
	return 0;
}

struct tls_client *
tls_client_new(const struct conf *cfg, char *err, size_t errlen)
{
	const struct conf_words *w = conf_words(cfg, CONF_RELAY_TLS);
	const char *ca = conf_str(cfg, CONF_RELAY_TLS_CA_FILE);
	struct tls_client *tc;
	unsigned char seed;

	tc = xmalloc(sizeof(*tc));
	tc->def = w->n > 0 ? tls_client_policy_word(w->v[0]) : TLS_POLICY_MAY;
	tc->map = NULL;
	if (tls_client_map(cfg, tc, err, errlen) == -1) {
		free(tc);
		return NULL;
	}
	tc->ctx = tls_client_ctx(ca, err, errlen);
	/*
	 * Without a usable CA file only "verify" is hurt.  When nothing
	 * can ask for it, say so and go on: "may" must not stop working
	 * because ca-certificates is not installed.
	 */
	if (tc->ctx == NULL && tc->def != TLS_POLICY_VERIFY && tc->map == NULL) {
		log_warn("relay_tls_ca_file: %s; certificates cannot be "
		    "verified", err);
		tc->ctx = tls_client_ctx(NULL, err, errlen);
	}
	if (tc->ctx == NULL) {
		tls_client_free(tc);
		return NULL;
	}
	/* Seed the generator now, while getrandom() is surely allowed. */
	if (RAND_bytes(&seed, 1) != 1) {
		char ossl[128];

		snprintf(err, errlen, "random generator: %s",
		    tls_errstr(ossl, sizeof(ossl)));
		tls_client_free(tc);
		return NULL;
	}
	return tc;
}

enum tls_policy
tls_client_policy(const struct tls_client *tc, const char *domain)
{
	const char *v;

	if (tc->map != NULL && domain != NULL && domain[0] != '\0' &&
	    (v = table_lookup(tc->map, domain, NULL)) != NULL)
		return tls_client_policy_word(v);
	return tc->def;
}

/* Is name an IP address (no SNI; check against IP SANs)? */
static int
tls_client_is_ip(const char *name)
{
	unsigned char a[16];

	return inet_pton(AF_INET, name, a) == 1 ||
	    inet_pton(AF_INET6, name, a) == 1;
}

/* A fresh SSL for peer_name: SNI when it is a name. */
static SSL *
tls_client_ssl(struct tls_client *tc, const char *peer_name, char *why,
    size_t whylen)
{
	char ossl[128];
	SSL *ssl;

	ERR_clear_error();
	if ((ssl = SSL_new(tc->ctx)) == NULL) {
		snprintf(why, whylen, "TLS set-up failed: %s",
		    tls_errstr(ossl, sizeof(ossl)));
		return NULL;
	}
	if (peer_name[0] != '\0' && !tls_client_is_ip(peer_name) &&
	    SSL_set_tlsext_host_name(ssl, peer_name) != 1) {
		snprintf(why, whylen, "TLS set-up failed: server name %s: %s",
		    peer_name, tls_errstr(ossl, sizeof(ossl)));
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/*
 * Does the certificate chain to a trusted CA and name peer_name?  0 yes;
 * -1 no, with the reason in why.
 */
static int
tls_client_verify(SSL *ssl, const char *peer_name, char *why, size_t whylen)
{
	X509 *cert;
	long vr;
	int ok;

	if ((cert = SSL_get1_peer_certificate(ssl)) == NULL) {
		snprintf(why, whylen, "certificate verification failed for %s: "
		    "no certificate presented", peer_name);
		return -1;
	}
	if ((vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		snprintf(why, whylen, "certificate verification failed for %s: %s",
		    peer_name, X509_verify_cert_error_string(vr));
		X509_free(cert);
		return -1;
	}
	if (tls_client_is_ip(peer_name))
		ok = X509_check_ip_asc(cert, peer_name, 0) == 1;
	else
		ok = X509_check_host(cert, peer_name, 0,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
	X509_free(cert);
	if (!ok) {
		snprintf(why, whylen, "server certificate not verified: "
		    "host name mismatch (%s)", peer_name);
		return -1;
	}
	return 0;
}

/* STARTTLS and its reply: 0 on 220, else -1 with why. */
static int
tls_client_command(struct smtp_conn *c, const char *peer_name, char *why,
    size_t whylen)
{
	char text[512];
	const struct smtp_reply *r;

	if (smtp_conn_write(c, "STARTTLS\r\n", 10) == 0 &&
	    (r = smtp_conn_reply(c)) != NULL) {
		if (r->code == 220)
			return 0;
		smtp_reply_oneline(r, text, sizeof(text));
		snprintf(why, whylen, "host %s refused to start TLS: "
		    "%d %s%s%s", peer_name, r->code, r->enh,
		    r->enh[0] != '\0' ? " " : "", text);
		return -1;
	}
	snprintf(why, whylen, "%s with %s while sending STARTTLS%s%s",
	    c->fail == SMTP_CONN_TIMEOUT ? "conversation timed out" :
	    c->fail == SMTP_CONN_PROTO ? "malformed reply" : "lost connection",
	    peer_name, c->err[0] != '\0' ? ": " : "", c->err);
	return -1;
}

enum tls_start
tls_client_start(struct tls_client *tc, struct smtp_conn *c,
    enum tls_policy pol, const char *peer_name, int offered, char *why,
    size_t whylen)
{
	char desc[96];
	SSL *ssl;
	int verified;

	why[0] = '\0';
	if (pol == TLS_POLICY_NONE || (pol == TLS_POLICY_MAY && !offered))
		return TLS_START_PLAIN;
	if (!offered) {
		snprintf(why, whylen, "TLS is required, but was not offered by "
		    "host %s", peer_name);
		return TLS_START_FAIL;
	}
	if (tls_client_command(c, peer_name, why, whylen) == -1)
		return TLS_START_FAIL;
	if ((ssl = tls_client_ssl(tc, peer_name, why, whylen)) == NULL)
		return TLS_START_FAIL;
	if (smtp_conn_tls(c, ssl) == -1) {
		snprintf(why, whylen, "%s with %s: %s",
		    c->fail == SMTP_CONN_PROTO ? "protocol error" :
		    "TLS failed", peer_name, c->err);
		return TLS_START_FAIL;
	}
	verified = tls_client_verify(ssl, peer_name, why, whylen) == 0;
	tls_describe(ssl, desc, sizeof(desc));
	snprintf(c->tls, sizeof(c->tls), "%s verified=%s", desc,
	    verified ? "yes" : "no");
	if (pol == TLS_POLICY_VERIFY && !verified)
		return TLS_START_FAIL;
	why[0] = '\0';
	return TLS_START_OK;
}

void
tls_client_free(struct tls_client *tc)
{
	if (tc == NULL)
		return;
	SSL_CTX_free(tc->ctx);
	table_free(tc->map);
	free(tc);
}
