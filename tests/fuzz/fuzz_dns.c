/* fuzz-sources: delivery-agent/dns.c common/util/netaddr.c common/util/xmalloc.c common/util/log.c -lcares */
/*
 * fuzz_dns.c: what the delivery agent keeps from DNS replies (MX, A and
 * AAAA packets through c-ares' parsers into moat's capped sets, then the
 * MX ordering and null MX decision) and the text helpers (name check,
 * address literals, dns_servers words).  The first byte picks the target;
 * the rest is the packet or the text.  ("-lcares" in the list above links
 * the system c-ares, whose parsers are the ones the agent runs.)
 */
#include "config.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../delivery-agent/dns.h"

/* A deterministic random source from the input itself. */
static uint32_t
fuzz_rnd(void *arg, uint32_t bound)
{
	uint32_t *s = arg;

	*s = *s * 1103515245u + 12345u;
	return (*s >> 8) % bound;
}

static void
fuzz_mx(const uint8_t *p, size_t len)
{
	struct dns_mx mx[DNS_MX_MAX];
	uint32_t seed = (uint32_t)len;
	size_t n = 0, m, i;

	if (dns_reply_mx(p, (int)len, mx, &n) != 0)
		return;
	if (n == 0 || n > DNS_MX_MAX)
		abort();
	(void)dns_mx_is_null(mx, n);
	m = dns_mx_order(mx, n, fuzz_rnd, &seed);
	for (i = 0; i < m; i++) {
		if (mx[i].host[0] == '\0' || strlen(mx[i].host) > DNS_NAME_MAX ||
		    (i > 0 && mx[i - 1].pref > mx[i].pref))
			abort();
	}
}

static void
fuzz_addrs(int family, const uint8_t *p, size_t len)
{
	struct in6_addr a[DNS_ADDRS_MAX];
	static struct dns_result res;
	size_t n = 0;

	if (dns_reply_addrs(family, p, (int)len, a, &n) != 0)
		return;
	if (n == 0 || n > DNS_ADDRS_MAX)
		abort();
	memset(&res, 0, sizeof(res));
	if (family == AF_INET6)
		dns_targets_add(&res, "h.example", 0, 25, a, n, NULL, 0);
	else
		dns_targets_add(&res, "h.example", 0, 25, NULL, 0, a, n);
	if (res.n == 0 || res.n > DNS_TARGETS_MAX)
		abort();
}

static void
fuzz_text(const uint8_t *p, size_t len)
{
	struct sockaddr_storage ss;
	struct dns_mx mx[2];
	char *s;
	size_t n = 0;
	socklen_t sl;

	if ((s = malloc(len + 1)) == NULL)
		return;
	memcpy(s, p, len);
	s[len] = '\0';
	(void)dns_name_valid(s);
	(void)dns_literal(s, 25, &ss, &sl);
	(void)dns_server_parse(s, &ss);
	if (dns_mx_add(mx, &n, 2, 10, s) && strlen(mx[0].host) > DNS_NAME_MAX)
		abort();
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	switch (data[0] % 4) {
	case 0:
		fuzz_mx(data + 1, size - 1);
		break;
	case 1:
		fuzz_addrs(AF_INET, data + 1, size - 1);
		break;
	case 2:
		fuzz_addrs(AF_INET6, data + 1, size - 1);
		break;
	default:
		fuzz_text(data + 1, size - 1);
		break;
	}
	return 0;
}
