/*
 * test_smtp_received.c: the Received: header a session puts on every
 * message (smtpd-session/smtp_received.c): exact text for fixed inputs,
 * the "for" clause only with one recipient, SMTP vs ESMTP, hostile HELO
 * names reduced to safe characters, CRLF line ends with tab-indented
 * continuation lines, and RFC 5322 dates.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smtpd-session/smtp_session.h"
#include "tests/unit/t.h"
#include "mail/date.h"

#define T_2026	((time_t)1795353601)	/* Sun, 22 Nov 2026 13:20:01 UTC */

/* The header for these inputs, or "" when the builder failed. */
static const char *
received_tls(struct buf *b, const char *helo, int esmtp, const char *tls,
    const char *rcpt, time_t now)
{
	buf_reset(b);
	if (smtp_received_format(b, helo, esmtp, "192.0.2.7", tls, "mx.example.net",
	    "0123456789ABCDEF", rcpt, now) == -1)
		return "";
	return (const char *)b->data;
}

static const char *
received(struct buf *b, const char *helo, int esmtp, const char *rcpt, time_t now)
{
	return received_tls(b, helo, esmtp, NULL, rcpt, now);
}

/* CRLF after every line and nowhere else; every line after the first
 * starts with a tab; 1 when the header is folded that way. */
static int
folded_ok(const char *h)
{
	const char *p = h, *eol;
	int first = 1;

	if (*p == '\0')
		return 0;
	while (*p != '\0') {
		if ((eol = strstr(p, "\r\n")) == NULL)
			return 0;	/* last line without CRLF */
		if (memchr(p, '\r', (size_t)(eol - p)) != NULL ||
		    memchr(p, '\n', (size_t)(eol - p)) != NULL)
			return 0;	/* a bare CR or LF inside a line */
		if (!first && *p != '\t')
			return 0;
		first = 0;
		p = eol + 2;
	}
	return 1;
}

#define TLS13	"TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"

/* Under TLS: the "using" comment (as Postfix) and ESMTPS (RFC 3848). */
static void
test_tls(void)
{
	static const struct {
		const char	*label;
		int		 esmtp;
		const char	*rcpt;
		const char	*want;
	} cases[] = {
		{ "TLS, EHLO, one recipient", 1, "bob@example.net",
		  "Received: from client.example.org ([192.0.2.7])\r\n"
		  "\t(using " TLS13 ")\r\n"
		  "\tby mx.example.net (moat) with ESMTPS id 0123456789ABCDEF\r\n"
		  "\tfor <bob@example.net>; Sun, 22 Nov 2026 13:20:01 +0000\r\n" },
		{ "TLS, EHLO, several recipients", 1, NULL,
		  "Received: from client.example.org ([192.0.2.7])\r\n"
		  "\t(using " TLS13 ")\r\n"
		  "\tby mx.example.net (moat) with ESMTPS id 0123456789ABCDEF;\r\n"
		  "\tSun, 22 Nov 2026 13:20:01 +0000\r\n" },
		{ "TLS, HELO stays SMTP", 0, "bob@example.net",
		  "Received: from client.example.org ([192.0.2.7])\r\n"
		  "\t(using " TLS13 ")\r\n"
		  "\tby mx.example.net (moat) with SMTP id 0123456789ABCDEF\r\n"
		  "\tfor <bob@example.net>; Sun, 22 Nov 2026 13:20:01 +0000\r\n" },
	};
	struct buf b;
	const char *h;
	size_t i;

	buf_init(&b, 4096);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		h = received_tls(&b, "client.example.org", cases[i].esmtp, TLS13,
		    cases[i].rcpt, T_2026);
		T_OK(strcmp(h, cases[i].want) == 0, "tls: %s", cases[i].label);
		T_OK(folded_ok(h), "tls: %s: CRLF line ends, tab continuations",
		    cases[i].label);
	}
	/* Without TLS there is no "using" line and never ESMTPS. */
	h = received_tls(&b, "client.example.org", 1, NULL, NULL, T_2026);
	T_OK(strstr(h, "using") == NULL && strstr(h, "ESMTPS") == NULL,
	    "tls: clear text has no using comment and no ESMTPS");
	buf_free(&b);
}

