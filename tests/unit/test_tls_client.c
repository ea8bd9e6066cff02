/*
 * test_tls_client.c: the shared TLS settings (common/util/tls.c), the
 * outbound policy lookup and STARTTLS (delivery-agent/tls_client.c), and
 * the batching, TCP_NODELAY and TLS paths of smtp_conn.c.
 *
 * Certificates are made here with the OpenSSL API (a CA, a server
 * certificate for mx.test and 127.0.0.1), so nothing is read from the
 * system.  Handshakes between contexts run in-process over a socketpair;
 * STARTTLS runs against a forked server on 127.0.0.1.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "delivery-agent/smtp_conn.h"
#include "delivery-agent/tls_client.h"
#include "util/conf.h"
#include "util/tls.h"
#include "t.h"

static char tmpdir[] = "/tmp/test_tls_client.XXXXXX";
static char ca_path[256];
static EVP_PKEY *ca_key, *ec_key, *rsa_key;
static X509 *ca_cert, *ec_cert, *rsa_cert;

/* ---- certificates ---- */

static int
cert_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return 0;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok;
}

/* A certificate for cn (with sans, or a CA) signed by issuer (or self). */
static X509 *
cert_make(const char *cn, const char *sans, EVP_PKEY *key, X509 *issuer,
    EVP_PKEY *issuer_key, long serial)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name);
	X509_NAME_free(name);
	X509_set_pubkey(x, key);
	if (issuer == NULL) {
		cert_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		cert_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		cert_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		cert_ext(x, issuer, NID_subject_alt_name, sans);
		cert_ext(x, issuer, NID_ext_key_usage, "serverAuth");
	}
	if (X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) == 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int
certs_setup(void)
{
	FILE *f;

	ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (ca_key == NULL || ec_key == NULL || rsa_key == NULL)
		return -1;
	ca_cert = cert_make("test CA", NULL, ca_key, NULL, NULL, 1);
	ec_cert = cert_make("mx.test", "DNS:mx.test,IP:127.0.0.1", ec_key,
	    ca_cert, ca_key, 2);
	rsa_cert = cert_make("mx.test", "DNS:mx.test,IP:127.0.0.1", rsa_key,
	    ca_cert, ca_key, 3);
	if (ca_cert == NULL || ec_cert == NULL || rsa_cert == NULL)
		return -1;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", tmpdir);
	if ((f = fopen(ca_path, "w")) == NULL)
		return -1;
	PEM_write_X509(f, ca_cert);
	return fclose(f) == 0 ? 0 : -1;
}

/* Our server context with both certificates (RSA and ECDSA). */
static SSL_CTX *
server_ctx(void)
{
	char err[256];
	SSL_CTX *ctx = tls_server_ctx(err, sizeof(err));

	if (ctx == NULL)
		return NULL;
	if (SSL_CTX_use_certificate(ctx, rsa_cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, rsa_key) != 1 ||
	    SSL_CTX_use_certificate(ctx, ec_cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, ec_key) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * A context that allows what ours must refuse: versions min..max, the
 * given TLS 1.2 cipher list and TLS 1.3 suites, security level 0.
 */
static SSL_CTX *
loose_ctx(int server, int min, int max, const char *ciphers,
    const char *suites, const char *groups)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	SSL_CTX_set_security_level(ctx, 0);
	SSL_CTX_set_min_proto_version(ctx, min);
	SSL_CTX_set_max_proto_version(ctx, max);
	SSL_CTX_set_cipher_list(ctx, ciphers != NULL ? ciphers : "ALL:@SECLEVEL=0");
	if (suites != NULL)
		SSL_CTX_set_ciphersuites(ctx, suites);
	if (groups != NULL)
		SSL_CTX_set1_groups_list(ctx, groups);
	if (server) {
		SSL_CTX_use_certificate(ctx, rsa_cert);
		SSL_CTX_use_PrivateKey(ctx, rsa_key);
	}
	return ctx;
}

/* ---- in-process handshakes ---- */

/*
 * Handshake client against server over a socketpair.  Returns 1 when
 * both sides finished, 0 when either failed; desc gets the client's
 * tls_describe().
 */
static int
handshake(SSL_CTX *cctx, SSL_CTX *sctx, char *desc, size_t descsz)
{
	SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
	int sv[2], cdone = 0, sdone = 0, i, r, ok = 0;

	desc[0] = '\0';
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1)
		return 0;
	SSL_set_fd(c, sv[0]);
	SSL_set_fd(s, sv[1]);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	for (i = 0; i < 1000 && !(cdone && sdone); i++) {
		if (!cdone) {
			r = SSL_do_handshake(c);
			if (r == 1)
				cdone = 1;
			else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ &&
			    SSL_get_error(c, r) != SSL_ERROR_WANT_WRITE)
				break;
		}
		if (!sdone) {
			r = SSL_do_handshake(s);
			if (r == 1)
				sdone = 1;
			else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ &&
			    SSL_get_error(s, r) != SSL_ERROR_WANT_WRITE)
				break;
		}
	}
	if (cdone && sdone) {
		ok = 1;
		tls_describe(c, desc, descsz);
	}
	ERR_clear_error();
	SSL_free(c);
	SSL_free(s);
	close(sv[0]);
	close(sv[1]);
	return ok;
}

