/*
 * tls_server.c: certificates, SNI, the handshake and the record I/O of
 * the session's TLS (see tls_server.h).
 *
 * Everything here is synchronous, like the rest of the session: a call
 * that would block reports what it waits for and the caller polls.  The
 * private key never enters this process: tls_keys_use() gives each
 * context a key whose signatures the keyholder makes.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls_keys.h"
#include "tls_server.h"
#include "util/file.h"
#include "util/tls.h"
#include "util/xmalloc.h"

/* Milliseconds on the monotonic clock. */
static long long
tls_server_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * SNI: switch to the first context whose leaf certificate is valid for
 * the name the client asked for; an unknown name keeps the default
 * certificate (refusing it would only break clients that send an
 * address or a typo).
 */
static int
tls_server_servername(SSL *ssl, int *alert, void *arg)
{
	struct tls_server *ts = arg;
	const char *name;
	size_t i;
	X509 *x;

	(void)alert;
	if ((name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) == NULL)
		return SSL_TLSEXT_ERR_OK;
	strlcpy_m(ts->sni, name, sizeof(ts->sni));
	for (i = 0; i < ts->nctx; i++) {
		if ((x = SSL_CTX_get0_certificate(ts->ctx[i])) == NULL ||
		    X509_check_host(x, name, strlen(name), 0, NULL) != 1)
			continue;
		if (i > 0 && SSL_set_SSL_CTX(ssl, ts->ctx[i]) == NULL)
			return SSL_TLSEXT_ERR_ALERT_FATAL;
		ts->chosen = i;
		break;
	}
	return SSL_TLSEXT_ERR_OK;
}

/*
 * The chain of one PEM text into ctx: the leaf first, then the
 * certificates that follow, as SSL_CTX_use_certificate_chain_file()
 * does with a file.
 */
