/*
 * test_nexthop.c: transports as operators write them, canonical next
 * hops (strict: the delivery agent's untrusted input), and the routing
 * order transport_maps, relay_host, MX.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/nexthop.h"
#include "util/conf.h"
#include "tests/unit/t.h"

/* s with control and 8-bit bytes as \xNN, so a label stays on one line. */
static const char *
vis(const char *s)
{
	static char out[4][512];
	static int next;
	char *o = out[next++ % 4];
	size_t n = 0;

	for (; *s != '\0' && n + 5 < sizeof(out[0]); s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c >= 0x7f)
			n += (size_t)snprintf(o + n, 5, "\\x%02x", c);
		else
			o[n++] = (char)c;
	}
	o[n] = '\0';
	return o;
}

static const struct {
	const char		*in;
	enum nexthop_proto	 proto;
	enum nexthop_kind	 kind;
	const char		*host;
	uint16_t		 port;
	const char		*path;
} good[] = {
	{ "smtp:[192.0.2.1]:25", NEXTHOP_SMTP, NEXTHOP_HOST, "192.0.2.1", 25, "" },
	{ "smtp:[192.0.2.1]", NEXTHOP_SMTP, NEXTHOP_HOST, "192.0.2.1", 0, "" },
	{ "smtp:[Mail.Example.NET]:587", NEXTHOP_SMTP, NEXTHOP_HOST, "mail.example.net", 587, "" },
	{ "smtp:example.com", NEXTHOP_SMTP, NEXTHOP_MX, "example.com", 0, "" },
	{ "smtp:example.com:2525", NEXTHOP_SMTP, NEXTHOP_MX, "example.com", 2525, "" },
	{ "SMTP:example.com", NEXTHOP_SMTP, NEXTHOP_MX, "example.com", 0, "" },
	{ "lmtp:[10.0.0.5]:24", NEXTHOP_LMTP, NEXTHOP_HOST, "10.0.0.5", 24, "" },
	{ "lmtp:[::1]", NEXTHOP_LMTP, NEXTHOP_HOST, "::1", 0, "" },
	{ "lmtp:[mailstore.internal]:2003", NEXTHOP_LMTP, NEXTHOP_HOST, "mailstore.internal", 2003, "" },
	{ "lmtp:unix:/run/lmtp", NEXTHOP_LMTP, NEXTHOP_UNIX, "", 0, "/run/lmtp" },
	{ "mx", NEXTHOP_SMTP, NEXTHOP_MX, "", 0, "" },
	{ "MX", NEXTHOP_SMTP, NEXTHOP_MX, "", 0, "" },
	{ "[192.0.2.1]:10025", NEXTHOP_SMTP, NEXTHOP_HOST, "192.0.2.1", 10025, "" },
	{ "[192.0.2.1]", NEXTHOP_SMTP, NEXTHOP_HOST, "192.0.2.1", 0, "" },
	{ "[2001:DB8:0::1]:25", NEXTHOP_SMTP, NEXTHOP_HOST, "2001:db8::1", 25, "" },
	{ "[relay.example.net]", NEXTHOP_SMTP, NEXTHOP_HOST, "relay.example.net", 0, "" },
	{ "relay.example.net", NEXTHOP_SMTP, NEXTHOP_MX, "relay.example.net", 0, "" },
	{ "relay.example.net:65535", NEXTHOP_SMTP, NEXTHOP_MX, "relay.example.net", 65535, "" },
	{ "localhost:1", NEXTHOP_SMTP, NEXTHOP_MX, "localhost", 1, "" },
	{ "unix", NEXTHOP_SMTP, NEXTHOP_MX, "unix", 0, "" },
	{ "smtp:unix:25", NEXTHOP_SMTP, NEXTHOP_MX, "unix", 25, "" },
	{ "smtp:[::ffff:192.0.2.1]:25", NEXTHOP_SMTP, NEXTHOP_HOST, "::ffff:192.0.2.1", 25, "" },
};

