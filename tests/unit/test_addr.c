/*
 * test_addr.c: RFC 5321 paths and mailboxes: grammar, limits, literals,
 * source routes, the null path and the consumed count.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "mail/addr.h"
#include "tests/unit/t.h"

static const struct {
	const char	*label;
	const char	*in;
	int		 allow_null;
	enum addr_err	 err;
	const char	*local;		/* expected, when ADDR_OK */
	const char	*domain;
	size_t		 consumed;
} paths[] = {
	{ "simple", "<user@example.com>", 0, ADDR_OK, "user", "example.com", 18 },
	{ "domain lower-cased", "<User@EXAMPLE.Com>", 0, ADDR_OK, "User", "example.com", 18 },
	{ "dotted local", "<first.last@example.com>", 0, ADDR_OK, "first.last", "example.com", 24 },
	{ "atext specials", "<!#$%&'*+-/=?^_`{|}~@x.org>", 0, ADDR_OK, "!#$%&'*+-/=?^_`{|}~", "x.org", 27 },
	{ "single label domain", "<root@localhost>", 0, ADDR_OK, "root", "localhost", 16 },
	{ "digit label", "<a@3com.example>", 0, ADDR_OK, "a", "3com.example", 16 },
	{ "hyphen inside label", "<a@my-host.example>", 0, ADDR_OK, "a", "my-host.example", 19 },
	{ "params after path", "<a@b.c> SIZE=123", 0, ADDR_OK, "a", "b.c", 7 },
	{ "garbage after path", "<a@b.c>xyz", 0, ADDR_OK, "a", "b.c", 7 },
	{ "quoted", "<\"john doe\"@example.com>", 0, ADDR_OK, "\"john doe\"", "example.com", 24 },
	{ "quoted escapes", "<\"a\\\"b\\\\c\"@x.org>", 0, ADDR_OK, "\"a\\\"b\\\\c\"", "x.org", 17 },
	{ "quoted with @ and >", "<\"a@b>\"@x.org>", 0, ADDR_OK, "\"a@b>\"", "x.org", 14 },
	{ "quoted empty", "<\"\"@x.org>", 0, ADDR_OK, "\"\"", "x.org", 10 },
	{ "ipv4 literal", "<a@[192.0.2.1]>", 0, ADDR_OK, "a", "[192.0.2.1]", 15 },
	{ "ipv6 literal", "<a@[IPv6:2001:db8::1]>", 0, ADDR_OK, "a", "[IPv6:2001:db8::1]", 22 },
	{ "ipv6 literal lower tag", "<a@[ipv6:::1]>", 0, ADDR_OK, "a", "[ipv6:::1]", 14 },
	{ "source route", "<@a.example,@b.example:u@d.example>", 0, ADDR_OK, "u", "d.example", 35 },
	{ "source route one hop", "<@relay.example:u@d.example>", 0, ADDR_OK, "u", "d.example", 28 },
	{ "null allowed", "<>", 1, ADDR_OK, "", "", 2 },
	{ "null then params", "<> BODY=8BITMIME", 1, ADDR_OK, "", "", 2 },

	{ "null refused", "<>", 0, ADDR_ERR_NULL, NULL, NULL, 0 },
	{ "empty", "", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "lone <", "<", 1, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "no brackets", "user@example.com", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "missing >", "<user@example.com", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "missing <", "user@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "space before >", "<user@example.com >", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "space after <", "< user@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "space in local", "<us er@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "space in domain", "<user@exa mple.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "no @", "<user>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "postmaster alone", "<postmaster>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "two @", "<a@b@c.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "empty local", "<@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "empty domain", "<user@>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "leading dot", "<.user@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "trailing dot", "<user.@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "double dot", "<us..er@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "domain trailing dot", "<u@example.com.>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "domain leading dot", "<u@.example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "domain double dot", "<u@example..com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "label leading hyphen", "<u@-example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "label trailing hyphen", "<u@example-.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "underscore in domain", "<u@ex_ample.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "8-bit local", "<j\xc3\xb6rg@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "8-bit domain", "<u@b\xc3\xbc" "cher.example>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "8-bit quoted", "<\"j\xc3\xb6rg\"@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "control in local", "<us\ter@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "control in quoted", "<\"a\rb\"@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "escaped control in quoted", "<\"a\\\nb\"@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "DEL in quoted", "<\"a\x7f\"@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "unterminated quote", "<\"abc@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "quote inside atom", "<ab\"c\"@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "backslash unquoted", "<a\\b@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "parenthesis comment", "<a(c)@example.com>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "general literal", "<a@[x-tag:stuff]>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "bad ipv4 literal", "<a@[192.0.2.256]>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "short ipv4 literal", "<a@[192.0.2]>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "ipv6 without tag", "<a@[2001:db8::1]>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "bad ipv6 literal", "<a@[IPv6:2001:db8:::1]>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "empty literal", "<a@[]>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "space in literal", "<a@[ 192.0.2.1]>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "tab after literal address", "<a@[192.0.2.1\t]>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "unclosed literal", "<a@[192.0.2.1>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "literal then junk", "<a@[192.0.2.1]x>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "route without colon", "<@a.example,u@d.example>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "route bad domain", "<@a..example:u@d.example>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "route empty", "<@:u@d.example>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "route only", "<@a.example:>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "nested brackets", "<<a@b.c>>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
	{ "null with space", "< >", 1, ADDR_ERR_SYNTAX, NULL, NULL, 0 },
};

static void
test_paths(void)
{
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct mailaddr a;
		size_t consumed = 999;
		enum addr_err e;

		memset(&a, 'Z', sizeof(a));
		e = addr_parse_path(paths[i].in, strlen(paths[i].in), paths[i].allow_null, &a, &consumed);
		T_OK(e == paths[i].err, "path %s: error %d (want %d: %s)", paths[i].label, e,
		    paths[i].err, addr_strerror(paths[i].err));
		if (paths[i].err != ADDR_OK || e != ADDR_OK)
			continue;
		T_OK(strcmp(a.local, paths[i].local) == 0 && strcmp(a.domain, paths[i].domain) == 0,
		    "path %s: parts '%s' '%s'", paths[i].label, a.local, a.domain);
		T_OK(consumed == paths[i].consumed, "path %s: consumed %zu (want %zu)",
		    paths[i].label, consumed, paths[i].consumed);
		T_OK(a.is_null == (paths[i].local[0] == '\0'), "path %s: is_null", paths[i].label);
	}
}

/* Bytes after a NUL inside a literal: inet_pton would stop at the NUL. */
static void
test_nul_bytes(void)
{
	static const char lit6[] = "<a@[IPv6:::\0\0\0\0141]>";
	static const char lit4[] = "<a@[192.0.2.1\0junk]>";
	static const char local[] = "<a\0b@example.com>";
	static const char quoted[] = "<\"a\0b\"@example.com>";
	struct mailaddr a;
	size_t consumed;

	T_OK(addr_parse_path(lit6, sizeof(lit6) - 1, 0, &a, &consumed) == ADDR_ERR_SYNTAX,
	    "NUL inside an IPv6 literal refused");
	T_OK(addr_parse_path(lit4, sizeof(lit4) - 1, 0, &a, &consumed) == ADDR_ERR_SYNTAX,
	    "NUL inside an IPv4 literal refused");
	T_OK(addr_parse_path(local, sizeof(local) - 1, 0, &a, &consumed) == ADDR_ERR_SYNTAX,
	    "NUL inside a local part refused");
	T_OK(addr_parse_path(quoted, sizeof(quoted) - 1, 0, &a, &consumed) == ADDR_ERR_SYNTAX,
	    "NUL inside a quoted string refused");
	T_OK(addr_parse_mailbox("a@b.c\0d", 7, &a) == ADDR_ERR_SYNTAX, "NUL inside a domain refused");
	T_OK(!addr_domain_valid("ab\0c", 4), "NUL inside a domain invalid");
}

/* The parser must not look beyond len even if the bytes after are valid. */
static void
test_len_respected(void)
{
	const char *s = "<user@example.com>";
	struct mailaddr a;
	size_t consumed, len = strlen(s), n;
	enum addr_err e;

	for (n = 0; n < len; n++) {
		e = addr_parse_path(s, n, 0, &a, &consumed);
		T_OK(e != ADDR_OK, "path cut at %zu bytes refused", n);
	}
	e = addr_parse_mailbox("a@b.cx", 5, &a);
	T_OK(e == ADDR_OK && strcmp(a.domain, "b.c") == 0, "mailbox stops at len");
}

/* Build "<" + local + "@" + domain + ">" with the given part lengths. */
static enum addr_err
parse_sized(size_t llen, const char *domain, size_t *consumed, struct mailaddr *a)
{
	char buf[1024];
	size_t n = 0;

	buf[n++] = '<';
	memset(buf + n, 'l', llen);
	n += llen;
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "@%s>", domain);
	return addr_parse_path(buf, n, 0, a, consumed);
}

