/*
 * test_dotstuff.c: DATA encoding of stored messages
 * (delivery-agent/dotstuff.c), cut into chunks at every possible place.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery-agent/dotstuff.h"
#include "unit/t.h"

struct stuff_case {
	const char	*label;
	const char	*in;
	const char	*out;
};

static const struct stuff_case cases[] = {
	{ "empty body", "", ".\r\n" },
	{ "one line", "a\r\n", "a\r\n.\r\n" },
	{ "dot line", ".\r\n", "..\r\n.\r\n" },
	{ "lines starting with dots", ".a\r\n..b\r\nc.d\r\n",
	  "..a\r\n...b\r\nc.d\r\n.\r\n" },
	{ "dot first and last", ".\r\nx\r\n.", "..\r\nx\r\n..\r\n.\r\n" },
	{ "terminator inside the body", "a\r\n.\r\nRSET\r\n",
	  "a\r\n..\r\nRSET\r\n.\r\n" },
	{ "no CRLF at the end", "abc", "abc\r\n.\r\n" },
	{ "lone dot, no CRLF", ".", "..\r\n.\r\n" },
	{ "only CRLF", "\r\n", "\r\n.\r\n" },
	{ "empty lines", "\r\n\r\n.\r\n", "\r\n\r\n..\r\n.\r\n" },
	{ "bare LF becomes CRLF", "a\n.b", "a\r\n..b\r\n.\r\n" },
	{ "bare CR becomes CRLF", "a\r.b\r\n", "a\r\n..b\r\n.\r\n" },
	{ "CR at the very end", "a\r", "a\r\n.\r\n" },
	{ "LF.LF smuggling attempt", "a\n.\nMAIL", "a\r\n..\r\nMAIL\r\n.\r\n" },
	{ "CR.CR smuggling attempt", "a\r.\rb", "a\r\n..\r\nb\r\n.\r\n" },
	{ "dot in the middle", "a.b\r\n", "a.b\r\n.\r\n" },
	{ "8-bit bytes", "\xe9t\xe9\r\n.\xff\r\n", "\xe9t\xe9\r\n..\xff\r\n.\r\n" },
};

/*
 * Encode in with chunk boundaries after cut1 and cut2 bytes (each may be
 * 0 or len), into an exactly sized buffer per chunk, and compare.
 */
static int
encode_split(const char *in, size_t len, size_t cut1, size_t cut2, char *out,
    size_t *outlen)
{
	const size_t cuts[3] = { cut1, cut2, len };
	struct dotstuff d;
	size_t k, from = 0, o = 0, n;
	uint8_t *buf;

	dotstuff_init(&d);
	for (k = 0; k < 3; k++) {
		size_t chunk = cuts[k] - from;

		buf = malloc(DOTSTUFF_OUT_MAX(chunk));
		n = dotstuff_encode(&d, (const uint8_t *)in + from, chunk, buf);
		if (n > DOTSTUFF_OUT_MAX(chunk)) {
			free(buf);
			return -1;
		}
		memcpy(out + o, buf, n);
		o += n;
		free(buf);
		from = cuts[k];
	}
	buf = malloc(DOTSTUFF_END_MAX);
	n = dotstuff_finish(&d, buf);
	if (n > DOTSTUFF_END_MAX) {
		free(buf);
		return -1;
	}
	memcpy(out + o, buf, n);
	free(buf);
	*outlen = o + n;
	return 0;
}

static void
test_cases(void)
{
	char out[256];
	size_t i, a, b, outlen, bad, tried;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct stuff_case *c = &cases[i];
		size_t len = strlen(c->in);

		/* Whole body in one chunk. */
		if (encode_split(c->in, len, len, len, out, &outlen) == -1)
			outlen = 0;
		T_OK(outlen == strlen(c->out) && memcmp(out, c->out, outlen) == 0,
		    "%s: one chunk", c->label);
		/* Every pair of cut points: lines and CRLFs split everywhere. */
		bad = tried = 0;
		for (a = 0; a <= len; a++) {
			for (b = a; b <= len; b++) {
				tried++;
				if (encode_split(c->in, len, a, b, out, &outlen) == -1 ||
				    outlen != strlen(c->out) ||
				    memcmp(out, c->out, outlen) != 0)
					bad++;
			}
		}
		T_OK(bad == 0, "%s: %zu of %zu chunkings differ", c->label, bad, tried);
	}
}

