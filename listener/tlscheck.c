/*
 * tlscheck.c: the certificates and keys, checked before moatd uses them.
 *
 * `moatd -n` and moatd's start-up read each smtpd_tls_cert_files /
 * smtpd_tls_key_files pair with OpenSSL and refuse a configuration whose
 * key is unreadable, encrypted, of a type the keyholder cannot sign with
 * (it signs RSA and ECDSA only: docs/tls.md), or not the key of its
 * certificate.  Without this a bad key would show only once clients
 * try STARTTLS.  Runs before the sandbox; a reload is checked by the
 * keyholder, which refuses keys it cannot use and keeps the old ones.
 *
 * The check runs in a child process that exits afterwards: parsing a
 * key leaves its bytes in freed heap memory, and moatd, which lives as
 * long as the service, must hold no private key (the keyholder is the
 * only process that does; test_keyholder.py looks for them).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "moatd.h"
#include "util/conf.h"

/* Never prompt for a pass phrase: an encrypted key is refused. */
static int
tlscheck_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf; (void)size; (void)rwflag; (void)u;
	return -1;
}

/* OpenSSL's reason for the last failure, or what. */
static const char *
tlscheck_reason(const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r != NULL ? r : what;
}

/* One pair; 0 or 1 problem, printed. */
static int
tlscheck_pair(const struct conf *cfg, const char *cert, const char *key,
    FILE *out)
{
	const char *src = cfg->source != NULL ? cfg->source : "moat.conf";
	int line = cfg->v[CONF_SMTPD_TLS_KEY_FILES].line, id, bad = 1;
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	BIO *b;

	if ((b = BIO_new_file(cert, "r")) == NULL ||
	    (x = PEM_read_bio_X509(b, NULL, tlscheck_no_passphrase, NULL)) == NULL) {
		fprintf(out, "%s:%d: smtpd_tls_cert_files: %s: no certificate "
		    "(%s)\n", src, cfg->v[CONF_SMTPD_TLS_CERT_FILES].line, cert,
		    tlscheck_reason("unreadable"));
		goto done;
	}
	BIO_free(b);
	if ((b = BIO_new_file(key, "r")) == NULL ||
	    (pkey = PEM_read_bio_PrivateKey(b, NULL, tlscheck_no_passphrase,
	    NULL)) == NULL) {
		fprintf(out, "%s:%d: smtpd_tls_key_files: %s: no usable private "
		    "key (%s; encrypted keys are not supported)\n", src, line, key,
		    tlscheck_reason("unreadable"));
		goto done;
	}
	id = EVP_PKEY_get_base_id(pkey);
	if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC) {
		fprintf(out, "%s:%d: smtpd_tls_key_files: %s: key type %s; the "
		    "keyholder signs with RSA and ECDSA keys only\n", src, line,
		    key, OBJ_nid2sn(id));
		goto done;
	}
	if (X509_check_private_key(x, pkey) != 1) {
		ERR_clear_error();
		fprintf(out, "%s:%d: smtpd_tls_key_files: %s is not the key of "
		    "the certificate in %s\n", src, line, key, cert);
		goto done;
	}
	bad = 0;
done:
	BIO_free(b);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return bad;
}

int
tlscheck_pairs(const struct conf *cfg, FILE *out)
{
	const struct conf_words *c = conf_words(cfg, CONF_SMTPD_TLS_CERT_FILES);
	const struct conf_words *k = conf_words(cfg, CONF_SMTPD_TLS_KEY_FILES);
	size_t i;
	pid_t pid;
	int n = 0, status;

	/* A count mismatch is tls_listen_check's message. */
	if (c->n == 0 || c->n != k->n)
		return 0;
	fflush(out);
	if ((pid = fork()) == -1) {
		fprintf(out, "cannot check the TLS keys: fork failed\n");
		return 1;
	}
	if (pid == 0) {
		for (i = 0; i < c->n; i++)
			n += tlscheck_pair(cfg, c->v[i], k->v[i], out);
		fflush(out);
		_exit(n > 100 ? 100 : n);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
