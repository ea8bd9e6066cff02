/*
 * smtp_client.c: the relay transport (see smtp_client.h).
 *
 * A job goes through three parts.  Routing: the next hop becomes a list
 * of targets (address, port, host name).  The session: targets are tried
 * in order until one greets, answers EHLO/LHLO and meets the TLS policy;
 * a failure there only moves on to the next target and is remembered,
 * so that when every target fails each recipient is deferred with the
 * last reason.  The transaction: each step returns what to do next: go
 * on, say QUIT and close (the server answered but the message cannot
 * go), or drop the connection (it broke; no QUIT is possible).  Results
 * are decided as replies come in: a refused RCPT is that recipient's
 * result, a refused MAIL, DATA or end of data is the result of every
 * recipient still open, and a broken connection gives every open
 * recipient code 0 with a diagnostic (the queue-manager retries).
 *
 * A transaction that ended with its final reply leaves the connection
 * clean (RFC 5321 4.1.4: no RSET needed), so it is kept for the next
 * job to the same next hop instead of saying QUIT.
 */
#include "config.h"

#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dns.h"
#include "dotstuff.h"
#include "job.h"
#include "mail/nexthop.h"
#include "selfaddr.h"
#include "smtp_client.h"
#include "smtp_conn.h"
#include "smtp_reply.h"
#include "tls_client.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/xmalloc.h"
#include "xtext.h"

/*
 * Pipelined envelope: MAIL, up to JOB_RCPT_MAX RCPTs of ~270 bytes plus
 * NOTIFY= and an xtext ORCPT= of up to 3 x MOAT_ORCPT_MAX bytes, DATA.
 */
#define SMTP_CLIENT_CMDS_MAX	(2 * 1024 * 1024)
/* The QUIT reply is not worth a long wait: results are already known. */
#define SMTP_CLIENT_QUIT_MS	10000

enum smtp_step {
	STEP_NEXT,	/* go on */
	STEP_QUIT,	/* say QUIT, then close */
	STEP_DROP,	/* close at once: the connection is broken */
	STEP_FATAL,	/* the queue-manager channel failed */
	STEP_SKIP,	/* this target will not do: close, try the next */
	STEP_RETRY,	/* a reused connection was dead: open a new one */
};

/* One connection to a server, kept across jobs when it ends clean. */
struct smtp_session {
	struct smtp_conn	 conn;		/* fd -1: none */
	struct smtp_ehlo	 ext;
	int			 esmtp;
	int			 lmtp;
	unsigned int		 uses;		/* messages sent on it */
	long long		 idle_since;	/* ms, monotonic */
	char			 nexthop[MOAT_NEXTHOP_MAX + 1];
	char			 relay[JOB_RELAY_MAX];
};

struct smtp_client {
	struct smtp_client_opts	 o;
	struct smtp_session	 s;
	int			 cached;	/* s is idle and may be reused */
	struct dns_result	*res;

	/* The job in hand. */
	struct job		*j;
	struct nexthop		 nh;
	size_t			 naccepted;	/* RCPTs answered 2xx */
	uint8_t			*accepted;	/* per recipient, for LMTP */
	int			 clean;		/* the final reply came: reusable */
	int			 skip_quit;	/* the passed-over server may get QUIT */
	int			 reused;	/* on a kept connection, no reply yet */
	/* Why the last target was passed over. */
	char			 skip_enh[JOB_ENH_MAX];
	char			 skip_text[MOAT_TEXT_MAX + 1];
};

static void smtp_client_quit(struct smtp_session *);

static long long
smtp_client_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The reply r becomes the result of every recipient still open. */
static void
smtp_client_reply_rest(struct smtp_client *sc, const struct smtp_reply *r,
    const char *stage)
{
	char text[MOAT_TEXT_MAX + 1];

	smtp_reply_oneline(r, text, sizeof(text));
	job_result_rest(sc->j, (unsigned int)r->code, r->enh, text, stage);
}

/* Describe a broken connection; returns the enhanced code. */
static const char *
smtp_client_lost_text(struct smtp_client *sc, const char *doing, char *text,
    size_t textsz)
{
	struct smtp_conn *c = &sc->s.conn;

	switch (c->fail) {
	case SMTP_CONN_TIMEOUT:
		snprintf(text, textsz, "conversation with %s timed out while %s",
		    sc->s.relay, doing);
		return "4.4.2";
	case SMTP_CONN_PROTO:
		snprintf(text, textsz, "malformed reply from %s while %s: %s",
		    sc->s.relay, doing, c->err);
		return "4.5.0";
	default:
		snprintf(text, textsz, "lost connection with %s while %s%s%s",
		    sc->s.relay, doing, c->err[0] != '\0' ? ": " : "", c->err);
		return "4.4.2";
	}
}

/*
 * The connection broke while doing something: defer every open
 * recipient.  A kept connection that breaks before its first reply was
 * closed by the server while idle: nothing is decided, a new one is made.
 */