/* A domain of exactly len octets made of 63-octet labels. */
static void
make_domain(char *dst, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		dst[i] = (i % 64 == 63) ? '.' : 'd';
	if (dst[len - 1] == '.')
		dst[len - 1] = 'e';
	dst[len] = '\0';
}

static void
test_limits(void)
{
	char dom[512], buf[1024];
	struct mailaddr a;
	size_t consumed, n;
	enum addr_err e;

	e = parse_sized(64, "example.com", &consumed, &a);
	T_OK(e == ADDR_OK && strlen(a.local) == 64, "64-octet local part accepted");
	e = parse_sized(65, "example.com", &consumed, &a);
	T_OK(e == ADDR_ERR_TOO_LONG, "65-octet local part too long (%d)", e);
	e = parse_sized(1000, "example.com", &consumed, &a);
	T_OK(e == ADDR_ERR_TOO_LONG, "1000-octet local part too long (%d)", e);

	/* Quoted local part: 64 with the quotes is the limit. */
	n = 0;
	buf[n++] = '<';
	buf[n++] = '"';
	memset(buf + n, 'q', 62);
	n += 62;
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\"@x.org>");
	e = addr_parse_path(buf, n, 0, &a, &consumed);
	T_OK(e == ADDR_OK && strlen(a.local) == 64, "64-octet quoted local part accepted");
	buf[1 + 62 + 1] = 'q';
	n = 1 + 1 + 63;
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\"@x.org>");
	e = addr_parse_path(buf, n, 0, &a, &consumed);
	T_OK(e == ADDR_ERR_TOO_LONG, "65-octet quoted local part too long (%d)", e);

	/* Labels: 63 ok, 64 not. */
	memset(dom, 'a', 63);
	snprintf(dom + 63, sizeof(dom) - 63, ".com");
	T_OK(parse_sized(1, dom, &consumed, &a) == ADDR_OK, "63-octet label accepted");
	memset(dom, 'a', 64);
	snprintf(dom + 64, sizeof(dom) - 64, ".com");
	T_OK(parse_sized(1, dom, &consumed, &a) == ADDR_ERR_SYNTAX, "64-octet label refused");

	/* The mailbox limit (254) binds before the domain limit (255)
	 * inside a path: 1 + 1 + 252 = 254. */
	make_domain(dom, 252);
	e = parse_sized(1, dom, &consumed, &a);
	T_OK(e == ADDR_OK && consumed == 256, "256-octet path accepted (%d, %zu)", e, consumed);
	make_domain(dom, 253);
	e = parse_sized(1, dom, &consumed, &a);
	T_OK(e == ADDR_ERR_TOO_LONG, "257-octet path too long (%d)", e);
	make_domain(dom, 255);
	T_OK(addr_domain_valid(dom, 255), "255-octet domain valid");
	make_domain(dom, 256);
	T_OK(!addr_domain_valid(dom, 256), "256-octet domain invalid");
	e = parse_sized(1, dom, &consumed, &a);
	T_OK(e == ADDR_ERR_TOO_LONG, "256-octet domain too long (%d)", e);
	make_domain(dom, 240);
	e = parse_sized(14, dom, &consumed, &a);
	T_OK(e == ADDR_ERR_TOO_LONG, "local 14 + domain 240 = 255-octet mailbox too long (%d)", e);

	/* A source route counts toward the 256-octet path. */
	n = (size_t)snprintf(buf, sizeof(buf), "<@%s:", "r.example");
	make_domain(dom, 200);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "u@%s>", dom);
	e = addr_parse_path(buf, n, 0, &a, &consumed);
	T_OK(e == ADDR_OK && consumed == n, "route + mailbox within 256 (%zu)", n);
	n = (size_t)snprintf(buf, sizeof(buf), "<@%s:", "relay-with-a-long-name.example");
	make_domain(dom, 230);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "u@%s>", dom);
	e = addr_parse_path(buf, n, 0, &a, &consumed);
	T_OK(e == ADDR_ERR_TOO_LONG, "route + mailbox over 256 too long (%zu bytes, %d)", n, e);
}

