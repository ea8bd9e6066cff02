/*
 * test_tls_server.c: the session's TLS server (smtpd-session/tls_server.c)
 * over socketpairs, with certificates made in memory: certificate loading,
 * SNI choosing among an RSA and two ECDSA certificates (exact, wildcard,
 * case, unknown and missing names), the description for the Received:
 * header, record I/O in both directions, and the handshakes that must
 * fail: TLS 1.1, a silent client (timeout), a client that hangs up, a
 * context without keys.
 *
 * The keyholder is not part of this test (tests/unit/keys.am covers it):
 * tls_keys_use() below stands in for smtpd-session/tls_keys.c and puts
 * the test's own key into the context, failing when keys_fd is -1 as the
 * real one fails without a keyholder channel.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "smtpd-session/tls_keys.h"
#include "smtpd-session/tls_server.h"
#include "tests/unit/t.h"
#include "util/conf.h"
#include "util/xmalloc.h"

#define NCERTS	3

static EVP_PKEY *keys[NCERTS];
static char dir[] = "/tmp/test_tls_server.XXXXXX";

/* Stand-in for the keyholder's tls_keys_use (see the top of the file). */
int
tls_keys_use(SSL_CTX *ctx, int keys_fd, char *err, size_t errlen)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	size_t i;

	if (keys_fd == -1) {
		snprintf(err, errlen, "no keyholder channel");
		return -1;
	}
	for (i = 0; i < NCERTS; i++)
		if (keys[i] != NULL && x != NULL && X509_check_private_key(x, keys[i]) == 1)
			return SSL_CTX_use_PrivateKey(ctx, keys[i]) == 1 ? 0 : -1;
	snprintf(err, errlen, "no key for this certificate");
	return -1;
}

/* A self-signed certificate for cn with subjectAltName san, as PEM in path. */
static int
make_cert(EVP_PKEY *k, const char *cn, const char *san, const char *path, long serial)
{
	X509 *x = X509_new();
	X509_NAME *n;
	X509V3_CTX v;
	X509_EXTENSION *e;
	FILE *f;
	int ok;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509V3_set_ctx_nodb(&v);
	X509V3_set_ctx(&v, x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v, NID_subject_alt_name, san);
	ok = e != NULL && X509_add_ext(x, e, -1) == 1 && X509_sign(x, k, EVP_sha256()) > 0;
	X509_EXTENSION_free(e);
	if (ok && (f = fopen(path, "w")) != NULL) {
		ok = PEM_write_X509(f, x) == 1;
		ok = fclose(f) == 0 && ok;
	} else
		ok = 0;
	X509_free(x);
	return ok ? 0 : -1;
}

static struct conf *
conf_with(const char *certs)
{
	char text[2048];
	struct conf *cfg = NULL;

	snprintf(text, sizeof(text), "listen = 127.0.0.1:25\n"
	    "smtpd_tls_cert_files = %s\nsmtpd_tls_key_files = %s\n", certs, certs);
	if (conf_parse("test.conf", text, strlen(text), &cfg, stderr) != 0)
		return NULL;
	return cfg;
}

/*
 * The client, in a child: handshake (SNI sni, at most TLS version
 * maxver if not 0), send "hello", expect "world".  Exit 0 on success.
 */
static void __attribute__((noreturn))
client(int fd, const char *sni, int maxver)
{
	char buf[8];
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	SSL *s;
	size_t got = 0, n;

	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	if (maxver != 0) {
		SSL_CTX_set_security_level(c, 0);
		SSL_CTX_set_min_proto_version(c, TLS1_VERSION);
		SSL_CTX_set_max_proto_version(c, maxver);
		SSL_CTX_set_cipher_list(c, "DEFAULT:@SECLEVEL=0");
	}
	s = SSL_new(c);
	SSL_set_fd(s, fd);
	if (sni != NULL)
		SSL_set_tlsext_host_name(s, sni);
	if (SSL_connect(s) != 1)
		_exit(2);
	if (SSL_write(s, "hello", 5) != 5)
		_exit(3);
	while (got < 5 && SSL_read_ex(s, buf + got, 5 - got, &n) == 1)
		got += n;
	_exit(got == 5 && memcmp(buf, "world", 5) == 0 ? 0 : 4);
}

