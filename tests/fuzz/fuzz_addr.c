/* fuzz-sources: common/mail/addr.c common/mail/policy.c common/util/conf.c common/mail/table.c common/mail/nexthop.c common/util/netaddr.c common/util/buf.c common/util/lines.c common/util/log.c common/util/xmalloc.c */
/*
 * fuzz_addr.c: RFC 5321 paths and mailboxes from arbitrary bytes.
 * Checks the promises callers rely on: limits, the consumed count, that a
 * parsed address formats and parses back to itself, and that a maildir
 * name is never a path.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"
#include "mail/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Check one successfully parsed address. */
static void
fuzz_addr_check(const struct mailaddr *a)
{
	char out[ADDR_MAILBOX_MAX + 1], name[ADDR_LOCAL_MAX + 1];
	struct mailaddr b;

	if (strlen(a->local) > ADDR_LOCAL_MAX || strlen(a->domain) > ADDR_DOMAIN_MAX)
		abort();
	if (addr_format(a, out, sizeof(out)) != 0)
		abort();
	if (a->is_null) {
		if (out[0] != '\0')
			abort();
		return;
	}
	if (addr_parse_mailbox(out, strlen(out), &b) != ADDR_OK ||
	    strcmp(a->local, b.local) != 0 || strcmp(a->domain, b.domain) != 0)
		abort();
	if (policy_maildir_name(a, name, sizeof(name)) == 0 &&
	    (name[0] == '.' || name[0] == '\0' || strchr(name, '/') != NULL))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct mailaddr a;
	size_t consumed;
	int allow_null;

	for (allow_null = 0; allow_null <= 1; allow_null++) {
		consumed = 0;
		if (addr_parse_path(s, size, allow_null, &a, &consumed) != ADDR_OK)
			continue;
		if (consumed < 2 || consumed > size || consumed > ADDR_PATH_MAX ||
		    s[0] != '<' || s[consumed - 1] != '>' || (a.is_null && !allow_null))
			abort();
		fuzz_addr_check(&a);
	}
	if (addr_parse_mailbox(s, size, &a) == ADDR_OK) {
		if (size > ADDR_MAILBOX_MAX || a.is_null)
			abort();
		fuzz_addr_check(&a);
	}
	(void)addr_domain_valid(s, size);
	return 0;
}