static enum smtp_step
smtp_client_lost(struct smtp_client *sc, const char *doing)
{
	char text[MOAT_TEXT_MAX + 1];
	const char *enh;

	if (sc->reused)
		return STEP_RETRY;
	enh = smtp_client_lost_text(sc, doing, text, sizeof(text));
	job_result_rest(sc->j, 0, enh, text, NULL);
	return STEP_DROP;
}

/* This target is passed over: remember why, for the log and the results. */
static enum smtp_step
smtp_client_skip(struct smtp_client *sc, const char *enh, const char *text)
{
	char clean[MOAT_TEXT_MAX * 4 + 1];

	strlcpy_m(sc->skip_enh, enh, sizeof(sc->skip_enh));
	strlcpy_m(sc->skip_text, text, sizeof(sc->skip_text));
	log_sanitize(clean, sizeof(clean), text, strlen(text));
	log_info("id=%s relay=%s event=skip (%s)", sc->j->qid, sc->s.relay, clean);
	return STEP_SKIP;
}

/* The connection broke before the transaction: pass the target over. */
static enum smtp_step
smtp_client_skip_lost(struct smtp_client *sc, const char *doing)
{
	char text[MOAT_TEXT_MAX + 1];
	const char *enh;

	enh = smtp_client_lost_text(sc, doing, text, sizeof(text));
	return smtp_client_skip(sc, enh, text);
}

/*
 * A server refused the session (greeting, EHLO, HELO).  It is deferred
 * even for 5xx: RFC 5321 5.1 lets the client go on to another server,
 * and a server that will not talk says nothing about the recipients.
 */
static enum smtp_step
smtp_client_skip_reply(struct smtp_client *sc, const struct smtp_reply *r,
    const char *how)
{
	char text[MOAT_TEXT_MAX + 1], one[MOAT_TEXT_MAX - JOB_RELAY_MAX - 64];
	char enh[JOB_ENH_MAX];

	/* The server's text is cut so the whole diagnostic fits a result. */
	smtp_reply_oneline(r, one, sizeof(one));
	if (r->enh[0] != '\0')
		snprintf(enh, sizeof(enh), "4%s", r->enh + 1);
	else
		strlcpy_m(enh, "4.0.0", sizeof(enh));
	if (strcmp(how, "greeting") == 0)
		snprintf(text, sizeof(text), "host %s refused to talk to me: %d%s%s%s%s",
		    sc->s.relay, r->code, r->enh[0] != '\0' ? " " : "", r->enh,
		    one[0] != '\0' ? " " : "", one);
	else
		snprintf(text, sizeof(text), "host %s said: %d%s%s%s%s (in reply to "
		    "%s command)", sc->s.relay, r->code, r->enh[0] != '\0' ? " " : "",
		    r->enh, one[0] != '\0' ? " " : "", one, how);
	sc->skip_quit = r->code != 421;
	return smtp_client_skip(sc, enh, text);
}

static int
smtp_client_is2xx(const struct smtp_reply *r)
{
	return r->code >= 200 && r->code < 300;
}

/*
 * 421 means the server is closing the connection (RFC 5321 3.8): no more
 * replies will come, so it is the answer for every open recipient.
 */
static int
smtp_client_closing(struct smtp_client *sc, const struct smtp_reply *r,
    const char *stage)
{
	if (r->code != 421)
		return 0;
	smtp_client_reply_rest(sc, r, stage);
	return 1;
}

/* Send one command line and read its reply; NULL when the connection broke. */
static const struct smtp_reply *
smtp_client_command(struct smtp_client *sc, const char *line)
{
	if (smtp_conn_write(&sc->s.conn, line, strlen(line)) == -1)
		return NULL;
	return smtp_conn_reply(&sc->s.conn);
}

/* The greeting: anything but 2xx passes the target over. */
static enum smtp_step
smtp_client_greeting(struct smtp_client *sc)
{
	const struct smtp_reply *r;

	if ((r = smtp_conn_reply(&sc->s.conn)) == NULL)
		return smtp_client_skip_lost(sc,
		    "receiving the initial server greeting");
	if (!smtp_client_is2xx(r))
		return smtp_client_skip_reply(sc, r, "greeting");
	return STEP_NEXT;
}

/*
 * EHLO (LHLO for LMTP), or HELO when an SMTP server refuses EHLO
 * permanently (RFC 5321 3.2).  LMTP has no fallback (RFC 2033 4.1).
 */