/* Repeat an I/O call of tls_server.h until it moves bytes or fails. */
static ssize_t
io_wait(SSL *ssl, int fd, int writing, void *p, size_t n)
{
	char err[256];
	struct pollfd pfd;
	short wait;
	ssize_t r;
	int tries;

	for (tries = 0; tries < 100; tries++) {
		r = writing ? tls_server_write(ssl, p, n, &wait, err, sizeof(err)) :
		    tls_server_read(ssl, p, n, &wait, err, sizeof(err));
		if (r >= 0 || wait == 0)
			return r;
		pfd.fd = fd;
		pfd.events = wait;
		if (poll(&pfd, 1, 5000) <= 0)
			return -1;
	}
	return -1;
}

/* One handshake over a socketpair; what the server saw, in *chosen etc. */
struct hs {
	int		 ok;		/* handshake and I/O both ways worked */
	int		 client_status;
	size_t		 chosen;
	char		 sni[TLS_SERVER_NAME_MAX + 1];
	char		 desc[TLS_SERVER_DESC_MAX];
	char		 err[256];
};

static void
handshake(struct tls_server *ts, const char *sni, int maxver, struct hs *out)
{
	char buf[8];
	int sv[2], st;
	size_t got = 0;
	ssize_t n;
	pid_t pid;
	SSL *ssl;

	memset(out, 0, sizeof(*out));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		return;
	if ((pid = fork()) == 0) {
		close(sv[0]);
		client(sv[1], sni, maxver);
	}
	close(sv[1]);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	ssl = tls_server_accept(ts, sv[0], 5000, out->err, sizeof(out->err));
	if (ssl != NULL) {
		out->chosen = ts->chosen;
		strlcpy_m(out->sni, ts->sni, sizeof(out->sni));
		tls_server_describe(ssl, out->desc, sizeof(out->desc));
		while (got < 5 && (n = io_wait(ssl, sv[0], 0, buf + got, 5 - got)) > 0)
			got += (size_t)n;
		out->ok = got == 5 && memcmp(buf, "hello", 5) == 0 &&
		    io_wait(ssl, sv[0], 1, "world", 5) == 5;
		SSL_free(ssl);
	}
	close(sv[0]);
	waitpid(pid, &st, 0);
	out->client_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
test_sni(struct tls_server *ts)
{
	static const struct {
		const char	*label;
		const char	*sni;
		size_t		 want;
	} cases[] = {
		{ "no SNI gets the first", NULL, 0 },
		{ "first by name", "mx1.example.org", 0 },
		{ "second (ECDSA) by name", "mx2.example.org", 1 },
		{ "second by its other name", "smtp.example.org", 1 },
		{ "name in another case", "MX2.Example.ORG", 1 },
		{ "third by wildcard", "mail.example.net", 2 },
		{ "wildcard covers one label only", "a.mail.example.net", 0 },
		{ "unknown name gets the first", "unknown.example.com", 0 },
		{ "bare domain of the wildcard", "example.net", 0 },
	};
	struct hs r;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		handshake(ts, cases[i].sni, 0, &r);
		T_OK(r.ok && r.client_status == 0, "sni: %s: handshake and I/O (%s, client %d)",
		    cases[i].label, r.err, r.client_status);
		T_OK(r.chosen == cases[i].want, "sni: %s: certificate %zu (got %zu)",
		    cases[i].label, cases[i].want + 1, r.chosen + 1);
		T_OK(strcmp(r.sni, cases[i].sni != NULL ? cases[i].sni : "") == 0,
		    "sni: %s: name kept as sent", cases[i].label);
	}
	handshake(ts, "mx1.example.org", 0, &r);
	T_OK(strncmp(r.desc, "TLSv1.3 with cipher TLS_", 24) == 0 &&
	    strstr(r.desc, " (256/256 bits)") != NULL,
	    "describe: \"%s\" names version, cipher and bits", r.desc);
	handshake(ts, "mx1.example.org", TLS1_2_VERSION, &r);
	T_OK(r.ok && strncmp(r.desc, "TLSv1.2 with cipher ECDHE-", 26) == 0,
	    "TLS 1.2 accepted, ECDHE: \"%s\"", r.desc);
}

