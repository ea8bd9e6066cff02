/*
 * dotstuff.c: SMTP DATA encoding of a stored message (see dotstuff.h).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

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

size_t
dotstuff_encode(struct dotstuff *d, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		uint8_t c = in[i];

		if (d->cr) {
			/* The CR seen last ends a line, with or without its LF. */
			o += dotstuff_eol(d, out + o);
			if (c == '\n')
				continue;
		}
		if (c == '\r') {
			d->cr = 1;
			continue;
		}
		if (c == '\n') {
			o += dotstuff_eol(d, out + o);
			continue;
		}
		if (d->bol && c == '.')
			out[o++] = '.';
		out[o++] = c;
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