static enum smtp_step
smtp_client_ehlo(struct smtp_client *sc)
{
	const struct smtp_reply *r;
	const char *verb = sc->s.lmtp ? "LHLO" : "EHLO";
	char line[MOAT_HELO_MAX + 8];

	memset(&sc->s.ext, 0, sizeof(sc->s.ext));
	sc->s.esmtp = 0;
	snprintf(line, sizeof(line), "%s %s\r\n", verb, sc->o.helo_name);
	if ((r = smtp_client_command(sc, line)) == NULL)
		return smtp_client_skip_lost(sc, sc->s.lmtp ?
		    "performing the LHLO handshake" : "performing the EHLO handshake");
	if (smtp_client_is2xx(r)) {
		sc->s.esmtp = 1;
		smtp_ehlo_parse(r, &sc->s.ext);
		return STEP_NEXT;
	}
	if (r->code < 500 || sc->s.lmtp)
		return smtp_client_skip_reply(sc, r, verb);
	snprintf(line, sizeof(line), "HELO %s\r\n", sc->o.helo_name);
	if ((r = smtp_client_command(sc, line)) == NULL)
		return smtp_client_skip_lost(sc, "performing the HELO handshake");
	if (!smtp_client_is2xx(r))
		return smtp_client_skip_reply(sc, r, "HELO");
	return STEP_NEXT;
}

/*
 * STARTTLS as the destination's policy asks.  Success means EHLO again
 * (RFC 3207 4.2: what was said before TLS is forgotten).
 */
static enum smtp_step
smtp_client_starttls(struct smtp_client *sc, const char *peer)
{
	enum tls_policy pol;
	enum tls_start st;
	char why[MOAT_TEXT_MAX + 1];
	int offered = sc->s.esmtp && sc->s.ext.starttls;

	if (sc->o.tls == NULL)
		return STEP_NEXT;
	pol = tls_client_policy(sc->o.tls, nexthop_domain(&sc->nh));
	why[0] = '\0';
	st = tls_client_start(sc->o.tls, &sc->s.conn, pol, peer, offered, why,
	    sizeof(why));
	if (st == TLS_START_PLAIN)
		return STEP_NEXT;
	if (st == TLS_START_FAIL) {
		/* Not offered: nothing was sent, the server may get QUIT. */
		sc->skip_quit = !offered;
		return smtp_client_skip(sc, offered ? "4.7.5" : "4.7.4",
		    why[0] != '\0' ? why : "TLS failed");
	}
	return smtp_client_ehlo(sc);
}

/* One line per connection: what the server offers. */
static void
smtp_client_log_connect(const struct smtp_client *sc)
{
	const struct smtp_session *s = &sc->s;
	char size[32], tls[sizeof(s->conn.tls) + 8] = "";

	if (s->conn.tls[0] != '\0')
		snprintf(tls, sizeof(tls), " tls=\"%s\"", s->conn.tls);
	if (!s->esmtp) {
		log_info("id=%s relay=%s event=connect proto=smtp esmtp=no",
		    sc->j->qid, s->relay);
		return;
	}
	if (!s->ext.size)
		strlcpy_m(size, "no", sizeof(size));
	else if (s->ext.size_max == 0)
		strlcpy_m(size, "unlimited", sizeof(size));
	else
		snprintf(size, sizeof(size), "%llu", (unsigned long long)s->ext.size_max);
	log_info("id=%s relay=%s event=connect proto=%s esmtp=yes pipelining=%s "
	    "size=%s 8bitmime=%s dsn=%s%s", sc->j->qid, s->relay,
	    s->lmtp ? "lmtp" : "smtp", s->ext.pipelining ? "yes" : "no", size,
	    s->ext.eightbitmime ? "yes" : "no", s->ext.dsn ? "yes" : "no", tls);
}

/* Name a target "host[address]:port" in s.relay. */
static void
smtp_client_name(struct smtp_client *sc, const struct dns_target *t)
{
	char addr[INET6_ADDRSTRLEN], tail[INET6_ADDRSTRLEN + 16];
	const char *host;
	unsigned int port;
	size_t room;

	if (sockaddr_numeric((const struct sockaddr *)&t->ss, addr, sizeof(addr),
	    &port) == -1) {
		strlcpy_m(addr, "?", sizeof(addr));
		port = 0;
	}
	host = t->host[0] != '\0' ? t->host : addr;
	snprintf(tail, sizeof(tail), "[%s]:%u", addr, port);
	/* A very long host name is cut so the address and port stay. */
	room = sizeof(sc->s.relay) - 1 - strlen(tail);
	snprintf(sc->s.relay, sizeof(sc->s.relay), "%.*s%s",
	    (int)(strlen(host) < room ? strlen(host) : room), host, tail);
}

