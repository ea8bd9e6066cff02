/*
 * test_dns.c: delivery-agent/dns.c.  The pure helpers (MX order, the
 * shuffle of equal preferences with a fixed random source, duplicates,
 * null MX, caps, literals, server words), then whole resolutions through
 * c-ares against a small UDP DNS responder forked on 127.0.0.1 that
 * answers crafted packets: normal, implicit and null MX, SERVFAIL,
 * NXDOMAIN, silence, and hostile replies (cut short, wrong id,
 * compression loop, huge counts, over-long names, bad record lengths).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/conf.h"
#include "util/xmalloc.h"
#include "delivery-agent/dns.h"
#include "tests/unit/t.h"

/* ---- A scripted random source ---- */

struct script {
	const uint32_t	*v;
	size_t		 n, i;
};

static uint32_t
script_rnd(void *arg, uint32_t bound)
{
	struct script *s = arg;
	uint32_t r = s->i < s->n ? s->v[s->i++] : 0;

	return r % bound;
}

/* Fill mx from "pref host" pairs. */
static size_t
mx_fill(struct dns_mx *mx, const unsigned int *pref, const char *const *host,
    size_t n)
{
	size_t i, m = 0;

	for (i = 0; i < n; i++)
		dns_mx_add(mx, &m, 64, pref[i], host[i]);
	return m;
}

/* The hosts of mx joined by ',', for comparison with a table. */
static void
mx_join(const struct dns_mx *mx, size_t n, char *dst, size_t dstsz)
{
	size_t i;

	dst[0] = '\0';
	for (i = 0; i < n; i++) {
		char one[300];

		snprintf(one, sizeof(one), "%s%u:%s", i ? "," : "",
		    mx[i].pref, mx[i].host);
		strncat(dst, one, dstsz - strlen(dst) - 1);
	}
}

static void
test_order(void)
{
	static const struct {
		const char	*label;
		size_t		 n;
		unsigned int	 pref[6];
		const char	*host[6];
		uint32_t	 rnd[6];
		size_t		 nrnd;
		const char	*want;
	} cases[] = {
		{ "sorted by preference", 3, { 30, 10, 20 },
		  { "c.example", "a.example", "b.example" }, { 0 }, 0,
		  "10:a.example,20:b.example,30:c.example" },
		{ "equal prefs, rnd keeps order", 2, { 10, 10 },
		  { "a.example", "b.example" }, { 1 }, 1,
		  "10:a.example,10:b.example" },
		{ "equal prefs, rnd swaps", 2, { 10, 10 },
		  { "a.example", "b.example" }, { 0 }, 1,
		  "10:b.example,10:a.example" },
		{ "three equal, rotated", 4, { 5, 10, 10, 10 },
		  { "z.example", "a.example", "b.example", "c.example" },
		  { 0, 0 }, 2, "5:z.example,10:b.example,10:c.example,10:a.example" },
		{ "duplicate host keeps best pref", 3, { 20, 10, 5 },
		  { "a.example", "b.example", "A.Example." }, { 0 }, 0,
		  "5:a.example,10:b.example" },
		{ "null MX mixed with real: dropped", 2, { 0, 10 },
		  { ".", "mx.example" }, { 0 }, 0, "10:mx.example" },
		{ "null MX alone: nothing to try", 1, { 0 }, { "." }, { 0 }, 0,
		  "" },
		{ "case and final dot folded", 1, { 7 }, { "MX.EXAMPLE.COM." },
		  { 0 }, 0, "7:mx.example.com" },
		{ "preference 65535", 2, { 65535, 0 }, { "b.x", "a.x" }, { 0 },
		  0, "0:a.x,65535:b.x" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dns_mx mx[64];
		struct script s = { cases[i].rnd, cases[i].nrnd, 0 };
		char got[1024];
		size_t n;

		n = mx_fill(mx, cases[i].pref, cases[i].host, cases[i].n);
		n = dns_mx_order(mx, n, script_rnd, &s);
		mx_join(mx, n, got, sizeof(got));
		T_OK(strcmp(got, cases[i].want) == 0, "order: %s (got %s)",
		    cases[i].label, got);
	}
}

/* Over many random draws, each of two equal MX hosts comes first. */
static void
test_shuffle_spread(void)
{
	int first_a = 0, first_b = 0, k;
	uint32_t seq[1];

	for (k = 0; k < 8; k++) {
		struct dns_mx mx[2];
		struct script s = { seq, 1, 0 };
		size_t n = 0;

		seq[0] = (uint32_t)k;
		dns_mx_add(mx, &n, 2, 10, "a.example");
		dns_mx_add(mx, &n, 2, 10, "b.example");
		dns_mx_order(mx, n, script_rnd, &s);
		first_a += strcmp(mx[0].host, "a.example") == 0;
		first_b += strcmp(mx[0].host, "b.example") == 0;
	}
	T_OK(first_a == 4 && first_b == 4, "shuffle: both orders (a %d, b %d)",
	    first_a, first_b);
}

static void
test_null(void)
{
	struct dns_mx mx[4];
	size_t n = 0;

	T_OK(!dns_mx_is_null(mx, 0), "null: empty set is not null MX");
	dns_mx_add(mx, &n, 4, 0, ".");
	T_OK(n == 1 && dns_mx_is_null(mx, n), "null: MX 0 .");
	n = 0;
	dns_mx_add(mx, &n, 4, 0, "");
	T_OK(n == 1 && dns_mx_is_null(mx, n), "null: MX 0 (empty name)");
	n = 0;
	dns_mx_add(mx, &n, 4, 10, ".");
	T_OK(dns_mx_is_null(mx, n), "null: root exchange at preference 10");
	dns_mx_add(mx, &n, 4, 0, ".");
	T_OK(dns_mx_is_null(mx, n), "null: two root exchanges");
	dns_mx_add(mx, &n, 4, 20, "mx.example");
	T_OK(!dns_mx_is_null(mx, n), "null: mixed with a real host is not");
}

static void
test_add_caps(void)
{
	struct dns_mx mx[4];
	char name[400];
	size_t n = 0, i;

	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "h%zu.example", i);
		dns_mx_add(mx, &n, 4, (unsigned int)(10 + i), name);
	}
	T_OK(n == 4, "cap: four kept");
	T_OK(!dns_mx_add(mx, &n, 4, 50, "worse.example"),
	    "cap: worse preference refused when full");
	T_OK(dns_mx_add(mx, &n, 4, 1, "better.example") && n == 4,
	    "cap: better preference replaces the worst");
	for (i = 0; i < n; i++)
		T_OK(mx[i].pref != 13, "cap: slot %zu is not the evicted 13", i);

	n = 0;
	memset(name, 'a', 254);
	name[254] = '\0';
	T_OK(!dns_mx_add(mx, &n, 4, 10, name) && n == 0,
	    "cap: 254-character name refused");
	memset(name, 'a', 300);
	name[300] = '\0';
	T_OK(!dns_mx_add(mx, &n, 4, 10, name), "cap: 300-character name");
	T_OK(!dns_mx_add(mx, &n, 4, 10, "bad host.example"),
	    "cap: space in name refused");
	T_OK(!dns_mx_add(mx, &n, 4, 10, "a..b"), "cap: empty label refused");
	T_OK(!dns_mx_add(mx, &n, 0, 10, "a.b"), "cap: zero capacity");
}