static void
test_refused(struct tls_server *ts)
{
	struct timespec a, b;
	int sv[2];
	long ms;
	struct hs r;
	SSL *ssl;
	char err[256];

	handshake(ts, NULL, TLS1_1_VERSION, &r);
	T_OK(!r.ok && r.client_status == 2 && strstr(r.err, "unsupported protocol") != NULL,
	    "TLS 1.1 refused by the server (%s)", r.err);
	handshake(ts, NULL, TLS1_VERSION, &r);
	T_OK(!r.ok && r.client_status == 2 && strstr(r.err, "unsupported protocol") != NULL,
	    "TLS 1.0 refused by the server (%s)", r.err);

	/* A client that says nothing: the handshake gives up at the timeout. */
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	clock_gettime(CLOCK_MONOTONIC, &a);
	ssl = tls_server_accept(ts, sv[0], 300, err, sizeof(err));
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	T_OK(ssl == NULL && strcmp(err, "timed out") == 0 && ms >= 290 && ms < 2000,
	    "silent client: timed out after %ld ms (%s)", ms, err);
	close(sv[1]);
	/* A client that hangs up. */
	ssl = tls_server_accept(ts, sv[0], 2000, err, sizeof(err));
	T_OK(ssl == NULL && strcmp(err, "client closed the connection") == 0,
	    "client hangs up: %s", err);
	close(sv[0]);
	/* Plain text instead of a ClientHello (a pipelined command). */
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	T_OK(write(sv[1], "RSET\r\n", 6) == 6, "plain text: written");
	ssl = tls_server_accept(ts, sv[0], 2000, err, sizeof(err));
	T_OK(ssl == NULL && err[0] != '\0', "plain text instead of TLS fails: %s", err);
	close(sv[0]);
	close(sv[1]);
}

/* A PEM file at path: the file copy_first (if any), then a certificate
 * block that is not one. */
static void
write_broken_pem(const char *path, const char *copy_first)
{
	char buf[4096];
	FILE *in = NULL, *f;
	size_t n;

	if ((f = fopen(path, "w")) == NULL)
		return;
	if (copy_first != NULL && (in = fopen(copy_first, "r")) != NULL) {
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			fwrite(buf, 1, n, f);
		fclose(in);
	}
	fputs("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", f);
	fclose(f);
}

