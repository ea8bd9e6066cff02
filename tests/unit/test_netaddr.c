/*
 * test_netaddr.c: CIDR blocks, matching (IPv4-mapped IPv6 included),
 * host:port parsing and formatting.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "util/netaddr.h"
#include "tests/unit/t.h"

static const struct {
	const char	*in;
	int		 ok;
	int		 family;
	int		 prefix;
} blocks[] = {
	{ "192.0.2.0/24", 1, AF_INET, 24 },
	{ "192.0.2.1", 1, AF_INET, 32 },
	{ "192.0.2.1/32", 1, AF_INET, 32 },
	{ "0.0.0.0/0", 1, AF_INET, 0 },
	{ "10.0.0.0/8", 1, AF_INET, 8 },
	{ "172.16.0.0/12", 1, AF_INET, 12 },
	{ "192.0.2.128/25", 1, AF_INET, 25 },
	{ "2001:db8::/32", 1, AF_INET6, 32 },
	{ "::1", 1, AF_INET6, 128 },
	{ "::1/128", 1, AF_INET6, 128 },
	{ "::/0", 1, AF_INET6, 0 },
	{ "fe80::/10", 1, AF_INET6, 10 },
	{ "::ffff:192.0.2.0/120", 1, AF_INET6, 120 },
	{ "2001:db8::/031", 1, AF_INET6, 31 },

	{ "10.0.0.1/8", 0, 0, 0 },		/* host bits set */
	{ "192.0.2.1/24", 0, 0, 0 },
	{ "192.0.2.129/25", 0, 0, 0 },
	{ "1.0.0.0/0", 0, 0, 0 },
	{ "2001:db8::1/32", 0, 0, 0 },
	{ "::1/127", 0, 0, 0 },
	{ "192.0.2.0/33", 0, 0, 0 },
	{ "::/129", 0, 0, 0 },
	{ "192.0.2.0/", 0, 0, 0 },
	{ "192.0.2.0/-1", 0, 0, 0 },
	{ "192.0.2.0/+8", 0, 0, 0 },
	{ "192.0.2.0/ 8", 0, 0, 0 },
	{ "192.0.2.0/8x", 0, 0, 0 },
	{ "192.0.2.0/1000", 0, 0, 0 },
	{ "192.0.2.0/24/8", 0, 0, 0 },
	{ "/24", 0, 0, 0 },
	{ "", 0, 0, 0 },
	{ "192.0.2", 0, 0, 0 },
	{ "192.0.2.256", 0, 0, 0 },
	{ "0x7f.0.0.1", 0, 0, 0 },
	{ "localhost", 0, 0, 0 },
	{ "[::1]", 0, 0, 0 },
	{ "fe80::1%eth0", 0, 0, 0 },
	{ "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27/8", 0, 0, 0 },
};

static void
test_blocks(void)
{
	size_t i;

	for (i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
		struct netblock nb;
		int r = netblock_parse(blocks[i].in, &nb);

		T_OK((r == 0) == blocks[i].ok, "block '%s' %s", blocks[i].in,
		    blocks[i].ok ? "parses" : "refused");
		if (r == 0 && blocks[i].ok)
			T_OK(nb.family == blocks[i].family && nb.prefix == blocks[i].prefix,
			    "block '%s' family %d prefix %d", blocks[i].in, nb.family, nb.prefix);
	}
}