/* Connect to one target and get it ready for MAIL FROM. */
static enum smtp_step
smtp_client_session(struct smtp_client *sc, const struct dns_target *t)
{
	char text[MOAT_TEXT_MAX + 1], addr[INET6_ADDRSTRLEN];
	const char *peer = t->host;
	unsigned int port;
	enum smtp_step st;

	smtp_client_name(sc, t);
	sc->s.lmtp = sc->nh.proto == NEXTHOP_LMTP;
	sc->s.uses = 0;
	if (smtp_conn_open(&sc->s.conn, (const struct sockaddr *)&t->ss, t->sslen,
	    sc->o.connect_timeout_ms, sc->o.timeout_ms) == -1) {
		snprintf(text, sizeof(text), "connect to %s: %s", sc->s.relay,
		    sc->s.conn.err);
		smtp_conn_close(&sc->s.conn);
		return smtp_client_skip(sc, "4.4.1", text);
	}
	if (peer[0] == '\0' && sockaddr_numeric((const struct sockaddr *)&t->ss,
	    addr, sizeof(addr), &port) == 0)
		peer = addr;
	if ((st = smtp_client_greeting(sc)) == STEP_NEXT &&
	    (st = smtp_client_ehlo(sc)) == STEP_NEXT)
		st = smtp_client_starttls(sc, peer);
	if (st != STEP_NEXT) {
		/* A server that answered is told goodbye (RFC 5321 3.1). */
		if (sc->skip_quit)
			smtp_client_quit(&sc->s);
		sc->skip_quit = 0;
		smtp_conn_close(&sc->s.conn);
		return st;
	}
	strlcpy_m(sc->s.nexthop, sc->j->nexthop, sizeof(sc->s.nexthop));
	strlcpy_m(sc->j->relay, sc->s.relay, sizeof(sc->j->relay));
	strlcpy_m(sc->j->tls, sc->s.conn.tls, sizeof(sc->j->tls));
	smtp_client_log_connect(sc);
	return STEP_NEXT;
}

/* RFC 1870: do not send what the server has said it will refuse. */
static enum smtp_step
smtp_client_size_check(struct smtp_client *sc)
{
	char text[MOAT_TEXT_MAX + 1];

	if (!sc->s.ext.size || sc->s.ext.size_max == 0 ||
	    sc->j->size <= sc->s.ext.size_max)
		return STEP_NEXT;
	snprintf(text, sizeof(text), "message size %llu exceeds size limit %llu "
	    "of server %s", (unsigned long long)sc->j->size,
	    (unsigned long long)sc->s.ext.size_max, sc->j->relay);
	job_result_rest(sc->j, 552, "5.3.4", text, NULL);
	return STEP_QUIT;
}

/*
 * The reply to MAIL FROM on a kept connection: a 421 there is the
 * server's idle time-out, not an answer to this message.
 */
static enum smtp_step
smtp_client_first_reply(struct smtp_client *sc, const struct smtp_reply *r)
{
	int reused = sc->reused;

	sc->reused = 0;
	return reused && r->code == 421 ? STEP_RETRY : STEP_NEXT;
}

/* "MAIL FROM:<sender>" and the parameters this server understands. */
static void
smtp_client_mail_cmd(const struct smtp_client *sc, struct buf *b)
{
	char envid[MOAT_ENVID_MAX * 3 + 1];

	(void)buf_printf(b, "MAIL FROM:<%s>", sc->j->sender);
	if (sc->s.ext.size)
		(void)buf_printf(b, " SIZE=%llu", (unsigned long long)sc->j->size);
	/* RFC 6152 asks for BODY=8BITMIME only where the server offers it;
	 * like Postfix, 8-bit mail to an old server still goes, as is. */
	if (sc->j->body_type == MOAT_BODY_8BITMIME && sc->s.ext.eightbitmime)
		(void)buf_append_str(b, " BODY=8BITMIME");
	if (sc->s.ext.dsn) {
		if (sc->j->dsn_ret == MOAT_RET_FULL)
			(void)buf_append_str(b, " RET=FULL");
		else if (sc->j->dsn_ret == MOAT_RET_HDRS)
			(void)buf_append_str(b, " RET=HDRS");
		if (sc->j->envid[0] != '\0' &&
		    xtext_encode(sc->j->envid, envid, sizeof(envid)) != (size_t)-1)
			(void)buf_printf(b, " ENVID=%s", envid);
	}
	(void)buf_append_str(b, "\r\n");
}

/* NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1). */
static void
smtp_client_notify(uint32_t n, struct buf *b)
{
	const char *sep = " NOTIFY=";

	if (n == 0)
		return;
	if (n & MOAT_NOTIFY_NEVER) {
		(void)buf_append_str(b, " NOTIFY=NEVER");
		return;
	}
	if (n & MOAT_NOTIFY_SUCCESS) {
		(void)buf_printf(b, "%sSUCCESS", sep);
		sep = ",";
	}
	if (n & MOAT_NOTIFY_FAILURE) {
		(void)buf_printf(b, "%sFAILURE", sep);
		sep = ",";
	}
	if (n & MOAT_NOTIFY_DELAY)
		(void)buf_printf(b, "%sDELAY", sep);
}

/*
 * "RCPT TO:<mailbox>", with NOTIFY= and ORCPT= when the server offers
 * DSN; job_decode() has checked the mailbox's syntax and the ORCPT's
 * form, and the ORCPT address goes out xtext-encoded.
 */
