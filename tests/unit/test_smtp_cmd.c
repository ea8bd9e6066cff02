/*
 * test_smtp_cmd.c: the SMTP command parser (smtpd-session/smtp_cmd.c).
 *
 * One table of command lines, each with the verb and verdict expected
 * and, for good MAIL/RCPT lines, the parsed path and parameters; then
 * the reply text of every error; then lines built at run time (lengths
 * at and past the limits).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc_types.h"
#include "smtpd-session/smtp_cmd.h"
#include "tests/unit/t.h"

/* Expected BODY: compared as cmd.body + 1. */
#define B_NONE	0
#define B_7BIT	(MOAT_BODY_7BIT + 1)
#define B_8BIT	(MOAT_BODY_8BITMIME + 1)

struct ccase {
	const char		*label;
	const char		*line;
	size_t			 len;
	enum smtp_verb		 verb;
	enum smtp_cmd_err	 err;
	const char		*arg;		/* checked when set */
	const char		*local;		/* path, checked when set */
	const char		*domain;
	int			 is_null;
	int			 postmaster;
	int			 has_size;
	uint64_t		 size;
	int			 body;		/* B_* */
	/* DSN (RFC 3461), checked on good MAIL/RCPT lines. */
	uint32_t		 ret;		/* MOAT_RET_* */
	const char		*envid;		/* decoded; NULL: none */
	uint32_t		 notify;	/* MOAT_NOTIFY_* bits */
	const char		*orcpt;		/* decoded "type;addr"; NULL: none */
};

#define L(x)	.line = x, .len = sizeof(x) - 1

#define OK_MAIL(lbl, ln, loc, dom) \
	{ .label = lbl, L(ln), .verb = SMTP_VERB_MAIL, .err = SMTP_CMD_OK, \
	  .local = loc, .domain = dom }
#define OK_RCPT(lbl, ln, loc, dom) \
	{ .label = lbl, L(ln), .verb = SMTP_VERB_RCPT, .err = SMTP_CMD_OK, \
	  .local = loc, .domain = dom }
#define CMD(lbl, ln, v, e) \
	{ .label = lbl, L(ln), .verb = v, .err = e }