static void
test_exact(void)
{
	static const struct {
		const char	*label;
		const char	*helo;
		int		 esmtp;
		const char	*rcpt;
		const char	*want;
	} cases[] = {
		{ "EHLO, one recipient", "client.example.org", 1, "bob@example.net",
		  "Received: from client.example.org ([192.0.2.7])\r\n"
		  "\tby mx.example.net (moat) with ESMTP id 0123456789ABCDEF\r\n"
		  "\tfor <bob@example.net>; Sun, 22 Nov 2026 13:20:01 +0000\r\n" },
		{ "HELO, one recipient", "client.example.org", 0, "bob@example.net",
		  "Received: from client.example.org ([192.0.2.7])\r\n"
		  "\tby mx.example.net (moat) with SMTP id 0123456789ABCDEF\r\n"
		  "\tfor <bob@example.net>; Sun, 22 Nov 2026 13:20:01 +0000\r\n" },
		{ "EHLO, several recipients", "client.example.org", 1, NULL,
		  "Received: from client.example.org ([192.0.2.7])\r\n"
		  "\tby mx.example.net (moat) with ESMTP id 0123456789ABCDEF;\r\n"
		  "\tSun, 22 Nov 2026 13:20:01 +0000\r\n" },
		{ "HELO, several recipients", "client.example.org", 0, NULL,
		  "Received: from client.example.org ([192.0.2.7])\r\n"
		  "\tby mx.example.net (moat) with SMTP id 0123456789ABCDEF;\r\n"
		  "\tSun, 22 Nov 2026 13:20:01 +0000\r\n" },
	};
	struct buf b;
	const char *h;
	size_t i;

	buf_init(&b, 4096);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		h = received(&b, cases[i].helo, cases[i].esmtp, cases[i].rcpt, T_2026);
		T_OK(strcmp(h, cases[i].want) == 0, "exact: %s", cases[i].label);
		T_OK(folded_ok(h), "exact: %s: CRLF line ends, tab continuations",
		    cases[i].label);
		T_OK((strstr(h, "for <") != NULL) == (cases[i].rcpt != NULL),
		    "exact: %s: \"for\" clause only with one recipient", cases[i].label);
		T_OK(strstr(h, cases[i].esmtp ? " with ESMTP id " : " with SMTP id ") != NULL,
		    "exact: %s: protocol", cases[i].label);
	}
	buf_free(&b);
}

/* The HELO name between "from " and " ([" in h, into dst. */
static int
helo_of(const char *h, char *dst, size_t dstsz)
{
	const char *s = h + strlen("Received: from "), *e;

	if (strncmp(h, "Received: from ", strlen("Received: from ")) != 0 ||
	    (e = strstr(s, " ([192.0.2.7])\r\n")) == NULL || (size_t)(e - s) >= dstsz)
		return -1;
	memcpy(dst, s, (size_t)(e - s));
	dst[e - s] = '\0';
	return 0;
}

