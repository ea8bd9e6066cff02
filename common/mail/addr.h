/*
 * addr.h: RFC 5321 mailboxes and paths.
 *
 * A mailbox is Local-part "@" ( Domain / address-literal ), with the
 * Local-part a Dot-string or a Quoted-string (RFC 5321 4.1.2).  Limits
 * (RFC 5321 4.5.3.1): local part 64 octets, domain 255 octets, path 256
 * octets including the angle brackets.  Source routes ("<@a,@b:u@d>") are
 * accepted and ignored as the RFC requires.  Only ASCII is accepted until
 * SMTPUTF8 is implemented.
 */
#ifndef MOAT_ADDR_H
#define MOAT_ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX		64
#define ADDR_DOMAIN_MAX		255
#define ADDR_PATH_MAX		256	/* with < and > */
#define ADDR_MAILBOX_MAX	254	/* local@domain, no brackets */

struct mailaddr {
	char	local[ADDR_LOCAL_MAX + 1];	/* as written, quotes included */
	char	domain[ADDR_DOMAIN_MAX + 1];	/* lower-cased; literals as written */
	int	is_null;			/* the null path <> */
};

enum addr_err {
	ADDR_OK = 0,
	ADDR_ERR_SYNTAX,	/* 501 5.1.7 / 5.1.3 */
	ADDR_ERR_TOO_LONG,	/* 501 5.5.4 or 553 5.1.x */
	ADDR_ERR_NULL,		/* <> where it is not allowed */
};

/*
 * Parse a path at s (up to len bytes): '<' [source-route ':'] mailbox '>'
 * or "<>" when allow_null.  *consumed is set to the bytes used (so the
 * caller can parse ESMTP parameters after it).  Returns ADDR_OK or an
 * error; on error *out is unspecified.
 */
enum addr_err addr_parse_path(const char *s, size_t len, int allow_null,
	    struct mailaddr *out, size_t *consumed);
/* Parse a bare mailbox "local@domain" that must fill all of s[0..len). */
enum addr_err addr_parse_mailbox(const char *s, size_t len, struct mailaddr *out);
/* Format as "local@domain" ("" for the null path) into dst. */
int	addr_format(const struct mailaddr *a, char *dst, size_t dstsz);
/* Is the domain syntactically a domain name (not a literal)? */
int	addr_domain_valid(const char *d, size_t len);
/* A one-line reason for an error, for replies and logs. */
const char *addr_strerror(enum addr_err e);

#endif