static const struct {
	const char	*in;
	const char	*want;		/* substring of the message */
} bad[] = {
	{ "", "empty transport" },
	{ "smtp:[300.1.1.1]:25", "bad IP address \"300.1.1.1\"" },
	{ "smtp:[1.2.3]:25", "bad IP address" },
	{ "smtp:[::1", "missing ']'" },
	{ "smtp:[]:25", "empty host in brackets" },
	{ "smtp:[::1]]:25", "want [host] or [host]:port" },
	{ "smtp:[::1]x", "want [host] or [host]:port" },
	{ "smtp:[::g]:25", "bad IP address" },
	{ "smtp:[IPv6:::1]:25", "bad IP address" },
	{ "lmtp:unix:relative", "absolute path" },
	{ "lmtp:unix:", "absolute path" },
	{ "lmtp:unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  "longer than 107 bytes" },
	{ "smtp:unix:/run/lmtp", "unix sockets are for lmtp only" },
	{ "lmtp:example.com", "lmtp needs lmtp:[host]" },
	{ "lmtp:example.com:24", "lmtp needs" },
	{ "smtp:[192.0.2.1]:0", "port 0 is out of range" },
	{ "smtp:[192.0.2.1]:65536", "port 65536 is out of range" },
	{ "smtp:[192.0.2.1]:99999999999", "bad port" },
	{ "smtp:[192.0.2.1]:", "bad port \"\"" },
	{ "smtp:[192.0.2.1]:-1", "bad port" },
	{ "smtp:[192.0.2.1]:+25", "bad port" },
	{ "smtp:[192.0.2.1]:25x", "bad port" },
	{ "smtp:-bad-.com", "bad host name \"-bad-.com\"" },
	{ "smtp:bad..example", "bad host name" },
	{ "smtp:example.com.", "bad host name" },
	{ "smtp:a_b.example", "bad host name" },
	{ "smtp:", "missing host" },
	{ "smtp:192.0.2.1:25", "write an IP address in brackets" },
	{ "192.0.2.1", "write an IP address in brackets" },
	{ "2001:db8::1", "IPv6 address goes in brackets" },
	{ "smtp:2001:db8::1", "IPv6 address goes in brackets" },
	{ "uucp:[192.0.2.1]", "unknown transport \"uucp\"" },
	{ "esmtp:example.com", "unknown transport \"esmtp\"" },
	{ "smpt:[192.0.2.1]:25", "unknown transport \"smpt\"" },
	{ "relay:", "unknown transport \"relay\"" },
	{ "mail.example.com:25x", "bad port \"25x\"" },
	{ "fe80::1", "IPv6 address goes in brackets" },
	{ "::1", "IPv6 address goes in brackets" },
	{ "smtp:[192.0.2.1]:25 smtp:[192.0.2.2]:25", "one transport only" },
	{ "smtp:[192.0.2.1]:25\n", "control or non-ASCII" },
	{ "smtp:ex\xc3\xa4mple.com", "control or non-ASCII" },
	{ "smtp:[192.0.2.1]:25\t", "one transport only" },
};

static void
test_transport(void)
{
	struct nexthop nh;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int r = nexthop_parse_transport(good[i].in, &nh, err, sizeof(err));

		T_OK(r == 0 && nh.proto == good[i].proto && nh.kind == good[i].kind &&
		    strcmp(nh.host, good[i].host) == 0 && nh.port == good[i].port &&
		    strcmp(nh.path, good[i].path) == 0,
		    "transport \"%s\" (%s; host '%s' port %u)", good[i].in,
		    r == 0 ? "ok" : err, nh.host, (unsigned int)nh.port);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r;

		err[0] = '\0';
		r = nexthop_parse_transport(bad[i].in, &nh, err, sizeof(err));
		T_OK(r == -1 && strstr(err, bad[i].want) != NULL,
		    "bad transport \"%s\": '%s' (got '%s')", vis(bad[i].in), bad[i].want, err);
	}
	/* An over-long host name in any form. */
	{
		char longname[600];

		memset(longname, 'a', sizeof(longname));
		memcpy(longname, "smtp:[", 6);
		longname[sizeof(longname) - 1] = '\0';
		T_OK(nexthop_parse_transport(longname, &nh, err, sizeof(err)) == -1,
		    "600-byte transport refused (%s)", err);
		longname[300] = '\0';
		T_OK(nexthop_parse_transport(longname + 6, &nh, err, sizeof(err)) == -1,
		    "294-byte host refused (%s)", err);
	}
}