static void
test_hostile_helo(void)
{
	static const struct {
		const char	*label;
		const char	*helo;
		const char	*want;
	} cases[] = {
		{ "plain name", "mail.example.org", "mail.example.org" },
		{ "address literal", "[192.0.2.1]", "[192.0.2.1]" },
		{ "IPv6 literal", "[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]" },
		{ "underscore and dash", "my_host-1", "my_host-1" },
		{ "a comment", "x(by evil)", "x_by_evil_" },
		{ "semicolon ends the clause", "x;Mon, 1 Jan 2001", "x_Mon__1_Jan_2001" },
		{ "CR LF header injection", "x\r\nX-Spam: no", "x__X-Spam:_no" },
		{ "bare LF", "x\ny", "x_y" },
		{ "tab", "x\ty", "x_y" },
		{ "angle brackets", "<x@y>", "_x_y_" },
		{ "quotes and backslash", "\"x\\\"", "_x__" },
		{ "bytes over 0x7f", "h\xc3\xa9llo", "h__llo" },
		{ "DEL and control", "a\x7f\x01z", "a__z" },
		{ "empty", "", "" },
	};
	char name[1024], longhelo[400], want[400];
	struct buf b;
	const char *h;
	size_t i;

	buf_init(&b, 4096);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		h = received(&b, cases[i].helo, 1, NULL, T_2026);
		T_OK(helo_of(h, name, sizeof(name)) == 0 && strcmp(name, cases[i].want) == 0,
		    "helo: %s", cases[i].label);
		T_OK(folded_ok(h), "helo: %s: still three well-formed lines", cases[i].label);
	}
	/* Longer than a HELO may be: cut at MOAT_HELO_MAX, never overflowing. */
	memset(longhelo, 'a', sizeof(longhelo) - 1);
	longhelo[sizeof(longhelo) - 1] = '\0';
	memset(want, 'a', MOAT_HELO_MAX);
	want[MOAT_HELO_MAX] = '\0';
	h = received(&b, longhelo, 1, NULL, T_2026);
	T_OK(helo_of(h, name, sizeof(name)) == 0 && strcmp(name, want) == 0,
	    "helo: over %d bytes is cut there", MOAT_HELO_MAX);
	buf_free(&b);
}

/* "Day, D Mon YYYY HH:MM:SS +0000", RFC 5322 3.3; 1 when d has that shape. */
static int
date_shape_ok(const char *d)
{
	static const char *const days = "Mon Tue Wed Thu Fri Sat Sun";
	static const char *const months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec";
	char day[4], mon[4], zone[6], tail;
	int md, y, hh, mm, ss, n = 0;

	if (sscanf(d, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %5s%n%c", day, &md, mon,
	    &y, &hh, &mm, &ss, zone, &n, &tail) != 8 || d[n] != '\0')
		return 0;
	return strlen(day) == 3 && strstr(days, day) != NULL && strlen(mon) == 3 &&
	    strstr(months, mon) != NULL && md >= 1 && md <= 31 && y >= 1900 &&
	    hh >= 0 && hh <= 23 && mm >= 0 && mm <= 59 && ss >= 0 && ss <= 60 &&
	    strcmp(zone, "+0000") == 0;
}

static void
test_date(void)
{
	static const struct {
		time_t		 t;
		const char	*want;
	} cases[] = {
		{ 0, "Thu, 1 Jan 1970 00:00:00 +0000" },
		{ 946782245, "Sun, 2 Jan 2000 03:04:05 +0000" },
		{ 1709251199, "Thu, 29 Feb 2024 23:59:59 +0000" },
		{ T_2026, "Sun, 22 Nov 2026 13:20:01 +0000" },
		{ 253402300799, "Fri, 31 Dec 9999 23:59:59 +0000" },
	};
	char d[64];
	time_t t;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mail_date(cases[i].t, d, sizeof(d));
		T_OK(strcmp(d, cases[i].want) == 0, "date: %lld is %s (got %s)",
		    (long long)cases[i].t, cases[i].want, d);
		T_OK(date_shape_ok(d), "date: %lld has the RFC 5322 shape",
		    (long long)cases[i].t);
	}
	/* Every day of a leap year and the next: names and ranges stay right. */
	for (t = 1704067200, i = 0; i < 731; i++, t += 86400 + 3607) {
		mail_date(t, d, sizeof(d));
		if (!date_shape_ok(d))
			break;
	}
	T_OK(i == 731, "date: 731 consecutive days have the RFC 5322 shape (%zu did)", i);
}

int
main(void)
{
	test_exact();
	test_tls();
	test_hostile_helo();
	test_date();
	return t_done();
}
