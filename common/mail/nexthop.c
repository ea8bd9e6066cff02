/*
 * nexthop.c: transports as operators write them, canonical next hops as
 * the queue stores them, and the routing decision between the two.
 *
 * One lenient parser reads what an operator writes (transport_maps
 * values, relay_host).  The canonical form is defined by
 * nexthop_format(); nexthop_parse() accepts a text only if formatting
 * what it parsed gives back the very same bytes, so the delivery agent
 * never acts on a next hop that two parts of moat could read
 * differently.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/addr.h"
#include "mail/nexthop.h"
#include "mail/table.h"
#include "util/conf.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define NEXTHOP_LMTP_PORT	24
#define NEXTHOP_IN_MAX		(NEXTHOP_MAX + 64)	/* longest transport read */

/* Does s start with prefix (ASCII case-insensitive)? */
static int
nexthop_prefix(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Lower-case s in place. */
static void
nexthop_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* Is s[0..n) made of digits and dots only (an IPv4 address, or a typo)? */
static int
nexthop_dotted(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '.')
			return 0;
	return 1;
}

/* A port: 1 to 5 digits, 1..65535. */
static int
nexthop_port(const char *s, uint16_t *port, char *err, size_t errlen)
{
	size_t n = strspn(s, "0123456789");
	unsigned long v = 0;
	size_t i;

	if (n == 0 || s[n] != '\0' || n > 5) {
		snprintf(err, errlen, "bad port \"%s\" (want 1..65535)", s);
		return -1;
	}
	for (i = 0; i < n; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	if (v < 1 || v > 65535) {
		snprintf(err, errlen, "port %lu is out of range (1..65535)", v);
		return -1;
	}
	*port = (uint16_t)v;
	return 0;
}

/*
 * The host inside brackets: an IP address (kept in inet_ntop's form, so
 * that one address has one spelling) or a domain name.
 */
static int
nexthop_bracket_host(const char *h, size_t n, struct nexthop *nh, char *err,
    size_t errlen)
{
	char tmp[INET6_ADDRSTRLEN + 8];
	unsigned char bin[16];

	if (n == 0) {
		snprintf(err, errlen, "empty host in brackets");
		return -1;
	}
	if (memchr(h, ':', n) != NULL || nexthop_dotted(h, n)) {
		int af = memchr(h, ':', n) != NULL ? AF_INET6 : AF_INET;

		if (n >= sizeof(tmp))
			goto bad;
		memcpy(tmp, h, n);
		tmp[n] = '\0';
		if (inet_pton(af, tmp, bin) != 1 ||
		    inet_ntop(af, bin, nh->host, sizeof(nh->host)) == NULL)
			goto bad;
		return 0;
	}
	if (!addr_domain_valid(h, n)) {
		snprintf(err, errlen, "bad host name \"%.*s\"",
		    (int)(n > 255 ? 255 : n), h);
		return -1;
	}
	memcpy(nh->host, h, n);
	nh->host[n] = '\0';
	nexthop_lower(nh->host);
	return 0;
bad:
	snprintf(err, errlen, "bad IP address \"%.*s\"", (int)(n > 64 ? 64 : n), h);
	return -1;
}

/* "[host]" or "[host]:port". */
static int
nexthop_parse_bracket(const char *s, struct nexthop *nh, char *err,
    size_t errlen)
{
	const char *close = strchr(s, ']');

	if (close == NULL) {
		snprintf(err, errlen, "missing ']' in \"%s\"", s);
		return -1;
	}
	if (nexthop_bracket_host(s + 1, (size_t)(close - s - 1), nh, err,
	    errlen) == -1)
		return -1;
	nh->kind = NEXTHOP_HOST;
	if (close[1] == '\0')
		return 0;
	if (close[1] != ':') {
		snprintf(err, errlen, "want [host] or [host]:port, not \"%s\"", s);
		return -1;
	}
	return nexthop_port(close + 2, &nh->port, err, errlen);
}

/* "host" or "host:port": an MX lookup of host. */
static int
nexthop_parse_mxhost(const char *s, struct nexthop *nh, char *err,
    size_t errlen)
{
	size_t n = strcspn(s, ":");

	if (s[n] == ':' && strchr(s + n + 1, ':') != NULL) {
		snprintf(err, errlen, "an IPv6 address goes in brackets, as in "
		    "[2001:db8::1]:25");
		return -1;
	}
	if (nexthop_dotted(s, n)) {
		snprintf(err, errlen, "write an IP address in brackets, as in "
		    "[192.0.2.1]:25 (without brackets it is a name to look up "
		    "MX records for)");
		return -1;
	}
	if (!addr_domain_valid(s, n)) {
		snprintf(err, errlen, "bad host name \"%.*s\"",
		    (int)(n > 255 ? 255 : n), s);
		return -1;
	}
	memcpy(nh->host, s, n);
	nh->host[n] = '\0';
	nexthop_lower(nh->host);
	nh->kind = NEXTHOP_MX;
	if (s[n] == '\0')
		return 0;
	return nexthop_port(s + n + 1, &nh->port, err, errlen);
}

/* "unix:/path" after "lmtp:". */
static int
nexthop_parse_unix(const char *path, struct nexthop *nh, char *err,
    size_t errlen)
{
	size_t n = strlen(path);

	if (path[0] != '/') {
		snprintf(err, errlen, "lmtp:unix: needs an absolute path");
		return -1;
	}
	if (n >= sizeof(nh->path)) {
		snprintf(err, errlen, "unix socket path longer than %zu bytes",
		    sizeof(nh->path) - 1);
		return -1;
	}
	memcpy(nh->path, path, n + 1);
	nh->kind = NEXTHOP_UNIX;
	return 0;
}

/*
 * Does s start with a word and ':' that is neither "host:port" nor an
 * IPv6 address (a mistyped or foreign transport such as "esmtp:")?
 */
static int
nexthop_unknown_proto(const char *s)
{
	size_t w = strcspn(s, ":"), rest;

	if (s[0] == '[' || s[w] != ':' || memchr(s, '.', w) != NULL)
		return 0;
	if (strspn(s, "0123456789abcdefABCDEF:.") == strlen(s) &&
	    strchr(s + w + 1, ':') != NULL)
		return 0;	/* an IPv6 address, refused with its own message */
	rest = strspn(s + w + 1, "0123456789");
	return rest == 0 || s[w + 1 + rest] != '\0';
}

int
nexthop_parse_transport(const char *s, struct nexthop *nh, char *err,
    size_t errlen)
{
	const char *rest = s;
	size_t i, n = strlen(s);

	memset(nh, 0, sizeof(*nh));
	nh->proto = NEXTHOP_SMTP;
	if (n == 0) {
		snprintf(err, errlen, "empty transport");
		return -1;
	}
	if (n >= NEXTHOP_IN_MAX) {
		snprintf(err, errlen, "transport longer than %d bytes",
		    NEXTHOP_IN_MAX - 1);
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f) {
			snprintf(err, errlen, c == ' ' || c == '\t' ?
			    "one transport only, without spaces" :
			    "control or non-ASCII byte in transport");
			return -1;
		}
	}
	if (strcasecmp(s, "mx") == 0) {
		nh->kind = NEXTHOP_MX;
		return 0;
	}
	if (nexthop_prefix(s, "lmtp:")) {
		nh->proto = NEXTHOP_LMTP;
		rest = s + 5;
		if (nexthop_prefix(rest, "unix:"))
			return nexthop_parse_unix(rest + 5, nh, err, errlen);
		if (rest[0] != '[') {
			snprintf(err, errlen, "lmtp needs lmtp:[host], "
			    "lmtp:[host]:port or lmtp:unix:/path (there is no MX "
			    "lookup for LMTP)");
			return -1;
		}
	} else if (nexthop_prefix(s, "smtp:")) {
		rest = s + 5;
		/* "smtp:unix:25" is a host called unix; a path is a mistake. */
		if (nexthop_prefix(rest, "unix:/")) {
			snprintf(err, errlen, "unix sockets are for lmtp only "
			    "(lmtp:unix:/path)");
			return -1;
		}
	} else if (nexthop_unknown_proto(s)) {
		snprintf(err, errlen, "unknown transport \"%.*s\" (want smtp: "
		    "or lmtp:)", (int)strcspn(s, ":"), s);
		return -1;
	}
	if (rest[0] == '[')
		return nexthop_parse_bracket(rest, nh, err, errlen);
	if (rest[0] == '\0') {
		snprintf(err, errlen, "missing host after \"%s\"", s);
		return -1;
	}
	return nexthop_parse_mxhost(rest, nh, err, errlen);
}

