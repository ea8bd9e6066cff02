/*
 * selfaddr.c: moat's own listening addresses, for loop detection by the
 * relay transport (see selfaddr.h).
 */
#include "config.h"

#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "selfaddr.h"
#include "util/conf.h"
#include "util/xmalloc.h"

#define SELFADDR_IF_MAX	1024	/* interface addresses looked at */

/* Address bytes, family and port of sa; IPv4-mapped IPv6 becomes IPv4. */
static int
selfaddr_split(const struct sockaddr *sa, int *family, uint8_t addr[16],
    uint16_t *port)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;

	memset(addr, 0, 16);
	if (sa->sa_family == AF_INET) {
		*family = AF_INET;
		memcpy(addr, &sin->sin_addr, 4);
		*port = ntohs(sin->sin_port);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	*port = ntohs(sin6->sin6_port);
	if (memcmp(sin6->sin6_addr.s6_addr, mapped, sizeof(mapped)) == 0) {
		*family = AF_INET;
		memcpy(addr, sin6->sin6_addr.s6_addr + 12, 4);
		return 0;
	}
	*family = AF_INET6;
	memcpy(addr, sin6->sin6_addr.s6_addr, 16);
	return 0;
}

static void
selfaddr_push(struct selfaddr *sa, int family, const uint8_t addr[16], int prefix,
    uint16_t port)
{
	struct selfaddr_entry *e;

	sa->v = xreallocarray(sa->v, sa->n + 1, sizeof(*sa->v));
	e = &sa->v[sa->n++];
	memset(e, 0, sizeof(*e));
	e->family = family;
	memcpy(e->addr, addr, 16);
	e->prefix = prefix;
	e->port = port;
}

/* The loopback range of both families on port. */
static void
selfaddr_push_loopback(struct selfaddr *sa, uint16_t port)
{
	uint8_t a[16];

	memset(a, 0, sizeof(a));
	a[0] = 127;
	selfaddr_push(sa, AF_INET, a, 8, port);
	memset(a, 0, sizeof(a));
	a[15] = 1;
	selfaddr_push(sa, AF_INET6, a, 128, port);
}

void
selfaddr_add_listener(struct selfaddr *sa, const struct sockaddr *listen,
    const struct sockaddr_storage *ifaddrs, size_t nif)
{
	static const uint8_t zero[16];
	uint8_t addr[16], ia[16];
	uint16_t port, ip;
	int family, ifam;
	size_t i;

	if (selfaddr_split(listen, &family, addr, &port) == -1)
		return;
	if (memcmp(addr, zero, family == AF_INET ? 4 : 16) != 0) {
		selfaddr_push(sa, family, addr, family == AF_INET ? 32 : 128, port);
		return;
	}
	/* A wildcard: every local address; [::] may take IPv4 as well. */
	selfaddr_push_loopback(sa, port);
	for (i = 0; i < nif; i++) {
		if (selfaddr_split((const struct sockaddr *)&ifaddrs[i], &ifam, ia,
		    &ip) == -1)
			continue;
		if (family == AF_INET && ifam != AF_INET)
			continue;
		selfaddr_push(sa, ifam, ia, ifam == AF_INET ? 32 : 128, port);
	}
}

/*
 * IPv4 addresses of the local interfaces (SIOCGIFCONF), appended to out.
 * Not getifaddrs(): it needs a netlink socket, which moatd's own seccomp
 * filter, inherited by every child, refuses.
 */
static void
selfaddr_if_inet(struct sockaddr_storage *out, size_t max, size_t *n)
{
	struct ifreq *reqs;
	struct ifconf ifc;
	size_t i;
	int s;

	if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	reqs = xcalloc(SELFADDR_IF_MAX, sizeof(*reqs));
	memset(&ifc, 0, sizeof(ifc));
	ifc.ifc_len = (int)(SELFADDR_IF_MAX * sizeof(*reqs));
	ifc.ifc_req = reqs;
	if (ioctl(s, SIOCGIFCONF, &ifc) == 0) {
		for (i = 0; i < (size_t)ifc.ifc_len / sizeof(*reqs) && *n < max; i++)
			if (reqs[i].ifr_addr.sa_family == AF_INET)
				memcpy(&out[(*n)++], &reqs[i].ifr_addr,
				    sizeof(struct sockaddr_in));
	}
	free(reqs);
	close(s);
}

/*
 * IPv6 addresses of the local interfaces, from /proc/net/if_inet6 (one
 * line each: 32 hex digits, then index, prefix, scope, flags, name).  A
 * host without IPv6 has no such file: nothing to add.
 */
static void
selfaddr_if_inet6(struct sockaddr_storage *out, size_t max, size_t *n)
{
	struct sockaddr_in6 *sin6;
	char line[256];
	unsigned int byte;
	FILE *f;
	int k;

	if ((f = fopen("/proc/net/if_inet6", "re")) == NULL)
		return;
	while (*n < max && fgets(line, sizeof(line), f) != NULL) {
		if (strspn(line, "0123456789abcdefABCDEF") < 32)
			continue;
		sin6 = (struct sockaddr_in6 *)&out[*n];
		memset(sin6, 0, sizeof(*sin6));
		sin6->sin6_family = AF_INET6;
		for (k = 0; k < 16; k++) {
			if (sscanf(line + 2 * k, "%2x", &byte) != 1)
				break;
			sin6->sin6_addr.s6_addr[k] = (uint8_t)byte;
		}
		if (k == 16)
			(*n)++;
	}
	fclose(f);
}

/* The addresses of the local interfaces, up to max of them. */
static size_t
selfaddr_interfaces(struct sockaddr_storage *out, size_t max)
{
	size_t n = 0;

	selfaddr_if_inet(out, max, &n);
	selfaddr_if_inet6(out, max, &n);
	return n;
}

int
selfaddr_init(struct selfaddr *sa, const struct conf *cfg, char *err,
    size_t errlen)
{
	static const enum conf_key keys[] = {
		CONF_LISTEN, CONF_SUBMISSION_LISTEN, CONF_SMTPS_LISTEN
	};
	struct sockaddr_storage *ifs;
	size_t nif, k, i;

	(void)err;
	(void)errlen;
	memset(sa, 0, sizeof(*sa));
	ifs = xcalloc(SELFADDR_IF_MAX, sizeof(*ifs));
	nif = selfaddr_interfaces(ifs, SELFADDR_IF_MAX);
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		const struct conf_value *v = &cfg->v[keys[k]];

		for (i = 0; i < v->naddrs; i++)
			selfaddr_add_listener(sa,
			    (const struct sockaddr *)&v->addrs[i], ifs, nif);
	}
	free(ifs);
	return 0;
}

/* Do the first prefix bits of a and b agree? */
static int
selfaddr_prefix_eq(const uint8_t *a, const uint8_t *b, int prefix)
{
	int full = prefix / 8, rest = prefix % 8;
	uint8_t mask;

	if (memcmp(a, b, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

int
selfaddr_match(const struct selfaddr *sa, const struct sockaddr *target)
{
	uint8_t addr[16];
	uint16_t port;
	int family;
	size_t i;

	if (sa == NULL || selfaddr_split(target, &family, addr, &port) == -1)
		return 0;
	for (i = 0; i < sa->n; i++) {
		const struct selfaddr_entry *e = &sa->v[i];

		if (e->family == family && e->port == port &&
		    selfaddr_prefix_eq(e->addr, addr, e->prefix))
			return 1;
	}
	return 0;
}

void
selfaddr_free(struct selfaddr *sa)
{
	free(sa->v);
	sa->v = NULL;
	sa->n = 0;
}