static void
smtp_client_rcpt_cmd(const struct smtp_client *sc, size_t i, struct buf *b)
{
	const struct job_rcpt *rc = &sc->j->rcpt[i];
	char enc[MOAT_ORCPT_MAX * 3 + 1];
	const char *semi;

	(void)buf_printf(b, "RCPT TO:<%s>", rc->mailbox);
	if (sc->s.ext.dsn) {
		smtp_client_notify(rc->notify, b);
		if ((semi = strchr(rc->orcpt, ';')) != NULL &&
		    xtext_encode(semi + 1, enc, sizeof(enc)) != (size_t)-1)
			(void)buf_printf(b, " ORCPT=%.*s;%s", (int)(semi - rc->orcpt),
			    rc->orcpt, enc);
	}
	(void)buf_append_str(b, "\r\n");
}

/*
 * A RCPT reply: the recipient is accepted (it stays open, for the reply
 * to the end of data), or the reply is its result.  A server with DSN
 * got its NOTIFY/ORCPT: it will report on it itself.
 */
static void
smtp_client_rcpt_reply(struct smtp_client *sc, size_t i, const struct smtp_reply *r)
{
	char text[MOAT_TEXT_MAX + 1];

	if (sc->s.ext.dsn)
		sc->j->rcpt[i].flags |= MOAT_RESULT_DSN_PASSED;
	if (smtp_client_is2xx(r)) {
		sc->naccepted++;
		sc->accepted[i] = 1;
		return;
	}
	smtp_reply_oneline(r, text, sizeof(text));
	job_result(sc->j, i, (unsigned int)r->code, r->enh, text,
	    "in reply to RCPT TO command");
}

/*
 * The reply to DATA.  354 with nobody accepted (a server may do that
 * after a pipelined DATA) gets an empty message ended at once, which the
 * server must refuse; it is never given the body.
 */
static enum smtp_step
smtp_client_data_reply(struct smtp_client *sc, const struct smtp_reply *r)
{
	if (r->code == 354 && sc->naccepted > 0)
		return STEP_NEXT;
	if (r->code == 354) {
		if (smtp_client_command(sc, ".\r\n") == NULL)
			return STEP_DROP;
		return STEP_QUIT;
	}
	if (sc->naccepted > 0)
		smtp_client_reply_rest(sc, r, "in reply to DATA command");
	return STEP_QUIT;
}

/* RFC 2920: MAIL, every RCPT and DATA in one write, replies in order. */
static enum smtp_step
smtp_client_envelope_pipelined(struct smtp_client *sc)
{
	const struct smtp_reply *r;
	struct buf b;
	size_t i;
	int mail_ok, w;

	buf_init(&b, SMTP_CLIENT_CMDS_MAX);
	smtp_client_mail_cmd(sc, &b);
	for (i = 0; i < sc->j->nrcpt; i++)
		smtp_client_rcpt_cmd(sc, i, &b);
	w = buf_append_str(&b, "DATA\r\n");
	if (w == 0)
		w = smtp_conn_write(&sc->s.conn, b.data, b.len);
	buf_free(&b);
	if (w == -1)
		return smtp_client_lost(sc, "sending the envelope");
	if ((r = smtp_conn_reply(&sc->s.conn)) == NULL)
		return smtp_client_lost(sc, "sending MAIL FROM");
	if (smtp_client_first_reply(sc, r) == STEP_RETRY)
		return STEP_RETRY;
	if (!(mail_ok = smtp_client_is2xx(r)))
		smtp_client_reply_rest(sc, r, "in reply to MAIL FROM command");
	if (r->code == 421)
		return STEP_DROP;
	for (i = 0; i < sc->j->nrcpt; i++) {
		if ((r = smtp_conn_reply(&sc->s.conn)) == NULL)
			return smtp_client_lost(sc, "sending RCPT TO");
		if (smtp_client_closing(sc, r, "in reply to RCPT TO command"))
			return STEP_DROP;
		if (mail_ok)
			smtp_client_rcpt_reply(sc, i, r);
	}
	if ((r = smtp_conn_reply(&sc->s.conn)) == NULL)
		return smtp_client_lost(sc, "sending DATA command");
	return smtp_client_data_reply(sc, r);
}