struct hs_case {
	const char	*label;
	int		 ours_is_server;	/* else ours is the client */
	int		 min, max;		/* the other side's versions */
	const char	*ciphers;		/* its TLS 1.2 list (NULL: all) */
	const char	*suites;		/* its TLS 1.3 suites (NULL: default) */
	const char	*groups;		/* its groups (NULL: default) */
	int		 ok;
	const char	*desc;			/* expected, when ok */
};

static const struct hs_case hs_cases[] = {
	{ "server refuses a TLS 1.1 client", 1, TLS1_1_VERSION, TLS1_1_VERSION,
	    NULL, NULL, NULL, 0, NULL },
	{ "server refuses a TLS 1.0 client", 1, TLS1_VERSION, TLS1_VERSION,
	    NULL, NULL, NULL, 0, NULL },
	{ "server refuses a TLS 1.2 client with CBC ciphers only", 1,
	    TLS1_2_VERSION, TLS1_2_VERSION,
	    "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA384", NULL, NULL, 0, NULL },
	{ "server refuses a TLS 1.2 client without ECDHE", 1,
	    TLS1_2_VERSION, TLS1_2_VERSION,
	    "AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256", NULL, NULL, 0, NULL },
	{ "server refuses a TLS 1.3 client with only finite-field groups", 1,
	    TLS1_3_VERSION, TLS1_3_VERSION, NULL, NULL, "ffdhe2048", 0, NULL },
	{ "server takes TLS 1.2 with its own cipher order", 1,
	    TLS1_2_VERSION, TLS1_2_VERSION,
	    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384", NULL, NULL,
	    1, "TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384" },
	{ "server takes TLS 1.2 ChaCha20 when that is all", 1,
	    TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-RSA-CHACHA20-POLY1305", NULL,
	    NULL, 1, "TLSv1.2 ECDHE-RSA-CHACHA20-POLY1305" },
	{ "server takes TLS 1.3 with its own suite order", 1,
	    TLS1_2_VERSION, TLS1_3_VERSION, NULL,
	    "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384", NULL,
	    1, "TLSv1.3 TLS_AES_256_GCM_SHA384" },
	{ "client refuses a TLS 1.1 server", 0, TLS1_1_VERSION, TLS1_1_VERSION,
	    NULL, NULL, NULL, 0, NULL },
	{ "client refuses a TLS 1.0 server", 0, TLS1_VERSION, TLS1_VERSION,
	    NULL, NULL, NULL, 0, NULL },
	{ "client refuses a TLS 1.2 server with CBC ciphers only", 0,
	    TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-RSA-AES128-SHA", NULL, NULL,
	    0, NULL },
	{ "client refuses a TLS 1.2 server without ECDHE", 0,
	    TLS1_2_VERSION, TLS1_2_VERSION, "AES256-GCM-SHA384", NULL, NULL, 0, NULL },
	{ "client takes a TLS 1.2 server", 0, TLS1_2_VERSION, TLS1_2_VERSION,
	    "ECDHE-RSA-AES128-GCM-SHA256", NULL, NULL,
	    1, "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256" },
};