static void
test_name_valid(void)
{
	static const struct { const char *name; int ok; } cases[] = {
		{ "example.com", 1 }, { "example.com.", 1 }, { "a", 1 },
		{ "_dmarc.x-y.example", 1 }, { "", 0 }, { ".", 0 },
		{ "a..b", 0 }, { ".a", 0 }, { "a b", 0 }, { "a\\.b", 0 },
		{ "\xc3\xa9.example", 0 }, { "a.b..", 0 },
	};
	char lab[80], big[300];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		T_OK(dns_name_valid(cases[i].name) == cases[i].ok,
		    "name_valid: case %zu", i);
	memset(lab, 'x', 64);
	lab[63] = '\0';
	T_OK(dns_name_valid(lab), "name_valid: 63-character label");
	lab[63] = 'x';
	lab[64] = '\0';
	T_OK(!dns_name_valid(lab), "name_valid: 64-character label");
	for (i = 0; i < 253; i++)
		big[i] = i % 50 == 49 ? '.' : 'b';
	big[253] = '\0';
	T_OK(dns_name_valid(big), "name_valid: 253 characters");
	big[253] = 'b';
	big[254] = '\0';
	T_OK(!dns_name_valid(big), "name_valid: 254 characters");
}

static void
test_literal(void)
{
	static const struct {
		const char	*host;
		int		 ok, family;
	} cases[] = {
		{ "192.0.2.1", 0, AF_INET }, { "[192.0.2.1]", 0, AF_INET },
		{ "2001:db8::1", 0, AF_INET6 }, { "[IPv6:2001:db8::1]", 0, AF_INET6 },
		{ "[ipv6:::1]", 0, AF_INET6 }, { "example.com", -1, 0 },
		{ "[192.0.2.1", -1, 0 }, { "[]", -1, 0 }, { "", -1, 0 },
		{ "192.0.2.256", -1, 0 }, { "fe80::1%eth0", -1, 0 },
		{ "[IPv6:192.0.2.1x]", -1, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage ss;
		socklen_t len = 0;
		int rc = dns_literal(cases[i].host, 2525, &ss, &len);

		T_OK(rc == cases[i].ok && (rc == -1 ||
		    (ss.ss_family == cases[i].family &&
		    ntohs(((struct sockaddr_in *)&ss)->sin_port) == 2525 &&
		    len == (cases[i].family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)))),
		    "literal: \"%s\"", cases[i].host);
	}
}

