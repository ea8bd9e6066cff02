/*
 * smtp_data.c: the DATA reader, a byte-driven state machine.
 *
 * Ordinary text is passed on in runs that span whole lines, so the
 * callback sees about one slice per feed rather than one per line; only
 * a CR, LF or NUL out of place, a dot at the start of a line and a line
 * end at the edge of the input need the state machine.  A CR is held back
 * until the byte after it shows whether it ends a line, and the dot at
 * the start of a line until it is known to be stuffing or the end.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "smtp_data.h"

static const uint8_t smtp_data_crlf[2] = { '\r', '\n' };

void
smtp_data_init(struct smtp_data *d, uint64_t limit, int bare_lf_ok,
    smtp_data_out_fn out, void *arg)
{
	memset(d, 0, sizeof(*d));
	d->state = SMTP_DATA_BOL;
	d->bare_lf_ok = bare_lf_ok != 0;
	d->limit = limit;
	d->out = out;
	d->arg = arg;
}

/*
 * Count message bytes and pass them on while the message is still wanted.
 * Output stops exactly at the limit, so what was emitted never depends on
 * how the input was sliced.
 */
static void
smtp_data_emit(struct smtp_data *d, const uint8_t *p, size_t n)
{
	uint64_t room = d->count < d->limit ? d->limit - d->count : 0;

	d->count += n;
	if (d->flags != 0)
		return;
	if (n > room) {
		d->flags |= SMTP_DATA_TOO_BIG;
		n = (size_t)room;
	}
	if (n > 0)
		d->out(d->arg, p, n);
}

/* An LF with no CR before it: a line end only where bare LF is allowed. */
static void
smtp_data_bare_lf(struct smtp_data *d)
{
	if (d->bare_lf_ok) {
		smtp_data_emit(d, smtp_data_crlf, sizeof(smtp_data_crlf));
		d->state = SMTP_DATA_BOL;
		return;
	}
	/*
	 * Not a line end: staying inside the line means that a "." after it
	 * cannot end the data (the \n.\r\n smuggling form).
	 */
	d->flags |= SMTP_DATA_BARE_LF;
	d->state = SMTP_DATA_TEXT;
}

/* A byte in v is zero (exact as a whole: no false alarm for the word). */
#define SMTP_DATA_ONES		0x0101010101010101ULL
#define SMTP_DATA_HAS_ZERO(v)	(((v) - SMTP_DATA_ONES) & ~(v) & (SMTP_DATA_ONES << 7))

/* Length of the run of bytes at p that are not CR, LF or NUL. */
static size_t
smtp_data_text(const uint8_t *p, size_t n)
{
	uint64_t w;
	size_t i = 0;

	/* Eight bytes at a time while none of them is special. */
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, sizeof(w));
		if (SMTP_DATA_HAS_ZERO(w) ||
		    SMTP_DATA_HAS_ZERO(w ^ (SMTP_DATA_ONES * '\r')) ||
		    SMTP_DATA_HAS_ZERO(w ^ (SMTP_DATA_ONES * '\n')))
			break;
	}
	while (i < n && p[i] != '\r' && p[i] != '\n' && p[i] != '\0')
		i++;
	return i;
}

/*
 * Length of the run at p (inside a line) that needs no state machine:
 * text, then as many whole lines as follow, each ended by CR LF, as long
 * as no line after a CR LF begins with a dot.  It stops at the first byte
 * that does need the state machine (a CR, LF or NUL out of place, or a
 * CR LF whose next byte is not yet in view), so what is emitted never
 * depends on how the input was sliced, and the state after the run is
 * "inside a line" (a line start it passes is never a dot, the one case
 * where that would differ).  The bytes pass unchanged, so a message of
 * ordinary lines goes out in one slice per feed.  Linear in n whatever
 * the input: each byte is looked at once.
 */
static size_t
smtp_data_run(const uint8_t *p, size_t n)
{
	size_t i = 0;

	for (;;) {
		i += smtp_data_text(p + i, n - i);
		if (n - i < 3 || p[i] != '\r' || p[i + 1] != '\n' || p[i + 2] == '.')
			return i;
		i += 2;
	}
}

/*
 * Handle the byte at p (with n bytes available) in the current state.
 * Returns how many bytes were used: 0 when the state changed without
 * using the byte, so it is looked at again in the new state.
 */
static size_t
smtp_data_step(struct smtp_data *d, const uint8_t *p, size_t n)
{
	size_t run;

	switch (d->state) {
	case SMTP_DATA_BOL:
		if (*p == '.') {
			d->state = SMTP_DATA_DOT;
			return 1;
		}
		d->state = SMTP_DATA_TEXT;
		return 0;
	case SMTP_DATA_TEXT:
		if ((run = smtp_data_run(p, n)) > 0) {
			smtp_data_emit(d, p, run);
			return run;
		}
		if (*p == '\r')
			d->state = SMTP_DATA_CR;
		else if (*p == '\n')
			smtp_data_bare_lf(d);
		else
			d->flags |= SMTP_DATA_NUL;
		return 1;
	case SMTP_DATA_CR:
		if (*p == '\n') {
			smtp_data_emit(d, smtp_data_crlf, sizeof(smtp_data_crlf));
			d->state = SMTP_DATA_BOL;
			return 1;
		}
		d->flags |= SMTP_DATA_BARE_CR;
		d->state = SMTP_DATA_TEXT;
		return 0;
	case SMTP_DATA_DOT:
		if (*p == '\r') {
			d->state = SMTP_DATA_DOTCR;
			return 1;
		}
		if (*p == '\n' && d->bare_lf_ok) {
			d->state = SMTP_DATA_DONE;
			return 1;
		}
		/* Dot-stuffing: the leading dot of any other line is dropped. */
		d->state = SMTP_DATA_TEXT;
		return 0;
	case SMTP_DATA_DOTCR:
		if (*p == '\n') {
			d->state = SMTP_DATA_DONE;
			return 1;
		}
		d->flags |= SMTP_DATA_BARE_CR;
		d->state = SMTP_DATA_TEXT;
		return 0;
	case SMTP_DATA_DONE:
		break;
	}
	return 0;
}

size_t
smtp_data_feed(struct smtp_data *d, const uint8_t *p, size_t n)
{
	size_t off = 0;

	while (off < n && d->state != SMTP_DATA_DONE)
		off += smtp_data_step(d, p + off, n - off);
	return off;
}

int
smtp_data_done(const struct smtp_data *d)
{
	return d->state == SMTP_DATA_DONE;
}

unsigned int
smtp_data_flags(const struct smtp_data *d)
{
	return d->flags;
}

uint64_t
smtp_data_count(const struct smtp_data *d)
{
	return d->count;
}
