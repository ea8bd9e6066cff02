/*
 * nexthop.h: where a message goes next, and how that is written.
 *
 * Two syntaxes.  A transport is what an operator writes (a transport_maps
 * value or relay_host); a canonical next hop is what the queue-manager
 * stores and sends to a delivery agent in IPC_Q2D_JOB, always with a
 * port, and what nexthop_parse() checks strictly since the agent must
 * treat it as untrusted input.  See docs/routing.md.
 */
#ifndef MOAT_NEXTHOP_H
#define MOAT_NEXTHOP_H

#include <stddef.h>
#include <stdint.h>

struct conf;

#define NEXTHOP_MAX	300	/* a canonical text with its NUL (the longest
			   is 268 bytes); = MOAT_NEXTHOP_MAX */

enum nexthop_proto { NEXTHOP_SMTP, NEXTHOP_LMTP };

enum nexthop_kind {
	NEXTHOP_MX,	/* MX lookup of host */
	NEXTHOP_HOST,	/* [host]: A/AAAA of host, or an IP literal; no MX */
	NEXTHOP_UNIX	/* lmtp:unix:/path */
};

struct nexthop {
	enum nexthop_proto proto;
	enum nexthop_kind kind;
	char		host[256];	/* domain name or IP address text, no
					   brackets; "" for "mx" before
					   completion */
	uint16_t	port;		/* 0 = not given */
	char		path[108];	/* NEXTHOP_UNIX */
};

/*
 * A transport (a transport_maps value, or relay_host): "smtp:[host]:port",
 * "smtp:[host]", "smtp:host", "smtp:host:port", "lmtp:[host]:port",
 * "lmtp:[host]", "lmtp:unix:/path", "mx", and the bare "[host]:port" /
 * "[host]" / "host" forms for relay_host (= smtp).  IPv6 literals only in
 * brackets ("[2001:db8::1]:25").  Host names are checked as domain names;
 * ports 1..65535.  Returns 0, or -1 with a clear message in err.
 */
int	nexthop_parse_transport(const char *s, struct nexthop *nh, char *err,
	    size_t errlen);

/*
 * Canonical text, as stored in the queue and sent in IPC_Q2D_JOB:
 * "smtp:[192.0.2.1]:25", "smtp:[mail.example.net]:25" (no MX),
 * "smtp:example.com:25" (MX lookup), "lmtp:[::1]:24", "lmtp:unix:/run/lmtp".
 * Port must be set (not 0) except for UNIX.  -1 if it does not fit.
 */
int	nexthop_format(const struct nexthop *nh, char *dst, size_t dstsz);

/* Strict parse of a canonical next hop (what the delivery agent
 * receives: untrusted input).  0 or -1. */
int	nexthop_parse(const char *s, struct nexthop *nh);

/*
 * The route of a recipient domain that is not local: transport_maps
 * (conf_table), else relay_host, else MX of the domain itself; a
 * transport "mx" means MX of the recipient's domain; a missing port
 * becomes relay_port (smtp) or 24 (lmtp).  Writes the canonical next hop
 * into dst.  Returns 0, or -1 with err.
 */
int	nexthop_route(const struct conf *cfg, const char *domain, char *dst,
	    size_t dstsz, char *err, size_t errlen);

/* The domain a next hop is for (host for MX/HOST kinds, "" for UNIX):
 * the key for per-destination TLS policy. */
const char *nexthop_domain(const struct nexthop *nh);

#endif
