/*
 * tls_listen.h: which TLS rules apply to a connection, from the listener
 * it came in on.
 *
 * moat has three kinds of listening address (common/settings.h):
 * `listen` (TLS by smtpd_tls), `submission_listen` (TLS by
 * submission_tls) and `smtps_listen` (implicit TLS, RFC 8314).  moatd
 * binds them all and hands every accepted socket to a session the same
 * way; the session finds its rules by matching its local address
 * (getsockname) against the three lists.  Pure configuration code with
 * no OpenSSL, so that moatd -n can use the same check.
 */
#ifndef MOAT_TLS_LISTEN_H
#define MOAT_TLS_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

#include "util/conf.h"

enum tls_listen_mode {
	TLS_LISTEN_NONE,	/* no STARTTLS */
	TLS_LISTEN_MAY,		/* STARTTLS offered */
	TLS_LISTEN_REQUIRED,	/* STARTTLS offered, needed before MAIL */
	TLS_LISTEN_IMPLICIT,	/* TLS from the first byte (smtps_listen) */
};

/*
 * The mode of a connection whose local address is local.  An exact
 * address match wins over a wildcard one (0.0.0.0 or ::, matched by
 * family and port); an address in no list gets smtpd_tls.
 */
enum tls_listen_mode tls_listen_mode(const struct conf *cfg,
	    const struct sockaddr *local);

/* "none", "may", "required", "implicit", for logs. */
const char *tls_listen_mode_name(enum tls_listen_mode m);

/*
 * Settings that cannot work together, as "file:line: message" lines in
 * err: smtps_listen or a required mode on a listener without
 * smtpd_tls_cert_files, and a key file count that differs from the
 * certificate count.  Returns the number of problems (0: fine).
 */
int	tls_listen_check(const struct conf *cfg, char *err, size_t errlen);

#endif