/* Without PIPELINING: one command, one reply. */
static enum smtp_step
smtp_client_envelope_serial(struct smtp_client *sc)
{
	const struct smtp_reply *r;
	struct buf b;
	size_t i;

	buf_init(&b, SMTP_CLIENT_CMDS_MAX);
	smtp_client_mail_cmd(sc, &b);
	r = smtp_client_command(sc, (const char *)b.data);
	buf_free(&b);
	if (r == NULL)
		return smtp_client_lost(sc, "sending MAIL FROM");
	if (smtp_client_first_reply(sc, r) == STEP_RETRY)
		return STEP_RETRY;
	if (!smtp_client_is2xx(r)) {
		smtp_client_reply_rest(sc, r, "in reply to MAIL FROM command");
		return r->code == 421 ? STEP_DROP : STEP_QUIT;
	}
	for (i = 0; i < sc->j->nrcpt; i++) {
		buf_init(&b, SMTP_CLIENT_CMDS_MAX);
		smtp_client_rcpt_cmd(sc, i, &b);
		r = smtp_client_command(sc, (const char *)b.data);
		buf_free(&b);
		if (r == NULL)
			return smtp_client_lost(sc, "sending RCPT TO");
		if (smtp_client_closing(sc, r, "in reply to RCPT TO command"))
			return STEP_DROP;
		smtp_client_rcpt_reply(sc, i, r);
	}
	if (sc->naccepted == 0)
		return STEP_QUIT;
	if ((r = smtp_client_command(sc, "DATA\r\n")) == NULL)
		return smtp_client_lost(sc, "sending DATA command");
	return smtp_client_data_reply(sc, r);
}

/* A write of the body failed: use the server's reply if it left one. */
static enum smtp_step
smtp_client_body_lost(struct smtp_client *sc)
{
	const struct smtp_reply *r;

	r = smtp_conn_reply_buffered(&sc->s.conn);
	if (r != NULL && r->code >= 400) {
		smtp_client_reply_rest(sc, r, "while sending message body");
		return STEP_DROP;
	}
	return smtp_client_lost(sc, "sending message body");
}

/* SMTP: one reply to the end of data, for every accepted recipient. */
static enum smtp_step
smtp_client_dot_smtp(struct smtp_client *sc)
{
	const struct smtp_reply *r;

	if ((r = smtp_conn_reply(&sc->s.conn)) == NULL)
		return smtp_client_lost(sc, "sending end of data -- message may be "
		    "sent more than once");
	smtp_client_reply_rest(sc, r, "in reply to end of DATA command");
	if (r->code == 421)
		return STEP_DROP;
	sc->clean = 1;
	return STEP_QUIT;
}

/*
 * LMTP (RFC 2033 4.2): one reply per accepted recipient, in RCPT order,
 * each that recipient's own result; 2xx means it is in the mailbox.
 */
static enum smtp_step
smtp_client_dot_lmtp(struct smtp_client *sc)
{
	const struct smtp_reply *r;
	char text[MOAT_TEXT_MAX + 1];
	size_t i;

	for (i = 0; i < sc->j->nrcpt; i++) {
		if (!sc->accepted[i])
			continue;
		if ((r = smtp_conn_reply(&sc->s.conn)) == NULL)
			return smtp_client_lost(sc, "sending end of data -- message "
			    "may be sent more than once");
		if (smtp_client_closing(sc, r, "in reply to end of DATA command"))
			return STEP_DROP;
		smtp_reply_oneline(r, text, sizeof(text));
		job_result(sc->j, i, (unsigned int)r->code, r->enh, text,
		    "in reply to end of DATA command");
		if (smtp_client_is2xx(r))
			sc->j->rcpt[i].flags |= MOAT_RESULT_FINAL;
	}
	sc->clean = 1;
	return STEP_QUIT;
}

/* Stream the body from the queue-manager, dot-stuffed, then CRLF.CRLF. */
static enum smtp_step
smtp_client_body(struct smtp_client *sc)
{
	struct dotstuff ds;
	const uint8_t *p;
	uint8_t *out;
	size_t n, o;
	int got;

	out = xmalloc(DOTSTUFF_OUT_MAX(IPC_DATA_CHUNK));
	dotstuff_init(&ds);
	while ((got = job_body_next(sc->j, &p, &n)) == 1) {
		o = dotstuff_encode(&ds, p, n, out);
		if (o != 0 && smtp_conn_write(&sc->s.conn, out, o) == -1) {
			free(out);
			return smtp_client_body_lost(sc);
		}
	}
	if (got == -1) {
		free(out);
		return STEP_FATAL;
	}
	o = dotstuff_finish(&ds, out);
	got = smtp_conn_write(&sc->s.conn, out, o);
	free(out);
	if (got == -1 || smtp_conn_flush(&sc->s.conn) == -1)
		return smtp_client_body_lost(sc);
	if (sc->s.lmtp)
		return smtp_client_dot_lmtp(sc);
	return smtp_client_dot_smtp(sc);
}

/* One message on a ready session, from MAIL FROM to the final reply. */
static enum smtp_step
smtp_client_transaction(struct smtp_client *sc)
{
	enum smtp_step st;

	sc->s.uses++;
	if ((st = smtp_client_size_check(sc)) != STEP_NEXT)
		return st;
	if (sc->s.ext.pipelining)
		st = smtp_client_envelope_pipelined(sc);
	else
		st = smtp_client_envelope_serial(sc);
	if (st != STEP_NEXT)
		return st;
	return smtp_client_body(sc);
}

