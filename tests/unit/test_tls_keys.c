/*
 * test_tls_keys.c: real TLS handshakes whose server key is held by the
 * keyholder's code in another process.
 *
 * For each case a key and a self-signed certificate are made in memory;
 * a forked child plays the keyholder: it loads the key's PEM text into
 * a key store and answers IPC_S2K_SIGN on a SEQPACKET socketpair with
 * keyholder_answer(), exactly as keyholder/keyholder.c does, and exits
 * with the number of signatures it made.  The server context gets the
 * certificate only, and tls_keys_use() on the other end of the pair; a
 * client that trusts the certificate then runs the handshake with it
 * over a stream socketpair, so every signature it checks came from the
 * child.  Cases cover RSA PKCS#1 v1.5 (TLS 1.2), RSA-PSS (TLS 1.2 and
 * 1.3) and ECDSA P-256/P-384 (TLS 1.2 and 1.3), and failures: a
 * keyholder without the key, a keyholder that is gone, no channel.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "keyholder/keyholder.h"
#include "smtpd-session/tls_keys.h"
#include "t.h"
#include "util/ipc.h"
#include "util/log.h"

struct hs_case {
	const char	*label;
	const char	*alg;		/* "RSA" or "EC" */
	const char	*curve;
	int		 version;	/* TLS1_2_VERSION, TLS1_3_VERSION */
	const char	*sigalgs;	/* client's list, NULL: default */
	int		 keyholder;	/* 1 serves the key, 0 holds another
					   key, -1 is gone */
	int		 ok;		/* handshake expected to succeed */
};

static const struct hs_case hs_cases[] = {
	{ "RSA 2048, TLS 1.2, PKCS#1 v1.5", "RSA", NULL, TLS1_2_VERSION,
	  "RSA+SHA256", 1, 1 },
	{ "RSA 2048, TLS 1.2, RSA-PSS", "RSA", NULL, TLS1_2_VERSION,
	  "rsa_pss_rsae_sha256", 1, 1 },
	{ "RSA 2048, TLS 1.3 (RSA-PSS)", "RSA", NULL, TLS1_3_VERSION, NULL, 1, 1 },
	{ "RSA 2048, TLS 1.3, RSA-PSS SHA-512", "RSA", NULL, TLS1_3_VERSION,
	  "rsa_pss_rsae_sha512", 1, 1 },
	{ "ECDSA P-256, TLS 1.2", "EC", "P-256", TLS1_2_VERSION, NULL, 1, 1 },
	{ "ECDSA P-256, TLS 1.3", "EC", "P-256", TLS1_3_VERSION, NULL, 1, 1 },
	{ "ECDSA P-384, TLS 1.2", "EC", "P-384", TLS1_2_VERSION, NULL, 1, 1 },
	{ "ECDSA P-384, TLS 1.3", "EC", "P-384", TLS1_3_VERSION, NULL, 1, 1 },
	{ "RSA, keyholder without this key", "RSA", NULL, TLS1_3_VERSION, NULL, 0, 0 },
	{ "EC, keyholder without this key", "EC", "P-256", TLS1_2_VERSION, NULL, 0, 0 },
	{ "EC, keyholder gone", "EC", "P-256", TLS1_3_VERSION, NULL, -1, 0 },
	{ "RSA, keyholder gone", "RSA", NULL, TLS1_2_VERSION, NULL, -1, 0 },
};

static EVP_PKEY *
make_key(const char *alg, const char *curve)
{
	if (strcmp(alg, "RSA") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
}

/* A self-signed certificate for key. */
static X509 *
make_cert(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *n;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)"mx.example.test", -1, -1, 0);
	X509_set_issuer_name(x, n);
	if (X509_sign(x, key, EVP_sha256()) == 0)
		abort();
	return x;
}

/* The PEM text of key, as moatd would send it (caller frees). */
static char *
key_pem(EVP_PKEY *key, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *text;
	long n;

	PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &p);
	text = malloc((size_t)n);
	memcpy(text, p, (size_t)n);
	*len = (size_t)n;
	BIO_free(b);
	return text;
}