static void
test_server_parse(void)
{
	static const struct {
		const char	*word;
		int		 ok, family;
		unsigned int	 port;
	} cases[] = {
		{ "192.0.2.53", 0, AF_INET, 53 },
		{ "127.0.0.1:5353", 0, AF_INET, 5353 },
		{ "::1", 0, AF_INET6, 53 },
		{ "[::1]", 0, AF_INET6, 53 },
		{ "[::1]:5353", 0, AF_INET6, 5353 },
		{ "ns.example", -1, 0, 0 },
		{ "127.0.0.1:0", -1, 0, 0 },
		{ "127.0.0.1:65536", -1, 0, 0 },
		{ "[::1]:", -1, 0, 0 },
		{ "", -1, 0, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage ss;
		int rc = dns_server_parse(cases[i].word, &ss);

		T_OK(rc == cases[i].ok && (rc == -1 ||
		    (ss.ss_family == cases[i].family &&
		    ntohs(((struct sockaddr_in *)&ss)->sin_port) ==
		    cases[i].port)), "server_parse: \"%s\"", cases[i].word);
	}
}

static void
test_targets(void)
{
	struct dns_result *res = calloc(1, sizeof(*res));
	struct in_addr v4[40];
	struct in6_addr v6[2];
	char txt[INET6_ADDRSTRLEN];
	size_t i;

	inet_pton(AF_INET6, "2001:db8::1", &v6[0]);
	inet_pton(AF_INET6, "2001:db8::2", &v6[1]);
	for (i = 0; i < 40; i++)
		v4[i].s_addr = htonl(0xc0000200u + (uint32_t)i);
	T_OK(dns_targets_add(res, "a.example", 10, 25, v6, 2, v4, 3) == 5,
	    "targets: five added");
	T_OK(res->t[0].ss.ss_family == AF_INET6 &&
	    res->t[1].ss.ss_family == AF_INET &&
	    res->t[2].ss.ss_family == AF_INET6 &&
	    res->t[3].ss.ss_family == AF_INET &&
	    res->t[4].ss.ss_family == AF_INET, "targets: interleaved, v6 first");
	inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&res->t[2].ss)->sin6_addr,
	    txt, sizeof(txt));
	T_OK(strcmp(txt, "2001:db8::2") == 0, "targets: second v6 third");
	T_OK(ntohs(((struct sockaddr_in *)&res->t[1].ss)->sin_port) == 25 &&
	    res->t[1].pref == 10 && strcmp(res->t[1].host, "a.example") == 0,
	    "targets: port, pref, host");
	T_OK(dns_targets_add(res, "b.example", 20, 25, v6, 1, v4, 1) == 0 &&
	    res->n == 5, "targets: duplicate addresses of another host skipped");
	T_OK(dns_targets_add(res, "c.example", 30, 25, NULL, 0, v4, 40) == 27 &&
	    res->n == DNS_TARGETS_MAX, "targets: capped at DNS_TARGETS_MAX");
	T_OK(dns_targets_add(res, "d.example", 30, 25, v6, 0, v4 + 39, 1) == 0,
	    "targets: full result takes no more");
	free(res);
}

/* ---- The responder ---- */

enum mode {
	M_ANSWER, M_NODATA, M_NXDOMAIN, M_SERVFAIL, M_REFUSED, M_SILENT,
	M_SHORT, M_WRONGID, M_LOOP, M_HUGE, M_LONGNAME, M_BADRDATA, M_SLOWMX
};

#define T_A	1
#define T_MX	15
#define T_AAAA	28
#define T_ANY	0

/* What the responder says for a name and type; data: "10 mx.x" for
 * MX, addresses for A and AAAA. */
struct zone {
	const char	*name;
	int		 type;
	enum mode	 mode;
	const char	*data[4];
};