/* Canonical forms: what format writes, parse accepts, and nothing else. */
static const char *canonical[] = {
	"smtp:[192.0.2.1]:25",
	"smtp:[mail.example.net]:25",
	"smtp:example.com:25",
	"lmtp:[::1]:24",
	"lmtp:[2001:db8::1]:2003",
	"lmtp:unix:/run/lmtp",
	"smtp:[::ffff:192.0.2.1]:465",
	"smtp:localhost:65535",
	"smtp:unix:25",
	"smtp:mx:25",
};

static const char *not_canonical[] = {
	"", "mx", "[192.0.2.1]:25", "example.com:25", "smtp:[192.0.2.1]", "smtp:example.com",
	"SMTP:[192.0.2.1]:25", "Smtp:example.com:25", "smtp:Example.com:25",
	"smtp:[Mail.example.net]:25", "smtp:[2001:DB8::1]:25", "smtp:[2001:db8:0::1]:25",
	"smtp:example.com:025", "smtp:example.com:0", "smtp:example.com:65536",
	"lmtp:example.com:24", "lmtp:unix:relative", "lmtp:UNIX:/run/lmtp",
	"smtp:unix:/run/lmtp", "smtp:[192.0.2.1]:25 ", " smtp:[192.0.2.1]:25",
	"smtp:[192.0.2.1]:25\n", "smtp:[192.0.2.1]:25\r\n", "smtp:[300.1.1.1]:25",
	"smtp:-bad-.com:25", "smtp:[::1:24", "smtp:[IPv6:::1]:25", "smtp::25",
	"smtp:[]:25", "lmtp:", "smtp:[192.0.2.1]:25:25",
};

static void
test_canonical(void)
{
	char out[NEXTHOP_MAX], small[8];
	struct nexthop nh;
	size_t i;

	for (i = 0; i < sizeof(canonical) / sizeof(canonical[0]); i++) {
		int r = nexthop_parse(canonical[i], &nh);

		T_OK(r == 0 && nexthop_format(&nh, out, sizeof(out)) == 0 &&
		    strcmp(out, canonical[i]) == 0, "canonical \"%s\" round trip", canonical[i]);
	}
	for (i = 0; i < sizeof(not_canonical) / sizeof(not_canonical[0]); i++)
		T_OK(nexthop_parse(not_canonical[i], &nh) == -1, "not canonical: \"%s\"",
		    vis(not_canonical[i]));

	T_OK(nexthop_parse("smtp:[192.0.2.1]:25", &nh) == 0 &&
	    nexthop_format(&nh, small, sizeof(small)) == -1, "format: too small a buffer");
	T_OK(nexthop_format(&nh, out, 20) == 0 && nexthop_format(&nh, out, 19) == -1,
	    "format: exact fit");
	nh.port = 0;
	T_OK(nexthop_format(&nh, out, sizeof(out)) == -1, "format: port 0 refused");
	memset(&nh, 0, sizeof(nh));
	nh.kind = NEXTHOP_MX;
	nh.port = 25;
	T_OK(nexthop_format(&nh, out, sizeof(out)) == -1, "format: mx without host refused");
	strcpy(nh.host, "example.com");
	nh.proto = NEXTHOP_LMTP;
	T_OK(nexthop_format(&nh, out, sizeof(out)) == -1, "format: lmtp with MX refused");
	nh.proto = NEXTHOP_SMTP;
	nh.kind = NEXTHOP_UNIX;
	strcpy(nh.path, "/run/x");
	T_OK(nexthop_format(&nh, out, sizeof(out)) == -1, "format: smtp over unix refused");
	nh.proto = NEXTHOP_LMTP;
	T_OK(nexthop_format(&nh, out, sizeof(out)) == 0 &&
	    strcmp(out, "lmtp:unix:/run/x") == 0, "format: lmtp unix");
	memset(nh.path, 'a', sizeof(nh.path));
	T_OK(nexthop_format(&nh, out, sizeof(out)) == -1, "format: unterminated path refused");
	nh.kind = (enum nexthop_kind)7;
	T_OK(nexthop_format(&nh, out, sizeof(out)) == -1, "format: unknown kind refused");

	/* The longest canonical text fits NEXTHOP_MAX. */
	{
		char in[NEXTHOP_MAX + 64];
		size_t n = 0, l;

		n += (size_t)snprintf(in, sizeof(in), "lmtp:[");
		for (l = 0; l < 4; l++) {
			memset(in + n, 'a' + (int)l, 63);
			n += 63;
			in[n++] = l < 3 ? '.' : ']';
		}
		snprintf(in + n, sizeof(in) - n, ":65535");
		T_OK(strlen(in) == 268 && nexthop_parse(in, &nh) == 0 &&
		    strlen(nh.host) == 255 && nexthop_format(&nh, out, sizeof(out)) == 0 &&
		    strcmp(out, in) == 0, "longest canonical next hop (%zu bytes)", strlen(in));
	}

	T_OK(nexthop_parse("smtp:mx.example.com:25", &nh) == 0 &&
	    strcmp(nexthop_domain(&nh), "mx.example.com") == 0, "domain of an MX next hop");
	T_OK(nexthop_parse("smtp:[relay.example.net]:25", &nh) == 0 &&
	    strcmp(nexthop_domain(&nh), "relay.example.net") == 0, "domain of a host next hop");
	T_OK(nexthop_parse("lmtp:unix:/run/lmtp", &nh) == 0 &&
	    strcmp(nexthop_domain(&nh), "") == 0, "domain of a unix next hop");
}

