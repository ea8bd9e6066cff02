/* fuzz-sources: smtpd-session/smtp_data.c */
/*
 * fuzz_smtp_data.c: message content from arbitrary bytes, fed to the DATA
 * reader whole and again in slices whose sizes come from the input, as a
 * socket would deliver them.  Checked with __builtin_trap():
 *  - both feedings agree on the verdict, the output, the count and where
 *    the data ended;
 *  - the data ends only right after CR LF "." CR LF (or "." CR LF at the
 *    very start; LF-only forms only in bare LF mode);
 *  - a message reported good has no bare CR, bare LF or NUL in its output,
 *    and its output is exactly as long as the reported count.
 *
 * Input: byte 0 picks bare LF mode (bit 0), a small size limit (bit 1)
 * and seeds the slice sizes; the rest is the client's bytes.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../smtpd-session/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_out {
	uint8_t	*p;
	size_t	 len;
	size_t	 cap;
};

struct fuzz_run {
	struct fuzz_out	 out;
	size_t		 consumed;
	int		 done;
	unsigned int	 flags;
	uint64_t	 count;
};

static void
fuzz_sink(void *arg, const uint8_t *p, size_t n)
{
	struct fuzz_out *o = arg;

	if (n == 0)
		__builtin_trap();	/* the reader never emits nothing */
	if (o->len + n > o->cap)
		__builtin_trap();	/* more out than could have gone in */
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

/* Feed in slices of 1..16 bytes chosen by seed (0: all at once). */
static void
fuzz_feed(const uint8_t *in, size_t n, int bare_lf, uint64_t limit,
    unsigned int seed, struct fuzz_run *r)
{
	struct smtp_data d;
	size_t off = 0, k, used;

	smtp_data_init(&d, limit, bare_lf, fuzz_sink, &r->out);
	while (off < n && !smtp_data_done(&d)) {
		if (seed == 0)
			k = n - off;
		else {
			seed = seed * 1103515245u + 12345u;
			k = 1 + (seed >> 16) % 16;
			if (k > n - off)
				k = n - off;
		}
		used = smtp_data_feed(&d, in + off, k);
		if (used > k || (used < k && !smtp_data_done(&d)))
			__builtin_trap();
		off += used;
	}
	r->consumed = off;
	r->done = smtp_data_done(&d);
	r->flags = smtp_data_flags(&d);
	r->count = smtp_data_count(&d);
	if (r->done && smtp_data_feed(&d, (const uint8_t *)"x", 1) != 0)
		__builtin_trap();
}

/* Where may the data have ended?  Only after a real end-of-data line. */
static void
fuzz_check_end(const uint8_t *in, const struct fuzz_run *r, int bare_lf)
{
	size_t c = r->consumed;

	if (!r->done)
		return;
	if (bare_lf) {
		/* "." LF or "." CR LF, at the start of a line ended by LF. */
		size_t dot;

		if (c < 2 || in[c - 1] != '\n')
			__builtin_trap();
		dot = in[c - 2] == '\r' ? c - 3 : c - 2;
		if (in[c - 2] == '\r' && c < 3)
			__builtin_trap();
		if (in[dot] != '.' || (dot != 0 && in[dot - 1] != '\n'))
			__builtin_trap();
		return;
	}
	if (c < 3 || memcmp(in + c - 3, ".\r\n", 3) != 0)
		__builtin_trap();
	if (c != 3 && (c < 5 || memcmp(in + c - 5, "\r\n", 2) != 0))
		__builtin_trap();
}

/* A good message's output is clean CR LF text, as long as its count. */
static void
fuzz_check_good(const struct fuzz_run *r)
{
	size_t i;

	if (r->flags != 0)
		return;
	if (r->out.len != r->count)
		__builtin_trap();
	for (i = 0; i < r->out.len; i++) {
		uint8_t c = r->out.p[i];

		if (c == '\0')
			__builtin_trap();
		if (c == '\r' && (i + 1 >= r->out.len || r->out.p[i + 1] != '\n'))
			__builtin_trap();
		if (c == '\n' && (i == 0 || r->out.p[i - 1] != '\r'))
			__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_run a, b;
	uint64_t limit;
	int bare_lf;
	size_t n;

	if (size < 1)
		return 0;
	bare_lf = data[0] & 1;
	limit = (data[0] & 2) ? 64 : UINT64_MAX;
	n = size - 1;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	/* Bare LF becomes CR LF: at most twice the input comes out. */
	a.out.cap = b.out.cap = 2 * n + 1;
	a.out.p = malloc(a.out.cap);
	b.out.p = malloc(b.out.cap);
	if (a.out.p == NULL || b.out.p == NULL)
		abort();
	fuzz_feed(data + 1, n, bare_lf, limit, 0, &a);
	fuzz_feed(data + 1, n, bare_lf, limit, (unsigned int)data[0] | 0x100, &b);
	if (a.done != b.done || a.consumed != b.consumed || a.flags != b.flags ||
	    a.count != b.count || a.out.len != b.out.len ||
	    (a.out.len != 0 && memcmp(a.out.p, b.out.p, a.out.len) != 0))
		__builtin_trap();
	if (!a.done && a.consumed != n)
		__builtin_trap();
	fuzz_check_end(data + 1, &a, bare_lf);
	fuzz_check_good(&a);
	if (limit != UINT64_MAX && a.out.len > limit)
		__builtin_trap();
	free(a.out.p);
	free(b.out.p);
	return 0;
}