static const struct zone zone[] = {
	{ "ok.test", T_MX, M_ANSWER, { "10 mx1.ok.test", "20 mx2.ok.test" } },
	{ "mx1.ok.test", T_A, M_ANSWER, { "127.0.0.5" } },
	{ "mx1.ok.test", T_AAAA, M_ANSWER, { "::5" } },
	{ "mx2.ok.test", T_A, M_ANSWER, { "127.0.0.6" } },
	{ "implicit.test", T_A, M_ANSWER, { "127.0.0.7" } },
	{ "nullmx.test", T_MX, M_ANSWER, { "0 ." } },
	{ "mixnull.test", T_MX, M_ANSWER, { "0 .", "10 mx2.ok.test" } },
	{ "deadmx.test", T_MX, M_ANSWER, { "10 nxhost.test", "20 mx2.ok.test" } },
	{ "allnx.test", T_MX, M_ANSWER, { "10 nx1.test", "20 nx2.test" } },
	{ "noaddr.test", T_MX, M_ANSWER, { "10 ok.test" } },
	{ "tempmx.test", T_MX, M_ANSWER, { "10 sfhost.test" } },
	{ "tempmx2.test", T_MX, M_ANSWER, { "10 sfhost.test", "20 mx2.ok.test" } },
	{ "sfhost.test", T_ANY, M_SERVFAIL, { NULL } },
	{ "servfail.test", T_ANY, M_SERVFAIL, { NULL } },
	{ "refused.test", T_ANY, M_REFUSED, { NULL } },
	{ "silent.test", T_ANY, M_SILENT, { NULL } },
	{ "short.test", T_ANY, M_SHORT, { NULL } },
	{ "wrongid.test", T_ANY, M_WRONGID, { NULL } },
	{ "loop.test", T_ANY, M_LOOP, { NULL } },
	{ "huge.test", T_ANY, M_HUGE, { NULL } },
	{ "longname.test", T_ANY, M_LONGNAME, { NULL } },
	{ "badrdata.test", T_ANY, M_BADRDATA, { NULL } },
	{ "slowmx.test", T_MX, M_ANSWER, { "10 silent.test", "20 mx2.ok.test" } },
};

struct pkt {
	unsigned char	 b[1500];
	size_t		 len;
};

static void
put8(struct pkt *p, unsigned int v)
{
	if (p->len < sizeof(p->b))
		p->b[p->len++] = (unsigned char)v;
}

static void
put16(struct pkt *p, unsigned int v)
{
	put8(p, v >> 8);
	put8(p, v & 0xff);
}

static void
putname(struct pkt *p, const char *name)
{
	const char *dot;

	while (*name != '\0' && strcmp(name, ".") != 0) {
		size_t l = (dot = strchr(name, '.')) ? (size_t)(dot - name) :
		    strlen(name);

		put8(p, (unsigned int)l);
		while (l-- > 0)
			put8(p, (unsigned char)*name++);
		if (*name == '.')
			name++;
	}
	put8(p, 0);
}

/* Record header with the name as a pointer to the question. */
static void
putrr(struct pkt *p, unsigned int type, unsigned int rdlen)
{
	put16(p, 0xc00c);
	put16(p, type);
	put16(p, 1);
	put16(p, 0);
	put16(p, 300);
	put16(p, rdlen);
}

static void
put_answer(struct pkt *p, int type, const char *data)
{
	if (type == T_A) {
		unsigned char a[4];

		inet_pton(AF_INET, data, a);
		putrr(p, T_A, 4);
		for (int i = 0; i < 4; i++)
			put8(p, a[i]);
	} else if (type == T_AAAA) {
		unsigned char a[16];

		inet_pton(AF_INET6, data, a);
		putrr(p, T_AAAA, 16);
		for (int i = 0; i < 16; i++)
			put8(p, a[i]);
	} else {
		struct pkt tmp = { .len = 0 };
		unsigned int pref = (unsigned int)atoi(data);

		putname(&tmp, strchr(data, ' ') + 1);
		putrr(p, T_MX, (unsigned int)(2 + tmp.len));
		put16(p, pref);
		for (size_t i = 0; i < tmp.len; i++)
			put8(p, tmp.b[i]);
	}
}

/* Names under many.test: h<N>.many.test has 2 A and 1 AAAA; many.test
 * has 20 MX hosts. */
static int
many(struct pkt *p, const char *name, int type)
{
	char buf[64];
	int k;

	if (strcmp(name, "many.test") == 0) {
		if (type != T_MX)
			return 0;
		/* "h<N>" then a pointer to the question's "many.test", so
		 * that 20 records fit in 512 bytes. */
		for (k = 0; k < 20; k++) {
			int l = snprintf(buf, sizeof(buf), "h%d", k);

			putrr(p, T_MX, (unsigned int)(2 + 1 + l + 2));
			put16(p, (unsigned int)(100 - k));
			put8(p, (unsigned int)l);
			for (int j = 0; j < l; j++)
				put8(p, (unsigned char)buf[j]);
			put16(p, 0xc00c);
		}
		return 20;
	}
	if (sscanf(name, "h%d.many.test", &k) != 1)
		return -1;
	if (type == T_A) {
		snprintf(buf, sizeof(buf), "127.0.1.%d", k);
		put_answer(p, T_A, buf);
		snprintf(buf, sizeof(buf), "127.0.2.%d", k);
		put_answer(p, T_A, buf);
		return 2;
	}
	if (type == T_AAAA) {
		snprintf(buf, sizeof(buf), "::1:%d", k);
		put_answer(p, T_AAAA, buf);
		return 1;
	}
	return 0;
}