static const struct {
	const char	*label;
	const char	*in;
	enum addr_err	 err;
	const char	*formatted;
} mailboxes[] = {
	{ "plain", "user@example.com", ADDR_OK, "user@example.com" },
	{ "case", "User@Example.COM", ADDR_OK, "User@example.com" },
	{ "quoted", "\"a b\"@example.com", ADDR_OK, "\"a b\"@example.com" },
	{ "literal", "a@[127.0.0.1]", ADDR_OK, "a@[127.0.0.1]" },
	{ "brackets", "<user@example.com>", ADDR_ERR_SYNTAX, NULL },
	{ "trailing space", "user@example.com ", ADDR_ERR_SYNTAX, NULL },
	{ "trailing junk", "user@example.com>", ADDR_ERR_SYNTAX, NULL },
	{ "empty", "", ADDR_ERR_SYNTAX, NULL },
	{ "no domain", "user", ADDR_ERR_SYNTAX, NULL },
	{ "route", "@a.example:u@d.example", ADDR_ERR_SYNTAX, NULL },
};

static void
test_mailboxes(void)
{
	size_t i;

	for (i = 0; i < sizeof(mailboxes) / sizeof(mailboxes[0]); i++) {
		struct mailaddr a;
		char out[ADDR_MAILBOX_MAX + 1];
		enum addr_err e = addr_parse_mailbox(mailboxes[i].in, strlen(mailboxes[i].in), &a);

		T_OK(e == mailboxes[i].err, "mailbox %s: error %d", mailboxes[i].label, e);
		if (e != ADDR_OK || mailboxes[i].err != ADDR_OK)
			continue;
		T_OK(addr_format(&a, out, sizeof(out)) == 0 && strcmp(out, mailboxes[i].formatted) == 0,
		    "mailbox %s: formats as %s", mailboxes[i].label, out);
	}
}