static const struct ccase cases[] = {
	/* HELO / EHLO */
	{ .label = "EHLO", L("EHLO mx.example.com"), .verb = SMTP_VERB_EHLO,
	  .arg = "mx.example.com" },
	{ .label = "ehlo lower case", L("ehlo mx.example.com"), .verb = SMTP_VERB_EHLO,
	  .arg = "mx.example.com" },
	{ .label = "EhLo mixed case literal", L("EhLo [192.0.2.1]"), .verb = SMTP_VERB_EHLO,
	  .arg = "[192.0.2.1]" },
	{ .label = "HELO", L("HELO client"), .verb = SMTP_VERB_HELO, .arg = "client" },
	{ .label = "EHLO trailing spaces", L("EHLO x.example   "), .verb = SMTP_VERB_EHLO,
	  .arg = "x.example" },
	CMD("EHLO without name", "EHLO", SMTP_VERB_EHLO, SMTP_CMD_ERR_SYNTAX),
	CMD("EHLO space only", "EHLO ", SMTP_VERB_EHLO, SMTP_CMD_ERR_SYNTAX),
	CMD("HELO without name", "HELO", SMTP_VERB_HELO, SMTP_CMD_ERR_SYNTAX),
	CMD("EHLO two words", "EHLO a b", SMTP_VERB_EHLO, SMTP_CMD_ERR_SYNTAX),
	CMD("EHLO two spaces", "EHLO  a", SMTP_VERB_EHLO, SMTP_CMD_ERR_SYNTAX),
	CMD("HELO 8-bit name", "HELO \xc3\xa9x", SMTP_VERB_HELO, SMTP_CMD_ERR_SYNTAX),
	CMD("EHLO control byte", "EHLO a\x01", SMTP_VERB_EHLO, SMTP_CMD_ERR_CONTROL),
	CMD("EHLO NUL", "EHLO a\0b", SMTP_VERB_EHLO, SMTP_CMD_ERR_CONTROL),
	CMD("EHLO tab", "EHLO\ta", SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_UNRECOGNIZED),

	/* MAIL */
	OK_MAIL("MAIL", "MAIL FROM:<a@b.example>", "a", "b.example"),
	OK_MAIL("mail from: lower case", "mail from:<a@b.example>", "a", "b.example"),
	OK_MAIL("MAIL domain lower-cased", "MAIL FROM:<Ab@B.EXAMPLE>", "Ab", "b.example"),
	OK_MAIL("MAIL one space after colon", "MAIL FROM: <a@b.example>", "a", "b.example"),
	OK_MAIL("MAIL trailing spaces", "MAIL FROM:<a@b.example>  ", "a", "b.example"),
	OK_MAIL("MAIL quoted local part", "MAIL FROM:<\"a b\"@b.example>", "\"a b\"", "b.example"),
	OK_MAIL("MAIL source route ignored", "MAIL FROM:<@r.example:a@b.example>", "a", "b.example"),
	OK_MAIL("MAIL address literal", "MAIL FROM:<a@[192.0.2.1]>", "a", "[192.0.2.1]"),
	{ .label = "MAIL null sender", L("MAIL FROM:<>"), .verb = SMTP_VERB_MAIL,
	  .local = "", .domain = "", .is_null = 1 },
	{ .label = "MAIL null sender with space", L("MAIL FROM: <>"), .verb = SMTP_VERB_MAIL,
	  .local = "", .domain = "", .is_null = 1 },
	CMD("MAIL no path", "MAIL FROM:", SMTP_VERB_MAIL, SMTP_CMD_ERR_SYNTAX),
	CMD("MAIL no argument", "MAIL", SMTP_VERB_MAIL, SMTP_CMD_ERR_SYNTAX),
	CMD("MAIL TO:", "MAIL TO:<a@b.example>", SMTP_VERB_MAIL, SMTP_CMD_ERR_SYNTAX),
	CMD("MAIL FROM without colon", "MAIL FROM <a@b.example>", SMTP_VERB_MAIL, SMTP_CMD_ERR_SYNTAX),
	CMD("MAIL two spaces before FROM", "MAIL  FROM:<a@b.example>", SMTP_VERB_MAIL, SMTP_CMD_ERR_SYNTAX),
	CMD("MAIL two spaces after colon", "MAIL FROM:  <a@b.example>", SMTP_VERB_MAIL, SMTP_CMD_ERR_SENDER),
	CMD("MAIL no brackets", "MAIL FROM:a@b.example", SMTP_VERB_MAIL, SMTP_CMD_ERR_SENDER),
	CMD("MAIL unclosed bracket", "MAIL FROM:<a@b.example", SMTP_VERB_MAIL, SMTP_CMD_ERR_SENDER),
	CMD("MAIL garbage after path", "MAIL FROM:<a@b.example>x", SMTP_VERB_MAIL, SMTP_CMD_ERR_SENDER),
	CMD("MAIL no domain", "MAIL FROM:<a>", SMTP_VERB_MAIL, SMTP_CMD_ERR_SENDER),
	CMD("MAIL empty local part", "MAIL FROM:<@b.example>", SMTP_VERB_MAIL, SMTP_CMD_ERR_SENDER),
	CMD("MAIL double at", "MAIL FROM:<a@@b.example>", SMTP_VERB_MAIL, SMTP_CMD_ERR_SENDER),
	CMD("MAIL 8-bit local part", "MAIL FROM:<\xc3\xa9@b.example>", SMTP_VERB_MAIL, SMTP_CMD_ERR_SENDER),
	CMD("MAIL NUL in path", "MAIL FROM:<a\0@b.example>", SMTP_VERB_MAIL, SMTP_CMD_ERR_CONTROL),
	CMD("MAIL NUL after path", "MAIL FROM:<a@b.example>\0", SMTP_VERB_MAIL, SMTP_CMD_ERR_CONTROL),
	CMD("MAIL DEL in path", "MAIL FROM:<a\x7f@b.example>", SMTP_VERB_MAIL, SMTP_CMD_ERR_CONTROL),
	CMD("MAIL ESC", "MAIL FROM:<a@b.example> \x1b[2J", SMTP_VERB_MAIL, SMTP_CMD_ERR_CONTROL),

	/* MAIL parameters */
	{ .label = "SIZE", L("MAIL FROM:<a@b.example> SIZE=1000"), .verb = SMTP_VERB_MAIL,
	  .local = "a", .domain = "b.example", .has_size = 1, .size = 1000 },
	{ .label = "size lower case zero", L("MAIL FROM:<a@b.example> size=0"), .verb = SMTP_VERB_MAIL,
	  .local = "a", .domain = "b.example", .has_size = 1, .size = 0 },
	{ .label = "SIZE max u64", L("MAIL FROM:<a@b.example> SIZE=18446744073709551615"),
	  .verb = SMTP_VERB_MAIL, .local = "a", .domain = "b.example", .has_size = 1,
	  .size = UINT64_MAX },
	{ .label = "SIZE after space-tolerant path", L("MAIL FROM: <a@b.example> SIZE=7"),
	  .verb = SMTP_VERB_MAIL, .local = "a", .domain = "b.example", .has_size = 1, .size = 7 },
	{ .label = "SIZE two spaces before", L("MAIL FROM:<a@b.example>  SIZE=7 "),
	  .verb = SMTP_VERB_MAIL, .local = "a", .domain = "b.example", .has_size = 1, .size = 7 },
	{ .label = "null sender SIZE", L("MAIL FROM:<> SIZE=7"), .verb = SMTP_VERB_MAIL,
	  .local = "", .domain = "", .is_null = 1, .has_size = 1, .size = 7 },
	CMD("SIZE overflow by one", "MAIL FROM:<a@b.example> SIZE=18446744073709551616",
	    SMTP_VERB_MAIL, SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("SIZE overflow 20 nines", "MAIL FROM:<a@b.example> SIZE=99999999999999999999",
	    SMTP_VERB_MAIL, SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("SIZE 21 digits", "MAIL FROM:<a@b.example> SIZE=000000000000000000001",
	    SMTP_VERB_MAIL, SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("SIZE empty", "MAIL FROM:<a@b.example> SIZE=", SMTP_VERB_MAIL, SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("SIZE no value", "MAIL FROM:<a@b.example> SIZE", SMTP_VERB_MAIL, SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("SIZE not digits", "MAIL FROM:<a@b.example> SIZE=12a", SMTP_VERB_MAIL, SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("SIZE negative", "MAIL FROM:<a@b.example> SIZE=-1", SMTP_VERB_MAIL, SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("SIZE plus sign", "MAIL FROM:<a@b.example> SIZE=+1", SMTP_VERB_MAIL, SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("SIZE twice", "MAIL FROM:<a@b.example> SIZE=1 SIZE=2", SMTP_VERB_MAIL, SMTP_CMD_ERR_PARAM_DUP),
	CMD("SIZE twice mixed case", "MAIL FROM:<a@b.example> SIZE=1 size=1", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_DUP),
	{ .label = "BODY=8BITMIME", L("MAIL FROM:<a@b.example> BODY=8BITMIME"),
	  .verb = SMTP_VERB_MAIL, .local = "a", .domain = "b.example", .body = B_8BIT },
	{ .label = "body=7bit", L("MAIL FROM:<a@b.example> body=7bit"),
	  .verb = SMTP_VERB_MAIL, .local = "a", .domain = "b.example", .body = B_7BIT },
	{ .label = "BODY and SIZE", L("MAIL FROM:<a@b.example> BODY=8bitmime SIZE=5"),
	  .verb = SMTP_VERB_MAIL, .local = "a", .domain = "b.example", .body = B_8BIT,
	  .has_size = 1, .size = 5 },
	CMD("BODY=BINARYMIME", "MAIL FROM:<a@b.example> BODY=BINARYMIME", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_UNSUPPORTED),
	CMD("BODY unknown value", "MAIL FROM:<a@b.example> BODY=9BIT", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("BODY no value", "MAIL FROM:<a@b.example> BODY", SMTP_VERB_MAIL, SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("BODY twice", "MAIL FROM:<a@b.example> BODY=7BIT BODY=7BIT", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_DUP),
	CMD("SMTPUTF8 unsupported", "MAIL FROM:<a@b.example> SMTPUTF8", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_UNSUPPORTED),
	/* DSN on MAIL: RET and ENVID (RFC 3461 4.3, 4.4). */
	{ .label = "RET=FULL", L("MAIL FROM:<a@b.example> RET=FULL"), .verb = SMTP_VERB_MAIL,
	  .local = "a", .domain = "b.example", .ret = MOAT_RET_FULL },
	{ .label = "ret=hdrs lower case", L("MAIL FROM:<a@b.example> ret=hdrs"),
	  .verb = SMTP_VERB_MAIL, .local = "a", .domain = "b.example", .ret = MOAT_RET_HDRS },
	{ .label = "ENVID plain", L("MAIL FROM:<a@b.example> ENVID=QQ314159"),
	  .verb = SMTP_VERB_MAIL, .local = "a", .domain = "b.example", .envid = "QQ314159" },
	{ .label = "ENVID xtext decoded", L("MAIL FROM:<a@b.example> ENVID=a+2Bb+3Dc+20d"),
	  .verb = SMTP_VERB_MAIL, .local = "a", .domain = "b.example", .envid = "a+b=c d" },
	{ .label = "RET, ENVID, SIZE, BODY together",
	  L("MAIL FROM:<a@b.example> SIZE=9 RET=HDRS BODY=8BITMIME ENVID=x1"),
	  .verb = SMTP_VERB_MAIL, .local = "a", .domain = "b.example", .has_size = 1,
	  .size = 9, .body = B_8BIT, .ret = MOAT_RET_HDRS, .envid = "x1" },
	CMD("RET unknown value", "MAIL FROM:<a@b.example> RET=BODY", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("RET no value", "MAIL FROM:<a@b.example> RET", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("RET twice", "MAIL FROM:<a@b.example> RET=FULL RET=HDRS", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_DUP),
	CMD("ENVID twice", "MAIL FROM:<a@b.example> ENVID=a ENVID=a", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_DUP),
	CMD("ENVID plus at the end", "MAIL FROM:<a@b.example> ENVID=abc+", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("ENVID plus one digit", "MAIL FROM:<a@b.example> ENVID=abc+4", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("ENVID lower-case hex", "MAIL FROM:<a@b.example> ENVID=a+2b", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("ENVID non-hex after plus", "MAIL FROM:<a@b.example> ENVID=a+GG", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("ENVID decodes to a control byte", "MAIL FROM:<a@b.example> ENVID=a+0D+0Ab",
	    SMTP_VERB_MAIL, SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("ENVID decodes to NUL", "MAIL FROM:<a@b.example> ENVID=a+00", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("ENVID decodes to 8-bit", "MAIL FROM:<a@b.example> ENVID=+C3+A9", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("ENVID no value", "MAIL FROM:<a@b.example> ENVID", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("ENVID on RCPT", "RCPT TO:<c@d.example> ENVID=x", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_UNSUPPORTED),
	CMD("RET on RCPT", "RCPT TO:<c@d.example> RET=FULL", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_UNSUPPORTED),
	CMD("AUTH= unsupported", "MAIL FROM:<a@b.example> AUTH=<>", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_UNSUPPORTED),
	CMD("param without keyword", "MAIL FROM:<a@b.example> =x", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("param keyword starts with dash", "MAIL FROM:<a@b.example> -X=1", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("param value with =", "MAIL FROM:<a@b.example> X==1", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("param keyword bad char", "MAIL FROM:<a@b.example> X_Y=1", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("param 8-bit value", "MAIL FROM:<a@b.example> X=\xff", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("syntax error before unknown", "MAIL FROM:<a@b.example> SIZE=x FOO=1", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_SYNTAX),

	/* RCPT */
	OK_RCPT("RCPT", "RCPT TO:<c@d.example>", "c", "d.example"),
	OK_RCPT("rcpt to: lower case", "rcpt to:<c@d.example>", "c", "d.example"),
	OK_RCPT("RCPT one space after colon", "RCPT TO: <c@d.example>", "c", "d.example"),
	OK_RCPT("RCPT source route", "RCPT TO:<@a.example,@b.example:c@d.example>", "c", "d.example"),
	OK_RCPT("RCPT IPv6 literal", "RCPT TO:<c@[IPv6:2001:db8::1]>", "c", "[IPv6:2001:db8::1]"),
	OK_RCPT("RCPT Postmaster with domain", "RCPT TO:<Postmaster@D.example>", "Postmaster", "d.example"),
	{ .label = "RCPT bare Postmaster", L("RCPT TO:<Postmaster>"), .verb = SMTP_VERB_RCPT,
	  .local = "postmaster", .domain = "", .postmaster = 1 },
	{ .label = "RCPT bare postmaster lower, space", L("rcpt to: <postmaster>"),
	  .verb = SMTP_VERB_RCPT, .local = "postmaster", .domain = "", .postmaster = 1 },
	CMD("RCPT postmasterx", "RCPT TO:<postmasterx>", SMTP_VERB_RCPT, SMTP_CMD_ERR_RCPT),
	CMD("RCPT postmaster junk after", "RCPT TO:<postmaster>x", SMTP_VERB_RCPT, SMTP_CMD_ERR_RCPT),
	CMD("RCPT null path", "RCPT TO:<>", SMTP_VERB_RCPT, SMTP_CMD_ERR_RCPT),
	CMD("RCPT no brackets", "RCPT TO:c@d.example", SMTP_VERB_RCPT, SMTP_CMD_ERR_RCPT),
	CMD("RCPT FROM:", "RCPT FROM:<c@d.example>", SMTP_VERB_RCPT, SMTP_CMD_ERR_SYNTAX),
	CMD("RCPT no path", "RCPT TO:", SMTP_VERB_RCPT, SMTP_CMD_ERR_SYNTAX),
	CMD("RCPT bad literal", "RCPT TO:<c@[300.1.1.1]>", SMTP_VERB_RCPT, SMTP_CMD_ERR_RCPT),
	CMD("RCPT 8-bit domain", "RCPT TO:<c@\xc3\xa9.example>", SMTP_VERB_RCPT, SMTP_CMD_ERR_RCPT),
	/* DSN on RCPT: NOTIFY and ORCPT (RFC 3461 4.1, 4.2). */
	{ .label = "NOTIFY=NEVER", L("RCPT TO:<c@d.example> NOTIFY=NEVER"), .verb = SMTP_VERB_RCPT,
	  .local = "c", .domain = "d.example", .notify = MOAT_NOTIFY_NEVER },
	{ .label = "NOTIFY list", L("RCPT TO:<c@d.example> NOTIFY=SUCCESS,FAILURE,DELAY"),
	  .verb = SMTP_VERB_RCPT, .local = "c", .domain = "d.example",
	  .notify = MOAT_NOTIFY_SUCCESS | MOAT_NOTIFY_FAILURE | MOAT_NOTIFY_DELAY },
	{ .label = "notify lower case, any order", L("RCPT TO:<c@d.example> notify=delay,success"),
	  .verb = SMTP_VERB_RCPT, .local = "c", .domain = "d.example",
	  .notify = MOAT_NOTIFY_SUCCESS | MOAT_NOTIFY_DELAY },
	{ .label = "ORCPT rfc822 decoded",
	  L("RCPT TO:<c@d.example> ORCPT=rfc822;Orig+2Bx@D.example"), .verb = SMTP_VERB_RCPT,
	  .local = "c", .domain = "d.example", .orcpt = "rfc822;Orig+x@D.example" },
	{ .label = "ORCPT type case folded", L("RCPT TO:<c@d.example> ORCPT=RFC822;c@d.example"),
	  .verb = SMTP_VERB_RCPT, .local = "c", .domain = "d.example",
	  .orcpt = "rfc822;c@d.example" },
	{ .label = "ORCPT utf-8 type", L("RCPT TO:<c@d.example> ORCPT=utf-8;c@d.example"),
	  .verb = SMTP_VERB_RCPT, .local = "c", .domain = "d.example", .orcpt = "utf-8;c@d.example" },
	{ .label = "NOTIFY and ORCPT together",
	  L("RCPT TO:<c@d.example> ORCPT=rfc822;x+40y.example NOTIFY=FAILURE"),
	  .verb = SMTP_VERB_RCPT, .local = "c", .domain = "d.example",
	  .notify = MOAT_NOTIFY_FAILURE, .orcpt = "rfc822;x@y.example" },
	CMD("NOTIFY=NEVER,SUCCESS", "RCPT TO:<c@d.example> NOTIFY=NEVER,SUCCESS", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("NOTIFY=SUCCESS,NEVER", "RCPT TO:<c@d.example> NOTIFY=SUCCESS,NEVER", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("NOTIFY value twice", "RCPT TO:<c@d.example> NOTIFY=SUCCESS,SUCCESS", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("NOTIFY unknown value", "RCPT TO:<c@d.example> NOTIFY=ALWAYS", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("NOTIFY empty item", "RCPT TO:<c@d.example> NOTIFY=SUCCESS,,DELAY", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("NOTIFY trailing comma", "RCPT TO:<c@d.example> NOTIFY=FAILURE,", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("NOTIFY prefix of a word", "RCPT TO:<c@d.example> NOTIFY=SUCC", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("NOTIFY no value", "RCPT TO:<c@d.example> NOTIFY", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("NOTIFY twice", "RCPT TO:<c@d.example> NOTIFY=DELAY NOTIFY=DELAY", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_DUP),
	CMD("ORCPT twice", "RCPT TO:<c@d.example> ORCPT=rfc822;a@b ORCPT=rfc822;a@b",
	    SMTP_VERB_RCPT, SMTP_CMD_ERR_PARAM_DUP),
	CMD("ORCPT without type", "RCPT TO:<c@d.example> ORCPT=c@d.example", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("ORCPT unknown type", "RCPT TO:<c@d.example> ORCPT=x400;c", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("ORCPT empty address", "RCPT TO:<c@d.example> ORCPT=rfc822;", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("ORCPT bad xtext", "RCPT TO:<c@d.example> ORCPT=rfc822;a+zz@b", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("ORCPT plus at the end", "RCPT TO:<c@d.example> ORCPT=rfc822;a@b+", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("ORCPT decodes to CR LF", "RCPT TO:<c@d.example> ORCPT=rfc822;a+0D+0AX:y",
	    SMTP_VERB_RCPT, SMTP_CMD_ERR_PARAM_SYNTAX),
	CMD("NOTIFY on MAIL", "MAIL FROM:<a@b.example> NOTIFY=NEVER", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_UNSUPPORTED),
	CMD("ORCPT on MAIL", "MAIL FROM:<a@b.example> ORCPT=rfc822;a@b", SMTP_VERB_MAIL,
	    SMTP_CMD_ERR_PARAM_UNSUPPORTED),
	CMD("RCPT SIZE not accepted", "RCPT TO:<c@d.example> SIZE=1", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_UNSUPPORTED),
	CMD("RCPT bad param syntax", "RCPT TO:<c@d.example> =1", SMTP_VERB_RCPT,
	    SMTP_CMD_ERR_PARAM_SYNTAX),

	/* Verbs without arguments, or with ignored ones. */
	CMD("DATA", "DATA", SMTP_VERB_DATA, SMTP_CMD_OK),
	CMD("data lower case", "data", SMTP_VERB_DATA, SMTP_CMD_OK),
	CMD("DATA trailing space", "DATA ", SMTP_VERB_DATA, SMTP_CMD_OK),
	CMD("DATA with argument", "DATA x", SMTP_VERB_DATA, SMTP_CMD_ERR_SYNTAX),
	CMD("RSET", "RSET", SMTP_VERB_RSET, SMTP_CMD_OK),
	CMD("RSET with argument", "RSET now", SMTP_VERB_RSET, SMTP_CMD_ERR_SYNTAX),
	CMD("NOOP", "NOOP", SMTP_VERB_NOOP, SMTP_CMD_OK),
	CMD("NOOP with argument", "NOOP hello there", SMTP_VERB_NOOP, SMTP_CMD_OK),
	CMD("NOOP 8-bit argument", "NOOP \xff\xfe", SMTP_VERB_NOOP, SMTP_CMD_OK),
	CMD("NOOP NUL", "NOOP \0", SMTP_VERB_NOOP, SMTP_CMD_ERR_CONTROL),
	CMD("QUIT", "QUIT", SMTP_VERB_QUIT, SMTP_CMD_OK),
	CMD("quit lower case", "quit", SMTP_VERB_QUIT, SMTP_CMD_OK),
	CMD("QUIT with argument", "QUIT now", SMTP_VERB_QUIT, SMTP_CMD_ERR_SYNTAX),
	CMD("HELP", "HELP", SMTP_VERB_HELP, SMTP_CMD_OK),
	CMD("HELP topic", "HELP MAIL", SMTP_VERB_HELP, SMTP_CMD_OK),
	CMD("VRFY", "VRFY user", SMTP_VERB_VRFY, SMTP_CMD_OK),
	CMD("VRFY without argument", "VRFY", SMTP_VERB_VRFY, SMTP_CMD_ERR_SYNTAX),

	CMD("STARTTLS", "STARTTLS", SMTP_VERB_STARTTLS, SMTP_CMD_OK),
	CMD("starttls lower case", "starttls", SMTP_VERB_STARTTLS, SMTP_CMD_OK),
	CMD("STARTTLS trailing spaces", "STARTTLS  ", SMTP_VERB_STARTTLS, SMTP_CMD_OK),
	CMD("STARTTLS with argument", "STARTTLS now", SMTP_VERB_STARTTLS, SMTP_CMD_ERR_SYNTAX),
	CMD("STARTTLS NUL", "STARTTLS \0", SMTP_VERB_STARTTLS, SMTP_CMD_ERR_CONTROL),
	CMD("STARTTLS glued to a command", "STARTTLSRSET", SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_UNRECOGNIZED),

	/* Known, not implemented. */
	CMD("AUTH", "AUTH PLAIN AGFAAGI=", SMTP_VERB_AUTH, SMTP_CMD_ERR_NOT_IMPLEMENTED),
	CMD("BDAT", "BDAT 100 LAST", SMTP_VERB_BDAT, SMTP_CMD_ERR_NOT_IMPLEMENTED),
	CMD("ETRN", "ETRN example.com", SMTP_VERB_ETRN, SMTP_CMD_ERR_NOT_IMPLEMENTED),
	CMD("EXPN", "EXPN staff", SMTP_VERB_EXPN, SMTP_CMD_ERR_NOT_IMPLEMENTED),
	CMD("TURN", "TURN", SMTP_VERB_TURN, SMTP_CMD_ERR_NOT_IMPLEMENTED),
	CMD("ATRN", "ATRN", SMTP_VERB_ATRN, SMTP_CMD_ERR_NOT_IMPLEMENTED),
	CMD("SEND", "SEND FROM:<a@b.example>", SMTP_VERB_SEND, SMTP_CMD_ERR_NOT_IMPLEMENTED),

	/* Unknown. */
	CMD("empty line", "", SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_UNRECOGNIZED),
	CMD("spaces only", "   ", SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_UNRECOGNIZED),
	CMD("unknown verb", "FOO bar", SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_UNRECOGNIZED),
	CMD("verb prefix", "MAI FROM:<a@b.example>", SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_UNRECOGNIZED),
	CMD("verb too long", "MAILX FROM:<a@b.example>", SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_UNRECOGNIZED),
	CMD("leading space", " MAIL FROM:<a@b.example>", SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_UNRECOGNIZED),
	CMD("tab after verb", "MAIL\tFROM:<a@b.example>", SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_UNRECOGNIZED),
	CMD("HTTP request", "GET / HTTP/1.0", SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_UNRECOGNIZED),
	CMD("NUL before verb", "\0EHLO x", SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_UNRECOGNIZED),
	CMD("NUL inside verb", "EH\0LO x", SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_UNRECOGNIZED),
	CMD("NUL after verb", "EHLO\0", SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_UNRECOGNIZED),
	CMD("8-bit verb", "\xc5\x81HLO x", SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_UNRECOGNIZED),
	CMD("control verb", "\x1b[A", SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_UNRECOGNIZED),
};

static void
check_case(const struct ccase *c)
{
	struct smtp_cmd cmd;
	enum smtp_cmd_err e;

	e = smtp_cmd_parse(c->line, c->len, &cmd);
	T_OK(e == cmd.err, "%s: return value is cmd.err", c->label);
	T_OK(cmd.verb == c->verb, "%s: verb %d", c->label, cmd.verb);
	T_OK(cmd.err == c->err, "%s: err %d (want %d)", c->label, cmd.err, c->err);
	if (c->arg != NULL)
		T_OK(cmd.arglen == strlen(c->arg) &&
		    memcmp(cmd.arg, c->arg, cmd.arglen) == 0, "%s: argument", c->label);
	if (c->err != SMTP_CMD_OK || c->local == NULL)
		return;
	T_OK(strcmp(cmd.path.local, c->local) == 0, "%s: local part \"%s\"", c->label,
	    cmd.path.local);
	T_OK(strcmp(cmd.path.domain, c->domain) == 0, "%s: domain \"%s\"", c->label,
	    cmd.path.domain);
	T_OK(cmd.path.is_null == c->is_null, "%s: null path", c->label);
	T_OK(cmd.postmaster == c->postmaster, "%s: bare postmaster", c->label);
	T_OK(cmd.has_size == c->has_size && (!c->has_size || cmd.size == c->size),
	    "%s: SIZE %d %llu", c->label, cmd.has_size, (unsigned long long)cmd.size);
	T_OK(cmd.body + 1 == c->body, "%s: BODY %d", c->label, cmd.body);
	T_OK(cmd.dsn_ret == c->ret, "%s: RET %u", c->label, cmd.dsn_ret);
	T_OK(c->envid == NULL ? !cmd.has_envid :
	    cmd.has_envid && strcmp(cmd.dsn_envid, c->envid) == 0,
	    "%s: ENVID \"%s\"", c->label, cmd.dsn_envid);
	T_OK(cmd.dsn_notify == c->notify, "%s: NOTIFY %u", c->label, cmd.dsn_notify);
	T_OK(c->orcpt == NULL ? !cmd.has_orcpt :
	    cmd.has_orcpt && strcmp(cmd.dsn_orcpt, c->orcpt) == 0,
	    "%s: ORCPT \"%s\"", c->label, cmd.dsn_orcpt);
}

/* Every error has its own reply, with the code the session relies on. */
static void
check_replies(void)
{
	static const struct {
		const char		*line;
		const char		*reply;
	} r[] = {
		{ "FOO", "500 5.5.2 Error: command not recognized" },
		{ "EXPN staff", "502 5.5.1 Error: command not implemented" },
		{ "STARTTLS now", "501 5.5.4 Syntax: STARTTLS" },
		{ "EHLO", "501 5.5.4 Syntax: EHLO hostname" },
		{ "HELO", "501 5.5.4 Syntax: HELO hostname" },
		{ "MAIL", "501 5.5.4 Syntax: MAIL FROM:<address>" },
		{ "RCPT TO:", "501 5.5.4 Syntax: RCPT TO:<address>" },
		{ "DATA x", "501 5.5.4 Syntax: DATA" },
		{ "QUIT x", "501 5.5.4 Syntax: QUIT" },
		{ "VRFY", "501 5.5.4 Syntax: VRFY address" },
		{ "NOOP \x01", "501 5.5.4 Error: control character in command" },
		{ "MAIL FROM:<a@b.example> SIZE=x", "501 5.5.4 Error: bad parameter syntax" },
		{ "MAIL FROM:<a@b.example> SIZE=1 SIZE=1", "501 5.5.4 Error: duplicate parameter" },
		{ "MAIL FROM:<a@b.example> FOO=1", "555 5.5.4 Error: unsupported parameter" },
		{ "MAIL FROM:<a>", "501 5.1.7 Error: bad sender address syntax" },
		{ "RCPT TO:<a>", "501 5.1.3 Error: bad recipient address syntax" },
	};
	char buf[256];
	struct smtp_cmd cmd;
	size_t i;

	for (i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		smtp_cmd_parse(r[i].line, strlen(r[i].line), &cmd);
		smtp_cmd_reply(&cmd, buf, sizeof(buf));
		T_OK(strcmp(buf, r[i].reply) == 0, "reply for \"%s\": %s", r[i].line, buf);
	}
	/* A tiny destination is cut, not overrun. */
	smtp_cmd_parse("FOO", 3, &cmd);
	memset(buf, 'x', sizeof(buf));
	smtp_cmd_reply(&cmd, buf, 4);
	T_OK(strcmp(buf, "500") == 0 && buf[4] == 'x', "reply cut to its buffer");
}

static void
check_name(enum smtp_verb v, const char *want)
{
	T_OK(strcmp(smtp_verb_name(v), want) == 0, "verb name %s", want);
}

/* Parse a line built at run time; returns the error. */
static enum smtp_cmd_err
parse_built(const char *prefix, char fill, size_t nfill, const char *suffix,
    struct smtp_cmd *cmd)
{
	size_t pl = strlen(prefix), sl = strlen(suffix), len = pl + nfill + sl;
	char *line = malloc(len + 1);
	enum smtp_cmd_err e;

	memcpy(line, prefix, pl);
	memset(line + pl, fill, nfill);
	memcpy(line + pl + nfill, suffix, sl);
	line[len] = '\0';
	e = smtp_cmd_parse(line, len, cmd);
	free(line);
	return e;
}

/* Limits: HELO name 255, local part 64, mailbox 254, SIZE digits. */
static void
check_lengths(void)
{
	struct smtp_cmd cmd;

	T_OK(parse_built("EHLO ", 'a', MOAT_HELO_MAX, "", &cmd) == SMTP_CMD_OK,
	    "EHLO name of %d bytes", MOAT_HELO_MAX);
	T_OK(parse_built("EHLO ", 'a', MOAT_HELO_MAX + 1, "", &cmd) == SMTP_CMD_ERR_HELO_TOO_LONG,
	    "EHLO name of %d bytes", MOAT_HELO_MAX + 1);
	T_OK(parse_built("MAIL FROM:<", 'a', ADDR_LOCAL_MAX, "@b.example>", &cmd) == SMTP_CMD_OK,
	    "local part of %d bytes", ADDR_LOCAL_MAX);
	T_OK(parse_built("MAIL FROM:<", 'a', ADDR_LOCAL_MAX + 1, "@b.example>", &cmd) ==
	    SMTP_CMD_ERR_PATH_TOO_LONG, "local part of %d bytes", ADDR_LOCAL_MAX + 1);
	T_OK(parse_built("RCPT TO:<", 'a', ADDR_LOCAL_MAX + 1, "@b.example>", &cmd) ==
	    SMTP_CMD_ERR_PATH_TOO_LONG, "RCPT local part of %d bytes", ADDR_LOCAL_MAX + 1);
	T_OK(parse_built("MAIL FROM:<", 'a', 5000, "@b.example>", &cmd) ==
	    SMTP_CMD_ERR_PATH_TOO_LONG, "local part of 5000 bytes");
	/* 64 + "@" + 60 x "bbb." ... a long but valid domain makes the
	 * mailbox longer than 254. */
	{
		char line[600];
		size_t off;

		off = (size_t)snprintf(line, sizeof(line), "MAIL FROM:<");
		memset(line + off, 'a', 64);
		off += 64;
		line[off++] = '@';
		while (off < 11 + 64 + 1 + 196) {
			memcpy(line + off, "bbb.", 4);
			off += 4;
		}
		off += (size_t)snprintf(line + off, sizeof(line) - off, "example>");
		smtp_cmd_parse(line, off, &cmd);
		T_OK(cmd.err == SMTP_CMD_ERR_PATH_TOO_LONG, "mailbox over %d bytes: err %d",
		    ADDR_MAILBOX_MAX, cmd.err);
	}
	T_OK(parse_built("MAIL FROM:<a@b.example> SIZE=", '9', 19, "", &cmd) == SMTP_CMD_OK &&
	    cmd.size == 9999999999999999999ULL, "SIZE of 19 nines");
	T_OK(parse_built("MAIL FROM:<a@b.example> SIZE=", '0', 20, "", &cmd) == SMTP_CMD_OK &&
	    cmd.size == 0, "SIZE of 20 zeros");
	T_OK(parse_built("MAIL FROM:<a@b.example> X=", 'v', 3000, "", &cmd) ==
	    SMTP_CMD_ERR_PARAM_UNSUPPORTED, "long unknown parameter");
	/* DSN caps count decoded bytes: "+41" is one. */
	T_OK(parse_built("MAIL FROM:<a@b.example> ENVID=", 'e', MOAT_ENVID_MAX, "", &cmd) ==
	    SMTP_CMD_OK && strlen(cmd.dsn_envid) == MOAT_ENVID_MAX,
	    "ENVID of %d bytes", MOAT_ENVID_MAX);
	T_OK(parse_built("MAIL FROM:<a@b.example> ENVID=", 'e', MOAT_ENVID_MAX + 1, "", &cmd) ==
	    SMTP_CMD_ERR_PARAM_SYNTAX, "ENVID of %d bytes", MOAT_ENVID_MAX + 1);
	T_OK(parse_built("MAIL FROM:<a@b.example> ENVID=", 'e', MOAT_ENVID_MAX - 1, "+41", &cmd) ==
	    SMTP_CMD_OK && strlen(cmd.dsn_envid) == MOAT_ENVID_MAX,
	    "ENVID of %d bytes once decoded", MOAT_ENVID_MAX);
	T_OK(parse_built("MAIL FROM:<a@b.example> ENVID=", 'e', MOAT_ENVID_MAX, "+41", &cmd) ==
	    SMTP_CMD_ERR_PARAM_SYNTAX, "ENVID of %d bytes once decoded", MOAT_ENVID_MAX + 1);
	T_OK(parse_built("MAIL FROM:<a@b.example> ENVID=", 'e', 5000, "", &cmd) ==
	    SMTP_CMD_ERR_PARAM_SYNTAX, "ENVID of 5000 bytes");
	T_OK(parse_built("RCPT TO:<c@d.example> ORCPT=rfc822;", 'o', MOAT_ORCPT_MAX - 7, "", &cmd) ==
	    SMTP_CMD_OK && strlen(cmd.dsn_orcpt) == MOAT_ORCPT_MAX,
	    "ORCPT of %d bytes with its type", MOAT_ORCPT_MAX);
	T_OK(parse_built("RCPT TO:<c@d.example> ORCPT=rfc822;", 'o', MOAT_ORCPT_MAX - 6, "", &cmd) ==
	    SMTP_CMD_ERR_PARAM_SYNTAX && cmd.dsn_orcpt[0] == '\0',
	    "ORCPT of %d bytes with its type", MOAT_ORCPT_MAX + 1);
	T_OK(parse_built("RCPT TO:<c@d.example> ORCPT=rfc822;", 'o', 20000, "", &cmd) ==
	    SMTP_CMD_ERR_PARAM_SYNTAX, "ORCPT of 20000 bytes");
	T_OK(parse_built("NOOP ", 'z', 60000, "", &cmd) == SMTP_CMD_OK, "long NOOP");
	T_OK(parse_built("", 'A', 60000, "", &cmd) == SMTP_CMD_ERR_UNRECOGNIZED, "long verb");
}

/* Every single byte value after a good MAIL line changes the verdict predictably. */
static void
check_every_byte(void)
{
	char line[64];
	struct smtp_cmd cmd;
	int c, bad = 0;

	for (c = 0; c < 256; c++) {
		int n = snprintf(line, sizeof(line), "MAIL FROM:<a@b.example>");
		enum smtp_cmd_err want;

		line[n++] = (char)c;
		smtp_cmd_parse(line, (size_t)n, &cmd);
		if (c < 0x20 || c == 0x7f)
			want = SMTP_CMD_ERR_CONTROL;
		else if (c == ' ')
			want = SMTP_CMD_OK;
		else
			want = SMTP_CMD_ERR_SENDER;
		if (cmd.err != want) {
			bad++;
			T_OK(0, "byte 0x%02x after the path: err %d", c, cmd.err);
		}
	}
	T_OK(bad == 0, "every byte after the path");
}

int
main(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	check_replies();
	check_lengths();
	check_every_byte();
	check_name(SMTP_VERB_MAIL, "MAIL");
	check_name(SMTP_VERB_STARTTLS, "STARTTLS");
	check_name(SMTP_VERB_UNKNOWN, "unknown");
	check_name(SMTP_VERB_NVERBS, "unknown");
	return t_done();
}