static void
test_handshakes(void)
{
	char desc[128], err[256];
	SSL_CTX *ours_s = server_ctx(), *ours_c = tls_client_ctx(NULL, err, sizeof(err));
	SSL_CTX *other, *lc, *ls;
	size_t i;
	int ok;

	T_OK(ours_s != NULL && ours_c != NULL, "our contexts are made");
	if (ours_s == NULL || ours_c == NULL)
		return;
	/* The control: the loose contexts can do TLS 1.1 at all, so the
	 * refusals below are ours. */
	lc = loose_ctx(0, TLS1_1_VERSION, TLS1_1_VERSION, NULL, NULL, NULL);
	ls = loose_ctx(1, TLS1_VERSION, TLS1_3_VERSION, NULL, NULL, NULL);
	T_OK(handshake(lc, ls, desc, sizeof(desc)) && strncmp(desc, "TLSv1.1 ", 8) == 0,
	    "control: loose client and server do TLS 1.1 (%s)", desc);
	SSL_CTX_free(lc);
	SSL_CTX_free(ls);
	for (i = 0; i < sizeof(hs_cases) / sizeof(hs_cases[0]); i++) {
		const struct hs_case *c = &hs_cases[i];

		other = loose_ctx(!c->ours_is_server, c->min, c->max, c->ciphers,
		    c->suites, c->groups);
		if (c->ours_is_server)
			ok = handshake(other, ours_s, desc, sizeof(desc));
		else
			ok = handshake(ours_c, other, desc, sizeof(desc));
		SSL_CTX_free(other);
		T_OK(ok == c->ok && (!ok || strcmp(desc, c->desc) == 0),
		    "%s (%s)", c->label, ok ? desc : "refused");
	}
	T_OK(handshake(ours_c, ours_s, desc, sizeof(desc)) &&
	    strcmp(desc, "TLSv1.3 TLS_AES_256_GCM_SHA384") == 0,
	    "our client and server: %s", desc);
	SSL_CTX_free(ours_s);
	SSL_CTX_free(ours_c);
}

static void
test_ctx_settings(void)
{
	const uint64_t must = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_TICKET;
	char err[256], buf[64];
	SSL_CTX *s = tls_server_ctx(err, sizeof(err));
	SSL_CTX *c = tls_client_ctx(ca_path, err, sizeof(err));
	SSL_CTX *bad;

	T_OK(s != NULL && (SSL_CTX_get_options(s) & must) == must &&
	    (SSL_CTX_get_options(s) & SSL_OP_CIPHER_SERVER_PREFERENCE),
	    "server: no compression, renegotiation, tickets; server preference");
	T_OK(s != NULL && SSL_CTX_get_num_tickets(s) == 0 &&
	    SSL_CTX_get_session_cache_mode(s) == SSL_SESS_CACHE_OFF,
	    "server: no TLS 1.3 tickets, no session cache");
	T_OK(s != NULL && SSL_CTX_get_min_proto_version(s) == TLS1_2_VERSION &&
	    SSL_CTX_get_max_proto_version(s) == TLS1_3_VERSION,
	    "server: TLS 1.2 to 1.3");
	T_OK(c != NULL && (SSL_CTX_get_options(c) & must) == must &&
	    SSL_CTX_get_min_proto_version(c) == TLS1_2_VERSION,
	    "client: same options and floor");
	T_OK(c != NULL && X509_STORE_get0_objects(SSL_CTX_get_cert_store(c)) != NULL &&
	    sk_X509_OBJECT_num(X509_STORE_get0_objects(SSL_CTX_get_cert_store(c))) == 1,
	    "client: the CA file is loaded into memory (1 object)");
	SSL_CTX_free(s);
	SSL_CTX_free(c);

	bad = tls_client_ctx("/nonexistent/ca.pem", err, sizeof(err));
	T_OK(bad == NULL && strstr(err, "/nonexistent/ca.pem") != NULL,
	    "client: a missing CA file is an error naming it (%s)", err);
	T_OK(ERR_peek_error() == 0, "client: the error queue is left empty");
	snprintf(err, sizeof(err), "%s/notpem", tmpdir);
	{
		FILE *f = fopen(err, "w");

		if (f != NULL) {
			fputs("not a certificate\n", f);
			fclose(f);
		}
	}
	bad = tls_client_ctx(err, buf, sizeof(buf));
	T_OK(bad == NULL && buf[0] != '\0', "client: a CA file without "
	    "certificates is an error, cut to the buffer (%s)", buf);
	SSL_CTX_free(bad);
}