int
nexthop_format(const struct nexthop *nh, char *dst, size_t dstsz)
{
	const char *proto = nh->proto == NEXTHOP_LMTP ? "lmtp" : "smtp";
	int n;

	if (nh->proto != NEXTHOP_SMTP && nh->proto != NEXTHOP_LMTP)
		return -1;
	switch (nh->kind) {
	case NEXTHOP_UNIX:
		if (nh->proto != NEXTHOP_LMTP || nh->path[0] != '/' ||
		    memchr(nh->path, '\0', sizeof(nh->path)) == NULL)
			return -1;
		n = snprintf(dst, dstsz, "lmtp:unix:%s", nh->path);
		break;
	case NEXTHOP_HOST:
	case NEXTHOP_MX:
		if (nh->port == 0 || nh->host[0] == '\0' ||
		    memchr(nh->host, '\0', sizeof(nh->host)) == NULL)
			return -1;
		if (nh->kind == NEXTHOP_MX && nh->proto == NEXTHOP_LMTP)
			return -1;
		n = snprintf(dst, dstsz, nh->kind == NEXTHOP_HOST ?
		    "%s:[%s]:%u" : "%s:%s:%u", proto, nh->host,
		    (unsigned int)nh->port);
		break;
	default:
		return -1;
	}
	if (n < 0 || (size_t)n >= dstsz)
		return -1;
	return 0;
}

