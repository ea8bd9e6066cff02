/*
 * smtp_client.h: the relay transport, an SMTP (RFC 5321) and LMTP
 * (RFC 2033) client that routes like Postfix's smtp/lmtp.
 *
 * A job names its next hop in canonical form (mail/nexthop.h):
 * "smtp:example.com:25" (MX lookup), "smtp:[mail.example.net]:25" (the
 * host's addresses, no MX), "smtp:[192.0.2.1]:25", "lmtp:[::1]:24".  The
 * client resolves it (dns.h), drops the addresses moat listens on itself
 * (selfaddr.h) and tries the rest in order until one server takes the
 * conversation as far as MAIL FROM: a refused or timed-out connection, a
 * greeting or EHLO that is not 2xx, or a server that cannot meet the TLS
 * policy sends it on to the next.  From MAIL FROM on, that server's
 * replies are the recipients' results.
 *
 * The conversation: greeting, EHLO (LHLO for LMTP; HELO when EHLO is
 * refused with 5xx), STARTTLS as the policy asks (tls_client.h), MAIL
 * FROM with SIZE=, BODY=8BITMIME and the DSN parameters RET=/ENVID= where
 * the server offers them, RCPT TO (with NOTIFY=/ORCPT=) for each
 * recipient, DATA with the body streamed chunk by chunk from the
 * queue-manager; with PIPELINING the envelope and DATA go in one write
 * (RFC 2920).  LMTP answers the end of data once per accepted recipient.
 *
 * A connection whose transaction ended cleanly is kept for the next job
 * to the same next hop (up to relay_connection_reuse_limit messages, and
 * relay_connection_idle_time between jobs); the agent reports it to the
 * queue-manager in IPC_D2Q_DONE.
 */
#ifndef MOAT_SMTP_CLIENT_H
#define MOAT_SMTP_CLIENT_H

#include "job.h"

struct nexthop;
struct dns_result;
struct selfaddr;
struct tls_client;

/* How next hops are resolved: dns_resolve() in the agent. */
typedef void (*smtp_client_resolve_fn)(const struct nexthop *nh,
    struct dns_result *res);

struct smtp_client_opts {
	const char		*helo_name;		/* myhostname */
	int			 connect_timeout_ms;	/* relay_connect_timeout */
	int			 timeout_ms;		/* relay_timeout */
	unsigned int		 reuse_limit;		/* relay_connection_reuse_limit */
	int			 idle_ms;		/* relay_connection_idle_time */
	smtp_client_resolve_fn	 resolve;		/* NULL: IP literals only */
	const struct selfaddr	*self;			/* NULL: no loop check */
	struct tls_client	*tls;			/* NULL: never STARTTLS */
};

struct smtp_client;

/* A client with no connection yet; o is copied. */
struct smtp_client *smtp_client_new(const struct smtp_client_opts *o);
/* QUIT and close a kept connection, free sc. */
void	smtp_client_free(struct smtp_client *sc);

/*
 * Deliver job j.  Returns 0 when every recipient has a result (whatever
 * it is), -1 when the channel to the queue-manager failed (j->err).
 */
int	smtp_client_deliver(struct smtp_client *sc, struct job *j);

/* The next hop of the idle connection kept after the last job, or NULL. */
const char *smtp_client_cached(const struct smtp_client *sc);
/* Its descriptor (to notice the server closing it), or -1. */
int	smtp_client_cached_fd(const struct smtp_client *sc);
/* Milliseconds until its idle time is over (0: over now), -1 if none. */
int	smtp_client_idle_left(const struct smtp_client *sc);
/* Close the kept connection (QUIT unless the server has gone). */
void	smtp_client_uncache(struct smtp_client *sc, const char *why);

#endif