/* A '.' line split exactly between its CRLF and its dot, chunk by chunk. */
static void
test_split_dot_line(void)
{
	static const char *const chunks[] = { "hello\r", "\n", ".", "\r\n", "." };
	const char *want = "hello\r\n..\r\n..\r\n.\r\n";
	struct dotstuff d;
	char out[64];
	size_t i, o = 0;

	dotstuff_init(&d);
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
		o += dotstuff_encode(&d, (const uint8_t *)chunks[i], strlen(chunks[i]),
		    (uint8_t *)out + o);
	o += dotstuff_finish(&d, (uint8_t *)out + o);
	T_OK(o == strlen(want) && memcmp(out, want, o) == 0,
	    "dot line split across chunk boundaries");
}

/* Undo dot-stuffing as a server would; -1 if the data is not well formed. */
static int
server_decode(const uint8_t *p, size_t n, uint8_t *body, size_t *blen)
{
	size_t i = 0, o = 0;

	for (;;) {
		const uint8_t *eol;
		size_t llen;

		if (i >= n)
			return -1;
		eol = memchr(p + i, '\n', n - i);
		if (eol == NULL || eol == p + i || eol[-1] != '\r')
			return -1;
		llen = (size_t)(eol - (p + i)) - 1;
		if (memchr(p + i, '\r', llen) != NULL)
			return -1;	/* a CR inside a line: not sent by us */
		if (llen == 1 && p[i] == '.')
			break;
		if (llen > 0 && p[i] == '.') {
			i++;
			llen--;
		}
		memcpy(body + o, p + i, llen);
		o += llen;
		body[o++] = '\r';
		body[o++] = '\n';
		i += llen + 2;
	}
	*blen = o;
	return i + 3 == n ? 0 : -1;
}

/* Random CRLF bodies in random chunks: the server gets back the body. */
static void
test_random_roundtrip(void)
{
	static const uint8_t alphabet[] = { '.', '.', 'a', 'b', '\r', '\n', ' ' };
	uint8_t in[400], body[1200], *out;
	size_t round, i, n, o, blen, bad = 0, overflow = 0;
	struct dotstuff d;
	unsigned int seed = 12345;

	out = malloc(DOTSTUFF_OUT_MAX(sizeof(in)) + DOTSTUFF_END_MAX);
	for (round = 0; round < 2000; round++) {
		/* Build a body of whole CRLF lines. */
		n = 0;
		while (n + 8 < sizeof(in) && (rand_r(&seed) % 40) != 0) {
			uint8_t c = alphabet[rand_r(&seed) % sizeof(alphabet)];

			if (c == '\r' || c == '\n') {
				in[n++] = '\r';
				in[n++] = '\n';
			} else
				in[n++] = c;
		}
		in[n++] = '\r';
		in[n++] = '\n';
		dotstuff_init(&d);
		o = 0;
		for (i = 0; i < n;) {
			size_t chunk = 1 + rand_r(&seed) % 17, w;

			if (chunk > n - i)
				chunk = n - i;
			w = dotstuff_encode(&d, in + i, chunk, out + o);
			if (w > DOTSTUFF_OUT_MAX(chunk))
				overflow++;
			o += w;
			i += chunk;
		}
		o += dotstuff_finish(&d, out + o);
		if (server_decode(out, o, body, &blen) == -1 || blen != n ||
		    memcmp(body, in, n) != 0)
			bad++;
	}
	free(out);
	T_OK(overflow == 0, "output never over DOTSTUFF_OUT_MAX (%zu times)", overflow);
	T_OK(bad == 0, "2000 random bodies survive the round trip (%zu failed)", bad);
}

/* The worst case for the output bound: a held CR then a dot, one by one. */
static void
test_worst_case_bound(void)
{
	struct dotstuff d;
	uint8_t out[DOTSTUFF_OUT_MAX(1)];
	size_t n, ok = 1, i;

	dotstuff_init(&d);
	for (i = 0; i < 100; i++) {
		n = dotstuff_encode(&d, (const uint8_t *)"\r", 1, out);
		ok &= n <= DOTSTUFF_OUT_MAX(1);
		n = dotstuff_encode(&d, (const uint8_t *)".", 1, out);
		ok &= n <= DOTSTUFF_OUT_MAX(1) && n == 4;
	}
	T_OK(ok, "CR then '.' in one-byte chunks stays within the bound");
}

int
main(void)
{
	test_cases();
	test_split_dot_line();
	test_random_roundtrip();
	test_worst_case_bound();
	return t_done();
}