static void
test_format(void)
{
	struct mailaddr a;
	char out[9];
	size_t consumed;

	T_OK(addr_parse_path("<>", 2, 1, &a, &consumed) == ADDR_OK, "format: null parsed");
	T_OK(addr_format(&a, out, sizeof(out)) == 0 && out[0] == '\0', "format: null is empty");
	T_OK(addr_parse_mailbox("abc@d.ef", 8, &a) == ADDR_OK, "format: parsed");
	T_OK(addr_format(&a, out, 8) == -1 && strlen(out) == 7, "format: truncation reported");
	T_OK(addr_format(&a, out, 9) == 0 && strcmp(out, "abc@d.ef") == 0, "format: exact fit");
	T_OK(addr_format(&a, out, 0) == -1, "format: zero size");
	T_OK(strcmp(addr_strerror(ADDR_ERR_TOO_LONG), "address too long") == 0, "strerror too long");
	T_OK(addr_strerror((enum addr_err)99) != NULL, "strerror unknown code");
}

static const struct {
	const char *d;
	int ok;
} domains[] = {
	{ "example.com", 1 }, { "a", 1 }, { "a-b.c", 1 }, { "1.2.3.4", 1 }, { "xn--bcher-kva.example", 1 },
	{ "", 0 }, { ".", 0 }, { "a.", 0 }, { ".a", 0 }, { "a..b", 0 }, { "-a", 0 }, { "a-", 0 },
	{ "a_b", 0 }, { "a b", 0 }, { "[1.2.3.4]", 0 }, { "a\xc3\xa9", 0 },
};

static void
test_domains(void)
{
	size_t i;

	for (i = 0; i < sizeof(domains) / sizeof(domains[0]); i++)
		T_OK(addr_domain_valid(domains[i].d, strlen(domains[i].d)) == domains[i].ok,
		    "domain '%s' %s", domains[i].d, domains[i].ok ? "valid" : "invalid");
	T_OK(!addr_domain_valid("ab", 0), "domain of length 0 invalid");
	T_OK(addr_domain_valid("a.b.", 3), "domain checked only up to len");
}

int
main(void)
{
	test_paths();
	test_nul_bytes();
	test_len_respected();
	test_limits();
	test_mailboxes();
	test_format();
	test_domains();
	return t_done();
}
