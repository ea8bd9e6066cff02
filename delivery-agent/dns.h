/*
 * dns.h: MX and address resolution for relay delivery (RFC 5321 section
 * 5.1, RFC 7505 null MX), on c-ares.
 *
 * dns_resolve() turns a next hop into the ordered list of addresses to
 * try:
 *   - NEXTHOP_MX: MX lookup of the domain.  MX records in preference
 *     order, random among equal preferences, duplicates dropped.  No MX
 *     records (NOERROR, no data) is the implicit MX: the domain's own
 *     addresses with preference 0.  A lone root exchange ("MX 0 .") is a
 *     null MX: DNS_NULLMX.  A root exchange mixed with real MX records
 *     is dropped and the real ones are used, whatever its preference:
 *     RFC 7505 section 3 forbids the mix, and the root cannot be
 *     connected to anyway, so it is skipped like a host without address.
 *   - NEXTHOP_HOST: the addresses of host, no MX; an IP literal
 *     ("192.0.2.1", "2001:db8::1", "[IPv6:2001:db8::1]") needs no query.
 * For each host both AAAA and A are asked at once; its addresses are
 * interleaved IPv6 first (v6, v4, v6, v4 ... as RFC 8305 suggests), so a
 * broken IPv6 path costs one attempt per host, not all of them.  An
 * address already listed for an earlier host is not repeated.  An MX
 * host whose lookups fail temporarily, or that has no address, is
 * skipped; if no host yields an address the result is DNS_TEMPFAIL when
 * any lookup failed temporarily, else DNS_NOTFOUND.  NXDOMAIN of the
 * domain is DNS_NOTFOUND; SERVFAIL, REFUSED, FORMERR, timeouts,
 * unreachable servers and malformed replies are DNS_TEMPFAIL.  With a
 * single server the why text names its SERVFAIL or REFUSED; with several,
 * c-ares moves on to the next server after such an answer and a failure
 * of them all reads "no DNS server gave an answer".  CNAMEs are
 * followed by c-ares.  At most DNS_MX_MAX MX records (the best ones) and
 * DNS_ADDRS_MAX addresses per host and family are kept from a reply;
 * names longer than DNS_NAME_MAX are dropped.
 *
 * Sandbox.  dns_init() does all file access (/etc/resolv.conf when
 * dns_servers is empty; c-ares reads its 31-byte query-id key from
 * /dev/urandom and closes it; the shuffle seed comes from getrandom) and
 * must run before the chroot and the seccomp filter.  Afterwards
 * dns_resolve() makes only these system calls (strace -f of a chrooted
 * run against Debian 12's c-ares 1.18.1: UDP and TCP, IPv4 and IPv6
 * servers, an unreachable server, SERVFAIL, timeouts):
 *   socket(AF_INET or AF_INET6, SOCK_DGRAM or SOCK_STREAM, 0)
 *	(type without SOCK_NONBLOCK/SOCK_CLOEXEC flags; protocol 0)
 *   fcntl(F_GETFL), fcntl(F_SETFL, O_RDWR|O_NONBLOCK),
 *	fcntl(F_SETFD, FD_CLOEXEC)
 *   connect (UDP: 0; TCP: EINPROGRESS)
 *   sendto (UDP queries, via send), writev (TCP queries)
 *   recvfrom (UDP and TCP replies; EAGAIN and ECONNREFUSED handled)
 *   setsockopt(SOL_TCP, TCP_NODELAY)  (TCP, after a reply with TC set)
 *   poll, close
 *   brk/mmap/munmap through malloc (c-ares and dns.c allocate)
 * No getrandom, no read, no file opens; clock_gettime and gettimeofday
 * are vDSO calls on x86_64.
 */
#ifndef MOAT_DNS_H
#define MOAT_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mail/nexthop.h"
#include "util/conf.h"

#define DNS_TARGETS_MAX	32
#define DNS_NAME_MAX	253	/* longest domain name in text, no final dot */
#define DNS_MX_MAX	32	/* MX records kept from one reply */
#define DNS_ADDRS_MAX	8	/* addresses kept per host and family */

struct dns_target {
	char			 host[256];	/* the MX host, or the host of a [host] route */
	unsigned int		 pref;		/* MX preference; 0 for [host] and implicit MX */
	struct sockaddr_storage	 ss;		/* the address, port set to nh->port */
	socklen_t		 sslen;
};

enum dns_status {
	DNS_OK,		/* n >= 1 targets, in the order to try */
	DNS_TEMPFAIL,	/* SERVFAIL, REFUSED, timeout, or every MX host failed temporarily: try later (4.4.3) */
	DNS_NOTFOUND,	/* NXDOMAIN, or no MX and no address: permanent (5.1.2, "Host or domain name not found") */
	DNS_NULLMX,	/* RFC 7505 "MX 0 .": the domain accepts no mail (556 5.1.10) */
};