static void
test_describe_errstr(void)
{
	char buf[128], tiny[8];
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	tls_describe(NULL, buf, sizeof(buf));
	T_OK(buf[0] == '\0', "describe: no TLS is \"\"");
	ERR_clear_error();
	T_OK(strcmp(tls_errstr(buf, sizeof(buf)), "unknown TLS error") == 0,
	    "errstr: an empty queue");
	(void)SSL_CTX_set_cipher_list(ctx, "NO-SUCH-CIPHER");
	T_OK(ERR_peek_error() != 0, "errstr: set-up put an error on the queue");
	tls_errstr(buf, sizeof(buf));
	T_OK(strstr(buf, "no cipher match") != NULL && ERR_peek_error() == 0,
	    "errstr: reason text, queue emptied (%s)", buf);
	(void)SSL_CTX_set_cipher_list(ctx, "NO-SUCH-CIPHER");
	(void)SSL_CTX_set_cipher_list(ctx, "NO-SUCH-CIPHER-EITHER");
	tls_errstr(tiny, sizeof(tiny));
	T_OK(strlen(tiny) == sizeof(tiny) - 1 && ERR_peek_error() == 0,
	    "errstr: cut to a tiny buffer, queue emptied (%s)", tiny);
	SSL_CTX_free(ctx);
}

/* ---- policies ---- */

static struct conf *
conf_from(const char *name, const char *text)
{
	char path[300];
	struct conf *cfg = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	if ((f = fopen(path, "w")) == NULL)
		return NULL;
	fputs(text, f);
	fclose(f);
	if (conf_load_file(path, &cfg, stderr) != 0)
		return NULL;
	return cfg;
}

struct pol_case {
	const char	*label;
	const char	*domain;
	enum tls_policy	 want;
};

static const struct pol_case pol_table_cases[] = {
	{ "exact key", "example.com", TLS_POLICY_VERIFY },
	{ "exact key, upper case and a trailing dot", "EXAMPLE.com.", TLS_POLICY_VERIFY },
	{ "subdomain key", "a.example.com", TLS_POLICY_NONE },
	{ "exact beats the parent's subdomain key", "sub.example.com", TLS_POLICY_MAY },
	{ "most specific parent", "x.sub.example.com", TLS_POLICY_ENCRYPT },
	{ "deeper still", "y.x.sub.example.com", TLS_POLICY_ENCRYPT },
	{ "no key: relay_tls", "example.org", TLS_POLICY_ENCRYPT },
	{ "a look-alike is not a subdomain", "badexample.com", TLS_POLICY_ENCRYPT },
	{ "empty domain: relay_tls", "", TLS_POLICY_ENCRYPT },
};

static void
test_policy(void)
{
	char text[1024], err[256], path[300];
	struct conf *cfg;
	struct tls_client *tc;
	size_t i;
	FILE *f;

	snprintf(path, sizeof(path), "%s/tls_policy", tmpdir);
	if ((f = fopen(path, "w")) != NULL) {
		fputs("# outbound TLS\nexample.com verify\n.example.com none\n"
		    "sub.example.com may\n.sub.example.com encrypt\n", f);
		fclose(f);
	}
	snprintf(text, sizeof(text), "relay_tls = encrypt\n"
	    "relay_tls_policy_maps = %s\nrelay_tls_ca_file = %s\n", path, ca_path);
	cfg = conf_from("policy.conf", text);
	T_OK(cfg != NULL, "policy: configuration with a table loads");
	if (cfg == NULL)
		return;
	tc = tls_client_new(cfg, err, sizeof(err));
	T_OK(tc != NULL, "policy: tls_client_new (%s)", tc == NULL ? err : "ok");
	/* The agent frees its configuration after start-up. */
	conf_free(cfg);
	for (i = 0; tc != NULL && i < sizeof(pol_table_cases) / sizeof(pol_table_cases[0]); i++) {
		const struct pol_case *c = &pol_table_cases[i];
		enum tls_policy got = tls_client_policy(tc, c->domain);

		T_OK(got == c->want, "policy: %s: %s -> %d", c->label, c->domain, got);
	}
	tls_client_free(tc);

	/* Without a table every domain gets relay_tls; its default is may. */
	snprintf(text, sizeof(text), "relay_tls_ca_file = %s\n", ca_path);
	cfg = conf_from("default.conf", text);
	tc = cfg != NULL ? tls_client_new(cfg, err, sizeof(err)) : NULL;
	T_OK(tc != NULL && tls_client_policy(tc, "example.com") == TLS_POLICY_MAY,
	    "policy: the default is may");
	tls_client_free(tc);
	conf_free(cfg);
	cfg = conf_from("none.conf", "relay_tls = none\nrelay_tls_ca_file = /nonexistent/ca.pem\n");
	tc = cfg != NULL ? tls_client_new(cfg, err, sizeof(err)) : NULL;
	T_OK(tc != NULL && tls_client_policy(tc, "example.com") == TLS_POLICY_NONE,
	    "policy: none, and a missing CA file is only a warning without verify");
	tls_client_free(tc);
	conf_free(cfg);
	cfg = conf_from("verify.conf", "relay_tls = verify\nrelay_tls_ca_file = /nonexistent/ca.pem\n");
	tc = cfg != NULL ? tls_client_new(cfg, err, sizeof(err)) : NULL;
	T_OK(cfg != NULL && tc == NULL && strstr(err, "/nonexistent/ca.pem") != NULL,
	    "policy: verify needs its CA file (%s)", err);
	tls_client_free(tc);
	conf_free(cfg);
}

