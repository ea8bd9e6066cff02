/*
 * netaddr.c: IP addresses, CIDR blocks and host:port strings.
 *
 * Everything here is numeric: host names are refused, so nothing in this
 * file ever touches DNS or the file system and it runs in any sandbox.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/netaddr.h"

/* Longest text form of an address we accept (an IPv6 address with an
 * embedded IPv4 tail is 45 characters). */
#define NETADDR_TEXT_MAX	64

/* Parse a numeric address of either family into nb->addr. */
static int
netaddr_pton(const char *s, size_t n, int *family, uint8_t addr[16])
{
	char tmp[NETADDR_TEXT_MAX];

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, tmp, addr) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, tmp, addr) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -1;
}

/* Parse a decimal number of at most maxdigits digits, no sign. */
static int
netaddr_parse_uint(const char *s, size_t n, size_t maxdigits, unsigned long *out)
{
	unsigned long v = 0;
	size_t i;

	if (n == 0 || n > maxdigits)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Are all bits after the first prefix bits zero? */
static int
netblock_host_bits_clear(const uint8_t *addr, int alen, int prefix)
{
	int i;

	for (i = prefix; i < alen * 8; i++)
		if (addr[i / 8] & (0x80 >> (i % 8)))
			return 0;
	return 1;
}

int
netblock_parse(const char *s, struct netblock *nb)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned long prefix;
	int maxprefix;

	if (netaddr_pton(s, alen, &nb->family, nb->addr) == -1)
		return -1;
	maxprefix = nb->family == AF_INET ? 32 : 128;
	if (slash == NULL) {
		nb->prefix = maxprefix;
		return 0;
	}
	if (netaddr_parse_uint(slash + 1, strlen(slash + 1), 3, &prefix) == -1 ||
	    prefix > (unsigned long)maxprefix)
		return -1;
	nb->prefix = (int)prefix;
	/* 10.0.0.1/8 is almost always a typo for a host or a different
	 * network; refusing it beats silently widening it. */
	if (!netblock_host_bits_clear(nb->addr, maxprefix / 8, nb->prefix))
		return -1;
	return 0;
}

/* Do the first prefix bits of a and b agree? */
static int
netaddr_prefix_equal(const uint8_t *a, const uint8_t *b, int prefix)
{
	int full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ b[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* Match one address (family and bytes) against the list. */
static int
netlist_match_raw(const struct netlist *nl, int family, const uint8_t *addr)
{
	size_t i;

	for (i = 0; i < nl->n; i++) {
		const struct netblock *nb = &nl->v[i];

		if (nb->family == family &&
		    netaddr_prefix_equal(nb->addr, addr, nb->prefix))
			return 1;
	}
	return 0;
}

int
netlist_match(const struct netlist *nl, const struct sockaddr *sa)
{
	if (nl == NULL || sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		return netlist_match_raw(nl, AF_INET, (const uint8_t *)&sin->sin_addr);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *a = (const uint8_t *)&sin6->sin6_addr;

		if (netlist_match_raw(nl, AF_INET6, a))
			return 1;
		/* A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			return netlist_match_raw(nl, AF_INET, a + 12);
	}
	return 0;
}

int
netlist_match_str(const struct netlist *nl, const char *addr)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	uint8_t raw[16];
	int family;

	if (addr == NULL || netaddr_pton(addr, strlen(addr), &family, raw) == -1)
		return 0;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, raw, 4);
	} else {
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, raw, 16);
	}
	return netlist_match(nl, (struct sockaddr *)&ss);
}

void
netlist_free(struct netlist *nl)
{
	free(nl->v);
	nl->v = NULL;
	nl->n = 0;
}

int
hostport_parse(const char *s, struct sockaddr_storage *ss)
{
	const char *host, *colon;
	size_t hlen;
	unsigned long port;
	uint8_t raw[16];
	int family;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		/* Without brackets only IPv4: an IPv6 address has colons of
		 * its own and the port would be ambiguous. */
		if ((colon = strchr(s, ':')) == NULL || strchr(colon + 1, ':') != NULL)
			return -1;
		host = s;
		hlen = (size_t)(colon - s);
	}
	if (netaddr_pton(host, hlen, &family, raw) == -1)
		return -1;
	if (s[0] != '[' && family != AF_INET)
		return -1;
	if (netaddr_parse_uint(colon + 1, strlen(colon + 1), 5, &port) == -1 ||
	    port == 0 || port > 65535)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, raw, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		memcpy(&sin6->sin6_addr, raw, 16);
	}
	return 0;
}

int
sockaddr_numeric(const struct sockaddr *sa, char *host, size_t hostsz, unsigned int *port)
{
	const void *a;
	in_port_t p;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		a = &sin->sin_addr;
		p = sin->sin_port;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		a = &sin6->sin6_addr;
		p = sin6->sin6_port;
	} else
		return -1;
	if (hostsz > (size_t)INET6_ADDRSTRLEN)
		hostsz = INET6_ADDRSTRLEN;
	if (inet_ntop(sa->sa_family, a, host, (socklen_t)hostsz) == NULL)
		return -1;
	if (port != NULL)
		*port = ntohs(p);
	return 0;
}

void
hostport_format(const struct sockaddr *sa, char *dst, size_t dstsz)
{
	char host[INET6_ADDRSTRLEN];
	unsigned int port;

	if (dstsz == 0)
		return;
	if (sockaddr_numeric(sa, host, sizeof(host), &port) == -1)
		snprintf(dst, dstsz, "unknown");
	else if (sa->sa_family == AF_INET6)
		snprintf(dst, dstsz, "[%s]:%u", host, port);
	else
		snprintf(dst, dstsz, "%s:%u", host, port);
}
