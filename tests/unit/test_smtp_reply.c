/*
 * test_smtp_reply.c: the SMTP reply parser and the EHLO keyword reader
 * (delivery-agent/smtp_reply.c), with hostile server output.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery-agent/smtp_reply.h"
#include "unit/t.h"

enum { MORE = SMTP_REPLY_MORE, DONE = SMTP_REPLY_DONE, ERR = SMTP_REPLY_ERROR };

struct reply_case {
	const char	*label;
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	int		 status;	/* of the first reply */
	int		 code;
	const char	*enh;
	size_t		 nlines;
	int		 bare_lf;
	const char	*oneline;
};

static const struct reply_case reply_cases[] = {
	{ "single line", "250 ok\r\n", 0, DONE, 250, "", 1, 0, "ok" },
	{ "code alone", "250\r\n", 0, DONE, 250, "", 1, 0, "" },
	{ "code and space", "354 \r\n", 0, DONE, 354, "", 1, 0, "" },
	{ "multi-line", "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n", 0,
	  DONE, 250, "", 3, 0, "mx.example PIPELINING 8BITMIME" },
	{ "multi-line with enhanced codes",
	  "550-5.1.1 no such user\r\n550 5.1.1 try again\r\n", 0,
	  DONE, 550, "5.1.1", 2, 0, "no such user try again" },
	{ "continuation with empty text", "250-\r\n250 ok\r\n", 0, DONE, 250, "", 2, 0, "ok" },
	{ "mismatched codes", "250-a\r\n251 b\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "mismatched class", "250-a\r\n550 b\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "code 099", "099 x\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "code 199", "199 x\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "code 600", "600 x\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "code abc", "abc x\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "code 2x0", "2x0 x\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "two-digit code", "25 x\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "two-digit code alone", "25\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "missing separator", "250ok\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "bad separator", "250_ok\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "tab as separator", "250\tok\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "empty line", "\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "bare LF empty line", "\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "leading space", " 250 ok\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "NUL in text", "250 a\0b\r\n", 9, ERR, 0, NULL, 0, 0, NULL },
	{ "bare CR in text", "250 a\rb\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "CR CR LF", "250 a\r\r\n", 0, ERR, 0, NULL, 0, 0, NULL },
	{ "bare LF tolerated", "250 ok\n", 0, DONE, 250, "", 1, 1, "ok" },
	{ "bare LF in one line of many", "250-a\r\n250 b\n", 0, DONE, 250, "", 2, 1, "a b" },
	{ "incomplete line", "250 ok", 0, MORE, 0, NULL, 0, 0, NULL },
	{ "CR without LF yet", "250 ok\r", 0, MORE, 0, NULL, 0, 0, NULL },
	{ "incomplete multi-line", "250-a\r\n", 0, MORE, 0, NULL, 0, 0, NULL },
	{ "enhanced code", "250 2.0.0 Ok: queued as X\r\n", 0, DONE, 250, "2.0.0", 1, 0,
	  "Ok: queued as X" },
	{ "enhanced code alone", "550 5.1.1\r\n", 0, DONE, 550, "5.1.1", 1, 0, "" },
	{ "enhanced code 3 digits", "452 4.123.999 x\r\n", 0, DONE, 452, "4.123.999", 1, 0, "x" },
	{ "enhanced code absent", "250 ok\r\n", 0, DONE, 250, "", 1, 0, "ok" },
	{ "enhanced class mismatch", "250 5.1.1 x\r\n", 0, DONE, 250, "", 1, 0, "5.1.1 x" },
	{ "enhanced class 3", "354 3.0.0 go\r\n", 0, DONE, 354, "", 1, 0, "3.0.0 go" },
	{ "enhanced two parts", "550 5.1 x\r\n", 0, DONE, 550, "", 1, 0, "5.1 x" },
	{ "enhanced glued text", "550 5.1.1x\r\n", 0, DONE, 550, "", 1, 0, "5.1.1x" },
	{ "enhanced 4-digit subject", "550 5.1234.1 x\r\n", 0, DONE, 550, "", 1, 0,
	  "5.1234.1 x" },
	{ "enhanced 4-digit detail", "550 5.1.1234 x\r\n", 0, DONE, 550, "", 1, 0,
	  "5.1.1234 x" },
	{ "enhanced empty part", "550 5..1 x\r\n", 0, DONE, 550, "", 1, 0, "5..1 x" },
	{ "enhanced trailing dot", "550 5.1. x\r\n", 0, DONE, 550, "", 1, 0, "5.1. x" },
	{ "control bytes in text", "250 a\tb\x01" "c\x7f\r\n", 0, DONE, 250, "", 1, 0,
	  "a b?c?" },
	{ "high bytes in text", "250 caf\xc3\xa9\r\n", 0, DONE, 250, "", 1, 0, "caf??" },
	{ "421 closing", "421 4.4.2 mx closing connection\r\n", 0, DONE, 421, "4.4.2", 1, 0,
	  "mx closing connection" },
};

/* Feed the input in slices of at most step bytes; the first reply's outcome. */
static int
feed_sliced(struct smtp_reply_parser *p, const char *in, size_t len, size_t step,
    size_t *consumed)
{
	size_t off = 0, used, n;
	int st = MORE;

	*consumed = 0;
	while (off < len) {
		n = len - off < step ? len - off : step;
		st = smtp_reply_feed(p, in + off, n, &used);
		if (used > n)
			return -1;
		off += used;
		if (st != MORE)
			break;
	}
	*consumed = off;
	return st;
}

static void
test_reply_cases(void)
{
	static const size_t steps[] = { 100000, 1, 2, 3, 7 };
	struct smtp_reply_parser p;
	char one[256];
	size_t i, s, used, len;
	int st;

	for (i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		const struct reply_case *c = &reply_cases[i];

		len = c->len ? c->len : strlen(c->in);
		for (s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
			const struct smtp_reply *r;

			smtp_reply_init(&p);
			st = feed_sliced(&p, c->in, len, steps[s], &used);
			T_OK(st == c->status, "%s (slices of %zu): status %d", c->label,
			    steps[s], st);
			if (c->status == ERR)
				T_OK(smtp_reply_error(&p) != NULL, "%s (slices of %zu): "
				    "reason given", c->label, steps[s]);
			if (c->status != DONE || st != DONE)
				continue;
			r = smtp_reply_get(&p);
			smtp_reply_oneline(r, one, sizeof(one));
			T_OK(r->code == c->code && strcmp(r->enh, c->enh) == 0 &&
			    r->nlines == c->nlines && r->bare_lf == c->bare_lf &&
			    strcmp(one, c->oneline) == 0 && used == len,
			    "%s (slices of %zu): code %d enh '%s' lines %zu bare_lf %d "
			    "text '%s'", c->label, steps[s], r->code, r->enh,
			    r->nlines, r->bare_lf, one);
		}
	}
}

/* Two replies in one read: the first stops at its end, the rest follows. */
static void
test_reply_pipelined(void)
{
	const char *in = "250 2.1.0 Ok\r\n550 5.1.1 no\r\n354 go ahead\r\n";
	static const int codes[] = { 250, 550, 354 };
	struct smtp_reply_parser p;
	size_t off = 0, used, k;
	int st;

	smtp_reply_init(&p);
	for (k = 0; k < 3; k++) {
		st = smtp_reply_feed(&p, in + off, strlen(in) - off, &used);
		off += used;
		T_OK(st == DONE && smtp_reply_get(&p)->code == codes[k],
		    "pipelined reply %zu is %d", k, codes[k]);
	}
	T_OK(off == strlen(in), "pipelined replies consume everything");
	st = smtp_reply_feed(&p, "", 0, &used);
	T_OK(st == MORE && used == 0, "nothing left: more needed");
}

/* Errors are sticky: after one, no input is accepted. */
static void
test_reply_sticky(void)
{
	struct smtp_reply_parser p;
	size_t used;
	int st;

	smtp_reply_init(&p);
	st = smtp_reply_feed(&p, "abc\r\n", 5, &used);
	T_OK(st == ERR, "garbage fails");
	st = smtp_reply_feed(&p, "250 ok\r\n", 8, &used);
	T_OK(st == ERR && used == 0, "a valid reply after an error still fails");
}

/* A line of exactly the limit passes; one byte more fails, without overflow. */
static void
test_reply_line_limits(void)
{
	struct smtp_reply_parser p;
	char *in;
	size_t used, n;
	int st;

	in = malloc(SMTP_REPLY_LINE_MAX + 16);
	for (n = SMTP_REPLY_LINE_MAX; n <= SMTP_REPLY_LINE_MAX + 1; n++) {
		memcpy(in, "250 ", 4);
		memset(in + 4, 'x', n - 4);
		memcpy(in + n, "\r\n", 2);
		smtp_reply_init(&p);
		st = smtp_reply_feed(&p, in, n + 2, &used);
		if (n == SMTP_REPLY_LINE_MAX)
			T_OK(st == DONE && smtp_reply_get(&p)->len[0] == n - 4,
			    "line of %zu bytes accepted", n);
		else
			T_OK(st == ERR, "line of %zu bytes refused", n);
	}
	/* No line end at all: refused once past the limit, not buffered forever. */
	memset(in, '2', SMTP_REPLY_LINE_MAX + 16);
	smtp_reply_init(&p);
	st = smtp_reply_feed(&p, in, SMTP_REPLY_LINE_MAX + 16, &used);
	T_OK(st == ERR && used <= SMTP_REPLY_LINE_MAX + 2,
	    "endless line refused after %zu bytes", used);
	/* Bare LF at exactly the limit. */
	memcpy(in, "250 ", 4);
	memset(in + 4, 'y', SMTP_REPLY_LINE_MAX - 4);
	in[SMTP_REPLY_LINE_MAX] = '\n';
	smtp_reply_init(&p);
	st = smtp_reply_feed(&p, in, SMTP_REPLY_LINE_MAX + 1, &used);
	T_OK(st == DONE, "longest line with bare LF accepted");
	free(in);
}

static void
test_reply_count_limits(void)
{
	struct smtp_reply_parser p;
	char line[SMTP_REPLY_LINE_MAX + 3];
	size_t i, used;
	int st = MORE;

	/* SMTP_REPLY_LINES_MAX lines are fine; one more is not. */
	smtp_reply_init(&p);
	for (i = 0; i + 1 < SMTP_REPLY_LINES_MAX; i++)
		st = smtp_reply_feed(&p, "250-x\r\n", 7, &used);
	T_OK(st == MORE, "%d continuation lines pending", SMTP_REPLY_LINES_MAX - 1);
	st = smtp_reply_feed(&p, "250 x\r\n", 7, &used);
	T_OK(st == DONE && smtp_reply_get(&p)->nlines == SMTP_REPLY_LINES_MAX,
	    "reply of %d lines accepted", SMTP_REPLY_LINES_MAX);
	smtp_reply_init(&p);
	for (i = 0; i < SMTP_REPLY_LINES_MAX && st != ERR; i++)
		st = smtp_reply_feed(&p, "250-x\r\n", 7, &used);
	st = smtp_reply_feed(&p, "250 x\r\n", 7, &used);
	T_OK(st == ERR, "reply of %d lines refused", SMTP_REPLY_LINES_MAX + 1);

	/* Text over SMTP_REPLY_TEXT_MAX in lines that are each fine. */
	memcpy(line, "250-", 4);
	memset(line + 4, 'z', 2000);
	memcpy(line + 2004, "\r\n", 2);
	smtp_reply_init(&p);
	st = MORE;
	for (i = 0; i < 9 && st == MORE; i++)
		st = smtp_reply_feed(&p, line, 2006, &used);
	T_OK(st == ERR && i == 9, "reply of 9 x 2000 bytes refused (after line %zu)", i);
	smtp_reply_init(&p);
	st = MORE;
	for (i = 0; i < 8 && st == MORE; i++)
		st = smtp_reply_feed(&p, line, 2006, &used);
	line[3] = ' ';
	memcpy(line + 304, "\r\n", 2);
	st = smtp_reply_feed(&p, line, 4 + 300 + 2, &used);
	T_OK(st == DONE, "reply of 8 x 2000 + 300 bytes accepted");
}

static void
test_enh_parse(void)
{
	static const struct {
		int		 code;
		const char	*text;
		const char	*enh;
	} c[] = {
		{ 250, "2.0.0", "2.0.0" },
		{ 250, "2.0.0 ok", "2.0.0" },
		{ 451, "4.3.0 x", "4.3.0" },
		{ 554, "5.7.1 denied", "5.7.1" },
		{ 554, "4.7.1 denied", "" },
		{ 250, "2.0.0.0 x", "" },
		{ 250, "2.0", "" },
		{ 250, "", "" },
		{ 250, "2.a.0", "" },
		{ 250, "2.0.0\tx", "" },
		{ 250, "12.0.0 x", "" },
		{ 250, "2.000.000 x", "2.000.000" },
	};
	char enh[SMTP_ENH_MAX];
	size_t i, n;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		n = smtp_reply_enh_parse(c[i].code, c[i].text, strlen(c[i].text), enh);
		T_OK(strcmp(enh, c[i].enh) == 0 && n == strlen(c[i].enh),
		    "enhanced code of %d '%s' is '%s'", c[i].code, c[i].text, enh);
	}
}

struct ehlo_case {
	const char	*label;
	const char	*reply;
	int		 pipelining, eightbitmime, size;
	uint64_t	 size_max;
	int		 starttls, enhanced;
	int		 dsn;
};

static const struct ehlo_case ehlo_cases[] = {
	{ "postfix-like", "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
	  "250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n"
	  "250-8BITMIME\r\n250-DSN\r\n250 CHUNKING\r\n",
	  1, 1, 1, 10240000, 1, 1, 1 },
	{ "DSN lower case, DSNX not DSN", "250-mx\r\n250-dsn\r\n250 DSNX\r\n", 0, 0, 0, 0,
	  0, 0, 1 },
	{ "DSNX alone is not DSN", "250-mx\r\n250 DSNX\r\n", 0, 0, 0, 0, 0, 0, 0 },
	{ "greeting line only", "250 mx.example\r\n", 0, 0, 0, 0, 0, 0, 0 },
	{ "keyword on the first line ignored", "250 PIPELINING\r\n", 0, 0, 0, 0, 0, 0, 0 },
	{ "lower case", "250-mx\r\n250-pipelining\r\n250 8bitmime\r\n", 1, 1, 0, 0, 0, 0, 0 },
	{ "SIZE without a number", "250-mx\r\n250 SIZE\r\n", 0, 0, 1, 0, 0, 0, 0 },
	{ "SIZE with trailing space", "250-mx\r\n250 SIZE \r\n", 0, 0, 1, 0, 0, 0, 0 },
	{ "SIZE 0", "250-mx\r\n250 SIZE 0\r\n", 0, 0, 1, 0, 0, 0, 0 },
	{ "SIZE max u64", "250-mx\r\n250 SIZE 18446744073709551615\r\n", 0, 0, 1,
	  UINT64_MAX, 0, 0, 0 },
	{ "SIZE overflow by one", "250-mx\r\n250 SIZE 18446744073709551616\r\n", 0, 0, 1,
	  0, 0, 0, 0 },
	{ "SIZE overflow", "250-mx\r\n250 SIZE 99999999999999999999999999\r\n", 0, 0, 1,
	  0, 0, 0, 0 },
	{ "SIZE not a number", "250-mx\r\n250 SIZE abc\r\n", 0, 0, 1, 0, 0, 0, 0 },
	{ "SIZE number and junk", "250-mx\r\n250 SIZE 12x\r\n", 0, 0, 1, 0, 0, 0, 0 },
	{ "SIZE negative", "250-mx\r\n250 SIZE -5\r\n", 0, 0, 1, 0, 0, 0, 0 },
	{ "SIZE with extra parameter", "250-mx\r\n250 SIZE 1000 foo\r\n", 0, 0, 1, 1000,
	  0, 0, 0 },
	{ "SIZE two spaces", "250-mx\r\n250 SIZE  2000\r\n", 0, 0, 1, 2000, 0, 0, 0 },
	{ "keyword with suffix", "250-mx\r\n250-PIPELININGX\r\n250 SIZEX 5\r\n", 0, 0, 0,
	  0, 0, 0, 0 },
	{ "keyword with parameter", "250-mx\r\n250 PIPELINING foo\r\n", 1, 0, 0, 0, 0, 0, 0 },
	{ "keyword starting with dash", "250-mx\r\n250 -PIPELINING\r\n", 0, 0, 0, 0, 0, 0, 0 },
	{ "old AUTH= style line", "250-mx\r\n250-AUTH=LOGIN\r\n250 8BITMIME=\r\n", 0, 0, 0,
	  0, 0, 0, 0 },
	{ "empty keyword line", "250-mx\r\n250-\r\n250 STARTTLS\r\n", 0, 0, 0, 0, 1, 0, 0 },
	{ "keyword with tab", "250-mx\r\n250 PIPELINING\tx\r\n", 0, 0, 0, 0, 0, 0, 0 },
};

static void
test_ehlo(void)
{
	struct smtp_reply_parser p;
	struct smtp_ehlo e;
	size_t i, used;
	int st;

	for (i = 0; i < sizeof(ehlo_cases) / sizeof(ehlo_cases[0]); i++) {
		const struct ehlo_case *c = &ehlo_cases[i];

		smtp_reply_init(&p);
		st = smtp_reply_feed(&p, c->reply, strlen(c->reply), &used);
		T_OK(st == DONE, "%s: reply parsed", c->label);
		if (st != DONE)
			continue;
		smtp_ehlo_parse(smtp_reply_get(&p), &e);
		T_OK(e.pipelining == c->pipelining && e.eightbitmime == c->eightbitmime &&
		    e.size == c->size && e.size_max == c->size_max &&
		    e.starttls == c->starttls && e.enhancedstatuscodes == c->enhanced &&
		    e.dsn == c->dsn,
		    "%s: pipelining %d 8bitmime %d size %d max %llu starttls %d enh %d "
		    "dsn %d", c->label, e.pipelining, e.eightbitmime, e.size,
		    (unsigned long long)e.size_max, e.starttls, e.enhancedstatuscodes,
		    e.dsn);
	}
}

static void
test_oneline_cut(void)
{
	struct smtp_reply_parser p;
	char small[6];
	size_t used;

	smtp_reply_init(&p);
	(void)smtp_reply_feed(&p, "250-abc\r\n250 defgh\r\n", 20, &used);
	smtp_reply_oneline(smtp_reply_get(&p), small, sizeof(small));
	T_OK(strcmp(small, "abc d") == 0, "one-line text cut to the buffer: '%s'", small);
}

int
main(void)
{
	test_reply_cases();
	test_reply_pipelined();
	test_reply_sticky();
	test_reply_line_limits();
	test_reply_count_limits();
	test_enh_parse();
	test_ehlo();
	test_oneline_cut();
	return t_done();
}
