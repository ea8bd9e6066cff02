/*
 * test_policy.c: the relay decision and maildir names, including the
 * hostile local parts a client could try to turn into paths.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "mail/addr.h"
#include "mail/policy.h"
#include "util/conf.h"
#include "tests/unit/t.h"

static const char conf_text[] =
    "local_domains = example.com, localhost\n"
    "local_users = alice Bob\n"
    "relay_domains = relay.example\n"
    "relay_networks = 192.0.2.0/24 2001:db8::/32\n";

static const char conf_open_users[] =
    "local_domains = example.com\n"
    "relay_networks =\n";

static const struct {
	const char		*label;
	const char		*client;
	const char		*rcpt;	/* mailbox */
	enum policy_verdict	 want;
} rcpts[] = {
	{ "local user", "203.0.113.1", "alice@example.com", POLICY_LOCAL },
	{ "local user any case", "203.0.113.1", "ALICE@Example.COM", POLICY_LOCAL },
	{ "local user from list in caps", "203.0.113.1", "bob@example.com", POLICY_LOCAL },
	{ "local user quoted", "203.0.113.1", "\"alice\"@example.com", POLICY_LOCAL },
	{ "second local domain", "203.0.113.1", "alice@localhost", POLICY_LOCAL },
	{ "postmaster", "203.0.113.1", "postmaster@example.com", POLICY_LOCAL },
	{ "postmaster any case", "203.0.113.1", "PostMaster@example.com", POLICY_LOCAL },
	{ "unknown user", "203.0.113.1", "mallory@example.com", POLICY_UNKNOWN_USER },
	{ "unknown user from relay network", "192.0.2.5", "mallory@example.com", POLICY_UNKNOWN_USER },
	{ "user prefix is not the user", "203.0.113.1", "alic@example.com", POLICY_UNKNOWN_USER },
	{ "subdomain of local is not local", "203.0.113.1", "alice@sub.example.com", POLICY_DENY_RELAY },
	{ "relay domain from anyone", "203.0.113.1", "x@relay.example", POLICY_RELAY },
	{ "relay domain any case", "203.0.113.1", "x@RELAY.example", POLICY_RELAY },
	{ "subdomain of relay domain", "203.0.113.1", "x@a.relay.example", POLICY_DENY_RELAY },
	{ "relay network v4", "192.0.2.200", "x@elsewhere.example", POLICY_RELAY },
	{ "relay network v6", "2001:db8::25", "x@elsewhere.example", POLICY_RELAY },
	{ "relay network mapped", "::ffff:192.0.2.9", "x@elsewhere.example", POLICY_RELAY },
	{ "outsider", "203.0.113.1", "x@elsewhere.example", POLICY_DENY_RELAY },
	{ "outsider v6", "2001:db9::1", "x@elsewhere.example", POLICY_DENY_RELAY },
	{ "outsider to literal", "203.0.113.1", "x@[192.0.2.1]", POLICY_DENY_RELAY },
	{ "relay network to literal", "192.0.2.1", "x@[203.0.113.5]", POLICY_RELAY },
	{ "garbage client", "not-an-ip", "x@elsewhere.example", POLICY_DENY_RELAY },
	{ "client with port", "192.0.2.1:25", "x@elsewhere.example", POLICY_DENY_RELAY },
	{ "local dot-leading quoted", "203.0.113.1", "\".alice\"@example.com", POLICY_UNKNOWN_USER },
	{ "local slash quoted", "192.0.2.1", "\"a/b\"@example.com", POLICY_UNKNOWN_USER },
};

static void
test_rcpts(const struct conf *c)
{
	size_t i;

	for (i = 0; i < sizeof(rcpts) / sizeof(rcpts[0]); i++) {
		struct mailaddr a;
		enum policy_verdict v;

		if (addr_parse_mailbox(rcpts[i].rcpt, strlen(rcpts[i].rcpt), &a) != ADDR_OK) {
			T_OK(0, "rcpt %s: mailbox '%s' parses", rcpts[i].label, rcpts[i].rcpt);
			continue;
		}
		v = policy_check_rcpt(c, rcpts[i].client, &a);
		T_OK(v == rcpts[i].want, "rcpt %s: verdict %d (want %d)", rcpts[i].label, v, rcpts[i].want);
	}
}

/* Null or domain-less recipients never pass, whatever the client. */
static void
test_odd_rcpts(const struct conf *c)
{
	struct mailaddr a;

	memset(&a, 0, sizeof(a));
	a.is_null = 1;
	T_OK(policy_check_rcpt(c, "192.0.2.1", &a) != POLICY_RELAY &&
	    policy_check_rcpt(c, "192.0.2.1", &a) != POLICY_LOCAL, "null recipient refused");
	a.is_null = 0;
	snprintf(a.local, sizeof(a.local), "alice");
	T_OK(policy_check_rcpt(c, "192.0.2.1", &a) != POLICY_RELAY, "recipient without domain refused");
	snprintf(a.domain, sizeof(a.domain), "elsewhere.example");
	T_OK(policy_check_rcpt(c, NULL, &a) == POLICY_DENY_RELAY, "no client address: no relay");
}