struct dns_result {
	enum dns_status		 status;
	size_t			 n;
	struct dns_target	 t[DNS_TARGETS_MAX];
	char			 why[256];	/* for logs and the result text: what was looked
						   up and what came back, e.g. "lookup of MX for
						   example.com: server failure (SERVFAIL)" */
};

/* Short name of a status for logs: "ok", "tempfail", "notfound", "nullmx". */
const char *dns_status_name(enum dns_status st);

/*
 * Before the privilege drop and the sandbox: library init, the resolvers
 * of dns_servers (address or address:port, [ipv6]:port; port 53 when
 * absent) or /etc/resolv.conf, dns_timeout.  0, or -1 with err.
 */
int	dns_init(const struct conf *cfg, char *err, size_t errlen);

/* Resolve nh (MX or HOST kind; a literal address needs no query).  Blocks
 * up to dns_timeout in all. */
void	dns_resolve(const struct nexthop *nh, struct dns_result *res);

void	dns_shutdown(void);

/* ---- Pure helpers (no DNS, no state), exported for the tests. ---- */

/* One MX record; host is lower-case, without a final dot; "" is the root. */
struct dns_mx {
	unsigned int	 pref;
	char		 host[DNS_NAME_MAX + 1];
};

/*
 * A random source: a number uniformly drawn from [0, bound), bound >= 1.
 * Tests pass a fixed one; dns_resolve() uses a generator seeded in
 * dns_init().
 */
typedef uint32_t (*dns_rnd_fn)(void *arg, uint32_t bound);

/*
 * Is this MX set a null MX (RFC 7505)?  True when n >= 1 and every
 * exchange is the root.  A root exchange among real ones is not: see
 * dns_mx_order().
 */
int	dns_mx_is_null(const struct dns_mx *mx, size_t n);

/*
 * Put MX records in the order to try, in place: root exchanges dropped,
 * duplicates of a host dropped (its best preference kept), sorted by
 * preference, equal preferences shuffled with rnd.  Returns the new count.
 */
size_t	dns_mx_order(struct dns_mx *mx, size_t n, dns_rnd_fn rnd, void *arg);

/*
 * Keep the record in a capped set of at most cap records, where the worst
 * preference makes room for a better one once the set is full.  The
 * host is copied lower-cased without a final dot; names longer than
 * DNS_NAME_MAX, or empty other than the root ".", are refused.  Returns 1
 * if kept, 0 if not.
 */
int	dns_mx_add(struct dns_mx *mx, size_t *n, size_t cap, unsigned int pref,
	    const char *host);

/*
 * Is name a domain name we may query: 1..253 characters, labels of
 * 1..63, a final dot allowed?  Letters, digits, '-' and '_' only.
 */
int	dns_name_valid(const char *name);

/*
 * Parse an IP literal next hop ("192.0.2.1", "2001:db8::1", "[192.0.2.1]",
 * "[IPv6:2001:db8::1]") into *ss with port.  0, or -1 when host is not a
 * literal.
 */
int	dns_literal(const char *host, uint16_t port, struct sockaddr_storage *ss,
	    socklen_t *sslen);

/*
 * Append the addresses of one host to res, interleaved IPv6 first, each
 * with port, skipping addresses res already holds, up to
 * DNS_TARGETS_MAX.  v6 holds n6 struct in6_addr, v4 n4 struct in_addr.
 * Returns how many were appended.
 */
size_t	dns_targets_add(struct dns_result *res, const char *host,
	    unsigned int pref, uint16_t port, const void *v6, size_t n6,
	    const void *v4, size_t n4);

/*
 * Keep the MX records of a reply packet into mx (DNS_MX_MAX entries; the
 * best ones when there are more, through dns_mx_add), exchanges that are
 * not host names refused.  Returns 0, or a c-ares ARES_E* code:
 * ARES_ENODATA when nothing usable is there, ARES_EBADRESP when the
 * packet is malformed or every exchange was refused.
 */
int	dns_reply_mx(const unsigned char *abuf, int alen, struct dns_mx *mx,
	    size_t *n);

/*
 * Keep up to DNS_ADDRS_MAX addresses of an A (family AF_INET: struct
 * in_addr) or AAAA (AF_INET6: struct in6_addr) reply into addrs.  0, or
 * ARES_ENODATA, ARES_EBADRESP...
 */
int	dns_reply_addrs(int family, const unsigned char *abuf, int alen,
	    void *addrs, size_t *n);

/*
 * Parse one dns_servers word ("192.0.2.53", "192.0.2.53:5353", "::1",
 * "[::1]:5353") into *ss, port 53 when absent.  0 or -1.
 */
int	dns_server_parse(const char *word, struct sockaddr_storage *ss);

#endif