/* The child: serve fd with the keys of pem until EOF; exit = signatures made. */
static void __attribute__((noreturn))
keyholder_child(int fd, const char *pem, size_t len)
{
	static uint8_t msg[IPC_MAX_MSG];
	struct key_store ks;
	char err[256];
	size_t n;
	int signed_ = 0;

	key_store_init(&ks);
	if (key_store_load(&ks, pem, len, &n, err, sizeof(err)) == -1)
		_exit(100);
	for (;;) {
		uint8_t sig[MOAT_KEYOP_IN_MAX + 256];
		struct ipc_frame f;
		struct ipc_wr w;
		const char *why;
		size_t siglen;
		enum key_verdict v;

		if (ipc_recv(fd, msg, &f, &why) != 1)
			break;
		v = keyholder_answer(&ks, &f, &w, sig, sizeof(sig), &siglen, &why);
		if (v == KEYREQ_MALFORMED)
			_exit(101);
		if (v == KEYREQ_OK)
			signed_++;
		if (ipc_send(fd, &w, -1) == -1)
			_exit(102);
		ipc_wr_free(&w);
	}
	key_store_free(&ks);
	_exit(signed_ > 99 ? 99 : signed_);
}

/* Drive both ends until both handshakes end; 1 if both succeeded. */
static int
handshake(SSL *c, SSL *s)
{
	int i, cd = 0, sd = 0, r;

	for (i = 0; i < 1000 && (!cd || !sd); i++) {
		if (!cd) {
			r = SSL_do_handshake(c);
			if (r == 1)
				cd = 1;
			else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ &&
			    SSL_get_error(c, r) != SSL_ERROR_WANT_WRITE)
				return 0;
		}
		if (!sd) {
			r = SSL_do_handshake(s);
			if (r == 1)
				sd = 1;
			else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ &&
			    SSL_get_error(s, r) != SSL_ERROR_WANT_WRITE)
				return 0;
		}
	}
	return cd && sd;
}

/* After the handshake: one line each way, and the negotiated version. */
static int
exchange(SSL *c, SSL *s, int version)
{
	char buf[32];
	int i, n = 0;

	if (SSL_version(c) != version || SSL_write(c, "EHLO x\r\n", 8) != 8)
		return 0;
	for (i = 0; i < 100 && n <= 0; i++)
		n = SSL_read(s, buf, sizeof(buf));
	if (n != 8 || memcmp(buf, "EHLO x\r\n", 8) != 0 || SSL_write(s, "250 ok\r\n", 8) != 8)
		return 0;
	for (i = 0, n = 0; i < 100 && n <= 0; i++)
		n = SSL_read(c, buf, sizeof(buf));
	return n == 8 && memcmp(buf, "250 ok\r\n", 8) == 0;
}

static SSL_CTX *
client_ctx(const struct hs_case *hc, X509 *cert)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	SSL_CTX_set_min_proto_version(ctx, hc->version);
	SSL_CTX_set_max_proto_version(ctx, hc->version);
	X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), cert);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (hc->sigalgs != NULL && SSL_CTX_set1_sigalgs_list(ctx, hc->sigalgs) != 1)
		abort();
	return ctx;
}

