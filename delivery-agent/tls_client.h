/*
 * tls_client.h: STARTTLS for the relay transport, per destination.
 *
 * The policy for a next-hop domain comes from relay_tls_policy_maps,
 * else relay_tls: none (never), may (when offered, unauthenticated),
 * encrypt (required, unauthenticated), verify (required; the chain must
 * lead to relay_tls_ca_file and the certificate must name the host).
 * Everything that touches the file system happens in tls_client_new(),
 * before the agent chroots and installs its sandbox.
 */
#ifndef MOAT_TLS_CLIENT_H
#define MOAT_TLS_CLIENT_H

#include <stddef.h>

struct conf;
struct smtp_conn;

enum tls_policy {
	TLS_POLICY_NONE,
	TLS_POLICY_MAY,
	TLS_POLICY_ENCRYPT,
	TLS_POLICY_VERIFY,
};

struct tls_client;

/*
 * Before the sandbox: a context with relay_tls_ca_file, the default
 * relay_tls and the relay_tls_policy_maps table.  NULL with err set.
 */
struct tls_client *tls_client_new(const struct conf *cfg, char *err,
	    size_t errlen);
/* The policy for mail to domain (the next hop's domain). */
enum tls_policy tls_client_policy(const struct tls_client *tc,
	    const char *domain);

enum tls_start {
	TLS_START_OK,		/* encrypted from now on: send EHLO again */
	TLS_START_PLAIN,	/* go on in clear; nothing was sent */
	TLS_START_FAIL,		/* do not send the message; why says why */
};

/*
 * After EHLO.  NONE, or MAY and not offered: TLS_START_PLAIN, nothing
 * sent.  Otherwise, if not offered: FAIL ("TLS is required, but was not
 * offered by host X").  Else STARTTLS, a 220 reply (else FAIL with the
 * reply), the handshake (SNI = peer_name when it is a name) and, for
 * VERIFY, the chain against the CA file and the name (X509_check_host)
 * against peer_name: the MX host name, or the [host] of the route.
 */
enum tls_start tls_client_start(struct tls_client *tc, struct smtp_conn *c,
	    enum tls_policy pol, const char *peer_name, int offered, char *why,
	    size_t whylen);
void	tls_client_free(struct tls_client *tc);

#endif