static void
test_init(const char *paths)
{
	struct tls_server ts;
	struct conf *cfg;
	char err[512], bad[600], leaf[600];
	SSL *ssl;
	int sv[2];

	/* Without a keyholder channel: chains load, the server is not ready. */
	cfg = conf_with(paths);
	T_OK(cfg != NULL && tls_server_init(&ts, cfg, -1, err, sizeof(err)) == -1 &&
	    ts.nctx == NCERTS && !ts.ready && strstr(err, "no keyholder channel") != NULL,
	    "no keys: chains loaded, not ready (%s)", err);
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	ssl = tls_server_accept(&ts, sv[0], 100, err, sizeof(err));
	T_OK(ssl == NULL && strcmp(err, "TLS not available") == 0,
	    "no keys: no handshake (%s)", err);
	close(sv[0]);
	close(sv[1]);
	tls_server_free(&ts);
	conf_free(cfg);

	/* Building when no chain was read is refused, not a crash. */
	memset(&ts, 0, sizeof(ts));
	T_OK(tls_server_build(&ts, 0, err, sizeof(err)) == -1 && ts.nctx == 0 &&
	    strstr(err, "no certificate chain") != NULL,
	    "build with nothing read: refused (%s)", err);
	tls_server_free(&ts);

	/* A missing chain file: nothing loaded, the path named. */
	snprintf(bad, sizeof(bad), "%s %s/missing.pem", paths, dir);
	cfg = conf_with(bad);
	T_OK(cfg != NULL && tls_server_init(&ts, cfg, 0, err, sizeof(err)) == -1 &&
	    ts.nctx == 0 && !ts.ready && strstr(err, "missing.pem") != NULL,
	    "missing file: refused (%s)", err);
	conf_free(cfg);

	/* A file that holds no certificate. */
	snprintf(bad, sizeof(bad), "%s/garbage.pem", dir);
	write_broken_pem(bad, NULL);
	cfg = conf_with(bad);
	T_OK(cfg != NULL && tls_server_init(&ts, cfg, 0, err, sizeof(err)) == -1 &&
	    ts.nctx == 0 && strstr(err, "garbage.pem") != NULL,
	    "garbage file: refused (%s)", err);
	conf_free(cfg);
	unlink(bad);

	/* A good leaf followed by a broken chain certificate: refused too,
	 * not served with half a chain. */
	snprintf(bad, sizeof(bad), "%s/halfchain.pem", dir);
	snprintf(leaf, sizeof(leaf), "%s/c0.pem", dir);
	write_broken_pem(bad, leaf);
	cfg = conf_with(bad);
	T_OK(cfg != NULL && tls_server_init(&ts, cfg, 0, err, sizeof(err)) == -1 &&
	    ts.nctx == 0 && strstr(err, "halfchain.pem") != NULL,
	    "leaf then a broken chain certificate: refused (%s)", err);
	conf_free(cfg);
	unlink(bad);
}

int
main(void)
{
	static const struct {
		int		 ec;
		const char	*cn;
		const char	*san;
	} certs[NCERTS] = {
		{ 0, "mx1.example.org", "DNS:mx1.example.org" },
		{ 1, "mx2.example.org", "DNS:mx2.example.org,DNS:smtp.example.org" },
		{ 1, "wildcard", "DNS:*.example.net" },
	};
	char paths[NCERTS * 64 + 1] = "", path[64];
	struct tls_server ts;
	struct conf *cfg;
	char err[512];
	size_t i, len;

	if (mkdtemp(dir) == NULL) {
		T_OK(0, "mkdtemp: %s", strerror(errno));
		return t_done();
	}
	for (i = 0; i < NCERTS; i++) {
		keys[i] = certs[i].ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
		snprintf(path, sizeof(path), "%s/c%zu.pem", dir, i);
		T_OK(keys[i] != NULL && make_cert(keys[i], certs[i].cn, certs[i].san,
		    path, (long)i + 1) == 0, "set-up: certificate %zu", i + 1);
		len = strlen(paths);
		snprintf(paths + len, sizeof(paths) - len, "%s ", path);
	}
	cfg = conf_with(paths);
	T_OK(cfg != NULL && tls_server_init(&ts, cfg, 0, err, sizeof(err)) == 0 &&
	    ts.nctx == NCERTS && ts.ready, "init: %d certificates, ready (%s)", NCERTS,
	    cfg != NULL ? err : "bad conf");
	test_sni(&ts);
	test_refused(&ts);
	tls_server_free(&ts);
	T_OK(ts.nctx == 0 && ts.ctx == NULL, "free: empty");
	conf_free(cfg);
	test_init(paths);
	for (i = 0; i < NCERTS; i++) {
		snprintf(path, sizeof(path), "%s/c%zu.pem", dir, i);
		unlink(path);
		EVP_PKEY_free(keys[i]);
	}
	rmdir(dir);
	return t_done();
}
