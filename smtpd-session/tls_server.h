/*
 * tls_server.h: the server side of TLS in an smtpd-session.
 *
 * Set up while the session still runs as root, before priv_drop(): one
 * SSL_CTX per smtpd_tls_cert_files entry, with the policy of
 * common/util/tls.h, its certificate chain (public data only) and a
 * private key whose operations the keyholder performs
 * (smtpd-session/tls_keys.h).  The first context is the default; a
 * client that names a host (SNI) gets the first one whose leaf
 * certificate matches that name.  After the sandbox is in place the
 * session only runs handshakes and moves bytes through SSL.
 */
#ifndef MOAT_TLS_SERVER_H
#define MOAT_TLS_SERVER_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "util/conf.h"

#define TLS_SERVER_NAME_MAX	255	/* longest SNI host name kept */
#define TLS_SERVER_DESC_MAX	160	/* "TLSv1.3 with cipher ... (256/256 bits)" */

#define TLS_SERVER_PEM_MAX	(1024 * 1024)	/* largest chain file read */

/* One chain file of smtpd_tls_cert_files, as read. */
struct tls_server_pem {
	char		 *path;		/* for messages */
	char		 *text;
	size_t		  len;
};

struct tls_server {
	struct tls_server_pem *pem;	/* the chain files, in order */
	size_t		  npem;
	SSL_CTX		**ctx;		/* one per certificate; [0] is the default */
	size_t		  nctx;
	int		  ready;	/* every context has its keyholder key */
	char		  sni[TLS_SERVER_NAME_MAX + 1];	/* raw, as the client sent it */
	size_t		  chosen;	/* the context the handshake used */
};

/*
 * Read every chain file of smtpd_tls_cert_files into memory, without
 * any OpenSSL call: the part that needs files, so before priv_drop().
 * -1 with err (naming the file) when one cannot be read.
 */
int	tls_server_load(struct tls_server *ts, const struct conf *cfg,
	    char *err, size_t errlen);
/*
 * Build one context per chain read, with the policy of common/util/tls.h
 * and the keyholder key on keys_fd.  Opens no file, so it may run inside
 * the sandbox: the session builds its contexts only when a client asks
 * for TLS.  -1 with err when anything failed; ts->nctx then tells
 * whether the chains at least loaded (ts->ready is 0 either way).
 */
int	tls_server_build(struct tls_server *ts, int keys_fd, char *err,
	    size_t errlen);
/* tls_server_load(), then tls_server_build(). */
int	tls_server_init(struct tls_server *ts, const struct conf *cfg,
	    int keys_fd, char *err, size_t errlen);
void	tls_server_free(struct tls_server *ts);

/*
 * Run the server handshake on fd (non-blocking), at most timeout_ms in
 * all.  The SSL object, or NULL with err ("timed out", "client closed
 * the connection", OpenSSL's reason).
 */
SSL	*tls_server_accept(struct tls_server *ts, int fd, int timeout_ms,
	    char *err, size_t errlen);

/*
 * One SSL_read / SSL_write.  Returns the bytes moved; 0 when the client
 * closed the connection (reads only); -1 with *wait = POLLIN or POLLOUT
 * when the call must be repeated once fd is ready, or *wait = 0 and err
 * set after a real error.
 */
ssize_t	tls_server_read(SSL *ssl, void *p, size_t n, short *wait,
	    char *err, size_t errlen);
ssize_t	tls_server_write(SSL *ssl, const void *p, size_t n, short *wait,
	    char *err, size_t errlen);

/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" */
void	tls_server_describe(const SSL *ssl, char *dst, size_t dstsz);

#endif