static int
tls_server_use_chain(SSL_CTX *ctx, const struct tls_server_pem *pem)
{
	unsigned long e;
	X509 *x, *ca;
	BIO *bio;
	int ok = 0;

	ERR_clear_error();
	if ((bio = BIO_new_mem_buf(pem->text, (int)pem->len)) == NULL)
		return -1;
	if ((x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL)) != NULL &&
	    SSL_CTX_use_certificate(ctx, x) == 1 &&
	    SSL_CTX_clear_chain_certs(ctx) == 1) {
		ok = 1;
		while (ok && (ca = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
			if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
				X509_free(ca);
				ok = 0;
			}
		/* The end of the text is the one error expected. */
		e = ERR_peek_last_error();
		if (ok && ERR_GET_LIB(e) == ERR_LIB_PEM &&
		    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
			ERR_clear_error();
		else if (e != 0)
			ok = 0;
	}
	X509_free(x);
	BIO_free(bio);
	return ok ? 0 : -1;
}

/* One context: policy, chain, keyholder key. */
static SSL_CTX *
tls_server_build_one(const struct tls_server_pem *pem, int keys_fd,
    int *keys_ok, char *err, size_t errlen)
{
	char why[256], e[256];
	SSL_CTX *ctx;

	if ((ctx = tls_server_ctx(why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "TLS context: %s", why);
		return NULL;
	}
	if (tls_server_use_chain(ctx, pem) == -1) {
		snprintf(err, errlen, "%s: %s", pem->path, tls_errstr(e, sizeof(e)));
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (*keys_ok && tls_keys_use(ctx, keys_fd, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: private key from the keyholder: %s",
		    pem->path, why);
		*keys_ok = 0;
	}
	return ctx;
}

int
tls_server_load(struct tls_server *ts, const struct conf *cfg, char *err,
    size_t errlen)
{
	const struct conf_words *certs = conf_words(cfg, CONF_SMTPD_TLS_CERT_FILES);
	size_t i;

	memset(ts, 0, sizeof(*ts));
	if (certs->n == 0) {
		snprintf(err, errlen, "no smtpd_tls_cert_files");
		return -1;
	}
	ts->pem = xcalloc(certs->n, sizeof(*ts->pem));
	for (i = 0; i < certs->n; i++) {
		if ((ts->pem[i].text = file_read(certs->v[i], TLS_SERVER_PEM_MAX,
		    &ts->pem[i].len, err, errlen)) == NULL) {
			tls_server_free(ts);
			return -1;
		}
		ts->pem[i].path = xstrdup(certs->v[i]);
		ts->npem++;
	}
	return 0;
}

int
tls_server_build(struct tls_server *ts, int keys_fd, char *err, size_t errlen)
{
	int keys_ok = 1;
	size_t i;

	err[0] = '\0';
	if (ts->npem == 0) {
		snprintf(err, errlen, "no certificate chain read");
		return -1;
	}
	ts->ctx = xreallocarray(NULL, ts->npem, sizeof(*ts->ctx));
	for (i = 0; i < ts->npem; i++) {
		SSL_CTX *ctx = tls_server_build_one(&ts->pem[i], keys_fd, &keys_ok,
		    err, errlen);

		if (ctx == NULL) {
			tls_server_free(ts);
			return -1;
		}
		ts->ctx[ts->nctx++] = ctx;
	}
	SSL_CTX_set_tlsext_servername_callback(ts->ctx[0], tls_server_servername);
	SSL_CTX_set_tlsext_servername_arg(ts->ctx[0], ts);
	ts->ready = keys_ok;
	return keys_ok ? 0 : -1;
}

int
tls_server_init(struct tls_server *ts, const struct conf *cfg, int keys_fd,
    char *err, size_t errlen)
{
	if (tls_server_load(ts, cfg, err, errlen) == -1)
		return -1;
	return tls_server_build(ts, keys_fd, err, errlen);
}

void
tls_server_free(struct tls_server *ts)
{
	size_t i;

	for (i = 0; i < ts->nctx; i++)
		SSL_CTX_free(ts->ctx[i]);
	free(ts->ctx);
	ts->ctx = NULL;
	ts->nctx = 0;
	ts->ready = 0;
	for (i = 0; i < ts->npem; i++) {
		free(ts->pem[i].path);
		free(ts->pem[i].text);
	}
	free(ts->pem);
	ts->pem = NULL;
	ts->npem = 0;
}

/* Why a call on ssl failed, for logs. */
static void
tls_server_why(int sslerr, int ret, char *err, size_t errlen)
{
	char e[256];

	if (sslerr == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		snprintf(err, errlen, "%s", ret == 0 || errno == 0 ?
		    "client closed the connection" : strerror(errno));
	else if (sslerr == SSL_ERROR_ZERO_RETURN)
		snprintf(err, errlen, "client closed the connection");
	else
		snprintf(err, errlen, "%s", tls_errstr(e, sizeof(e)));
}

SSL *
tls_server_accept(struct tls_server *ts, int fd, int timeout_ms, char *err,
    size_t errlen)
{
	long long deadline = tls_server_now_ms() + timeout_ms, left;
	struct pollfd pfd;
	SSL *ssl;
	int r, e;

	if (!ts->ready || ts->nctx == 0) {
		snprintf(err, errlen, "TLS not available");
		return NULL;
	}
	ts->chosen = 0;
	ts->sni[0] = '\0';
	ERR_clear_error();
	if ((ssl = SSL_new(ts->ctx[0])) == NULL || SSL_set_fd(ssl, fd) != 1) {
		tls_server_why(SSL_ERROR_SSL, -1, err, errlen);
		SSL_free(ssl);
		return NULL;
	}
	/* The session's output buffer may move between retries; EOF
	 * without close_notify is an ordinary lost connection in SMTP. */
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	for (;;) {
		ERR_clear_error();
		errno = 0;
		if ((r = SSL_accept(ssl)) == 1)
			return ssl;
		e = SSL_get_error(ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			tls_server_why(e, r, err, errlen);
			break;
		}
		if ((left = deadline - tls_server_now_ms()) <= 0) {
			snprintf(err, errlen, "timed out");
			break;
		}
		pfd.fd = fd;
		pfd.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			break;
		}
	}
	SSL_free(ssl);
	return NULL;
}

/* Turn an SSL_get_error() code into the I/O convention of the header. */
static ssize_t
tls_server_io_result(SSL *ssl, int r, short *wait, char *err, size_t errlen)
{
	int e = SSL_get_error(ssl, r);

	*wait = 0;
	switch (e) {
	case SSL_ERROR_WANT_READ:
		*wait = POLLIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		*wait = POLLOUT;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		tls_server_why(e, r, err, errlen);
		return -1;
	}
}

ssize_t
tls_server_read(SSL *ssl, void *p, size_t n, short *wait, char *err,
    size_t errlen)
{
	size_t got = 0;
	int r;

	ERR_clear_error();
	errno = 0;
	if ((r = SSL_read_ex(ssl, p, n, &got)) == 1)
		return (ssize_t)got;
	return tls_server_io_result(ssl, r, wait, err, errlen);
}

ssize_t
tls_server_write(SSL *ssl, const void *p, size_t n, short *wait, char *err,
    size_t errlen)
{
	size_t put = 0;
	ssize_t r;

	ERR_clear_error();
	errno = 0;
	if (SSL_write_ex(ssl, p, n, &put) == 1)
		return (ssize_t)put;
	/* A write never ends the stream cleanly: 0 here is an error. */
	if ((r = tls_server_io_result(ssl, 0, wait, err, errlen)) == 0) {
		snprintf(err, errlen, "client closed the connection");
		r = -1;
	}
	return r;
}

void
tls_server_describe(const SSL *ssl, char *dst, size_t dstsz)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	int alg = 0, bits = c != NULL ? SSL_CIPHER_get_bits(c, &alg) : 0;

	snprintf(dst, dstsz, "%s with cipher %s (%d/%d bits)",
	    SSL_get_version(ssl), c != NULL ? SSL_CIPHER_get_name(c) : "unknown",
	    bits, alg);
}
