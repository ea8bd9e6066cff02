/*
 * smtp_cmd.c: parse one SMTP command line (RFC 5321 4.1, RFC 1652, RFC 1870,
 * RFC 3461).
 *
 * Strict where strictness protects the queue (addresses, parameters,
 * control bytes), tolerant where real clients are known to differ: verbs
 * and "FROM:"/"TO:" in any case, one space after the colon (as Postfix
 * allows), and trailing spaces at the end of the line.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ipc_types.h"
#include "smtp_cmd.h"
#include "util/xmalloc.h"

enum smtp_argmode {
	SMTP_ARG_NONE,		/* nothing may follow the verb */
	SMTP_ARG_OPTIONAL,	/* anything, ignored */
	SMTP_ARG_REQUIRED,	/* something, ignored */
	SMTP_ARG_HELO,		/* one host name */
	SMTP_ARG_MAIL,		/* FROM:<path> [params] */
	SMTP_ARG_RCPT,		/* TO:<path> [params] */
};

static const struct smtp_verb_info {
	const char		*name;
	enum smtp_verb		 verb;
	int			 implemented;
	enum smtp_argmode	 argmode;
	const char		*usage;
} smtp_verb_table[] = {
	{ "EHLO",	SMTP_VERB_EHLO,	1, SMTP_ARG_HELO,	"EHLO hostname" },
	{ "HELO",	SMTP_VERB_HELO,	1, SMTP_ARG_HELO,	"HELO hostname" },
	{ "MAIL",	SMTP_VERB_MAIL,	1, SMTP_ARG_MAIL,	"MAIL FROM:<address>" },
	{ "RCPT",	SMTP_VERB_RCPT,	1, SMTP_ARG_RCPT,	"RCPT TO:<address>" },
	{ "DATA",	SMTP_VERB_DATA,	1, SMTP_ARG_NONE,	"DATA" },
	{ "RSET",	SMTP_VERB_RSET,	1, SMTP_ARG_NONE,	"RSET" },
	{ "NOOP",	SMTP_VERB_NOOP,	1, SMTP_ARG_OPTIONAL,	"NOOP" },
	{ "QUIT",	SMTP_VERB_QUIT,	1, SMTP_ARG_NONE,	"QUIT" },
	{ "HELP",	SMTP_VERB_HELP,	1, SMTP_ARG_OPTIONAL,	"HELP" },
	{ "VRFY",	SMTP_VERB_VRFY,	1, SMTP_ARG_REQUIRED,	"VRFY address" },
	{ "STARTTLS",	SMTP_VERB_STARTTLS, 1, SMTP_ARG_NONE,	"STARTTLS" },
	{ "AUTH",	SMTP_VERB_AUTH,	0, SMTP_ARG_NONE,	NULL },
	{ "BDAT",	SMTP_VERB_BDAT,	0, SMTP_ARG_NONE,	NULL },
	{ "ETRN",	SMTP_VERB_ETRN,	0, SMTP_ARG_NONE,	NULL },
	{ "EXPN",	SMTP_VERB_EXPN,	0, SMTP_ARG_NONE,	NULL },
	{ "TURN",	SMTP_VERB_TURN,	0, SMTP_ARG_NONE,	NULL },
	{ "ATRN",	SMTP_VERB_ATRN,	0, SMTP_ARG_NONE,	NULL },
	{ "SEND",	SMTP_VERB_SEND,	0, SMTP_ARG_NONE,	NULL },
	{ "SOML",	SMTP_VERB_SOML,	0, SMTP_ARG_NONE,	NULL },
	{ "SAML",	SMTP_VERB_SAML,	0, SMTP_ARG_NONE,	NULL },
};

#define SMTP_NVERB_INFO	(sizeof(smtp_verb_table) / sizeof(smtp_verb_table[0]))

/* RFC 1870 allows 20 digits; more cannot be a size we could compare. */
#define SMTP_SIZE_DIGITS_MAX	20

static const struct smtp_verb_info *
smtp_verb_lookup(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < SMTP_NVERB_INFO; i++)
		if (strlen(smtp_verb_table[i].name) == n &&
		    strncasecmp(smtp_verb_table[i].name, s, n) == 0)
			return &smtp_verb_table[i];
	return NULL;
}

static const struct smtp_verb_info *
smtp_verb_info(enum smtp_verb v)
{
	size_t i;

	for (i = 0; i < SMTP_NVERB_INFO; i++)
		if (smtp_verb_table[i].verb == v)
			return &smtp_verb_table[i];
	return NULL;
}

