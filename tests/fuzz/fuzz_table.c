/* fuzz-sources: common/mail/table.c common/mail/nexthop.c common/mail/addr.c common/util/conf.c common/util/netaddr.c common/util/buf.c common/util/lines.c common/util/log.c common/util/xmalloc.c */
/*
 * fuzz_table.c: table_parse and table_lookup on arbitrary bytes, and the
 * configuration bundle that carries tables.  The first byte picks the
 * mode: a table with no value check, a transport table, or the rest read
 * as a bundle (the magic is prepended, so the bundle parser is reached
 * at once) whose transport table then routes a few domains.  Every
 * lookup answer must be consistent with the key that matched.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/nexthop.h"
#include "mail/table.h"
#include "util/conf.h"

#define FUZZ_MAGIC	"\0moat-bundle 1\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fuzz_domains[] = {
	"example.com", "a.example.com", "b.a.example.com", "EXAMPLE.COM.", "com",
	"x", "", ".", "..", ".example.com", "*", "a..b", "[192.0.2.1]",
};

/* The matched key must be "*", the domain, or ".parent" of it. */
static void
fuzz_table_lookup(const struct table *t, const char *d, size_t n)
{
	const char *key, *v = table_lookup(t, d, &key);
	size_t klen, dlen = n;

	if ((v == NULL) != (key == NULL))
		abort();
	if (v == NULL || strcmp(key, "*") == 0)
		return;
	if (dlen > 0 && d[dlen - 1] == '.')
		dlen--;
	klen = strlen(key);
	if (key[0] == '.') {
		if (klen >= dlen || strncasecmp(d + dlen - klen, key, klen) != 0)
			abort();
	} else if (klen != dlen || strncasecmp(d, key, klen) != 0)
		abort();
}

/* Look up the fixed names and the first word of each input line. */
static void
fuzz_table_lookups(const struct table *t, const char *text, size_t len)
{
	char word[300];
	size_t i, off = 0;

	for (i = 0; i < sizeof(fuzz_domains) / sizeof(fuzz_domains[0]); i++)
		fuzz_table_lookup(t, fuzz_domains[i], strlen(fuzz_domains[i]));
	while (off < len) {
		size_t n = 0;

		while (off + n < len && text[off + n] != ' ' &&
		    text[off + n] != '\t' && text[off + n] != '\n')
			n++;
		if (n < sizeof(word)) {
			memcpy(word, text + off, n);
			word[n] = '\0';
			fuzz_table_lookup(t, word, strlen(word));
			if (n > 0 && word[0] == '.')
				fuzz_table_lookup(t, word + 1, strlen(word + 1));
		}
		off += n;
		while (off < len && text[off] != '\n')
			off++;
		off++;
	}
}

/* transport_maps' check. */
static int
fuzz_check_transport(const char *value, char *err, size_t errlen)
{
	struct nexthop nh;

	return nexthop_parse_transport(value, &nh, err, errlen);
}

/* A table from text; lookups when it parses. */
static void
fuzz_table_one(const char *text, size_t len, int check, FILE *devnull)
{
	struct table *t = (struct table *)1;
	int n;

	n = table_parse("fuzz.map", text, len, check ? fuzz_check_transport : NULL,
	    &t, devnull);
	if ((n == 0) != (t != NULL))
		abort();
	if (t == NULL)
		return;
	if (table_count(t) > TABLE_ENTRIES_MAX)
		abort();
	fuzz_table_lookups(t, text, len);
	table_free(t);
}

/* A bundle; when it parses, every domain routes or says why not. */
static void
fuzz_table_bundle(const uint8_t *data, size_t size, FILE *devnull)
{
	char *b = malloc(sizeof(FUZZ_MAGIC) - 1 + size), out[NEXTHOP_MAX], err[256];
	struct conf *cfg = (struct conf *)1;
	struct nexthop nh;
	size_t i;
	int n;

	if (b == NULL)
		return;
	memcpy(b, FUZZ_MAGIC, sizeof(FUZZ_MAGIC) - 1);
	memcpy(b + sizeof(FUZZ_MAGIC) - 1, data, size);
	n = conf_parse("fuzz.bundle", b, sizeof(FUZZ_MAGIC) - 1 + size, &cfg, devnull);
	free(b);
	if ((n == 0) != (cfg != NULL))
		abort();
	if (cfg == NULL)
		return;
	for (i = 0; i < sizeof(fuzz_domains) / sizeof(fuzz_domains[0]); i++) {
		err[0] = '\0';
		if (nexthop_route(cfg, fuzz_domains[i], out, sizeof(out), err,
		    sizeof(err)) == 0) {
			if (nexthop_parse(out, &nh) == -1)
				abort();
		} else if (err[0] == '\0')
			abort();
	}
	conf_free(cfg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;

	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		return 0;
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_table_one((const char *)data + 1, size - 1, 0, devnull);
		break;
	case 1:
		fuzz_table_one((const char *)data + 1, size - 1, 1, devnull);
		break;
	default:
		fuzz_table_bundle(data + 1, size - 1, devnull);
		break;
	}
	return 0;
}