static void
test_open_users(void)
{
	struct conf *c = NULL;
	struct mailaddr a;

	T_OK(conf_parse("open", conf_open_users, sizeof(conf_open_users) - 1, &c, stderr) == 0,
	    "open-users config parses");
	if (c == NULL)
		return;
	addr_parse_mailbox("anyone@example.com", 18, &a);
	T_OK(policy_check_rcpt(c, "203.0.113.1", &a) == POLICY_LOCAL, "empty local_users accepts any");
	addr_parse_mailbox("\"../etc\"@example.com", 20, &a);
	T_OK(policy_check_rcpt(c, "203.0.113.1", &a) == POLICY_UNKNOWN_USER,
	    "empty local_users still refuses unusable names");
	addr_parse_mailbox("x@elsewhere.example", 19, &a);
	T_OK(policy_check_rcpt(c, "127.0.0.1", &a) == POLICY_DENY_RELAY,
	    "empty relay_networks: not even loopback relays");
	conf_free(c);
}

static const struct {
	const char	*label;
	const char	*local;		/* as stored in struct mailaddr */
	const char	*name;		/* NULL: refused */
} names[] = {
	{ "plain", "alice", "alice" },
	{ "lower-cased", "Alice.Smith", "alice.smith" },
	{ "quoted", "\"Bob\"", "bob" },
	{ "quoted pair", "\"a\\\"b\"", "a\"b" },
	{ "specials", "a+tag", "a+tag" },
	{ "inner dots", "a..b", "a..b" },
	{ "dot-dot slash", "../x", NULL },
	{ "quoted dot-dot slash", "\"../x\"", NULL },
	{ "leading dot", ".x", NULL },
	{ "quoted leading dot", "\".x\"", NULL },
	{ "dot", ".", NULL },
	{ "dot-dot", "..", NULL },
	{ "slash", "a/b", NULL },
	{ "quoted slash", "\"a/b\"", NULL },
	{ "escaped slash", "\"a\\/b\"", NULL },
	{ "empty quoted", "\"\"", NULL },
	{ "empty", "", NULL },
	{ "space", "\"a b\"", NULL },
	{ "tab", "\"a\tb\"", NULL },
	{ "newline", "a\nb", NULL },
	{ "8-bit", "j\xc3\xb6rg", NULL },
	{ "DEL", "a\x7f", NULL },
};

static void
test_names(void)
{
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct mailaddr a;
		char out[ADDR_LOCAL_MAX + 1];
		int r;

		memset(&a, 0, sizeof(a));
		snprintf(a.local, sizeof(a.local), "%s", names[i].local);
		snprintf(a.domain, sizeof(a.domain), "example.com");
		r = policy_maildir_name(&a, out, sizeof(out));
		if (names[i].name == NULL)
			T_OK(r == -1, "maildir %s refused", names[i].label);
		else
			T_OK(r == 0 && strcmp(out, names[i].name) == 0, "maildir %s is '%s'",
			    names[i].label, r == 0 ? out : "(refused)");
	}
}

static void
test_name_sizes(void)
{
	struct mailaddr a;
	char out[ADDR_LOCAL_MAX + 1], small[4];

	memset(&a, 0, sizeof(a));
	memset(a.local, 'x', 64);
	a.local[64] = '\0';
	T_OK(policy_maildir_name(&a, out, sizeof(out)) == 0 && strlen(out) == 64, "64-byte name accepted");
	T_OK(policy_maildir_name(&a, small, sizeof(small)) == -1, "name larger than dst refused");
	T_OK(policy_maildir_name(&a, small, 0) == -1, "zero-size dst refused");
	snprintf(a.local, sizeof(a.local), "abc");
	T_OK(policy_maildir_name(&a, small, sizeof(small)) == 0 && strcmp(small, "abc") == 0,
	    "exact fit accepted");
	a.is_null = 1;
	T_OK(policy_maildir_name(&a, out, sizeof(out)) == -1, "null path has no maildir");
}

int
main(void)
{
	struct conf *c = NULL;

	T_OK(conf_parse("policy", conf_text, sizeof(conf_text) - 1, &c, stderr) == 0, "config parses");
	if (c != NULL) {
		test_rcpts(c);
		test_odd_rcpts(c);
		conf_free(c);
	}
	test_open_users();
	test_names();
	test_name_sizes();
	return t_done();
}