const char *
smtp_verb_name(enum smtp_verb v)
{
	const struct smtp_verb_info *vi = smtp_verb_info(v);

	return vi != NULL ? vi->name : "unknown";
}

static int
smtp_cmd_is_alnum(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9');
}

/* Bytes below 0x20 (NUL, TAB, ESC, ...) and DEL have no place in a command. */
static int
smtp_cmd_has_control(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return 1;
	}
	return 0;
}

/* HELO/EHLO: one word of printable ASCII (a domain or an address literal). */
static enum smtp_cmd_err
smtp_cmd_helo(struct smtp_cmd *cmd)
{
	size_t i;

	if (cmd->arglen == 0)
		return SMTP_CMD_ERR_SYNTAX;
	for (i = 0; i < cmd->arglen; i++) {
		unsigned char c = (unsigned char)cmd->arg[i];
		if (c <= 0x20 || c >= 0x7f)
			return SMTP_CMD_ERR_SYNTAX;
	}
	if (cmd->arglen > MOAT_HELO_MAX)
		return SMTP_CMD_ERR_HELO_TOO_LONG;
	return SMTP_CMD_OK;
}

/* SIZE=digits, refused on overflow rather than wrapped. */
static enum smtp_cmd_err
smtp_cmd_param_size(struct smtp_cmd *cmd, const char *v, size_t n)
{
	uint64_t size = 0;
	size_t i;

	if (cmd->has_size)
		return SMTP_CMD_ERR_PARAM_DUP;
	if (n == 0 || n > SMTP_SIZE_DIGITS_MAX)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	for (i = 0; i < n; i++) {
		unsigned int d;

		if (v[i] < '0' || v[i] > '9')
			return SMTP_CMD_ERR_PARAM_SYNTAX;
		d = (unsigned int)(v[i] - '0');
		if (size > (UINT64_MAX - d) / 10)
			return SMTP_CMD_ERR_PARAM_SYNTAX;
		size = size * 10 + d;
	}
	cmd->has_size = 1;
	cmd->size = size;
	return SMTP_CMD_OK;
}

/* BODY=7BIT or BODY=8BITMIME (RFC 1652); BINARYMIME needs CHUNKING. */
static enum smtp_cmd_err
smtp_cmd_param_body(struct smtp_cmd *cmd, const char *v, size_t n)
{
	if (cmd->body != SMTP_BODY_NONE)
		return SMTP_CMD_ERR_PARAM_DUP;
	if (n == 4 && strncasecmp(v, "7BIT", 4) == 0)
		cmd->body = MOAT_BODY_7BIT;
	else if (n == 8 && strncasecmp(v, "8BITMIME", 8) == 0)
		cmd->body = MOAT_BODY_8BITMIME;
	else if (n == 10 && strncasecmp(v, "BINARYMIME", 10) == 0)
		return SMTP_CMD_ERR_PARAM_UNSUPPORTED;
	else
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	return SMTP_CMD_OK;
}

/*
 * xtext (RFC 3461 4): "+" and two upper-case hex digits stand for one
 * byte; any other byte must be printable ASCII other than "+" and "=".
 * What it decodes to must be printable ASCII too, since it ends up in
 * the header lines of a delivery report.  -1 on bad syntax or when the
 * result does not fit in dstsz (NUL included).
 */
static int
smtp_cmd_xtext(const char *v, size_t n, char *dst, size_t dstsz)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *hi, *lo;
	size_t i, o = 0;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)v[i];
		if (c == '+') {
			if (n - i < 3 || v[i + 1] == '\0' || v[i + 2] == '\0' ||
			    (hi = strchr(hex, v[i + 1])) == NULL ||
			    (lo = strchr(hex, v[i + 2])) == NULL)
				return -1;
			c = (unsigned char)(((hi - hex) << 4) | (lo - hex));
			i += 2;
		} else if (c < 33 || c > 126 || c == '=')
			return -1;
		if (c < 0x20 || c > 0x7e || o + 1 >= dstsz)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}

