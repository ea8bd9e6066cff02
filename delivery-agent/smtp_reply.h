/*
 * smtp_reply.h: replies of an SMTP server, parsed strictly and incrementally.
 *
 * The relay transport talks to servers it does not control, so their
 * output is untrusted input.  The parser is fed whatever bytes arrived and
 * hands back one complete reply at a time (RFC 5321 4.2):
 *
 *   NNN-text CRLF     continuation line (same code on every line)
 *   NNN text CRLF     last line; "NNN" alone is a last line with no text
 *
 * with NNN from 200 to 599.  Every line and the reply as a whole are
 * capped; going over a cap is an error, never a bigger buffer.  Bare LF
 * line ends are accepted (many servers send them) and noted in the
 * reply; NUL bytes and bare CRs are errors.  An RFC 3463 enhanced status
 * code at the start of the text ("550 5.1.1 ...") is extracted when its
 * class agrees with the reply code.  Nothing here does I/O, so the parser
 * is simple to test and to fuzz.
 *
 * EHLO replies are read with smtp_ehlo_parse(): one service extension
 * keyword per line after the first (RFC 5321 4.1.1.1).
 */
#ifndef MOAT_SMTP_REPLY_H
#define MOAT_SMTP_REPLY_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_REPLY_LINE_MAX	2048	/* one line, line end excluded */
#define SMTP_REPLY_LINES_MAX	64	/* lines in one reply */
#define SMTP_REPLY_TEXT_MAX	16384	/* the text of all lines together */
#define SMTP_ENH_MAX		12	/* "5.123.123" and a NUL fit */

struct smtp_reply {
	int	 code;				/* 200 .. 599 */
	char	 enh[SMTP_ENH_MAX];		/* "5.1.1", or "" when absent */
	int	 bare_lf;			/* a line ended in LF alone */
	size_t	 nlines;
	size_t	 off[SMTP_REPLY_LINES_MAX];	/* each line's text in text[] */
	size_t	 len[SMTP_REPLY_LINES_MAX];
	size_t	 used;				/* bytes of text[] in use */
	/* Line texts, each NUL-terminated (hence the extra bytes). */
	char	 text[SMTP_REPLY_TEXT_MAX + SMTP_REPLY_LINES_MAX];
};

enum smtp_reply_status {
	SMTP_REPLY_MORE,	/* every byte taken; no complete reply yet */
	SMTP_REPLY_DONE,	/* a complete reply; see smtp_reply_get() */
	SMTP_REPLY_ERROR,	/* malformed; see smtp_reply_error() (sticky) */
};

struct smtp_reply_parser {
	char		 line[SMTP_REPLY_LINE_MAX + 2];	/* line in progress */
	size_t		 linelen;
	int		 in_reply;	/* a continuation line has been seen */
	int		 bare_lf_seen;	/* sticky over the connection */
	const char	*err;		/* set once; every later feed fails */
	struct smtp_reply r;
};

void	smtp_reply_init(struct smtp_reply_parser *p);

/*
 * Take bytes from buf[0..len).  *used is set to the number of bytes
 * taken: all of them for SMTP_REPLY_MORE, up to and including the end of
 * the reply for SMTP_REPLY_DONE (the rest belongs to the next reply, so
 * feed it again).  The reply stays valid until the next feed.
 */
enum smtp_reply_status smtp_reply_feed(struct smtp_reply_parser *p,
	    const void *buf, size_t len, size_t *used);

/* The reply completed by the last feed that returned SMTP_REPLY_DONE. */
const struct smtp_reply *smtp_reply_get(const struct smtp_reply_parser *p);
/* Why the parser stopped, or NULL. */
const char *smtp_reply_error(const struct smtp_reply_parser *p);
/* Line i's text (after "NNN-" / "NNN "), NUL-terminated. */
const char *smtp_reply_line(const struct smtp_reply *r, size_t i, size_t *lenp);

/*
 * If text starts with an enhanced status code "c.s.d" (RFC 3463: class
 * 2, 4 or 5 equal to the reply code's first digit, subject and detail of
 * one to three digits) followed by a space or the end, copy it to enh and
 * return its length (without the space); else return 0 and leave enh "".
 */
size_t	smtp_reply_enh_parse(int code, const char *text, size_t len,
	    char enh[SMTP_ENH_MAX]);

/*
 * The reply's text as one line, for results and logs: every line's text
 * with a leading enhanced code equal to the first line's removed, joined
 * by single spaces; bytes outside printable ASCII become '?'.  Cut to fit
 * dst.
 */
void	smtp_reply_oneline(const struct smtp_reply *r, char *dst, size_t dstsz);

/* What an EHLO reply said about the extensions moat uses. */
struct smtp_ehlo {
	int		 pipelining;	/* RFC 2920 */
	int		 eightbitmime;	/* RFC 6152 */
	int		 size;		/* RFC 1870 SIZE advertised */
	uint64_t	 size_max;	/* its limit; 0: none given or unusable */
	int		 starttls;	/* RFC 3207 */
	int		 enhancedstatuscodes;	/* RFC 2034 */
	int		 smtputf8;	/* RFC 6531 */
	int		 chunking;	/* RFC 3030 */
	int		 dsn;		/* RFC 3461 */
};

/*
 * Read the keywords of an EHLO reply (lines after the first).  Unknown
 * keywords and lines that are not keywords are ignored.
 */
void	smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *e);
/* One keyword line ("SIZE 10240000"), for smtp_ehlo_parse and tests. */
void	smtp_ehlo_line(struct smtp_ehlo *e, const char *line, size_t len);

#endif
