/*
 * smtp_cmd.h: the SMTP command parser.
 *
 * Pure: one command line in (without its CR LF, which the session has
 * already checked and removed), one struct smtp_cmd out.  The parser
 * knows every verb moat implements and the ones it knows but refuses
 * (AUTH, BDAT, ...), checks each verb's argument, parses the
 * paths of MAIL and RCPT with common/mail/addr.h and the ESMTP
 * parameters after them (SIZE, BODY; the DSN ones of RFC 3461: RET and
 * ENVID on MAIL, NOTIFY and ORCPT on RCPT, with strict xtext decoding).  It does not know the session's state: the
 * session first asks whether the verb may run now and only then looks
 * at cmd->err, so that "MAIL" before HELO says "send HELO first" whatever
 * its argument.
 */
#ifndef MOAT_SMTP_CMD_H
#define MOAT_SMTP_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "ipc_types.h"
#include "mail/addr.h"

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_EHLO,
	SMTP_VERB_HELO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_HELP,
	SMTP_VERB_VRFY,
	SMTP_VERB_STARTTLS,
	/* Known verbs moat does not offer: answered 502 (RFC 5321 4.2.4). */
	SMTP_VERB_AUTH,
	SMTP_VERB_BDAT,
	SMTP_VERB_ETRN,
	SMTP_VERB_EXPN,
	SMTP_VERB_TURN,
	SMTP_VERB_ATRN,
	SMTP_VERB_SEND,
	SMTP_VERB_SOML,
	SMTP_VERB_SAML,
	SMTP_VERB_NVERBS
};

enum smtp_cmd_err {
	SMTP_CMD_OK = 0,
	SMTP_CMD_ERR_UNRECOGNIZED,	/* 500 5.5.2 */
	SMTP_CMD_ERR_NOT_IMPLEMENTED,	/* 502 5.5.1 */
	SMTP_CMD_ERR_SYNTAX,		/* 501 5.5.4 Syntax: <usage> */
	SMTP_CMD_ERR_CONTROL,		/* 501 5.5.4 control byte in the line */
	SMTP_CMD_ERR_HELO_TOO_LONG,	/* 501 5.5.4 */
	SMTP_CMD_ERR_PARAM_SYNTAX,	/* 501 5.5.4 */
	SMTP_CMD_ERR_PARAM_DUP,		/* 501 5.5.4 */
	SMTP_CMD_ERR_PARAM_UNSUPPORTED,	/* 555 5.5.4 */
	SMTP_CMD_ERR_SENDER,		/* 501 5.1.7 */
	SMTP_CMD_ERR_RCPT,		/* 501 5.1.3 */
	SMTP_CMD_ERR_PATH_TOO_LONG,	/* 501 5.5.4 */
};

#define SMTP_BODY_NONE	(-1)	/* no BODY= parameter */

struct smtp_cmd {
	enum smtp_verb	 verb;
	enum smtp_cmd_err err;
	/* The argument after the verb and one space, trailing spaces
	 * removed; points into the caller's line (not NUL-terminated). */
	const char	*arg;
	size_t		 arglen;
	/* MAIL and RCPT. */
	struct mailaddr	 path;
	int		 postmaster;	/* RCPT TO:<Postmaster>, no domain */
	/* MAIL parameters. */
	int		 has_size;
	uint64_t	 size;		/* SIZE= */
	int		 body;		/* MOAT_BODY_* or SMTP_BODY_NONE */
	/* DSN parameters (RFC 3461), xtext decoded. */
	uint32_t	 dsn_ret;	/* MAIL RET=: MOAT_RET_*, NONE if absent */
	int		 has_envid;
	char		 dsn_envid[MOAT_ENVID_MAX + 1];	/* MAIL ENVID= */
	uint32_t	 dsn_notify;	/* RCPT NOTIFY=: MOAT_NOTIFY_* bits, 0 absent */
	int		 has_orcpt;
	char		 dsn_orcpt[MOAT_ORCPT_MAX + 1];	/* RCPT ORCPT=: "rfc822;addr" */
};

/* Parse one command line of len bytes.  Returns cmd->err. */
enum smtp_cmd_err smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd);

/* The verb as written in replies and logs ("MAIL"), "unknown" if none. */
const char *smtp_verb_name(enum smtp_verb v);

/*
 * The reply for a parse error, without CR LF, e.g.
 * "501 5.1.7 Error: bad sender address syntax".
 */
void	smtp_cmd_reply(const struct smtp_cmd *cmd, char *dst, size_t dstsz);

#endif