/* RET=FULL or RET=HDRS (RFC 3461 4.3). */
static enum smtp_cmd_err
smtp_cmd_param_ret(struct smtp_cmd *cmd, const char *v, size_t n)
{
	if (cmd->dsn_ret != MOAT_RET_NONE)
		return SMTP_CMD_ERR_PARAM_DUP;
	if (n == 4 && strncasecmp(v, "FULL", 4) == 0)
		cmd->dsn_ret = MOAT_RET_FULL;
	else if (n == 4 && strncasecmp(v, "HDRS", 4) == 0)
		cmd->dsn_ret = MOAT_RET_HDRS;
	else
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	return SMTP_CMD_OK;
}

/* ENVID=xtext, at most MOAT_ENVID_MAX bytes once decoded (RFC 3461 4.4). */
static enum smtp_cmd_err
smtp_cmd_param_envid(struct smtp_cmd *cmd, const char *v, size_t n)
{
	if (cmd->has_envid)
		return SMTP_CMD_ERR_PARAM_DUP;
	if (smtp_cmd_xtext(v, n, cmd->dsn_envid, sizeof(cmd->dsn_envid)) == -1 ||
	    cmd->dsn_envid[0] == '\0')
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	cmd->has_envid = 1;
	return SMTP_CMD_OK;
}

/* NOTIFY=NEVER, or a list of SUCCESS, FAILURE, DELAY, each once (4.1). */
static enum smtp_cmd_err
smtp_cmd_param_notify(struct smtp_cmd *cmd, const char *v, size_t n)
{
	static const struct { const char *w; uint32_t bit; } words[] = {
		{ "NEVER", MOAT_NOTIFY_NEVER }, { "SUCCESS", MOAT_NOTIFY_SUCCESS },
		{ "FAILURE", MOAT_NOTIFY_FAILURE }, { "DELAY", MOAT_NOTIFY_DELAY },
	};
	uint32_t bits = 0, bit;
	size_t i = 0, start, k;

	if (cmd->dsn_notify != 0)
		return SMTP_CMD_ERR_PARAM_DUP;
	while (i <= n) {
		for (start = i; i < n && v[i] != ','; i++)
			;
		bit = 0;
		for (k = 0; k < sizeof(words) / sizeof(words[0]); k++)
			if (strlen(words[k].w) == i - start &&
			    strncasecmp(v + start, words[k].w, i - start) == 0)
				bit = words[k].bit;
		if (bit == 0 || (bits & bit) != 0)
			return SMTP_CMD_ERR_PARAM_SYNTAX;
		bits |= bit;
		i++;	/* past the comma, or past the end */
	}
	if ((bits & MOAT_NOTIFY_NEVER) != 0 && bits != MOAT_NOTIFY_NEVER)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	cmd->dsn_notify = bits;
	return SMTP_CMD_OK;
}

/*
 * ORCPT=addr-type;xtext (RFC 3461 4.2), addr-type rfc822 or utf-8
 * (RFC 6533), kept as "type;address" with the type in lower case and
 * the address decoded.
 */
static enum smtp_cmd_err
smtp_cmd_param_orcpt(struct smtp_cmd *cmd, const char *v, size_t n)
{
	const char *semi = memchr(v, ';', n);
	size_t tlen, off;

	if (cmd->has_orcpt)
		return SMTP_CMD_ERR_PARAM_DUP;
	if (semi == NULL)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	tlen = (size_t)(semi - v);
	if (tlen == 6 && strncasecmp(v, "rfc822", 6) == 0)
		off = strlcpy_m(cmd->dsn_orcpt, "rfc822;", sizeof(cmd->dsn_orcpt));
	else if (tlen == 5 && strncasecmp(v, "utf-8", 5) == 0)
		off = strlcpy_m(cmd->dsn_orcpt, "utf-8;", sizeof(cmd->dsn_orcpt));
	else
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	if (smtp_cmd_xtext(semi + 1, n - tlen - 1, cmd->dsn_orcpt + off,
	    sizeof(cmd->dsn_orcpt) - off) == -1 || cmd->dsn_orcpt[off] == '\0') {
		cmd->dsn_orcpt[0] = '\0';
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	}
	cmd->has_orcpt = 1;
	return SMTP_CMD_OK;
}