/* A configuration with a transport table, through a hand-made bundle. */
static struct conf *
route_conf(const char *conftext, const char *table)
{
	char b[2048], *errs = NULL;
	struct conf *c = NULL;
	size_t len = 15, errlen;
	FILE *f;

	memcpy(b, "\0moat-bundle 1\n", 15);
	len += (size_t)snprintf(b + len, sizeof(b) - len, "conf %zu\n%s\n", strlen(conftext),
	    conftext);
	if (table != NULL)
		len += (size_t)snprintf(b + len, sizeof(b) - len,
		    "table transport_maps %zu\n%s\n", strlen(table), table);
	len += (size_t)snprintf(b + len, sizeof(b) - len, "end\n");
	f = open_memstream(&errs, &errlen);
	if (conf_parse("t.conf", b, len, &c, f) != 0) {
		fclose(f);
		fprintf(stderr, "route_conf: %s", errs);
		exit(1);
	}
	fclose(f);
	free(errs);
	return c;
}

static const char route_table[] =
    "example.com        lmtp:[10.0.0.5]\n"
    ".example.com       smtp:[relay.example.com]:2525\n"
    "example.net        mx\n"
    "example.org        smtp:mx.example.org\n"
    "sock.example       lmtp:unix:/run/lmtp\n"
    "v6.example         smtp:[2001:db8::25]\n";

