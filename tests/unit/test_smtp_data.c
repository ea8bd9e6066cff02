/*
 * test_smtp_data.c: the DATA reader (smtpd-session/smtp_data.c).
 *
 * Every case is run whole, byte by byte, and split in two at every
 * possible offset: the verdict, the output and the end position must not
 * depend on how the bytes arrived.  The smuggling cases check that no
 * sequence other than CR LF "." CR LF ends the data, and that the message
 * around it is refused.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd-session/smtp_data.h"
#include "tests/unit/t.h"

struct sink {
	uint8_t	*p;
	size_t	 len, cap;
	size_t	 calls;
	size_t	 largest;	/* biggest single callback */
};

struct result {
	struct sink	 out;
	int		 done;
	size_t		 consumed;	/* bytes used up to and including the end */
	unsigned int	 flags;
	uint64_t	 count;
};

static void
sink_out(void *arg, const uint8_t *p, size_t n)
{
	struct sink *s = arg;

	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		if ((s->p = realloc(s->p, s->cap)) == NULL)
			abort();
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
	s->calls++;
	if (n > s->largest)
		s->largest = n;
}

/* Feed the input in the slices given by cuts[] (offsets, increasing). */
static void
run_cuts(const char *in, size_t len, int bare_lf, uint64_t limit,
    const size_t *cuts, size_t ncuts, struct result *r)
{
	struct smtp_data d;
	size_t i, from = 0, to, used;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&d, limit, bare_lf, sink_out, &r->out);
	for (i = 0; i <= ncuts && !smtp_data_done(&d); i++) {
		to = i < ncuts ? cuts[i] : len;
		used = smtp_data_feed(&d, (const uint8_t *)in + from, to - from);
		r->consumed += used;
		if (used != to - from && !smtp_data_done(&d))
			r->consumed = (size_t)-1;	/* stopped without an end */
		from = to;
	}
	r->done = smtp_data_done(&d);
	r->flags = smtp_data_flags(&d);
	r->count = smtp_data_count(&d);
	/* Once done, nothing more is taken. */
	if (r->done && smtp_data_feed(&d, (const uint8_t *)"x\r\n", 3) != 0)
		r->consumed = (size_t)-2;
}

static void
run_step(const char *in, size_t len, int bare_lf, uint64_t limit, size_t step,
    struct result *r)
{
	size_t *cuts, n = 0, off;

	cuts = calloc(len / step + 2, sizeof(*cuts));
	for (off = step; off < len; off += step)
		cuts[n++] = off;
	run_cuts(in, len, bare_lf, limit, cuts, n, r);
	free(cuts);
}

static int
same(const struct result *a, const struct result *b)
{
	return a->done == b->done && a->consumed == b->consumed &&
	    a->flags == b->flags && a->count == b->count &&
	    a->out.len == b->out.len &&
	    (a->out.len == 0 || memcmp(a->out.p, b->out.p, a->out.len) == 0);
}

#define NOLIMIT	((uint64_t)1 << 40)

struct dcase {
	const char	*label;
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	int		 bare_lf;
	uint64_t	 limit;		/* LIM(n), or 0 for none */
	int		 done;
	size_t		 left;		/* bytes after the end, left to the caller */
	unsigned int	 flags;
	const char	*out;		/* NULL: not checked (refused message) */
};

#define S(x)	x, sizeof(x) - 1
#define LIM(n)	((uint64_t)(n) + 1)

