/*
 * policy.h: who may send mail to whom through moat, and where it goes.
 *
 * The smtpd-session asks at RCPT time; the queue-manager asks again for
 * every recipient of IPC_S2Q_BEGIN, with the client address it got from
 * the listener, so that a subverted session still cannot relay.
 *
 * Rules, in order:
 *  1. domain in local_domains: accepted if the local part is postmaster
 *     (any case) or local_users is empty or lists it, and the local part is
 *     usable as a maildir name; else POLICY_UNKNOWN_USER (550 5.1.1).
 *  2. domain in relay_domains: accepted from anyone (POLICY_RELAY).
 *  3. client in relay_networks: accepted for any domain (POLICY_RELAY).
 *  4. otherwise POLICY_DENY_RELAY (554 5.7.1 relay access denied).
 * Domains match exactly, case-insensitively (no subdomain wildcards yet).
 */
#ifndef MOAT_POLICY_H
#define MOAT_POLICY_H

#include "mail/addr.h"
#include "util/conf.h"

enum policy_verdict {
	POLICY_LOCAL,		/* deliver to a maildir */
	POLICY_RELAY,		/* relay to relay_host */
	POLICY_UNKNOWN_USER,
	POLICY_DENY_RELAY,
};

/* client_addr is the numeric address of the SMTP client. */
enum policy_verdict policy_check_rcpt(const struct conf *cfg,
	    const char *client_addr, const struct mailaddr *rcpt);

/*
 * The maildir folder name for a local recipient: the local part,
 * lower-cased, with quotes removed; refused (-1) if it would be empty,
 * start with '.', or contain '/' or a byte outside printable ASCII.
 */
int	policy_maildir_name(const struct mailaddr *rcpt, char *dst, size_t dstsz);

#endif
