/*
 * policy.c: the relay decision for one recipient (rules in policy.h).
 *
 * Both the smtpd-session and the queue-manager call this with the same
 * configuration, so it must depend on nothing but its arguments.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "mail/policy.h"
#include "util/conf.h"
#include "util/netaddr.h"

/* Longest maildir folder name: one local part, unquoted. */
#define POLICY_MAILDIR_NAME_MAX	ADDR_LOCAL_MAX

/* Remove the quotes and quoted-pair backslashes of a local part. */
static int
policy_unquote(const char *local, char *dst, size_t dstsz)
{
	size_t i, o = 0, n = strlen(local);

	if (n >= 2 && local[0] == '"' && local[n - 1] == '"') {
		for (i = 1; i < n - 1; i++) {
			if (local[i] == '\\' && i + 1 < n - 1)
				i++;
			if (o + 1 >= dstsz)
				return -1;
			dst[o++] = local[i];
		}
	} else {
		if (n >= dstsz)
			return -1;
		memcpy(dst, local, n);
		o = n;
	}
	dst[o] = '\0';
	return 0;
}

int
policy_maildir_name(const struct mailaddr *rcpt, char *dst, size_t dstsz)
{
	char name[ADDR_LOCAL_MAX + 1];
	size_t i, n;

	if (dstsz == 0)
		return -1;
	dst[0] = '\0';
	if (rcpt->is_null || policy_unquote(rcpt->local, name, sizeof(name)) == -1)
		return -1;
	n = strlen(name);
	if (n == 0 || n > POLICY_MAILDIR_NAME_MAX || n >= dstsz || name[0] == '.')
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		/* Printable ASCII without the space: a folder name an
		 * operator can type and a shell script cannot split. */
		if (c <= 0x20 || c >= 0x7f || c == '/')
			return -1;
		if (c >= 'A' && c <= 'Z')
			name[i] = (char)(c - 'A' + 'a');
	}
	memcpy(dst, name, n + 1);
	return 0;
}

/* Rule 1: may this local part receive mail in a local domain? */
static enum policy_verdict
policy_local(const struct conf *cfg, const struct mailaddr *rcpt)
{
	const struct conf_words *users = conf_words(cfg, CONF_LOCAL_USERS);
	char name[ADDR_LOCAL_MAX + 1];

	if (policy_maildir_name(rcpt, name, sizeof(name)) == -1)
		return POLICY_UNKNOWN_USER;
	if (strcasecmp(name, "postmaster") == 0 || users->n == 0 ||
	    conf_words_has(users, name))
		return POLICY_LOCAL;
	return POLICY_UNKNOWN_USER;
}

enum policy_verdict
policy_check_rcpt(const struct conf *cfg, const char *client_addr,
    const struct mailaddr *rcpt)
{
	/* The null path is never a recipient; refuse rather than relay it. */
	if (rcpt->is_null || rcpt->domain[0] == '\0')
		return POLICY_UNKNOWN_USER;
	if (conf_words_has(conf_words(cfg, CONF_LOCAL_DOMAINS), rcpt->domain))
		return policy_local(cfg, rcpt);
	if (conf_words_has(conf_words(cfg, CONF_RELAY_DOMAINS), rcpt->domain))
		return POLICY_RELAY;
	if (client_addr != NULL &&
	    netlist_match_str(conf_nets(cfg, CONF_RELAY_NETWORKS), client_addr))
		return POLICY_RELAY;
	return POLICY_DENY_RELAY;
}