static const struct dcase cases[] = {
	{ "normal message", S("Subject: x\r\n\r\nhello\r\n.\r\n"), 0, 0, 1, 0, 0,
	  "Subject: x\r\n\r\nhello\r\n" },
	{ "empty message", S(".\r\n"), 0, 0, 1, 0, 0, "" },
	{ "one empty line", S("\r\n.\r\n"), 0, 0, 1, 0, 0, "\r\n" },
	{ "unstuff ..x", S("..x\r\n.\r\n"), 0, 0, 1, 0, 0, ".x\r\n" },
	{ "unstuff lone stuffed dot", S("a\r\n..\r\n.\r\n"), 0, 0, 1, 0, 0, "a\r\n.\r\n" },
	{ "unstuff ...", S("...\r\n.\r\n"), 0, 0, 1, 0, 0, "..\r\n" },
	{ "leading dot dropped", S(".x\r\n.\r\n"), 0, 0, 1, 0, 0, "x\r\n" },
	{ "dot inside line kept", S("a.b\r\n.\r\n"), 0, 0, 1, 0, 0, "a.b\r\n" },
	{ "dot at end of line kept", S("a.\r\n.\r\n"), 0, 0, 1, 0, 0, "a.\r\n" },
	{ "dot space not end", S("a\r\n. \r\n.\r\n"), 0, 0, 1, 0, 0, "a\r\n \r\n" },
	{ "8-bit bytes pass", S("\xc3\xa9\xff\r\n.\r\n"), 0, 0, 1, 0, 0, "\xc3\xa9\xff\r\n" },
	{ "pipelined command left", S("a\r\n.\r\nQUIT\r\n"), 0, 0, 1, 6, 0, "a\r\n" },
	{ "no end yet", S("a\r\n.\r"), 0, 0, 0, 0, 0, "a\r\n" },
	{ "no end: CRLF dot only", S("a\r\n."), 0, 0, 0, 0, 0, "a\r\n" },

	/* Smuggling: none of these may end the data. */
	{ "smuggle \\n.\\n", S("a\n.\nMAIL FROM:<x@y>\r\n.\r\n"), 0, 0, 1, 0,
	  SMTP_DATA_BARE_LF, NULL },
	{ "smuggle \\r.\\r", S("a\r.\rMAIL FROM:<x@y>\r\n.\r\n"), 0, 0, 1, 0,
	  SMTP_DATA_BARE_CR, NULL },
	{ "smuggle \\r\\n.\\n", S("a\r\n.\nMAIL FROM:<x@y>\r\n.\r\n"), 0, 0, 1, 0,
	  SMTP_DATA_BARE_LF, NULL },
	{ "smuggle \\n.\\r\\n", S("a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n"), 0, 0, 1, 0,
	  SMTP_DATA_BARE_LF, NULL },
	{ "smuggle \\r\\n.\\r", S("a\r\n.\rMAIL FROM:<x@y>\r\n.\r\n"), 0, 0, 1, 0,
	  SMTP_DATA_BARE_CR, NULL },
	{ "smuggle \\r.\\r\\n", S("a\r.\r\nMAIL FROM:<x@y>\r\n.\r\n"), 0, 0, 1, 0,
	  SMTP_DATA_BARE_CR, NULL },
	{ "smuggle \\n.\\r", S("a\n.\rMAIL FROM:<x@y>\r\n.\r\n"), 0, 0, 1, 0,
	  SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR, NULL },
	{ "smuggle NUL before dot", S("a\r\n\0.\r\nMAIL FROM:<x@y>\r\n.\r\n"), 0, 0, 1, 0,
	  SMTP_DATA_NUL, NULL },
	{ "smuggle NUL after dot", S("a\r\n.\0\r\nMAIL FROM:<x@y>\r\n.\r\n"), 0, 0, 1, 0,
	  SMTP_DATA_NUL, NULL },
	{ "smuggle CR NUL LF", S("a\r\0\n.\r\nMAIL FROM:<x@y>\r\n.\r\n"), 0, 0, 1, 0,
	  SMTP_DATA_BARE_CR | SMTP_DATA_NUL | SMTP_DATA_BARE_LF, NULL },
	{ "smuggle bare LF at start", S("\n.\r\nMAIL FROM:<x@y>\r\n.\r\n"), 0, 0, 1, 0,
	  SMTP_DATA_BARE_LF, NULL },
	{ "smuggle \\r\\n.\\r\\r\\n", S("a\r\n.\r\r\nMAIL FROM:<x@y>\r\n.\r\n"), 0, 0, 1, 0,
	  SMTP_DATA_BARE_CR, NULL },
	{ "bare LF mode: \\r\\n.\\r still bad", S("a\r\n.\rMAIL\r\n.\r\n"), 1, 0, 1, 0,
	  SMTP_DATA_BARE_CR, NULL },
	{ "NUL then real end", S("a\0\r\n.\r\n"), 0, 0, 1, 0, SMTP_DATA_NUL, NULL },
	{ "bare CR then real end", S("a\r\r\n.\r\n"), 0, 0, 1, 0, SMTP_DATA_BARE_CR, NULL },
	{ "bad data keeps no end", S("a\nb\r\n"), 0, 0, 0, 0, SMTP_DATA_BARE_LF, NULL },

	/* bare_lf_networks: LF alone is a line end and becomes CR LF. */
	{ "bare LF mode", S("a\nb\n.\n"), 1, 0, 1, 0, 0, "a\r\nb\r\n" },
	{ "bare LF mode mixed", S("a\r\nb\n.\r\n"), 1, 0, 1, 0, 0, "a\r\nb\r\n" },
	{ "bare LF mode unstuff", S("a\n..x\n.\n"), 1, 0, 1, 0, 0, "a\r\n.x\r\n" },
	{ "bare LF mode CR still bad", S("a\rb\n.\n"), 1, 0, 1, 0, SMTP_DATA_BARE_CR, NULL },
	{ "bare LF mode NUL still bad", S("a\0\n.\n"), 1, 0, 1, 0, SMTP_DATA_NUL, NULL },
	{ "bare LF mode rest left", S("a\n.\nQUIT\n"), 1, 0, 1, 5, 0, "a\r\n" },

	/* Size limit: counted after unstuffing, CR LF included. */
	{ "size exactly at limit", S("hello\r\n.\r\n"), 0, LIM(7), 1, 0, 0, "hello\r\n" },
	{ "size one over limit", S("hello\r\n.\r\n"), 0, LIM(6), 1, 0, SMTP_DATA_TOO_BIG, NULL },
	{ "size unstuffed dot not counted", S("..x\r\n.\r\n"), 0, LIM(4), 1, 0, 0, ".x\r\n" },
	{ "size bare LF counted as CRLF", S("ab\n.\n"), 1, LIM(3), 1, 0, SMTP_DATA_TOO_BIG, NULL },
	{ "size empty at limit 0", S(".\r\n"), 0, LIM(0), 1, 0, 0, "" },
};