/* The parameters each verb knows; the rest are answered 555. */
static enum smtp_cmd_err
smtp_cmd_param_dispatch(struct smtp_cmd *cmd, const char *k, size_t klen,
    const char *v, size_t vlen)
{
	static const struct {
		enum smtp_verb	 verb;
		const char	*name;
		enum smtp_cmd_err (*fn)(struct smtp_cmd *, const char *, size_t);
	} params[] = {
		{ SMTP_VERB_MAIL, "SIZE", smtp_cmd_param_size },
		{ SMTP_VERB_MAIL, "BODY", smtp_cmd_param_body },
		{ SMTP_VERB_MAIL, "RET", smtp_cmd_param_ret },
		{ SMTP_VERB_MAIL, "ENVID", smtp_cmd_param_envid },
		{ SMTP_VERB_RCPT, "NOTIFY", smtp_cmd_param_notify },
		{ SMTP_VERB_RCPT, "ORCPT", smtp_cmd_param_orcpt },
	};
	size_t i;

	for (i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		if (params[i].verb != cmd->verb || strlen(params[i].name) != klen ||
		    strncasecmp(params[i].name, k, klen) != 0)
			continue;
		return v == NULL ? SMTP_CMD_ERR_PARAM_SYNTAX : params[i].fn(cmd, v, vlen);
	}
	return SMTP_CMD_ERR_PARAM_UNSUPPORTED;
}

/*
 * One esmtp-param (RFC 5321 4.1.2): esmtp-keyword ["=" esmtp-value],
 * keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"),
 * value = 1*(%d33-60 / %d62-126).
 */
static enum smtp_cmd_err
smtp_cmd_param(struct smtp_cmd *cmd, const char *p, size_t n)
{
	const char *eq = memchr(p, '=', n);
	size_t klen = eq != NULL ? (size_t)(eq - p) : n;
	const char *v = eq != NULL ? eq + 1 : NULL;
	size_t vlen = eq != NULL ? n - klen - 1 : 0;
	size_t i;

	if (klen == 0 || !smtp_cmd_is_alnum(p[0]))
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	for (i = 1; i < klen; i++)
		if (!smtp_cmd_is_alnum(p[i]) && p[i] != '-')
			return SMTP_CMD_ERR_PARAM_SYNTAX;
	if (v != NULL && vlen == 0)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	for (i = 0; i < vlen; i++)
		if ((unsigned char)v[i] < 33 || (unsigned char)v[i] > 126 || v[i] == '=')
			return SMTP_CMD_ERR_PARAM_SYNTAX;
	return smtp_cmd_param_dispatch(cmd, p, klen, v, vlen);
}

/* The parameters after the path: words separated by spaces. */
static enum smtp_cmd_err
smtp_cmd_params(struct smtp_cmd *cmd, const char *p, size_t n)
{
	enum smtp_cmd_err e;
	size_t i = 0, start;

	while (i < n) {
		while (i < n && p[i] == ' ')
			i++;
		start = i;
		while (i < n && p[i] != ' ')
			i++;
		if (i > start && (e = smtp_cmd_param(cmd, p + start, i - start)) != SMTP_CMD_OK)
			return e;
	}
	return SMTP_CMD_OK;
}

/* RFC 5321 4.1.1.3: "<Postmaster>" without a domain must be accepted. */
static int
smtp_cmd_bare_postmaster(struct smtp_cmd *cmd, const char *p, size_t n, size_t *consumed)
{
	static const char pm[] = "<postmaster>";
	size_t pmlen = sizeof(pm) - 1;

	if (n < pmlen || strncasecmp(p, pm, pmlen) != 0)
		return 0;
	memset(&cmd->path, 0, sizeof(cmd->path));
	memcpy(cmd->path.local, "postmaster", sizeof("postmaster"));
	cmd->postmaster = 1;
	*consumed = pmlen;
	return 1;
}

/* MAIL FROM:<path> [params] and RCPT TO:<path> [params]. */
static enum smtp_cmd_err
smtp_cmd_path(struct smtp_cmd *cmd)
{
	int is_mail = cmd->verb == SMTP_VERB_MAIL;
	const char *kw = is_mail ? "FROM:" : "TO:";
	size_t kwlen = strlen(kw), n, consumed = 0;
	enum smtp_cmd_err bad = is_mail ? SMTP_CMD_ERR_SENDER : SMTP_CMD_ERR_RCPT;
	const char *p;

	if (cmd->arglen < kwlen || strncasecmp(cmd->arg, kw, kwlen) != 0)
		return SMTP_CMD_ERR_SYNTAX;
	p = cmd->arg + kwlen;
	n = cmd->arglen - kwlen;
	/* One space after the colon, as some clients send and Postfix allows. */
	if (n > 0 && *p == ' ') {
		p++;
		n--;
	}
	if (n == 0)
		return SMTP_CMD_ERR_SYNTAX;
	if (is_mail || !smtp_cmd_bare_postmaster(cmd, p, n, &consumed)) {
		switch (addr_parse_path(p, n, is_mail, &cmd->path, &consumed)) {
		case ADDR_OK:
			break;
		case ADDR_ERR_TOO_LONG:
			return SMTP_CMD_ERR_PATH_TOO_LONG;
		default:
			return bad;
		}
	}
	if (consumed > n || (consumed < n && p[consumed] != ' '))
		return bad;
	return smtp_cmd_params(cmd, p + consumed, n - consumed);
}

