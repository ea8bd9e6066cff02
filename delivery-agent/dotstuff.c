/*
 * dotstuff.c: SMTP DATA encoding of a stored message (see dotstuff.h).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dotstuff.h"

void
dotstuff_init(struct dotstuff *d)
{
	d->bol = 1;
	d->cr = 0;
}

/* Emit a line end and remember that a new line starts. */
static size_t
dotstuff_eol(struct dotstuff *d, uint8_t *out)
{
	out[0] = '\r';
	out[1] = '\n';
	d->bol = 1;
	d->cr = 0;
	return 2;
}

/*
 * Bytes are handled one at a time only at line boundaries; the text of
 * a line is found with memchr and copied whole, which keeps large
 * messages cheap (a per-byte loop was most of the agent's CPU time).
 */
size_t
dotstuff_encode(struct dotstuff *d, const uint8_t *in, size_t n, uint8_t *out)
{
	const uint8_t *p;
	size_t i = 0, o = 0, end;

	while (i < n) {
		uint8_t c = in[i];

		if (d->cr) {
			/* The CR seen last ends a line, with or without its LF. */
			o += dotstuff_eol(d, out + o);
			if (c == '\n') {
				i++;
				continue;
			}
		}
		if (c == '\r') {
			d->cr = 1;
			i++;
			continue;
		}
		if (c == '\n') {
			o += dotstuff_eol(d, out + o);
			i++;
			continue;
		}
		if (d->bol && c == '.')
			out[o++] = '.';
		/* The rest of the line, up to the next CR or LF. */
		p = memchr(in + i, '\r', n - i);
		end = p != NULL ? (size_t)(p - in) : n;
		if ((p = memchr(in + i, '\n', end - i)) != NULL)
			end = (size_t)(p - in);
		memcpy(out + o, in + i, end - i);
		o += end - i;
		i = end;
		d->bol = 0;
	}
	return o;
}

size_t
dotstuff_finish(struct dotstuff *d, uint8_t *out)
{
	size_t o = 0;

	if (d->cr || !d->bol)
		o += dotstuff_eol(d, out);
	out[o++] = '.';
	out[o++] = '\r';
	out[o++] = '\n';
	return o;
}