int
nexthop_parse(const char *s, struct nexthop *nh)
{
	char err[256], back[NEXTHOP_MAX];
	struct nexthop tmp;

	/* Canonical texts always name their protocol in lower case. */
	if (strncmp(s, "smtp:", 5) != 0 && strncmp(s, "lmtp:", 5) != 0)
		return -1;
	if (strnlen(s, NEXTHOP_MAX) >= NEXTHOP_MAX)
		return -1;
	if (nexthop_parse_transport(s, &tmp, err, sizeof(err)) == -1)
		return -1;
	if (nexthop_format(&tmp, back, sizeof(back)) == -1 ||
	    strcmp(back, s) != 0)
		return -1;
	*nh = tmp;
	return 0;
}

/* An address literal domain "[192.0.2.1]" / "[IPv6:...]": its host. */
static int
nexthop_route_literal(const char *domain, struct nexthop *nh, char *err,
    size_t errlen)
{
	size_t n = strlen(domain);
	const char *h = domain + 1;

	if (n < 3 || domain[n - 1] != ']') {
		snprintf(err, errlen, "bad address literal domain");
		return -1;
	}
	n -= 2;
	if (n > 5 && strncasecmp(h, "IPv6:", 5) == 0) {
		h += 5;
		n -= 5;
	} else if (memchr(h, ':', n) != NULL) {
		snprintf(err, errlen, "bad address literal domain");
		return -1;
	}
	if (nexthop_bracket_host(h, n, nh, err, errlen) == -1)
		return -1;
	if (strchr(nh->host, ':') == NULL && !nexthop_dotted(h, n)) {
		snprintf(err, errlen, "bad address literal domain");
		return -1;
	}
	nh->kind = NEXTHOP_HOST;
	return 0;
}

/* "mx" completed: the recipient's own domain, looked up for MX. */
static int
nexthop_route_domain(const char *domain, struct nexthop *nh, char *err,
    size_t errlen)
{
	size_t n = strlen(domain);

	if (domain[0] == '[')
		return nexthop_route_literal(domain, nh, err, errlen);
	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (!addr_domain_valid(domain, n)) {
		snprintf(err, errlen, "bad recipient domain");
		return -1;
	}
	memcpy(nh->host, domain, n);
	nh->host[n] = '\0';
	nexthop_lower(nh->host);
	return 0;
}

int
nexthop_route(const struct conf *cfg, const char *domain, char *dst,
    size_t dstsz, char *err, size_t errlen)
{
	const struct table *t = conf_table(cfg, CONF_TRANSPORT_MAPS);
	const char *maps = conf_str(cfg, CONF_TRANSPORT_MAPS);
	const char *relay = conf_str(cfg, CONF_RELAY_HOST);
	const char *tr = NULL, *what = "relay_host";
	char why[256];
	struct nexthop nh;

	if (t == NULL && maps != NULL && maps[0] != '\0') {
		/* Routing by MX instead would send mail past its route. */
		snprintf(err, errlen, "transport_maps %s is set but was not "
		    "loaded", maps);
		return -1;
	}
	if (t != NULL && (tr = table_lookup(t, domain, NULL)) != NULL)
		what = "transport_maps";
	else if (relay != NULL && relay[0] != '\0')
		tr = relay;
	else {
		tr = "mx";
		what = "default";
	}
	if (nexthop_parse_transport(tr, &nh, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", what, why);
		return -1;
	}
	if (nh.kind == NEXTHOP_MX && nh.host[0] == '\0' &&
	    nexthop_route_domain(domain, &nh, err, errlen) == -1)
		return -1;
	if (nh.kind != NEXTHOP_UNIX && nh.port == 0)
		nh.port = nh.proto == NEXTHOP_LMTP ? NEXTHOP_LMTP_PORT :
		    (uint16_t)conf_num(cfg, CONF_RELAY_PORT);
	if (nexthop_format(&nh, dst, dstsz) == -1) {
		snprintf(err, errlen, "next hop does not fit in %zu bytes", dstsz);
		return -1;
	}
	return 0;
}

const char *
nexthop_domain(const struct nexthop *nh)
{
	if (nh->kind == NEXTHOP_UNIX)
		return "";
	return nh->host;
}
