/*
 * addr.c: RFC 5321 paths and mailboxes (section 4.1.2), ASCII only.
 *
 * The parser is a small hand-written scanner over the grammar:
 *
 *   Path        = "<" [ A-d-l ":" ] Mailbox ">"
 *   Mailbox     = Local-part "@" ( Domain / address-literal )
 *   Local-part  = Dot-string / Quoted-string
 *
 * It never reads past len and never writes past the fixed fields of
 * struct mailaddr; every limit of RFC 5321 4.5.3.1 is checked.  Anything
 * it is unsure of is refused: a mail gateway that accepts an address the
 * next hop reads differently is a smuggling risk.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/addr.h"

/* Longest address literal we try to read ("[IPv6:" + 45 + "]"). */
#define ADDR_LITERAL_MAX	64
#define ADDR_LABEL_MAX		63

static int
addr_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
addr_is_letdig(unsigned char c)
{
	return addr_is_alpha(c) || (c >= '0' && c <= '9');
}

/* RFC 5322 atext. */
static int
addr_is_atext(unsigned char c)
{
	return addr_is_letdig(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Scan a Dot-string from s[i]; returns the end or 0 when malformed. */
static size_t
addr_scan_dotstring(const char *s, size_t len, size_t i)
{
	size_t start = i;

	for (;;) {
		size_t atom = i;

		while (i < len && addr_is_atext((unsigned char)s[i]))
			i++;
		if (i == atom)		/* empty atom: leading, trailing or ".." */
			return 0;
		if (i >= len || s[i] != '.')
			break;
		i++;
	}
	return i > start ? i : 0;
}

/* Scan a Quoted-string (opening quote at s[i]); returns the end or 0. */
static size_t
addr_scan_quoted(const char *s, size_t len, size_t i)
{
	i++;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"')
			return i + 1;
		if (c == '\\') {
			/* quoted-pairSMTP = %d92 %d32-126 */
			if (i + 1 >= len || (unsigned char)s[i + 1] < 32 ||
			    (unsigned char)s[i + 1] > 126)
				return 0;
			i += 2;
			continue;
		}
		/* qtextSMTP = %d32-33 / %d35-91 / %d93-126 */
		if (c < 32 || c > 126)
			return 0;
		i++;
	}
	return 0;
}

/* Scan the characters a domain may be made of; the result is checked
 * by addr_domain_valid(). */
static size_t
addr_scan_domain(const char *s, size_t len, size_t i)
{
	while (i < len && (addr_is_letdig((unsigned char)s[i]) || s[i] == '-' ||
	    s[i] == '.'))
		i++;
	return i;
}

int
addr_domain_valid(const char *d, size_t len)
{
	size_t i = 0;

	if (len == 0 || len > ADDR_DOMAIN_MAX)
		return 0;
	while (i < len) {
		size_t label = i;

		/* sub-domain = Let-dig [Ldh-str]; Ldh-str ends in Let-dig */
		while (i < len && d[i] != '.') {
			if (!addr_is_letdig((unsigned char)d[i]) && d[i] != '-')
				return 0;
			i++;
		}
		if (i == label || i - label > ADDR_LABEL_MAX ||
		    d[label] == '-' || d[i - 1] == '-')
			return 0;
		if (i < len) {
			i++;		/* the dot */
			if (i == len)	/* a trailing dot is not RFC 5321 */
				return 0;
		}
	}
	return 1;
}

/* Is s[0..n) an IPv4 literal body, or "IPv6:" and an IPv6 address? */
static int
addr_literal_valid(const char *s, size_t n)
{
	char tmp[ADDR_LITERAL_MAX];
	unsigned char bin[16];
	size_t i;

	if (n == 0 || n >= sizeof(tmp))
		return 0;
	/* inet_pton stops at a NUL: check every byte before trusting it. */
	for (i = 0; i < n; i++)
		if (!addr_is_letdig((unsigned char)s[i]) && s[i] != ':' && s[i] != '.')
			return 0;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (n > 5 && strncasecmp(tmp, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, tmp + 5, bin) == 1;
	/* Anything else with a tag is a General-address-literal, which no
	 * standard defines a use for: refuse it. */
	return inet_pton(AF_INET, tmp, bin) == 1;
}

/*
 * Parse a mailbox starting at s[i]; on success store it in *out and set
 * *endp to the first byte after it.
 */
static enum addr_err
addr_scan_mailbox(const char *s, size_t len, size_t i, struct mailaddr *out,
    size_t *endp)
{
	size_t lstart = i, llen, dstart, dlen;

	if (i >= len)
		return ADDR_ERR_SYNTAX;
	if (s[i] == '"')
		i = addr_scan_quoted(s, len, i);
	else
		i = addr_scan_dotstring(s, len, i);
	if (i == 0)
		return ADDR_ERR_SYNTAX;
	llen = i - lstart;
	if (i >= len || s[i] != '@')
		return ADDR_ERR_SYNTAX;
	dstart = ++i;
	if (i < len && s[i] == '[') {
		const char *close = memchr(s + i, ']', len - i);

		if (close == NULL)
			return ADDR_ERR_SYNTAX;
		i = (size_t)(close - s) + 1;
		if (i - dstart > ADDR_DOMAIN_MAX)
			return ADDR_ERR_TOO_LONG;
		if (!addr_literal_valid(s + dstart + 1, i - dstart - 2))
			return ADDR_ERR_SYNTAX;
	} else {
		i = addr_scan_domain(s, len, i);
		if (i - dstart > ADDR_DOMAIN_MAX)
			return ADDR_ERR_TOO_LONG;
		if (!addr_domain_valid(s + dstart, i - dstart))
			return ADDR_ERR_SYNTAX;
	}
	dlen = i - dstart;
	if (llen > ADDR_LOCAL_MAX || llen + 1 + dlen > ADDR_MAILBOX_MAX)
		return ADDR_ERR_TOO_LONG;
	memcpy(out->local, s + lstart, llen);
	out->local[llen] = '\0';
	memcpy(out->domain, s + dstart, dlen);
	out->domain[dlen] = '\0';
	if (out->domain[0] != '[') {
		size_t k;

		for (k = 0; k < dlen; k++)
			if (out->domain[k] >= 'A' && out->domain[k] <= 'Z')
				out->domain[k] = (char)(out->domain[k] - 'A' + 'a');
	}
	out->is_null = 0;
	*endp = i;
	return ADDR_OK;
}

/*
 * Skip a source route "@a,@b:" at s[i] (RFC 5321 says to accept and
 * ignore it); returns the index after ':' or 0 when malformed.
 */
static size_t
addr_skip_route(const char *s, size_t len, size_t i)
{
	for (;;) {
		size_t d;

		if (i >= len || s[i] != '@')
			return 0;
		d = ++i;
		i = addr_scan_domain(s, len, i);
		if (!addr_domain_valid(s + d, i - d))
			return 0;
		if (i >= len)
			return 0;
		if (s[i] == ':')
			return i + 1;
		if (s[i] != ',')
			return 0;
		i++;
	}
}

enum addr_err
addr_parse_path(const char *s, size_t len, int allow_null,
    struct mailaddr *out, size_t *consumed)
{
	enum addr_err e;
	size_t i = 1, end;

	if (len < 2 || s[0] != '<')
		return ADDR_ERR_SYNTAX;
	if (s[1] == '>') {
		if (!allow_null)
			return ADDR_ERR_NULL;
		out->local[0] = '\0';
		out->domain[0] = '\0';
		out->is_null = 1;
		*consumed = 2;
		return ADDR_OK;
	}
	if (s[1] == '@' && (i = addr_skip_route(s, len, 1)) == 0)
		return ADDR_ERR_SYNTAX;
	if ((e = addr_scan_mailbox(s, len, i, out, &end)) != ADDR_OK)
		return e;
	if (end >= len || s[end] != '>')
		return ADDR_ERR_SYNTAX;
	if (end + 1 > ADDR_PATH_MAX)
		return ADDR_ERR_TOO_LONG;
	*consumed = end + 1;
	return ADDR_OK;
}

enum addr_err
addr_parse_mailbox(const char *s, size_t len, struct mailaddr *out)
{
	enum addr_err e;
	size_t end;

	if ((e = addr_scan_mailbox(s, len, 0, out, &end)) != ADDR_OK)
		return e;
	return end == len ? ADDR_OK : ADDR_ERR_SYNTAX;
}

int
addr_format(const struct mailaddr *a, char *dst, size_t dstsz)
{
	int n;

	if (dstsz == 0)
		return -1;
	if (a->is_null) {
		dst[0] = '\0';
		return 0;
	}
	n = snprintf(dst, dstsz, "%s@%s", a->local, a->domain);
	return n < 0 || (size_t)n >= dstsz ? -1 : 0;
}

const char *
addr_strerror(enum addr_err e)
{
	switch (e) {
	case ADDR_OK:
		return "ok";
	case ADDR_ERR_SYNTAX:
		return "syntax error in address";
	case ADDR_ERR_TOO_LONG:
		return "address too long";
	case ADDR_ERR_NULL:
		return "null address not allowed here";
	}
	return "unknown address error";
}