/* Hostile answers that need hand-made bytes. */
static void
hostile(struct pkt *p, enum mode m, int type)
{
	size_t i;

	switch (m) {
	case M_LOOP:
		/* An MX whose exchange points at itself. */
		putrr(p, type, 4);
		put16(p, 10);
		put16(p, 0xc000 | (unsigned int)p->len);
		break;
	case M_LONGNAME:
		/* An exchange of 5 labels of 63: 320 bytes of name. */
		putrr(p, type, 2 + 5 * 64 + 1);
		put16(p, 10);
		for (i = 0; i < 5; i++) {
			put8(p, 63);
			for (int j = 0; j < 63; j++)
				put8(p, 'a');
		}
		put8(p, 0);
		break;
	case M_HUGE:
		put_answer(p, T_A, "127.0.0.9");
		p->b[6] = 0xff;	/* ancount 65535 */
		p->b[7] = 0xff;
		p->b[10] = 0xff;	/* arcount too */
		p->b[11] = 0xff;
		return;
	case M_BADRDATA:
		putrr(p, type, 3);
		put8(p, 127);
		put8(p, 0);
		put8(p, 0);
		break;
	default:
		return;
	}
	p->b[7] = 1;
}

/* Build the reply to one query; 0 = send nothing. */
static size_t
respond(const unsigned char *q, size_t qlen, struct pkt *p)
{
	char name[300];
	size_t off = 12, nl = 0, i;
	int type, nan = 0, found = 0, rc;
	enum mode m = M_NXDOMAIN;

	if (qlen < 17)
		return 0;
	while (off < qlen && q[off] != 0) {
		size_t l = q[off++];

		if (l > 63 || off + l >= qlen || nl + l + 2 > sizeof(name))
			return 0;
		if (nl > 0)
			name[nl++] = '.';
		for (i = 0; i < l; i++)
			name[nl++] = (char)tolower(q[off + i]);
		off += l;
	}
	name[nl] = '\0';
	if (off + 5 > qlen)
		return 0;
	type = q[off + 1] << 8 | q[off + 2];
	off += 5;

	memset(p, 0, sizeof(*p));
	memcpy(p->b, q, off);
	p->len = off;
	p->b[2] = 0x84 | (q[2] & 1);	/* QR, AA, RD copied */
	p->b[3] = 0x80;			/* RA */

	if ((rc = many(p, name, type)) >= 0) {
		nan = rc;
		m = M_ANSWER;
	} else for (i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
		if (strcmp(zone[i].name, name) != 0)
			continue;
		found = 1;
		if (zone[i].type != T_ANY && zone[i].type != type)
			continue;
		m = zone[i].mode;
		for (int k = 0; m == M_ANSWER && k < 4 && zone[i].data[k]; k++) {
			put_answer(p, type, zone[i].data[k]);
			nan++;
		}
		break;
	}
	if (found && m == M_NXDOMAIN)
		m = M_NODATA;
	switch (m) {
	case M_ANSWER:
		p->b[7] = (unsigned char)nan;
		break;
	case M_NODATA:
		break;
	case M_NXDOMAIN:
		p->b[3] |= 3;
		break;
	case M_SERVFAIL:
		p->b[3] |= 2;
		break;
	case M_REFUSED:
		p->b[3] |= 5;
		break;
	case M_SILENT:
		return 0;
	case M_SHORT:
		return 7;
	case M_WRONGID:
		p->b[0] ^= 0x5a;
		break;
	default:
		hostile(p, m, type);
		break;
	}
	return p->len;
}

/* The responder's loop, in a child, until killed. */
static void
responder(int fd)
{
	unsigned char q[1500];
	struct sockaddr_storage from;
	struct pkt p;

	alarm(120);	/* never outlive a test that died without killing it */
	for (;;) {
		socklen_t fl = sizeof(from);
		ssize_t r = recvfrom(fd, q, sizeof(q), 0,
		    (struct sockaddr *)&from, &fl);
		size_t n;

		if (r <= 0)
			continue;
		if ((n = respond(q, (size_t)r, &p)) > 0)
			sendto(fd, p.b, n, 0, (struct sockaddr *)&from, fl);
	}
}