static uint64_t
case_limit(const struct dcase *c)
{
	return c->limit != 0 ? c->limit - 1 : NOLIMIT;
}

static void
check_case(const struct dcase *c)
{
	struct result whole, r;
	size_t consumed = c->len - c->left;
	uint64_t limit = case_limit(c);
	size_t at;
	int ok;

	run_step(c->in, c->len, c->bare_lf, limit, c->len, &whole);
	T_OK(whole.done == c->done, "%s: done=%d", c->label, whole.done);
	T_OK(!c->done || whole.consumed == consumed, "%s: consumed %zu of %zu",
	    c->label, whole.consumed, c->len);
	T_OK(c->done || whole.consumed == c->len, "%s: no end, all consumed", c->label);
	T_OK(whole.flags == c->flags, "%s: flags 0x%x", c->label, whole.flags);
	if (c->out != NULL) {
		size_t olen = strlen(c->out);
		T_OK(whole.out.len == olen && (olen == 0 ||
		    memcmp(whole.out.p, c->out, olen) == 0), "%s: output", c->label);
		T_OK(whole.count == olen, "%s: count %llu", c->label,
		    (unsigned long long)whole.count);
	}

	run_step(c->in, c->len, c->bare_lf, limit, 1, &r);
	T_OK(same(&whole, &r), "%s: byte by byte", c->label);
	free(r.out.p);

	ok = 1;
	for (at = 0; at <= c->len; at++) {
		run_cuts(c->in, c->len, c->bare_lf, limit, &at, 1, &r);
		if (!same(&whole, &r)) {
			ok = 0;
			T_OK(0, "%s: split at %zu", c->label, at);
		}
		free(r.out.p);
	}
	T_OK(ok, "%s: every split in two", c->label);
	free(whole.out.p);
}

