/* fuzz-sources: smtpd-session/smtp_cmd.c common/mail/addr.c */
/*
 * fuzz_smtp_cmd.c: one SMTP command line from arbitrary bytes, the way a
 * client controls it entirely.  Beyond "no crash", the parser's promises
 * are checked (a trap here is a finding): the argument lies inside the
 * line, a parsed path stays within the RFC 5321 limits and formats, a
 * good MAIL/RCPT line rebuilt from its parse parses again to the same
 * thing, and every verdict has a reply with a 2xx/5xx code.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc_types.h"
#include "../../smtpd-session/smtp_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A good MAIL or RCPT: its path and parameters survive a round trip. */
static void
fuzz_smtp_cmd_roundtrip(const struct smtp_cmd *c)
{
	char mbox[ADDR_MAILBOX_MAX + 1], line[ADDR_MAILBOX_MAX + 128];
	struct smtp_cmd again;
	int n;

	if (strlen(c->path.local) > ADDR_LOCAL_MAX || strlen(c->path.domain) > ADDR_DOMAIN_MAX)
		__builtin_trap();
	if (c->postmaster) {
		if (c->verb != SMTP_VERB_RCPT || c->path.domain[0] != '\0')
			__builtin_trap();
		snprintf(mbox, sizeof(mbox), "postmaster");
	} else if (addr_format(&c->path, mbox, sizeof(mbox)) != 0)
		__builtin_trap();
	if (c->path.is_null && c->verb != SMTP_VERB_MAIL)
		__builtin_trap();
	n = snprintf(line, sizeof(line), "%s %s:<%s>", c->verb == SMTP_VERB_MAIL ?
	    "MAIL" : "RCPT", c->verb == SMTP_VERB_MAIL ? "FROM" : "TO", mbox);
	if (c->has_size)
		n += snprintf(line + n, sizeof(line) - (size_t)n, " SIZE=%llu",
		    (unsigned long long)c->size);
	if (c->body != SMTP_BODY_NONE)
		n += snprintf(line + n, sizeof(line) - (size_t)n, " BODY=%s",
		    c->body == MOAT_BODY_8BITMIME ? "8BITMIME" : "7BIT");
	if (n < 0 || (size_t)n >= sizeof(line))
		__builtin_trap();
	if (smtp_cmd_parse(line, (size_t)n, &again) != SMTP_CMD_OK ||
	    again.verb != c->verb || again.postmaster != c->postmaster ||
	    again.path.is_null != c->path.is_null ||
	    strcmp(again.path.local, c->path.local) != 0 ||
	    strcmp(again.path.domain, c->path.domain) != 0 ||
	    again.has_size != c->has_size || again.size != c->size ||
	    again.body != c->body)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct smtp_cmd c;
	char reply[64];

	if (smtp_cmd_parse(line, size, &c) != c.err)
		__builtin_trap();
	if (c.arglen > size || c.arg < line || c.arg + c.arglen > line + size)
		__builtin_trap();
	if (c.verb < SMTP_VERB_UNKNOWN || c.verb >= SMTP_VERB_NVERBS)
		__builtin_trap();
	if ((c.verb == SMTP_VERB_UNKNOWN) != (c.err == SMTP_CMD_ERR_UNRECOGNIZED))
		__builtin_trap();
	if (smtp_verb_name(c.verb) == NULL)
		__builtin_trap();
	smtp_cmd_reply(&c, reply, sizeof(reply));
	if (c.err == SMTP_CMD_OK ? reply[0] != '2' : reply[0] != '5')
		__builtin_trap();
	if (c.err == SMTP_CMD_OK && (c.verb == SMTP_VERB_MAIL || c.verb == SMTP_VERB_RCPT))
		fuzz_smtp_cmd_roundtrip(&c);
	if (c.err == SMTP_CMD_OK && (c.verb == SMTP_VERB_EHLO || c.verb == SMTP_VERB_HELO) &&
	    (c.arglen == 0 || c.arglen > MOAT_HELO_MAX || memchr(c.arg, ' ', c.arglen) != NULL))
		__builtin_trap();
	return 0;
}