static const struct {
	const char	*label;
	int		 conf;		/* 0: none, 1: table, 2: relay_host, 3: both */
	const char	*domain;
	const char	*want;		/* NULL: an error */
} routes[] = {
	{ "no config: MX", 0, "Example.COM", "smtp:example.com:25" },
	{ "no config: trailing dot", 0, "example.com.", "smtp:example.com:25" },
	{ "no config: literal", 0, "[192.0.2.7]", "smtp:[192.0.2.7]:25" },
	{ "no config: v6 literal", 0, "[IPv6:2001:db8::7]", "smtp:[2001:db8::7]:25" },
	{ "no config: bad literal", 0, "[example.com]", NULL },
	{ "no config: bad domain", 0, "-bad-.example", NULL },
	{ "no config: empty domain", 0, "", NULL },
	{ "table exact, lmtp port 24", 1, "example.com", "lmtp:[10.0.0.5]:24" },
	{ "table .parent", 1, "a.b.example.com", "smtp:[relay.example.com]:2525" },
	{ "table mx means the recipient domain", 1, "example.net", "smtp:example.net:2526" },
	{ "table MX of a named host, relay_port", 1, "example.org", "smtp:mx.example.org:2526" },
	{ "table unix", 1, "sock.example", "lmtp:unix:/run/lmtp" },
	{ "table v6", 1, "v6.example", "smtp:[2001:db8::25]:2526" },
	{ "table miss: MX", 1, "other.example", "smtp:other.example:2526" },
	{ "relay_host", 2, "other.example", "smtp:[192.0.2.9]:2526" },
	{ "table before relay_host", 3, "example.com", "lmtp:[10.0.0.5]:24" },
	{ "table miss: relay_host", 3, "other.example", "smtp:[192.0.2.9]:2526" },
	{ "table mx beats relay_host", 3, "example.net", "smtp:example.net:2526" },
};

static void
test_route(void)
{
	struct conf *cf[4];
	char out[NEXTHOP_MAX], err[256], small[10];
	struct nexthop nh;
	size_t i;

	cf[0] = route_conf("", NULL);
	cf[1] = route_conf("relay_port = 2526\ntransport_maps = /etc/moat/transport", route_table);
	cf[2] = route_conf("relay_port = 2526\nrelay_host = [192.0.2.9]", NULL);
	cf[3] = route_conf("relay_port = 2526\nrelay_host = [192.0.2.9]\n"
	    "transport_maps = /etc/moat/transport", route_table);
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		int r;

		err[0] = out[0] = '\0';
		r = nexthop_route(cf[routes[i].conf], routes[i].domain, out, sizeof(out),
		    err, sizeof(err));
		if (routes[i].want == NULL)
			T_OK(r == -1 && err[0] != '\0', "route %s: refused (%s)", routes[i].label, err);
		else
			T_OK(r == 0 && strcmp(out, routes[i].want) == 0 && nexthop_parse(out, &nh) == 0,
			    "route %s: %s (got '%s' %s)", routes[i].label, routes[i].want, out, err);
	}
	T_OK(nexthop_route(cf[1], "example.com", small, sizeof(small), err, sizeof(err)) == -1 &&
	    strstr(err, "does not fit") != NULL, "route: small buffer (%s)", err);
	for (i = 0; i < 4; i++)
		conf_free(cf[i]);

	/* A table named but not loaded must not silently fall back to MX. */
	{
		struct conf *c = NULL;

		if (conf_parse("t.conf", "transport_maps = /etc/moat/transport\n", 37, &c, NULL) == 0) {
			T_OK(nexthop_route(c, "example.com", out, sizeof(out), err, sizeof(err)) == -1 &&
			    strstr(err, "not loaded") != NULL, "route: unloaded table refused (%s)", err);
			conf_free(c);
		} else
			T_OK(0, "route: plain config parses");
		c = route_conf("relay_host = lmtp:[::1]", NULL);
		T_OK(nexthop_route(c, "example.com", out, sizeof(out), err, sizeof(err)) == 0 &&
		    strcmp(out, "lmtp:[::1]:24") == 0, "route: relay_host lmtp defaults to 24 (%s)", out);
		conf_free(c);
		c = route_conf("relay_host = relay.example.net", NULL);
		T_OK(nexthop_route(c, "example.com", out, sizeof(out), err, sizeof(err)) == 0 &&
		    strcmp(out, "smtp:relay.example.net:25") == 0, "route: relay_host by MX (%s)", out);
		conf_free(c);
		c = route_conf("relay_host = mx", NULL);
		T_OK(nexthop_route(c, "example.com", out, sizeof(out), err, sizeof(err)) == 0 &&
		    strcmp(out, "smtp:example.com:25") == 0, "route: relay_host mx (%s)", out);
		conf_free(c);
	}
}

int
main(void)
{
	test_transport();
	test_canonical();
	test_route();
	return t_done();
}