static pid_t
responder_start(unsigned int *port)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	pid_t pid;
	int fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) == -1)
		return -1;
	*port = ntohs(sin.sin_port);
	if ((pid = fork()) == 0)
		responder(fd);
	close(fd);
	return pid;
}

/* ---- Whole resolutions ---- */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "host/addr" of every target joined with ',', for the tables. */
static void
targets_join(const struct dns_result *res, char *dst, size_t dstsz)
{
	size_t i;

	dst[0] = '\0';
	for (i = 0; i < res->n; i++) {
		char a[INET6_ADDRSTRLEN], one[400];
		const struct sockaddr_storage *ss = &res->t[i].ss;

		if (ss->ss_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->
			    sin_addr, a, sizeof(a));
		else
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->
			    sin6_addr, a, sizeof(a));
		snprintf(one, sizeof(one), "%s%s/%s", i ? "," : "",
		    res->t[i].host, a);
		strncat(dst, one, dstsz - strlen(dst) - 1);
	}
}

static void
test_resolve(void)
{
	static const struct {
		const char	*label;
		enum nexthop_kind kind;
		const char	*host;
		enum dns_status	 status;
		const char	*targets;	/* NULL: not checked */
		const char	*why;		/* a substring of res.why */
	} cases[] = {
		{ "MX with A and AAAA", NEXTHOP_MX, "ok.test", DNS_OK,
		  "mx1.ok.test/::5,mx1.ok.test/127.0.0.5,mx2.ok.test/127.0.0.6",
		  "MX for ok.test" },
		{ "MX name in upper case", NEXTHOP_MX, "OK.Test", DNS_OK,
		  "mx1.ok.test/::5,mx1.ok.test/127.0.0.5,mx2.ok.test/127.0.0.6",
		  NULL },
		{ "implicit MX", NEXTHOP_MX, "implicit.test", DNS_OK,
		  "implicit.test/127.0.0.7", "implicit MX" },
		{ "null MX", NEXTHOP_MX, "nullmx.test", DNS_NULLMX, "",
		  "null MX" },
		{ "null MX mixed with a real one", NEXTHOP_MX, "mixnull.test",
		  DNS_OK, "mx2.ok.test/127.0.0.6", NULL },
		{ "MX host NXDOMAIN skipped", NEXTHOP_MX, "deadmx.test", DNS_OK,
		  "mx2.ok.test/127.0.0.6", NULL },
		{ "every MX host NXDOMAIN", NEXTHOP_MX, "allnx.test",
		  DNS_NOTFOUND, "", "NXDOMAIN" },
		{ "MX host without address", NEXTHOP_MX, "noaddr.test",
		  DNS_NOTFOUND, "", "no address" },
		{ "only MX host SERVFAIL", NEXTHOP_MX, "tempmx.test",
		  DNS_TEMPFAIL, "", "for sfhost.test: server failure" },
		{ "one MX host SERVFAIL, next used", NEXTHOP_MX, "tempmx2.test",
		  DNS_OK, "mx2.ok.test/127.0.0.6", NULL },
		{ "SERVFAIL", NEXTHOP_MX, "servfail.test", DNS_TEMPFAIL, "",
		  "lookup of MX for servfail.test: server failure (SERVFAIL)" },
		{ "REFUSED", NEXTHOP_MX, "refused.test", DNS_TEMPFAIL, "",
		  "REFUSED" },
		{ "NXDOMAIN", NEXTHOP_MX, "nx.test", DNS_NOTFOUND, "",
		  "lookup of MX for nx.test: domain not found (NXDOMAIN)" },
		{ "compression loop", NEXTHOP_MX, "loop.test", DNS_TEMPFAIL,
		  "", NULL },
		{ "huge counts", NEXTHOP_MX, "huge.test", DNS_TEMPFAIL, "",
		  NULL },
		{ "huge counts, A", NEXTHOP_HOST, "huge.test", DNS_TEMPFAIL, "",
		  NULL },
		{ "exchange of 320 bytes", NEXTHOP_MX, "longname.test",
		  DNS_TEMPFAIL, "", NULL },
		/* c-ares skips a record of the wrong length: no address. */
		{ "A record of 3 bytes", NEXTHOP_HOST, "badrdata.test",
		  DNS_NOTFOUND, "", "no address" },
		{ "host route, both families", NEXTHOP_HOST, "mx1.ok.test",
		  DNS_OK, "mx1.ok.test/::5,mx1.ok.test/127.0.0.5", NULL },
		{ "host route, no MX lookup", NEXTHOP_HOST, "ok.test",
		  DNS_NOTFOUND, "", "no address" },
		{ "host route NXDOMAIN", NEXTHOP_HOST, "nx.test", DNS_NOTFOUND,
		  "", "NXDOMAIN" },
		{ "host route SERVFAIL", NEXTHOP_HOST, "servfail.test",
		  DNS_TEMPFAIL, "", "SERVFAIL" },
		{ "IPv4 literal", NEXTHOP_HOST, "192.0.2.1", DNS_OK,
		  "192.0.2.1/192.0.2.1", "literal" },
		{ "IPv6 literal", NEXTHOP_HOST, "2001:db8::25", DNS_OK,
		  "2001:db8::25/2001:db8::25", NULL },
		{ "invalid name", NEXTHOP_MX, "bad..name", DNS_NOTFOUND, "",
		  "invalid domain name" },
		{ "unix next hop", NEXTHOP_UNIX, "", DNS_TEMPFAIL, "", NULL },
	};
	struct dns_result *res = calloc(1, sizeof(*res));
	struct nexthop nh;
	char got[2048];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&nh, 0, sizeof(nh));
		nh.kind = cases[i].kind;
		nh.port = 2525;
		snprintf(nh.host, sizeof(nh.host), "%s", cases[i].host);
		dns_resolve(&nh, res);
		targets_join(res, got, sizeof(got));
		T_OK(res->status == cases[i].status &&
		    (res->status != DNS_OK) == (res->n == 0) &&
		    (cases[i].targets == NULL ||
		    strcasecmp(got, cases[i].targets) == 0) &&
		    (cases[i].why == NULL || strstr(res->why, cases[i].why)),
		    "resolve: %s (%s: %s; %s)", cases[i].label,
		    dns_status_name(res->status), got, res->why);
		if (res->n > 0)
			T_OK(ntohs(((struct sockaddr_in *)&res->t[0].ss)->
			    sin_port) == 2525, "resolve: %s: port",
			    cases[i].label);
	}
	free(res);
}