/* ---- STARTTLS against a forked server ---- */

enum srv_mode {
	SRV_SILENT,	/* expects the client to send nothing */
	SRV_TLS,	/* 220, handshake, EHLO -> 250 */
	SRV_REFUSE,	/* 454 */
	SRV_INJECT,	/* 220 and a pipelined reply in the same write */
	SRV_CLOSE,	/* 220, then close */
	SRV_TLS_BIG,	/* SRV_TLS, then a large body up to CRLF.CRLF -> 250 */
};

/* The large body of SRV_TLS_BIG: more than the socket buffers hold. */
#define BIG_BODY	(3 * 1024 * 1024)

/* Read one line from fd (blocking); length or -1. */
static ssize_t
srv_line(int fd, char *line, size_t sz)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < sz) {
		if ((r = read(fd, line + n, 1)) <= 0)
			return n > 0 ? (ssize_t)n : -1;
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
	return (ssize_t)n;
}

/*
 * Read a body of BIG_BODY bytes of 'x' and the CRLF.CRLF after it,
 * slowly at first so the client's writes must wait, then answer 250.
 */
static int
srv_body(SSL *ssl)
{
	static char buf[65536];
	size_t got = 0, i;
	int n;

	usleep(300000);
	while (got < BIG_BODY + 5) {
		if ((n = SSL_read(ssl, buf, sizeof(buf))) <= 0)
			return -1;
		for (i = 0; i < (size_t)n; i++, got++)
			if (buf[i] != (got < BIG_BODY ? 'x' :
			    "\r\n.\r\n"[got - BIG_BODY]))
				return -1;
	}
	return SSL_write(ssl, "250 2.0.0 queued\r\n", 18) == 18 ? 0 : -1;
}

/* The server's side of one case; its exit status is its verdict. */
static void
srv_run(int ls, enum srv_mode mode)
{
	char line[512];
	SSL_CTX *ctx;
	SSL *ssl;
	int fd, n;

	if ((fd = accept(ls, NULL, NULL)) == -1)
		_exit(10);
	if (mode == SRV_SILENT)
		_exit(srv_line(fd, line, sizeof(line)) == -1 ? 0 : 11);
	if (srv_line(fd, line, sizeof(line)) <= 0 || strcmp(line, "STARTTLS\r\n") != 0)
		_exit(12);
	switch (mode) {
	case SRV_REFUSE:
		(void)write(fd, "454 4.7.0 TLS not available now\r\n", 33);
		_exit(srv_line(fd, line, sizeof(line)) == -1 ? 0 : 13);
	case SRV_INJECT:
		(void)write(fd, "220 go ahead\r\n250 injected\r\n", 28);
		_exit(srv_line(fd, line, sizeof(line)) == -1 ? 0 : 14);
	case SRV_CLOSE:
		(void)write(fd, "220 go ahead\r\n", 14);
		_exit(0);
	default:
		break;
	}
	(void)write(fd, "220 go ahead\r\n", 14);
	if ((ctx = server_ctx()) == NULL || (ssl = SSL_new(ctx)) == NULL)
		_exit(15);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		_exit(0);	/* the client gave up: its verdict is checked */
	n = SSL_read(ssl, line, sizeof(line) - 1);
	if (n <= 0)
		_exit(0);	/* refused after the handshake (verify) */
	line[n] = '\0';
	if (strcmp(line, "EHLO agent.test\r\n") != 0)
		_exit(16);
	SSL_write(ssl, "250-mx.test\r\n250 PIPELINING\r\n", 29);
	if (mode == SRV_TLS_BIG && srv_body(ssl) == -1)
		_exit(18);
	n = SSL_read(ssl, line, sizeof(line) - 1);
	/* close_notify from the client's smtp_conn_close(). */
	_exit(n == 0 && SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN ? 0 : 17);
}

