/* fuzz-sources: smtpd-session/smtp_cmd.c common/mail/addr.c common/util/xmalloc.c common/util/log.c */
/*
 * fuzz_smtp_cmd.c: one SMTP command line from arbitrary bytes, the way a
 * client controls it entirely.  Beyond "no crash", the parser's promises
 * are checked (a trap here is a finding): the argument lies inside the
 * line, a parsed path stays within the RFC 5321 limits and formats, the
 * DSN parameters decode to printable ASCII within their caps (NOTIFY
 * bits with NEVER alone, ORCPT typed rfc822 or utf-8), a good MAIL/RCPT
 * line rebuilt from its parse (DSN values xtext-encoded again) parses
 * again to the same thing, and every verdict has a reply with a 2xx/5xx
 * code.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc_types.h"
#include "../../smtpd-session/smtp_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Printable ASCII of at most max bytes. */
static int
fuzz_smtp_cmd_printable(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return i <= max;
}

/* The DSN fields of a good MAIL or RCPT. */
static void
fuzz_smtp_cmd_dsn(const struct smtp_cmd *c)
{
	if (c->dsn_ret > MOAT_RET_HDRS || (c->verb != SMTP_VERB_MAIL &&
	    (c->dsn_ret != MOAT_RET_NONE || c->has_envid)))
		__builtin_trap();
	if (c->has_envid && (c->dsn_envid[0] == '\0' ||
	    !fuzz_smtp_cmd_printable(c->dsn_envid, MOAT_ENVID_MAX)))
		__builtin_trap();
	if ((c->dsn_notify & ~0x0fu) != 0 || ((c->dsn_notify & MOAT_NOTIFY_NEVER) != 0 &&
	    c->dsn_notify != MOAT_NOTIFY_NEVER) ||
	    (c->verb != SMTP_VERB_RCPT && (c->dsn_notify != 0 || c->has_orcpt)))
		__builtin_trap();
	if (c->has_orcpt && ((strncmp(c->dsn_orcpt, "rfc822;", 7) != 0 &&
	    strncmp(c->dsn_orcpt, "utf-8;", 6) != 0) ||
	    strchr(c->dsn_orcpt, ';')[1] == '\0' ||
	    !fuzz_smtp_cmd_printable(c->dsn_orcpt, MOAT_ORCPT_MAX)))
		__builtin_trap();
}

/* Append s as xtext (RFC 3461 4). */
static int
fuzz_smtp_cmd_xtext(char *line, size_t sz, int n, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && n > 0 && (size_t)n < sz; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 33 || ch > 126 || ch == '+' || ch == '=')
			n += snprintf(line + n, sz - (size_t)n, "+%02X", ch);
		else
			line[n++] = (char)ch;
	}
	return n;
}

/* A good MAIL or RCPT: its path and parameters survive a round trip. */
static void
fuzz_smtp_cmd_roundtrip(const struct smtp_cmd *c)
{
	static const char *const notify[] = { "NEVER", "SUCCESS", "FAILURE", "DELAY" };
	char mbox[ADDR_MAILBOX_MAX + 1], line[ADDR_MAILBOX_MAX + 2048];
	const char *sep = " NOTIFY=";
	int k;
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
	if (c->dsn_ret != MOAT_RET_NONE)
		n += snprintf(line + n, sizeof(line) - (size_t)n, " RET=%s",
		    c->dsn_ret == MOAT_RET_FULL ? "FULL" : "HDRS");
	if (c->has_envid) {
		n += snprintf(line + n, sizeof(line) - (size_t)n, " ENVID=");
		n = fuzz_smtp_cmd_xtext(line, sizeof(line), n, c->dsn_envid);
	}
	for (k = 0; k < 4; k++)
		if (c->dsn_notify & (1u << k)) {
			n += snprintf(line + n, sizeof(line) - (size_t)n, "%s%s", sep, notify[k]);
			sep = ",";
		}
	if (c->has_orcpt) {
		k = (int)(strchr(c->dsn_orcpt, ';') - c->dsn_orcpt + 1);
		n += snprintf(line + n, sizeof(line) - (size_t)n, " ORCPT=%.*s", k, c->dsn_orcpt);
		n = fuzz_smtp_cmd_xtext(line, sizeof(line), n, c->dsn_orcpt + k);
	}
	if (n < 0 || (size_t)n >= sizeof(line))
		__builtin_trap();
	if (smtp_cmd_parse(line, (size_t)n, &again) != SMTP_CMD_OK ||
	    again.verb != c->verb || again.postmaster != c->postmaster ||
	    again.path.is_null != c->path.is_null ||
	    strcmp(again.path.local, c->path.local) != 0 ||
	    strcmp(again.path.domain, c->path.domain) != 0 ||
	    again.has_size != c->has_size || again.size != c->size ||
	    again.body != c->body || again.dsn_ret != c->dsn_ret ||
	    again.has_envid != c->has_envid || strcmp(again.dsn_envid, c->dsn_envid) != 0 ||
	    again.dsn_notify != c->dsn_notify || again.has_orcpt != c->has_orcpt ||
	    strcmp(again.dsn_orcpt, c->dsn_orcpt) != 0)
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
	if (c.err == SMTP_CMD_OK && (c.verb == SMTP_VERB_MAIL || c.verb == SMTP_VERB_RCPT)) {
		fuzz_smtp_cmd_dsn(&c);
		fuzz_smtp_cmd_roundtrip(&c);
	}
	if (c.err == SMTP_CMD_OK && (c.verb == SMTP_VERB_EHLO || c.verb == SMTP_VERB_HELO) &&
	    (c.arglen == 0 || c.arglen > MOAT_HELO_MAX || memchr(c.arg, ' ', c.arglen) != NULL))
		__builtin_trap();
	return 0;
}
