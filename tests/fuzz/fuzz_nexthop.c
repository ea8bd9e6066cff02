/* fuzz-sources: common/mail/nexthop.c common/mail/table.c common/mail/addr.c common/util/conf.c common/util/netaddr.c common/util/buf.c common/util/lines.c common/util/log.c common/util/xmalloc.c */
/*
 * fuzz_nexthop.c: transports and canonical next hops on arbitrary bytes.
 * A transport that parses, once completed (port, host), must format to a
 * text that nexthop_parse() accepts and reads back equal; a canonical
 * text that parses must format back to the very same bytes.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/nexthop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Two next hops mean the same. */
static int
fuzz_nexthop_equal(const struct nexthop *a, const struct nexthop *b)
{
	return a->proto == b->proto && a->kind == b->kind &&
	    strcmp(a->host, b->host) == 0 && a->port == b->port &&
	    strcmp(a->path, b->path) == 0;
}

/* A transport: complete it as routing would and check the round trip. */
static void
fuzz_nexthop_transport(const char *s)
{
	char err[256], out[NEXTHOP_MAX];
	struct nexthop nh, back;

	err[0] = '\0';
	if (nexthop_parse_transport(s, &nh, err, sizeof(err)) == -1) {
		if (err[0] == '\0')
			abort();	/* every refusal says why */
		return;
	}
	if (nh.kind == NEXTHOP_MX && nh.host[0] == '\0')
		memcpy(nh.host, "example.com", 12);
	if (nh.kind != NEXTHOP_UNIX && nh.port == 0)
		nh.port = nh.proto == NEXTHOP_LMTP ? 24 : 25;
	if (nexthop_format(&nh, out, sizeof(out)) == -1)
		abort();
	if (nexthop_parse(out, &back) == -1 || !fuzz_nexthop_equal(&nh, &back))
		abort();
	(void)nexthop_domain(&back);
}

/* A canonical next hop: it must be a fixed point of parse and format. */
static void
fuzz_nexthop_canonical(const char *s)
{
	char out[NEXTHOP_MAX];
	struct nexthop nh;

	if (nexthop_parse(s, &nh) == -1)
		return;
	if (nexthop_format(&nh, out, sizeof(out)) == -1 || strcmp(out, s) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_nexthop_transport(s);
	fuzz_nexthop_canonical(s);
	free(s);
	return 0;
}