static int
listen_any(unsigned int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int s;

	if ((s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(s, 4) == -1 ||
	    getsockname(s, (struct sockaddr *)&sin, &len) == -1) {
		close(s);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return s;
}

static int
conn_to(struct smtp_conn *c, unsigned int port)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	return smtp_conn_open(c, (struct sockaddr *)&sin, sizeof(sin), 2000, 2000);
}

struct st_case {
	const char	*label;
	int		 with_ca;
	enum tls_policy	 pol;
	const char	*peer;
	int		 offered;
	enum srv_mode	 srv;
	enum tls_start	 want;
	const char	*why;	/* in why, or NULL for "" */
	const char	*tls;	/* prefix of c->tls */
};

static const struct st_case st_cases[] = {
	{ "none sends nothing", 1, TLS_POLICY_NONE, "mx.test", 1, SRV_SILENT,
	    TLS_START_PLAIN, NULL, "" },
	{ "may without STARTTLS sends nothing", 1, TLS_POLICY_MAY, "mx.test", 0,
	    SRV_SILENT, TLS_START_PLAIN, NULL, "" },
	{ "encrypt without STARTTLS fails, sends nothing", 1, TLS_POLICY_ENCRYPT,
	    "mx.test", 0, SRV_SILENT, TLS_START_FAIL,
	    "TLS is required, but was not offered by host mx.test", "" },
	{ "verify without STARTTLS fails, sends nothing", 1, TLS_POLICY_VERIFY,
	    "mx.test", 0, SRV_SILENT, TLS_START_FAIL,
	    "TLS is required, but was not offered by host mx.test", "" },
	{ "may with STARTTLS", 1, TLS_POLICY_MAY, "mx.test", 1, SRV_TLS,
	    TLS_START_OK, NULL, "TLSv1.3 TLS_AES_256_GCM_SHA384 verified=yes" },
	{ "may, wrong name: encrypted, not verified", 1, TLS_POLICY_MAY,
	    "other.test", 1, SRV_TLS, TLS_START_OK, NULL, "TLSv1.3 " },
	{ "a large body through TLS", 1, TLS_POLICY_ENCRYPT, "mx.test", 1,
	    SRV_TLS_BIG, TLS_START_OK, NULL, "TLSv1.3 " },
	{ "verify with the right name", 1, TLS_POLICY_VERIFY, "mx.test", 1, SRV_TLS,
	    TLS_START_OK, NULL, "TLSv1.3 TLS_AES_256_GCM_SHA384 verified=yes" },
	{ "verify with the right address", 1, TLS_POLICY_VERIFY, "127.0.0.1", 1,
	    SRV_TLS, TLS_START_OK, NULL, "TLSv1.3 TLS_AES_256_GCM_SHA384 verified=yes" },
	{ "verify with a wrong name", 1, TLS_POLICY_VERIFY, "wrong.test", 1, SRV_TLS,
	    TLS_START_FAIL, "server certificate not verified: host name mismatch",
	    "TLSv1.3 TLS_AES_256_GCM_SHA384 verified=no" },
	{ "verify with a wildcard-like name", 1, TLS_POLICY_VERIFY, "a.mx.test", 1,
	    SRV_TLS, TLS_START_FAIL, "host name mismatch", "TLSv1.3 " },
	{ "verify without the CA", 0, TLS_POLICY_VERIFY, "mx.test", 1, SRV_TLS,
	    TLS_START_FAIL, "certificate verification failed for mx.test: "
	    "unable to get local issuer certificate", "TLSv1.3 " },
	{ "encrypt without the CA: encrypted, not verified", 0, TLS_POLICY_ENCRYPT,
	    "mx.test", 1, SRV_TLS, TLS_START_OK, NULL,
	    "TLSv1.3 TLS_AES_256_GCM_SHA384 verified=no" },
	{ "encrypt, STARTTLS refused", 1, TLS_POLICY_ENCRYPT, "mx.test", 1,
	    SRV_REFUSE, TLS_START_FAIL,
	    "host mx.test refused to start TLS: 454 4.7.0 TLS not available now", "" },
	{ "may, STARTTLS refused: no fallback on this connection", 1,
	    TLS_POLICY_MAY, "mx.test", 1, SRV_REFUSE, TLS_START_FAIL,
	    "refused to start TLS", "" },
	{ "a reply pipelined after 220 is refused", 1, TLS_POLICY_ENCRYPT,
	    "mx.test", 1, SRV_INJECT, TLS_START_FAIL,
	    "protocol error with mx.test: the server sent more after its reply "
	    "to STARTTLS", "" },
	{ "the server closes after 220", 1, TLS_POLICY_ENCRYPT, "mx.test", 1,
	    SRV_CLOSE, TLS_START_FAIL, "TLS failed with mx.test: TLS handshake "
	    "failed", "" },
};

/* Send SRV_TLS_BIG's body in uneven pieces, then read the reply. */
static int
big_body(struct smtp_conn *c)
{
	static char piece[100000];
	const struct smtp_reply *r;
	size_t sent = 0, n;

	memset(piece, 'x', sizeof(piece));
	while (sent < BIG_BODY) {
		n = BIG_BODY - sent < 1 + sent % sizeof(piece) ?
		    BIG_BODY - sent : 1 + sent % sizeof(piece);
		if (smtp_conn_write(c, piece, n) == -1)
			return 0;
		sent += n;
	}
	if (smtp_conn_write(c, "\r\n.\r\n", 5) == -1 ||
	    (r = smtp_conn_reply(c)) == NULL)
		return 0;
	return r->code == 250;
}

static void
test_starttls(void)
{
	char text[512], err[256], why[512];
	struct conf *cfg_ca, *cfg_noca;
	struct tls_client *tc_ca, *tc_noca;
	size_t i;

	snprintf(text, sizeof(text), "relay_tls_ca_file = %s\n", ca_path);
	cfg_ca = conf_from("ca.conf", text);
	cfg_noca = conf_from("noca.conf", "relay_tls_ca_file = /nonexistent/ca.pem\n");
	tc_ca = cfg_ca != NULL ? tls_client_new(cfg_ca, err, sizeof(err)) : NULL;
	tc_noca = cfg_noca != NULL ? tls_client_new(cfg_noca, err, sizeof(err)) : NULL;
	T_OK(tc_ca != NULL && tc_noca != NULL, "starttls: clients made");
	if (tc_ca == NULL || tc_noca == NULL)
		return;
	for (i = 0; i < sizeof(st_cases) / sizeof(st_cases[0]); i++) {
		const struct st_case *c = &st_cases[i];
		const struct smtp_reply *r = NULL;
		struct smtp_conn conn;
		enum tls_start got;
		unsigned int port;
		int ls, status = -1;
		pid_t pid;

		if ((ls = listen_any(&port)) == -1) {
			T_OK(0, "%s: listen", c->label);
			continue;
		}
		if ((pid = fork()) == 0)
			srv_run(ls, c->srv);
		close(ls);
		if (conn_to(&conn, port) == -1) {
			T_OK(0, "%s: connect", c->label);
			continue;
		}
		got = tls_client_start(c->with_ca ? tc_ca : tc_noca, &conn, c->pol,
		    c->peer, c->offered, why, sizeof(why));
		T_OK(got == c->want, "%s: result %d", c->label, got);
		T_OK(c->why == NULL ? why[0] == '\0' : strstr(why, c->why) != NULL,
		    "%s: why \"%s\"", c->label, why);
		T_OK(strncmp(conn.tls, c->tls, strlen(c->tls)) == 0 &&
		    (c->tls[0] != '\0' || conn.tls[0] == '\0'),
		    "%s: tls \"%s\"", c->label, conn.tls);
		if (got == TLS_START_OK) {
			if (smtp_conn_write(&conn, "EHLO agent.test\r\n", 17) == 0)
				r = smtp_conn_reply(&conn);
			T_OK(r != NULL && r->code == 250 && r->nlines == 2,
			    "%s: EHLO and its reply through TLS", c->label);
		}
		if (got == TLS_START_OK && c->srv == SRV_TLS_BIG)
			T_OK(big_body(&conn), "%s: sent, and the reply read", c->label);
		smtp_conn_close(&conn);
		waitpid(pid, &status, 0);
		T_OK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "%s: the server saw what it should (status %d)", c->label,
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	tls_client_free(tc_ca);
	tls_client_free(tc_noca);
	conf_free(cfg_ca);
	conf_free(cfg_noca);
}

/* ---- batching and TCP_NODELAY in clear ---- */

/* Bytes readable on fd within ms, appended to dst; the count. */
static size_t
peer_read(int fd, char *dst, size_t sz, int ms)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	size_t n = 0;
	ssize_t r;

	while (n + 1 < sz && poll(&pfd, 1, ms) == 1) {
		if ((r = read(fd, dst + n, sz - 1 - n)) <= 0)
			break;
		n += (size_t)r;
		ms = 50;
	}
	dst[n] = '\0';
	return n;
}

static void
test_batching(void)
{
	const struct smtp_reply *r;
	struct smtp_conn conn;
	char got[4096];
	unsigned int port;
	socklen_t len;
	int ls, fd, one = 0;

	if ((ls = listen_any(&port)) == -1 || conn_to(&conn, port) == -1 ||
	    (fd = accept(ls, NULL, NULL)) == -1) {
		T_OK(0, "batching: set-up");
		return;
	}
	len = sizeof(one);
	T_OK(getsockopt(conn.fd, IPPROTO_TCP, TCP_NODELAY, &one, &len) == 0 && one != 0,
	    "TCP_NODELAY is set");
	T_OK(smtp_conn_write(&conn, "MAIL FROM:<a@b>\r\n", 17) == 0 &&
	    smtp_conn_write(&conn, "RCPT TO:<c@d>\r\n", 15) == 0,
	    "small writes are queued");
	T_OK(peer_read(fd, got, sizeof(got), 200) == 0, "nothing went out before a flush");
	T_OK(smtp_conn_flush(&conn) == 0 && conn.out.len == 0, "flush");
	peer_read(fd, got, sizeof(got), 1000);
	T_OK(strcmp(got, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n") == 0,
	    "both went out together, in order");
	T_OK(write(fd, "250 ok\r\n", 8) == 8 && smtp_conn_write(&conn, "DATA\r\n", 6) == 0,
	    "the server answers early, the client queues DATA");
	r = smtp_conn_reply(&conn);
	T_OK(r != NULL && r->code == 250, "a reply wait flushes and reads");
	peer_read(fd, got, sizeof(got), 1000);
	T_OK(strcmp(got, "DATA\r\n") == 0, "DATA went out before the wait");
	close(fd);
	close(ls);
	/* The server is gone: a write fails sooner or later, then every call. */
	{
		static char big[SMTP_CONN_OUT_MAX + 1];
		int i, failed = 0;

		memset(big, 'x', sizeof(big));
		for (i = 0; i < 50 && !failed; i++)
			failed = smtp_conn_write(&conn, big, sizeof(big)) == -1;
		T_OK(failed && conn.broken && conn.fail == SMTP_CONN_LOST,
		    "writes to a closed peer fail (%s)", conn.err);
		T_OK(smtp_conn_write(&conn, "QUIT\r\n", 6) == -1 &&
		    smtp_conn_reply(&conn) == NULL,
		    "after a failed send nothing more is tried");
	}
	smtp_conn_close(&conn);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (certs_setup() == -1) {
		T_OK(0, "certificates made");
		return t_done();
	}
	test_ctx_settings();
	test_describe_errstr();
	test_handshakes();
	test_policy();
	test_starttls();
	test_batching();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		T_OK(system(cmd) == 0, "clean-up of %s", tmpdir);
	}
	return t_done();
}
