/*
 * smtp_data.h: the reader for the message content after DATA.
 *
 * A streaming state machine with no I/O: the session feeds it whatever
 * bytes arrive, in slices of any size, and it hands the message on through
 * a callback as it goes, with the dot-stuffing of RFC 5321 4.5.2 undone.
 * It never holds the message; its whole state is a few words, carried
 * from one feed to the next, so a line end split across two reads is
 * handled like any other.
 *
 * End of data is recognised only at CR LF "." CR LF.  A CR not followed
 * by LF, an LF not preceded by CR, or a NUL byte anywhere marks the
 * message as bad: the reader keeps consuming until the real end and the
 * session refuses the message there.  So no smuggling sequence (\n.\n,
 * \r.\r, \r\n.\n, \n.\r\n, ...) can ever end the data early and make
 * the rest of the message look like commands.  For clients in
 * bare_lf_networks the reader may instead turn a bare LF into CR LF (a
 * bare CR is still bad).
 *
 * Bytes are counted as they will be stored (after unstuffing, with CR LF
 * line ends); above the limit the message is "too big", and again the
 * reader consumes the rest before the session answers.  Once a message
 * is bad or too big nothing more is emitted: it will not be kept.
 */
#ifndef MOAT_SMTP_DATA_H
#define MOAT_SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>

/* Why a message is refused; more than one may be set. */
#define SMTP_DATA_BARE_CR	0x01
#define SMTP_DATA_BARE_LF	0x02
#define SMTP_DATA_NUL		0x04
#define SMTP_DATA_TOO_BIG	0x08
#define SMTP_DATA_BAD		(SMTP_DATA_BARE_CR | SMTP_DATA_BARE_LF | SMTP_DATA_NUL)

/* Receives message bytes as they are decoded. */
typedef void (*smtp_data_out_fn)(void *arg, const uint8_t *p, size_t n);

enum smtp_data_state {
	SMTP_DATA_BOL,		/* at the start of a line */
	SMTP_DATA_TEXT,		/* inside a line */
	SMTP_DATA_CR,		/* after a CR inside a line (or an empty one) */
	SMTP_DATA_DOT,		/* after "." at the start of a line */
	SMTP_DATA_DOTCR,	/* after "." CR at the start of a line */
	SMTP_DATA_DONE,		/* CR LF "." CR LF seen */
};

struct smtp_data {
	enum smtp_data_state	 state;
	int			 bare_lf_ok;	/* bare LF becomes CR LF */
	unsigned int		 flags;		/* SMTP_DATA_* reasons */
	uint64_t		 limit;		/* most bytes accepted */
	uint64_t		 count;		/* bytes of the message so far */
	smtp_data_out_fn	 out;
	void			*arg;
};

/* Start reading a message; the DATA line's own CR LF precedes it. */
void	smtp_data_init(struct smtp_data *d, uint64_t limit, int bare_lf_ok,
	    smtp_data_out_fn out, void *arg);
/*
 * Consume up to n bytes.  Returns how many were consumed: all of them,
 * unless the end of data was reached, in which case the bytes after the
 * final CR LF (pipelined commands) are left to the caller.
 */
size_t	smtp_data_feed(struct smtp_data *d, const uint8_t *p, size_t n);
/* Has the end of data been seen? */
int	smtp_data_done(const struct smtp_data *d);
/* SMTP_DATA_* reasons to refuse the message; 0 for a good one. */
unsigned int smtp_data_flags(const struct smtp_data *d);
/* Bytes of the message, as stored, counted even past the limit. */
uint64_t smtp_data_count(const struct smtp_data *d);

#endif