static void
run_case(const struct hs_case *hc)
{
	EVP_PKEY *key, *other = NULL;
	SSL_CTX *sctx, *cctx;
	SSL *s, *c;
	X509 *cert;
	char err[256] = "", *pem;
	size_t pemlen;
	int kv[2], tv[2], status = 0, ok, used = 0;
	pid_t pid;

	key = make_key(hc->alg, hc->curve);
	cert = make_cert(key);
	if (hc->keyholder == 0)
		other = make_key(hc->alg, hc->curve);
	pem = key_pem(other != NULL ? other : key, &pemlen);
	/* The server side never sees the private key again. */
	EVP_PKEY_free(key);
	if (ipc_socketpair(kv) == -1 || socketpair(AF_UNIX, SOCK_STREAM, 0, tv) == -1)
		abort();
	if ((pid = fork()) == 0) {
		close(kv[0]);
		close(tv[0]);
		close(tv[1]);
		if (hc->keyholder == -1)
			_exit(0);
		keyholder_child(kv[1], pem, pemlen);
	}
	close(kv[1]);
	explicit_bzero(pem, pemlen);
	free(pem);
	fcntl(tv[0], F_SETFL, O_NONBLOCK);
	fcntl(tv[1], F_SETFL, O_NONBLOCK);

	sctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX_set_min_proto_version(sctx, TLS1_2_VERSION);
	SSL_CTX_use_certificate(sctx, cert);
	T_OK(tls_keys_use(sctx, kv[0], err, sizeof(err)) == 0,
	    "%s: tls_keys_use (%s)", hc->label, err);
	cctx = client_ctx(hc, cert);
	s = SSL_new(sctx);
	c = SSL_new(cctx);
	SSL_set_fd(s, tv[0]);
	SSL_set_fd(c, tv[1]);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	ok = handshake(c, s);
	if (ok)
		ok = exchange(c, s, hc->version);
	T_OK(ok == hc->ok, "%s: handshake %s", hc->label, hc->ok ?
	    "completes and carries data" : "fails");
	if (!ok)
		ERR_clear_error();
	SSL_free(s);
	SSL_free(c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	close(kv[0]);
	close(tv[0]);
	close(tv[1]);
	waitpid(pid, &status, 0);
	if (WIFEXITED(status))
		used = WEXITSTATUS(status);
	if (hc->keyholder == 1)
		T_OK(used >= 1 && used < 100, "%s: the keyholder made the "
		    "signature (signatures=%d)", hc->label, used);
	else if (hc->keyholder == 0)
		T_OK(used == 0, "%s: the keyholder signed nothing (status=%d)",
		    hc->label, used);
	EVP_PKEY_free(other);
	X509_free(cert);
}

/* Refusals before any handshake. */
static void
test_refusals(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	X509 *x = X509_new();
	char err[256];
	int sv[2];

	T_OK(tls_keys_use(ctx, 0, err, sizeof(err)) == -1 &&
	    ipc_socketpair(sv) == 0, "refused: no certificate loaded (%s)", err);
	T_OK(tls_keys_use(ctx, -1, err, sizeof(err)) == -1,
	    "refused: no channel (%s)", err);
	close(sv[1]);
	X509_set_version(x, 2);
	X509_set_pubkey(x, ed);
	X509_sign(x, ed, NULL);
	SSL_CTX_use_certificate(ctx, x);
	T_OK(tls_keys_use(ctx, sv[0], err, sizeof(err)) == -1 &&
	    strstr(err, "only RSA and ECDSA") != NULL,
	    "refused: Ed25519 certificate (%s)", err);
	close(sv[0]);
	T_OK(tls_keys_use(ctx, sv[0], err, sizeof(err)) == -1,
	    "refused: closed descriptor (%s)", err);
	X509_free(x);
	EVP_PKEY_free(ed);
	SSL_CTX_free(ctx);
}

/*
 * tls_keys_id() takes the certificate's own SubjectPublicKeyInfo where it
 * is already what i2d_PUBKEY() writes: its id must always equal the
 * SHA-256 of i2d_PUBKEY(), the keyholder's name for the key, also for a
 * compressed EC point, which goes the slow way.
 */
static void
test_key_ids(void)
{
	static const struct { const char *alg, *curve; int compressed; } ks[] = {
		{ "RSA", NULL, 0 }, { "EC", "P-256", 0 }, { "EC", "P-384", 0 },
		{ "EC", "P-256", 1 },
	};
	uint8_t got[MOAT_KEYID_LEN], want[MOAT_KEYID_LEN];
	unsigned char *der, *pub;
	const unsigned char *q;
	unsigned int mdlen;
	EVP_PKEY *key;
	X509 *x, *parsed;
	size_t i;
	int len;

	for (i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		key = make_key(ks[i].alg, ks[i].curve);
		if (ks[i].compressed)
			EVP_PKEY_set_utf8_string_param(key, "point-format", "compressed");
		x = make_cert(key);
		/* As the session has it: parsed from the encoded certificate. */
		der = NULL;
		len = i2d_X509(x, &der);
		q = der;
		parsed = d2i_X509(NULL, &q, len);
		pub = NULL;
		len = parsed != NULL ? i2d_PUBKEY(X509_get0_pubkey(parsed), &pub) : -1;
		mdlen = 0;
		T_OK(len > 0 && EVP_Digest(pub, (size_t)len, want, &mdlen, EVP_sha256(),
		    NULL) == 1 && tls_keys_id(parsed, got) == 0 &&
		    memcmp(got, want, sizeof(got)) == 0,
		    "key id of %s %s%s: as i2d_PUBKEY makes it", ks[i].alg,
		    ks[i].curve != NULL ? ks[i].curve : "2048",
		    ks[i].compressed ? " (compressed point)" : "");
		OPENSSL_free(pub);
		OPENSSL_free(der);
		X509_free(parsed);
		X509_free(x);
		EVP_PKEY_free(key);
	}
}

int
main(void)
{
	size_t i;

	log_init("test_tls_keys", 0);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < sizeof(hs_cases) / sizeof(hs_cases[0]); i++)
		run_case(&hs_cases[i]);
	test_refusals();
	test_key_ids();
	return t_done();
}