static const struct {
	const char	*list;		/* blocks separated by spaces */
	const char	*addr;
	int		 match;
} matches[] = {
	{ "192.0.2.0/24", "192.0.2.0", 1 },
	{ "192.0.2.0/24", "192.0.2.255", 1 },
	{ "192.0.2.0/24", "192.0.3.0", 0 },
	{ "192.0.2.0/24", "192.0.1.255", 0 },
	{ "192.0.2.128/25", "192.0.2.127", 0 },
	{ "192.0.2.128/25", "192.0.2.128", 1 },
	{ "172.16.0.0/12", "172.31.255.255", 1 },
	{ "172.16.0.0/12", "172.32.0.0", 0 },
	{ "192.0.2.1", "192.0.2.1", 1 },
	{ "192.0.2.1/32", "192.0.2.2", 0 },
	{ "0.0.0.0/0", "203.0.113.9", 1 },
	{ "0.0.0.0/0", "2001:db8::1", 0 },
	{ "::/0", "2001:db8::1", 1 },
	{ "::/0", "192.0.2.1", 0 },
	{ "2001:db8::/32", "2001:db8:ffff:ffff::1", 1 },
	{ "2001:db8::/32", "2001:db9::1", 0 },
	{ "2001:db8::/33", "2001:db8:8000::", 0 },
	{ "2001:db8::/33", "2001:db8:7fff::", 1 },
	{ "::1/128", "::1", 1 },
	{ "::1/128", "::2", 0 },
	{ "127.0.0.0/8", "::ffff:127.0.0.1", 1 },		/* mapped matches IPv4 */
	{ "127.0.0.0/8", "::ffff:128.0.0.1", 0 },
	{ "127.0.0.0/8", "::127.0.0.1", 0 },			/* compatible, not mapped */
	{ "127.0.0.0/8", "64:ff9b::127.0.0.1", 0 },		/* NAT64, not mapped */
	{ "::ffff:0:0/96", "::ffff:192.0.2.1", 1 },
	{ "::ffff:0:0/96", "192.0.2.1", 0 },
	{ "10.0.0.0/8 192.0.2.0/24 ::1", "192.0.2.7", 1 },
	{ "10.0.0.0/8 192.0.2.0/24 ::1", "::1", 1 },
	{ "10.0.0.0/8 192.0.2.0/24 ::1", "11.0.0.1", 0 },
	{ "", "127.0.0.1", 0 },
	{ "0.0.0.0/0", "not-an-address", 0 },
	{ "0.0.0.0/0", "", 0 },
	{ "0.0.0.0/0", "127.0.0.1:25", 0 },
};

/* Build a list from space-separated blocks (at most 8). */
static void
make_list(const char *text, struct netlist *nl, struct netblock *store)
{
	char buf[256], *p, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", text);
	nl->v = store;
	nl->n = 0;
	for (p = strtok_r(buf, " ", &save); p != NULL && nl->n < 8; p = strtok_r(NULL, " ", &save))
		if (netblock_parse(p, &store[nl->n]) == 0)
			nl->n++;
}

static void
test_matches(void)
{
	struct netblock store[8];
	struct netlist nl;
	size_t i;

	for (i = 0; i < sizeof(matches) / sizeof(matches[0]); i++) {
		make_list(matches[i].list, &nl, store);
		T_OK(netlist_match_str(&nl, matches[i].addr) == matches[i].match, "match '%s' in '%s': %d",
		    matches[i].addr, matches[i].list, matches[i].match);
	}
	T_OK(!netlist_match_str(&nl, NULL), "match NULL address");
	T_OK(!netlist_match_str(NULL, "127.0.0.1"), "match NULL list");

	/* Socket addresses, as the listener gets them from accept(). */
	{
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
		struct sockaddr_un sun;

		make_list("127.0.0.0/8", &nl, store);
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		inet_pton(AF_INET, "127.1.2.3", &sin.sin_addr);
		T_OK(netlist_match(&nl, (struct sockaddr *)&sin), "sockaddr_in matches");
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6.sin6_addr);
		T_OK(netlist_match(&nl, (struct sockaddr *)&sin6), "mapped sockaddr_in6 matches IPv4 block");
		inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
		T_OK(!netlist_match(&nl, (struct sockaddr *)&sin6), "::1 does not match 127.0.0.0/8");
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		T_OK(!netlist_match(&nl, (struct sockaddr *)&sun), "AF_UNIX matches nothing");
	}
}