/* Say goodbye politely; the answer changes nothing. */
static void
smtp_client_quit(struct smtp_session *s)
{
	if (s->conn.timeout_ms > SMTP_CLIENT_QUIT_MS)
		s->conn.timeout_ms = SMTP_CLIENT_QUIT_MS;
	if (smtp_conn_write(&s->conn, "QUIT\r\n", 6) == 0)
		(void)smtp_conn_reply(&s->conn);
}

/* Every open recipient gets the same diagnostic; relay "none". */
static void
smtp_client_fail_all(struct smtp_client *sc, unsigned int code, const char *enh,
    const char *text)
{
	strlcpy_m(sc->j->relay, "none", sizeof(sc->j->relay));
	job_result_rest(sc->j, code, enh, text, NULL);
}

/*
 * The next hop, parsed strictly: the queue-manager's word is checked
 * like any other.  -1 when every recipient already has its result.
 */
static int
smtp_client_parse_hop(struct smtp_client *sc)
{
	char clean[MOAT_NEXTHOP_MAX * 4 + 1];

	if (nexthop_parse(sc->j->nexthop, &sc->nh) == -1) {
		log_sanitize(clean, sizeof(clean), sc->j->nexthop,
		    strlen(sc->j->nexthop));
		log_warnx("id=%s event=nexthop status=invalid nexthop=\"%s\"",
		    sc->j->qid, clean);
		smtp_client_fail_all(sc, 0, "4.3.5", "bad next hop");
		return -1;
	}
	if (sc->nh.kind == NEXTHOP_UNIX) {
		/* The relay agent is chrooted in an empty directory and may
		 * create TCP sockets only: it cannot reach a socket path. */
		smtp_client_fail_all(sc, 0, "4.3.5",
		    "lmtp:unix is not supported by this build");
		return -1;
	}
	return 0;
}

/*
 * The targets of the next hop in sc->res.  -1 when routing already
 * decided every recipient (null MX, no such domain, DNS failure).
 */
static int
smtp_client_route(struct smtp_client *sc)
{
	struct dns_result *res = sc->res;
	const char *dom = nexthop_domain(&sc->nh);
	char text[MOAT_TEXT_MAX + 1];

	memset(res, 0, sizeof(*res));
	if (sc->nh.kind == NEXTHOP_HOST && dns_literal(sc->nh.host, sc->nh.port,
	    &res->t[0].ss, &res->t[0].sslen) == 0) {
		res->status = DNS_OK;
		res->n = 1;
	} else if (sc->o.resolve == NULL) {
		res->status = DNS_TEMPFAIL;
		snprintf(res->why, sizeof(res->why), "no resolver for %s", dom);
	} else
		sc->o.resolve(&sc->nh, res);
	switch (res->status) {
	case DNS_OK:
		if (res->n > 0)
			return 0;
		snprintf(text, sizeof(text), "no address for %s", dom);
		smtp_client_fail_all(sc, 0, "4.4.3", text);
		return -1;
	case DNS_NULLMX:
		snprintf(text, sizeof(text), "Domain %s does not accept mail "
		    "(null MX)", dom);
		smtp_client_fail_all(sc, 556, "5.1.10", text);
		return -1;
	case DNS_NOTFOUND:
		smtp_client_fail_all(sc, 550, "5.1.2", res->why[0] != '\0' ?
		    res->why : "Host or domain name not found");
		return -1;
	default:
		smtp_client_fail_all(sc, 0, "4.4.3", res->why[0] != '\0' ?
		    res->why : "temporary DNS failure");
		return -1;
	}
}

/*
 * Try the targets in order until one is ready for MAIL FROM.  0 with the
 * session open, -1 when every recipient has its result.
 */
static int
smtp_client_connect(struct smtp_client *sc)
{
	const struct dns_result *res = sc->res;
	size_t i, tried = 0;
	char text[MOAT_TEXT_MAX + 1];

	for (i = 0; i < res->n; i++) {
		const struct dns_target *t = &res->t[i];

		if (selfaddr_match(sc->o.self, (const struct sockaddr *)&t->ss)) {
			smtp_client_name(sc, t);
			strlcpy_m(sc->j->relay, sc->s.relay, sizeof(sc->j->relay));
			log_info("id=%s relay=%s event=skip (mail loops back to "
			    "myself)", sc->j->qid, sc->s.relay);
			continue;
		}
		tried++;
		if (smtp_client_session(sc, t) == STEP_NEXT)
			return 0;
		strlcpy_m(sc->j->relay, sc->s.relay, sizeof(sc->j->relay));
	}
	if (tried == 0) {
		snprintf(text, sizeof(text), "mail for %s loops back to myself",
		    nexthop_domain(&sc->nh));
		job_result_rest(sc->j, 554, "5.4.6", text, NULL);
		return -1;
	}
	job_result_rest(sc->j, 0, sc->skip_enh, sc->skip_text, NULL);
	return -1;
}

