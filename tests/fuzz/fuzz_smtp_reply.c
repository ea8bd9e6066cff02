/* fuzz-sources: delivery-agent/smtp_reply.c */
/*
 * fuzz_smtp_reply.c: arbitrary server output, fed to the SMTP reply
 * parser in slices whose sizes also come from the input, as a socket
 * would deliver them.  Every complete reply is also read as an EHLO reply
 * and flattened to one line, and the parser's own promises are checked
 * (an abort here is a finding).
 *
 * Input: byte 0 seeds the slice sizes, the rest is the server's output.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../delivery-agent/smtp_reply.h"

/* Check what smtp_reply.h promises about a complete reply. */
static void
fuzz_check_reply(const struct smtp_reply *r)
{
	char one[512];
	struct smtp_ehlo e;
	size_t i, len, total = 0;

	if (r->code < 200 || r->code > 599 || r->nlines == 0 ||
	    r->nlines > SMTP_REPLY_LINES_MAX)
		abort();
	for (i = 0; i < r->nlines; i++) {
		const char *l = smtp_reply_line(r, i, &len);

		if (len > SMTP_REPLY_LINE_MAX || strlen(l) != len)
			abort();
		total += len;
	}
	if (total > SMTP_REPLY_TEXT_MAX)
		abort();
	if (r->enh[0] != '\0' && r->enh[0] != '0' + r->code / 100)
		abort();
	smtp_reply_oneline(r, one, sizeof(one));
	for (i = 0; one[i] != '\0'; i++)
		if ((unsigned char)one[i] < 0x20 || (unsigned char)one[i] >= 0x7f)
			abort();
	smtp_ehlo_parse(r, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct smtp_reply_parser p;
	unsigned int seed;
	size_t off = 1, used, n;
	enum smtp_reply_status st;

	if (size < 1)
		return 0;
	seed = data[0];
	smtp_reply_init(&p);
	while (off < size) {
		/* Slices of 1 to 64 bytes, sized by a small generator. */
		seed = seed * 1103515245u + 12345u;
		n = 1 + (seed >> 16) % 64;
		if (n > size - off)
			n = size - off;
		st = smtp_reply_feed(&p, data + off, n, &used);
		if (used > n)
			abort();
		if (st == SMTP_REPLY_MORE && used != n)
			abort();
		off += used;
		if (st == SMTP_REPLY_DONE)
			fuzz_check_reply(smtp_reply_get(&p));
		else if (st == SMTP_REPLY_ERROR) {
			if (smtp_reply_error(&p) == NULL)
				abort();
			break;
		}
	}
	return 0;
}