static const struct {
	const char	*in;
	int		 ok;
	int		 family;
	unsigned int	 port;
	const char	*formatted;
} hostports[] = {
	{ "127.0.0.1:25", 1, AF_INET, 25, "127.0.0.1:25" },
	{ "0.0.0.0:2525", 1, AF_INET, 2525, "0.0.0.0:2525" },
	{ "[::1]:587", 1, AF_INET6, 587, "[::1]:587" },
	{ "[2001:DB8::1]:65535", 1, AF_INET6, 65535, "[2001:db8::1]:65535" },
	{ "[192.0.2.1]:10025", 1, AF_INET, 10025, "192.0.2.1:10025" },
	{ "[::ffff:192.0.2.1]:25", 1, AF_INET6, 25, "[::ffff:192.0.2.1]:25" },
	{ "127.0.0.1:1", 1, AF_INET, 1, "127.0.0.1:1" },
	{ "127.0.0.1:00025", 1, AF_INET, 25, "127.0.0.1:25" },

	{ "127.0.0.1:0", 0, 0, 0, NULL },
	{ "127.0.0.1:65536", 0, 0, 0, NULL },
	{ "127.0.0.1:99999", 0, 0, 0, NULL },
	{ "127.0.0.1:000025", 0, 0, 0, NULL },
	{ "127.0.0.1:", 0, 0, 0, NULL },
	{ "127.0.0.1", 0, 0, 0, NULL },
	{ "127.0.0.1:-1", 0, 0, 0, NULL },
	{ "127.0.0.1:25x", 0, 0, 0, NULL },
	{ "127.0.0.1:smtp", 0, 0, 0, NULL },
	{ ":25", 0, 0, 0, NULL },
	{ "::1:25", 0, 0, 0, NULL },
	{ "[::1]", 0, 0, 0, NULL },
	{ "[::1]25", 0, 0, 0, NULL },
	{ "[::1:25", 0, 0, 0, NULL },
	{ "::1]:25", 0, 0, 0, NULL },
	{ "[]:25", 0, 0, 0, NULL },
	{ "[localhost]:25", 0, 0, 0, NULL },
	{ "localhost:25", 0, 0, 0, NULL },
	{ "mx.example.com:25", 0, 0, 0, NULL },
	{ "[::1]:25:26", 0, 0, 0, NULL },
	{ "127.0.0.1:25:26", 0, 0, 0, NULL },
	{ "[fe80::1%lo]:25", 0, 0, 0, NULL },
	{ "", 0, 0, 0, NULL },
};

static void
test_hostports(void)
{
	size_t i;

	for (i = 0; i < sizeof(hostports) / sizeof(hostports[0]); i++) {
		struct sockaddr_storage ss;
		char out[128], host[64];
		unsigned int port = 0;
		int r = hostport_parse(hostports[i].in, &ss);

		T_OK((r == 0) == hostports[i].ok, "hostport '%s' %s", hostports[i].in,
		    hostports[i].ok ? "parses" : "refused");
		if (r != 0 || !hostports[i].ok)
			continue;
		T_OK(ss.ss_family == hostports[i].family, "hostport '%s' family", hostports[i].in);
		T_OK(sockaddr_numeric((struct sockaddr *)&ss, host, sizeof(host), &port) == 0 &&
		    port == hostports[i].port, "hostport '%s' port %u", hostports[i].in, port);
		hostport_format((struct sockaddr *)&ss, out, sizeof(out));
		T_OK(strcmp(out, hostports[i].formatted) == 0, "hostport '%s' formats as '%s'",
		    hostports[i].in, out);
	}
}

static void
test_format_edges(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_un sun;
	char out[8], host[4];
	unsigned int port;

	T_OK(hostport_parse("[2001:db8::1]:25", &ss) == 0, "format: parsed");
	hostport_format((struct sockaddr *)&ss, out, sizeof(out));
	T_OK(strlen(out) == sizeof(out) - 1, "format: truncated, terminated");
	T_OK(sockaddr_numeric((struct sockaddr *)&ss, host, sizeof(host), &port) == -1,
	    "numeric: too small a buffer fails");
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	T_OK(sockaddr_numeric((struct sockaddr *)&sun, host, sizeof(host), &port) == -1,
	    "numeric: AF_UNIX refused");
	hostport_format((struct sockaddr *)&sun, out, sizeof(out));
	T_OK(strcmp(out, "unknown") == 0, "format: AF_UNIX is unknown");
}

int
main(void)
{
	struct netlist nl = { NULL, 0 };

	test_blocks();
	test_matches();
	test_hostports();
	test_format_edges();
	netlist_free(&nl);
	T_OK(nl.v == NULL && nl.n == 0, "netlist_free of an empty list");
	return t_done();
}