enum smtp_cmd_err
smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd)
{
	const struct smtp_verb_info *vi;
	size_t vlen;

	memset(cmd, 0, sizeof(*cmd));
	cmd->body = SMTP_BODY_NONE;
	cmd->arg = line + len;
	while (len > 0 && line[len - 1] == ' ')
		len--;
	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		;
	if ((vi = smtp_verb_lookup(line, vlen)) == NULL)
		return cmd->err = SMTP_CMD_ERR_UNRECOGNIZED;
	cmd->verb = vi->verb;
	if (!vi->implemented)
		return cmd->err = SMTP_CMD_ERR_NOT_IMPLEMENTED;
	if (vlen < len) {
		cmd->arg = line + vlen + 1;
		cmd->arglen = len - vlen - 1;
	}
	if (smtp_cmd_has_control(cmd->arg, cmd->arglen))
		return cmd->err = SMTP_CMD_ERR_CONTROL;
	switch (vi->argmode) {
	case SMTP_ARG_NONE:
		cmd->err = cmd->arglen == 0 ? SMTP_CMD_OK : SMTP_CMD_ERR_SYNTAX;
		break;
	case SMTP_ARG_OPTIONAL:
		cmd->err = SMTP_CMD_OK;
		break;
	case SMTP_ARG_REQUIRED:
		cmd->err = cmd->arglen != 0 ? SMTP_CMD_OK : SMTP_CMD_ERR_SYNTAX;
		break;
	case SMTP_ARG_HELO:
		cmd->err = smtp_cmd_helo(cmd);
		break;
	case SMTP_ARG_MAIL:
	case SMTP_ARG_RCPT:
		cmd->err = smtp_cmd_path(cmd);
		break;
	}
	return cmd->err;
}

void
smtp_cmd_reply(const struct smtp_cmd *cmd, char *dst, size_t dstsz)
{
	const struct smtp_verb_info *vi = smtp_verb_info(cmd->verb);
	const char *text;

	switch (cmd->err) {
	case SMTP_CMD_OK:
		text = "250 2.0.0 Ok";
		break;
	case SMTP_CMD_ERR_UNRECOGNIZED:
		text = "500 5.5.2 Error: command not recognized";
		break;
	case SMTP_CMD_ERR_NOT_IMPLEMENTED:
		text = "502 5.5.1 Error: command not implemented";
		break;
	case SMTP_CMD_ERR_SYNTAX:
		snprintf(dst, dstsz, "501 5.5.4 Syntax: %s",
		    vi != NULL && vi->usage != NULL ? vi->usage : "command");
		return;
	case SMTP_CMD_ERR_CONTROL:
		text = "501 5.5.4 Error: control character in command";
		break;
	case SMTP_CMD_ERR_HELO_TOO_LONG:
		text = "501 5.5.4 Error: host name too long";
		break;
	case SMTP_CMD_ERR_PARAM_SYNTAX:
		text = "501 5.5.4 Error: bad parameter syntax";
		break;
	case SMTP_CMD_ERR_PARAM_DUP:
		text = "501 5.5.4 Error: duplicate parameter";
		break;
	case SMTP_CMD_ERR_PARAM_UNSUPPORTED:
		text = "555 5.5.4 Error: unsupported parameter";
		break;
	case SMTP_CMD_ERR_SENDER:
		text = "501 5.1.7 Error: bad sender address syntax";
		break;
	case SMTP_CMD_ERR_RCPT:
		text = "501 5.1.3 Error: bad recipient address syntax";
		break;
	case SMTP_CMD_ERR_PATH_TOO_LONG:
		text = "501 5.5.4 Error: path too long";
		break;
	default:
		text = "501 5.5.4 Error: syntax error";
		break;
	}
	snprintf(dst, dstsz, "%s", text);
}
