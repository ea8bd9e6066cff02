/*
 * netaddr.h: IP addresses, CIDR blocks and host:port strings.
 */
#ifndef MOAT_NETADDR_H
#define MOAT_NETADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct netblock {
	int	family;		/* AF_INET or AF_INET6 */
	uint8_t	addr[16];	/* network byte order; IPv4 in the first 4 */
	int	prefix;		/* 0..32 or 0..128 */
};

struct netlist {
	struct netblock	*v;
	size_t		 n;
};

/* Parse "192.0.2.0/24", "2001:db8::/32" or a bare address (a host). */
int	netblock_parse(const char *s, struct netblock *nb);
/* Does the list contain the address?  IPv4-mapped IPv6 addresses
 * (::ffff:192.0.2.1) match IPv4 blocks. */
int	netlist_match(const struct netlist *nl, const struct sockaddr *sa);
/* The same, for a numeric address string. */
int	netlist_match_str(const struct netlist *nl, const char *addr);
void	netlist_free(struct netlist *nl);

/*
 * Parse "ip:port", "[ip]:port" (either family) into *ss.  Host names are
 * refused.  Returns 0 or -1.
 */
int	hostport_parse(const char *s, struct sockaddr_storage *ss);
/* Format an address and port as "ip:port" or "[ip6]:port". */
void	hostport_format(const struct sockaddr *sa, char *dst, size_t dstsz);
/* Numeric address and port of a socket address. */
int	sockaddr_numeric(const struct sockaddr *sa, char *host, size_t hostsz, unsigned int *port);

#endif
