/*
 * smtp_reply.c: strict, incremental parser for SMTP server replies, and
 * the EHLO keyword reader.  See smtp_reply.h for the grammar and limits.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "smtp_reply.h"

void
smtp_reply_init(struct smtp_reply_parser *p)
{
	memset(p, 0, sizeof(*p));
}

const struct smtp_reply *
smtp_reply_get(const struct smtp_reply_parser *p)
{
	return &p->r;
}

const char *
smtp_reply_error(const struct smtp_reply_parser *p)
{
	return p->err;
}

const char *
smtp_reply_line(const struct smtp_reply *r, size_t i, size_t *lenp)
{
	if (i >= r->nlines) {
		*lenp = 0;
		return "";
	}
	*lenp = r->len[i];
	return r->text + r->off[i];
}

static int
smtp_reply_isdigit(char c)
{
	return c >= '0' && c <= '9';
}

/* Count 1..3 digits at s[*i]; advance *i.  0 when there are none or more. */
static size_t
smtp_reply_digits(const char *s, size_t len, size_t *i)
{
	size_t n = 0;

	while (*i < len && smtp_reply_isdigit(s[*i])) {
		(*i)++;
		n++;
	}
	return n >= 1 && n <= 3 ? n : 0;
}

size_t
smtp_reply_enh_parse(int code, const char *text, size_t len, char enh[SMTP_ENH_MAX])
{
	size_t i = 1;

	enh[0] = '\0';
	if (len < 5 || text[0] != '0' + code / 100 ||
	    (text[0] != '2' && text[0] != '4' && text[0] != '5'))
		return 0;
	if (text[i++] != '.' || smtp_reply_digits(text, len, &i) == 0)
		return 0;
	if (i >= len || text[i++] != '.' || smtp_reply_digits(text, len, &i) == 0)
		return 0;
	if (i < len && text[i] != ' ')
		return 0;
	/* At most 1 + 1 + 3 + 1 + 3 = 9 bytes, which enh holds. */
	memcpy(enh, text, i);
	enh[i] = '\0';
	return i;
}

/* Remember why parsing stopped; the parser refuses all further input. */
static enum smtp_reply_status
smtp_reply_fail(struct smtp_reply_parser *p, const char *why)
{
	p->err = why;
	return SMTP_REPLY_ERROR;
}

/* Check one complete line (line end removed) and add it to the reply. */
static enum smtp_reply_status
smtp_reply_take_line(struct smtp_reply_parser *p, const char *s, size_t len,
    int bare_lf)
{
	struct smtp_reply *r = &p->r;
	size_t tlen;
	int code;
	char sep;

	if (len > SMTP_REPLY_LINE_MAX)
		return smtp_reply_fail(p, "reply line too long");
	if (memchr(s, '\0', len) != NULL)
		return smtp_reply_fail(p, "NUL byte in reply");
	if (memchr(s, '\r', len) != NULL)
		return smtp_reply_fail(p, "bare CR in reply");
	if (len < 3)
		return smtp_reply_fail(p, "reply line too short");
	if (s[0] < '2' || s[0] > '5' || !smtp_reply_isdigit(s[1]) ||
	    !smtp_reply_isdigit(s[2]))
		return smtp_reply_fail(p, "bad reply code");
	code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	sep = len == 3 ? ' ' : s[3];
	if (sep != ' ' && sep != '-')
		return smtp_reply_fail(p, "no separator after the reply code");
	if (!p->in_reply) {
		memset(r->off, 0, sizeof(r->off));
		memset(r->len, 0, sizeof(r->len));
		r->code = code;
		r->enh[0] = '\0';
		r->bare_lf = 0;
		r->nlines = 0;
		r->used = 0;
	} else if (code != r->code)
		return smtp_reply_fail(p, "reply lines with different codes");
	if (r->nlines >= SMTP_REPLY_LINES_MAX)
		return smtp_reply_fail(p, "too many reply lines");
	tlen = len > 4 ? len - 4 : 0;
	if (tlen > SMTP_REPLY_TEXT_MAX - (r->used - r->nlines))
		return smtp_reply_fail(p, "reply too long");
	r->off[r->nlines] = r->used;
	r->len[r->nlines] = tlen;
	if (tlen != 0)
		memcpy(r->text + r->used, s + 4, tlen);
	r->text[r->used + tlen] = '\0';
	r->used += tlen + 1;
	r->nlines++;
	if (bare_lf)
		r->bare_lf = p->bare_lf_seen = 1;
	if (sep == '-') {
		p->in_reply = 1;
		return SMTP_REPLY_MORE;
	}
	p->in_reply = 0;
	(void)smtp_reply_enh_parse(r->code, r->text + r->off[0], r->len[0], r->enh);
	return SMTP_REPLY_DONE;
}