/*
 * Reuse the kept connection if it is for this next hop and the server
 * has not closed it (nothing may be readable on an idle connection: an
 * end of file, or a 421 before closing).  Anything else closes it.
 */
static int
smtp_client_reuse(struct smtp_client *sc)
{
	struct pollfd pfd;

	if (!sc->cached)
		return 0;
	sc->cached = 0;
	if (strcmp(sc->s.nexthop, sc->j->nexthop) != 0) {
		smtp_client_quit(&sc->s);
		smtp_conn_close(&sc->s.conn);
		return 0;
	}
	pfd.fd = sc->s.conn.fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) != 0) {
		log_debug("id=%s relay=%s event=reuse status=closed", sc->j->qid,
		    sc->s.relay);
		smtp_conn_close(&sc->s.conn);
		return 0;
	}
	sc->s.conn.timeout_ms = sc->o.timeout_ms;
	sc->reused = 1;
	strlcpy_m(sc->j->relay, sc->s.relay, sizeof(sc->j->relay));
	strlcpy_m(sc->j->tls, sc->s.conn.tls, sizeof(sc->j->tls));
	log_info("id=%s relay=%s event=reuse count=%u", sc->j->qid, sc->s.relay,
	    sc->s.uses + 1);
	return 1;
}

/* After the transaction: keep the connection, say QUIT, or drop it. */
static void
smtp_client_done(struct smtp_client *sc, enum smtp_step st)
{
	if (smtp_conn_bare_lf(&sc->s.conn))
		log_warn("id=%s relay=%s server sends bare LF line ends",
		    sc->j->qid, sc->s.relay);
	if (st == STEP_QUIT && sc->clean && sc->s.uses < sc->o.reuse_limit) {
		sc->cached = 1;
		sc->s.idle_since = smtp_client_now_ms();
		return;
	}
	if (st == STEP_QUIT)
		smtp_client_quit(&sc->s);
	smtp_conn_close(&sc->s.conn);
}

struct smtp_client *
smtp_client_new(const struct smtp_client_opts *o)
{
	struct smtp_client *sc = xcalloc(1, sizeof(*sc));

	sc->o = *o;
	sc->s.conn.fd = -1;
	sc->res = xcalloc(1, sizeof(*sc->res));
	return sc;
}

void
smtp_client_free(struct smtp_client *sc)
{
	if (sc == NULL)
		return;
	smtp_client_uncache(sc, "exit");
	free(sc->res);
	free(sc);
}

/* A new connection for the job: routing, then the targets in order. */
static int
smtp_client_open(struct smtp_client *sc)
{
	return smtp_client_route(sc) == -1 || smtp_client_connect(sc) == -1 ?
	    -1 : 0;
}

int
smtp_client_deliver(struct smtp_client *sc, struct job *j)
{
	enum smtp_step st;

	sc->j = j;
	sc->naccepted = 0;
	sc->clean = 0;
	sc->reused = 0;
	sc->skip_enh[0] = sc->skip_text[0] = '\0';
	sc->accepted = xcalloc(j->nrcpt, 1);
	if (smtp_client_parse_hop(sc) == -1 || (!smtp_client_reuse(sc) &&
	    smtp_client_open(sc) == -1)) {
		free(sc->accepted);
		sc->accepted = NULL;
		return 0;
	}
	st = smtp_client_transaction(sc);
	if (st == STEP_RETRY) {
		log_info("id=%s relay=%s event=reuse status=closed-by-server",
		    j->qid, sc->s.relay);
		smtp_conn_close(&sc->s.conn);
		sc->reused = 0;
		if (smtp_client_open(sc) == -1) {
			free(sc->accepted);
			sc->accepted = NULL;
			return 0;
		}
		st = smtp_client_transaction(sc);
	}
	smtp_client_done(sc, st);
	free(sc->accepted);
	sc->accepted = NULL;
	return st == STEP_FATAL ? -1 : 0;
}

const char *
smtp_client_cached(const struct smtp_client *sc)
{
	return sc->cached ? sc->s.nexthop : NULL;
}

int
smtp_client_cached_fd(const struct smtp_client *sc)
{
	return sc->cached ? sc->s.conn.fd : -1;
}

int
smtp_client_idle_left(const struct smtp_client *sc)
{
	long long left;

	if (!sc->cached)
		return -1;
	left = sc->s.idle_since + sc->o.idle_ms - smtp_client_now_ms();
	if (left < 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

void
smtp_client_uncache(struct smtp_client *sc, const char *why)
{
	struct pollfd pfd;

	if (!sc->cached)
		return;
	sc->cached = 0;
	pfd.fd = sc->s.conn.fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	/* A server that has closed, or said 421, gets no QUIT. */
	if (poll(&pfd, 1, 0) == 0)
		smtp_client_quit(&sc->s);
	log_debug("relay=%s event=uncache reason=%s uses=%u", sc->s.relay, why,
	    sc->s.uses);
	smtp_conn_close(&sc->s.conn);
}
