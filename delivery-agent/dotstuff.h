/*
 * dotstuff.h: turn a stored message into SMTP DATA, chunk by chunk.
 *
 * The queue stores a message with CRLF line ends and dot-stuffing undone.
 * For DATA every line that starts with '.' gets one more '.' (RFC 5321
 * 4.5.2), and the data ends with CRLF "." CRLF.  The body arrives in
 * chunks that may split a line (even a CRLF) anywhere, so the encoder
 * keeps its place across calls.
 *
 * The stored body never holds a bare CR or LF (smtpd-session refuses
 * them), but should one appear it is sent as CRLF: the next hop must
 * never see a line end it could read two ways (SMTP smuggling).
 */
#ifndef MOAT_DOTSTUFF_H
#define MOAT_DOTSTUFF_H

#include <stddef.h>
#include <stdint.h>

/* Room dotstuff_encode needs for n input bytes. */
#define DOTSTUFF_OUT_MAX(n)	(2 * (n) + 2)
/* Room dotstuff_finish needs. */
#define DOTSTUFF_END_MAX	5

struct dotstuff {
	int	bol;	/* the next byte starts a line */
	int	cr;	/* a CR was seen and its LF has not been */
};

void	dotstuff_init(struct dotstuff *d);
/* Encode in[0..n) into out (DOTSTUFF_OUT_MAX(n) bytes); returns bytes written. */
size_t	dotstuff_encode(struct dotstuff *d, const uint8_t *in, size_t n, uint8_t *out);
/* The end of data: CRLF if the last line is open, then ".\r\n". */
size_t	dotstuff_finish(struct dotstuff *d, uint8_t *out);

#endif