enum smtp_reply_status
smtp_reply_feed(struct smtp_reply_parser *p, const void *buf, size_t len,
    size_t *used)
{
	const char *b = buf;
	enum smtp_reply_status st;
	size_t i, n;
	int bare_lf;

	*used = 0;
	if (p->err != NULL)
		return SMTP_REPLY_ERROR;
	for (i = 0; i < len; i++) {
		if (b[i] != '\n') {
			/* Room for the longest line and its CR. */
			if (p->linelen > SMTP_REPLY_LINE_MAX) {
				*used = i + 1;
				return smtp_reply_fail(p, "reply line too long");
			}
			p->line[p->linelen++] = b[i];
			continue;
		}
		n = p->linelen;
		bare_lf = !(n > 0 && p->line[n - 1] == '\r');
		if (!bare_lf)
			n--;
		p->linelen = 0;
		st = smtp_reply_take_line(p, p->line, n, bare_lf);
		if (st != SMTP_REPLY_MORE) {
			*used = i + 1;
			return st;
		}
	}
	*used = len;
	return SMTP_REPLY_MORE;
}

void
smtp_reply_oneline(const struct smtp_reply *r, char *dst, size_t dstsz)
{
	size_t i, j, o = 0, elen = strlen(r->enh);

	if (dstsz == 0)
		return;
	for (i = 0; i < r->nlines; i++) {
		const char *t = r->text + r->off[i];
		size_t len = r->len[i];

		if (elen != 0 && len >= elen && memcmp(t, r->enh, elen) == 0 &&
		    (len == elen || t[elen] == ' ')) {
			t += elen;
			len -= elen;
		}
		while (len > 0 && *t == ' ') {
			t++;
			len--;
		}
		if (len == 0)
			continue;
		if (o != 0 && o + 1 < dstsz)
			dst[o++] = ' ';
		for (j = 0; j < len && o + 1 < dstsz; j++) {
			unsigned char c = (unsigned char)t[j];

			if (c == '\t')
				c = ' ';
			dst[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
		}
	}
	dst[o] = '\0';
}

static int
smtp_ehlo_keychar(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    smtp_reply_isdigit(c) || c == '-';
}

/* The SIZE parameter: a decimal number that fits 64 bits, else 0. */
static uint64_t
smtp_ehlo_size(const char *s, size_t len)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned int d;

		if (!smtp_reply_isdigit(s[i]))
			return 0;
		d = (unsigned int)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	return v;
}

void
smtp_ehlo_line(struct smtp_ehlo *e, const char *line, size_t len)
{
	static const struct {
		const char	*name;
		size_t		 off;
	} keys[] = {
		{ "PIPELINING", offsetof(struct smtp_ehlo, pipelining) },
		{ "8BITMIME", offsetof(struct smtp_ehlo, eightbitmime) },
		{ "SIZE", offsetof(struct smtp_ehlo, size) },
		{ "STARTTLS", offsetof(struct smtp_ehlo, starttls) },
		{ "ENHANCEDSTATUSCODES", offsetof(struct smtp_ehlo, enhancedstatuscodes) },
		{ "SMTPUTF8", offsetof(struct smtp_ehlo, smtputf8) },
		{ "CHUNKING", offsetof(struct smtp_ehlo, chunking) },
		{ "DSN", offsetof(struct smtp_ehlo, dsn) },
	};
	size_t i, klen = 0;

	while (klen < len && smtp_ehlo_keychar(line[klen]))
		klen++;
	if (klen == 0 || line[0] == '-' || (klen < len && line[klen] != ' '))
		return;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strlen(keys[i].name) == klen &&
		    strncasecmp(line, keys[i].name, klen) == 0)
			break;
	}
	if (i == sizeof(keys) / sizeof(keys[0]))
		return;
	*(int *)(void *)((char *)e + keys[i].off) = 1;
	if (keys[i].off == offsetof(struct smtp_ehlo, size)) {
		const char *prm = line + klen;
		size_t plen = len - klen, end = 0;

		while (plen > 0 && *prm == ' ') {
			prm++;
			plen--;
		}
		while (end < plen && prm[end] != ' ')
			end++;
		e->size_max = smtp_ehlo_size(prm, end);
	}
}

void
smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *e)
{
	size_t i, len;
	const char *l;

	memset(e, 0, sizeof(*e));
	for (i = 1; i < r->nlines; i++) {
		l = smtp_reply_line(r, i, &len);
		smtp_ehlo_line(e, l, len);
	}
}