/* 20 MX hosts with 3 addresses each: 32 targets, best preference first. */
static void
test_resolve_many(void)
{
	struct dns_result *res = calloc(1, sizeof(*res));
	struct nexthop nh;
	size_t i;
	int sorted = 1;

	memset(&nh, 0, sizeof(nh));
	nh.kind = NEXTHOP_MX;
	nh.port = 25;
	strlcpy_m(nh.host, "many.test", sizeof(nh.host));
	dns_resolve(&nh, res);
	T_OK(res->status == DNS_OK && res->n == DNS_TARGETS_MAX,
	    "many: capped at %d targets (got %zu; %s)", DNS_TARGETS_MAX,
	    res->n, res->why);
	for (i = 1; i < res->n; i++)
		sorted &= res->t[i - 1].pref <= res->t[i].pref;
	T_OK(sorted && res->n > 0 && res->t[0].pref == 81 &&
	    strcmp(res->t[0].host, "h19.many.test") == 0,
	    "many: best preference first");
	free(res);
}

/* No answer, a wrong id, a cut packet: each a timeout within dns_timeout. */
static void
test_timeouts(void)
{
	static const struct {
		const char	*label, *host;
		enum nexthop_kind kind;
		enum dns_status	 status;
	} cases[] = {
		{ "no answer", "silent.test", NEXTHOP_MX, DNS_TEMPFAIL },
		{ "wrong id", "wrongid.test", NEXTHOP_MX, DNS_TEMPFAIL },
		{ "packet of 7 bytes", "short.test", NEXTHOP_HOST, DNS_TEMPFAIL },
		{ "silent MX host, next used", "slowmx.test", NEXTHOP_MX, DNS_OK },
	};
	struct dns_result *res = calloc(1, sizeof(*res));
	struct nexthop nh;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double t0 = now_s(), dt;

		memset(&nh, 0, sizeof(nh));
		nh.kind = cases[i].kind;
		nh.port = 25;
		strlcpy_m(nh.host, cases[i].host, sizeof(nh.host));
		dns_resolve(&nh, res);
		dt = now_s() - t0;
		T_OK(res->status == cases[i].status && dt >= 0.9 && dt < 2.5 &&
		    (res->status != DNS_TEMPFAIL || strstr(res->why, "timed out")),
		    "timeout: %s (%s, %.2fs, %s)", cases[i].label,
		    dns_status_name(res->status), dt, res->why);
	}
	free(res);
}

/*
 * Two servers, the first closed: c-ares moves on to the second.  A
 * SERVFAIL then also moves on, and ends as "no server gave an answer".
 */