/*
 * Ordinary lines go out in long slices, not one per line; a dot-stuffed
 * line, a bare CR, a NUL and a line end at the edge of a slice each still
 * go through the state machine, with the same output as fed byte by byte.
 */
static void
check_runs(void)
{
	static const char *breaks[] = { "", "..dot\r\n", "bare\rcr\r\n",
	    "nul\0x\r\n" };
	size_t i, k, len, one_len;
	struct result r, one;
	char *in;

	for (k = 0; k < sizeof(breaks) / sizeof(breaks[0]); k++) {
		in = malloc(1000 * 72 + 64);
		len = 0;
		for (i = 0; i < 1000; i++) {
			if (i == 500) {
				one_len = k == 3 ? 8 : strlen(breaks[k]);
				memcpy(in + len, breaks[k], one_len);
				len += one_len;
			}
			memset(in + len, 'a' + (char)(i % 26), 70);
			memcpy(in + len + 70, "\r\n", 2);
			len += 72;
		}
		memcpy(in + len, ".\r\n", 3);
		len += 3;
		run_step(in, len, 0, NOLIMIT, len, &r);
		run_step(in, len, 0, NOLIMIT, 1, &one);
		T_OK(r.done && one.done && r.flags == one.flags &&
		    r.out.len == one.out.len && r.count == one.count &&
		    memcmp(r.out.p, one.out.p, r.out.len) == 0,
		    "runs %zu: whole and byte by byte agree", k);
		T_OK(r.out.calls <= 6, "runs %zu: %zu slices for 1000 lines", k, r.out.calls);
		free(r.out.p);
		free(one.out.p);
		free(in);
	}
}

/* A long line with no LF is streamed, not held; it is counted exactly. */
static void
check_long_line(void)
{
	size_t n = 1024 * 1024, len = n + 5;
	char *in = malloc(len);
	struct result r;

	memset(in, 'x', n);
	memcpy(in + n, "\r\n.\r\n", 5);
	run_step(in, len, 0, NOLIMIT, 4096, &r);
	T_OK(r.done && r.flags == 0, "long line: good and done");
	T_OK(r.count == n + 2 && r.out.len == n + 2, "long line: count %llu",
	    (unsigned long long)r.count);
	T_OK(r.out.largest <= 4096, "long line: streamed (largest slice %zu)", r.out.largest);
	T_OK(r.out.calls >= n / 4096, "long line: emitted as it went (%zu calls)", r.out.calls);
	free(r.out.p);

	run_step(in, len, 0, n, 4096, &r);
	T_OK(r.done && r.flags == SMTP_DATA_TOO_BIG, "long line over limit: too big, still done");
	T_OK(r.count == n + 2, "long line over limit: counted to the end");
	T_OK(r.out.len == n, "long line over limit: output stops exactly at the limit");
	free(r.out.p);

	/* No line end at all: consumed, never done. */
	run_step(in, n, 0, NOLIMIT, 65536, &r);
	T_OK(!r.done && r.consumed == n && r.flags == 0, "long line without end: waiting");
	free(r.out.p);
	free(in);
}

/* Many messages' worth of "\r\n.\r\n"-like noise: the end is the first real one. */
static void
check_first_end(void)
{
	static const char in[] = "a\r\n.\r\n.\r\n";
	struct result r;

	run_step(in, sizeof(in) - 1, 0, NOLIMIT, 1, &r);
	T_OK(r.done && r.consumed == 6, "first CRLF.CRLF ends the data");
	free(r.out.p);
}

int
main(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	check_long_line();
	check_runs();
	check_first_end();
	return t_done();
}