static void
test_two_servers(unsigned int port)
{
	static const struct {
		const char	*host;
		enum dns_status	 status;
		const char	*why;
	} cases[] = {
		{ "ok.test", DNS_OK, "3 addresses of 2 hosts" },
		{ "nx.test", DNS_NOTFOUND, "NXDOMAIN" },
		{ "servfail.test", DNS_TEMPFAIL, "no DNS server gave an answer" },
	};
	struct dns_result *res = calloc(1, sizeof(*res));
	struct conf *cfg = NULL;
	struct nexthop nh;
	char text[200], err[256];
	size_t i;

	snprintf(text, sizeof(text), "dns_servers = 127.0.0.1:9, "
	    "127.0.0.1:%u\ndns_timeout = 3s\n", port);
	if (conf_parse("t.conf", text, strlen(text), &cfg, stderr) != 0 ||
	    dns_init(cfg, err, sizeof(err)) != 0) {
		T_OK(0, "two servers: init");
		conf_free(cfg);
		free(res);
		return;
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&nh, 0, sizeof(nh));
		nh.kind = NEXTHOP_MX;
		nh.port = 25;
		strlcpy_m(nh.host, cases[i].host, sizeof(nh.host));
		dns_resolve(&nh, res);
		T_OK(res->status == cases[i].status &&
		    strstr(res->why, cases[i].why) != NULL,
		    "two servers: %s (%s: %s)", cases[i].host,
		    dns_status_name(res->status), res->why);
	}
	dns_shutdown();
	conf_free(cfg);
	free(res);
}

/* A resolver with no server listening: a temporary failure, quickly. */
static void
test_no_server(void)
{
	static const char text[] = "dns_servers = 127.0.0.1:9\n"
	    "dns_timeout = 2s\n";
	struct dns_result *res = calloc(1, sizeof(*res));
	struct conf *cfg = NULL;
	struct nexthop nh;
	char err[256];

	if (conf_parse("t.conf", text, strlen(text), &cfg, stderr) != 0 ||
	    dns_init(cfg, err, sizeof(err)) != 0) {
		T_OK(0, "no server: init");
		free(res);
		return;
	}
	memset(&nh, 0, sizeof(nh));
	nh.kind = NEXTHOP_MX;
	nh.port = 25;
	strlcpy_m(nh.host, "ok.test", sizeof(nh.host));
	dns_resolve(&nh, res);
	T_OK(res->status == DNS_TEMPFAIL, "no server: tempfail (%s)", res->why);
	dns_shutdown();
	conf_free(cfg);
	free(res);
}

static void
test_init_errors(void)
{
	static const struct { const char *servers, *want; } cases[] = {
		{ "ns.example", "bad server" },
		{ "127.0.0.1:0", "bad server" },
		{ "1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4 5.5.5.5 6.6.6.6 7.7.7.7 "
		  "8.8.8.8 9.9.9.9", "at most" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[300], err[256] = "";
		struct conf *cfg = NULL;
		int rc;

		snprintf(text, sizeof(text), "dns_servers = %s\n",
		    cases[i].servers);
		if (conf_parse("t.conf", text, strlen(text), &cfg, stderr) != 0) {
			T_OK(0, "init error: parse %zu", i);
			continue;
		}
		rc = dns_init(cfg, err, sizeof(err));
		T_OK(rc == -1 && strstr(err, cases[i].want) != NULL,
		    "init error: \"%s\" (%s)", cases[i].servers, err);
		conf_free(cfg);
	}
}

int
main(void)
{
	struct nexthop nh;
	struct dns_result *res;
	struct conf *cfg = NULL;
	char text[200], err[256];
	unsigned int port = 0;
	pid_t pid;

	test_order();
	test_shuffle_spread();
	test_null();
	test_add_caps();
	test_name_valid();
	test_literal();
	test_server_parse();
	test_targets();
	test_init_errors();

	res = calloc(1, sizeof(*res));
	memset(&nh, 0, sizeof(nh));
	nh.kind = NEXTHOP_MX;
	strlcpy_m(nh.host, "ok.test", sizeof(nh.host));
	dns_resolve(&nh, res);
	T_OK(res->status == DNS_TEMPFAIL && res->n == 0,
	    "resolve before init: tempfail (%s)", res->why);
	free(res);

	if ((pid = responder_start(&port)) <= 0) {
		T_OK(0, "responder started");
		return t_done();
	}
	snprintf(text, sizeof(text), "dns_servers = 127.0.0.1:%u\n"
	    "dns_timeout = 1s\n", port);
	T_OK(conf_parse("t.conf", text, strlen(text), &cfg, stderr) == 0,
	    "config parsed");
	if (cfg != NULL && dns_init(cfg, err, sizeof(err)) == 0) {
		test_resolve();
		test_resolve_many();
		test_timeouts();
		dns_shutdown();
	} else
		T_OK(0, "dns_init: %s", cfg ? err : "no config");
	conf_free(cfg);
	test_two_servers(port);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	test_no_server();
	return t_done();
}
