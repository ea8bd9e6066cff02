/*
 * smtp_client.c: the relay transport (see smtp_client.h).
 *
 * The conversation is a short sequence of steps; each returns what to do
 * next: go on, say QUIT and close (the server answered but the message
 * cannot go), or drop the connection (it broke; no QUIT is possible).
 * Results are decided as replies come in: a refused RCPT is that
 * recipient's result, a refused MAIL, DATA or end of data is the result
 * of every recipient still open, and a broken connection gives every
 * open recipient code 0 with a diagnostic (the queue-manager retries).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dotstuff.h"
#include "job.h"
#include "smtp_client.h"
#include "smtp_conn.h"
#include "smtp_reply.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/xmalloc.h"

/* Pipelined envelope: MAIL, up to JOB_RCPT_MAX RCPTs of ~270 bytes, DATA. */
#define SMTP_CLIENT_CMDS_MAX	(512 * 1024)
/* The QUIT reply is not worth a long wait: results are already known. */
#define SMTP_CLIENT_QUIT_MS	10000

enum smtp_step {
	STEP_NEXT,	/* go on */
	STEP_QUIT,	/* say QUIT, then close */
	STEP_DROP,	/* close at once: the connection is broken */
	STEP_FATAL,	/* the queue-manager channel failed */
};

struct smtp_client {
	struct job			*j;
	const struct smtp_client_opts	*o;
	struct smtp_conn		 conn;
	struct smtp_ehlo		 ext;
	int				 esmtp;
	size_t				 naccepted;	/* RCPTs answered 2xx */
};

/* The reply r becomes the result of every recipient still open. */
static void
smtp_client_reply_rest(struct smtp_client *sc, const struct smtp_reply *r,
    const char *stage)
{
	char text[MOAT_TEXT_MAX + 1];

	smtp_reply_oneline(r, text, sizeof(text));
	job_result_rest(sc->j, (unsigned int)r->code, r->enh, text, stage);
}

/* The connection broke while doing something: defer every open recipient. */
static enum smtp_step
smtp_client_lost(struct smtp_client *sc, const char *doing)
{
	struct smtp_conn *c = &sc->conn;
	char text[MOAT_TEXT_MAX + 1];
	const char *enh = "4.4.2";

	switch (c->fail) {
	case SMTP_CONN_TIMEOUT:
		snprintf(text, sizeof(text), "conversation with %s timed out "
		    "while %s", sc->j->relay, doing);
		break;
	case SMTP_CONN_PROTO:
		snprintf(text, sizeof(text), "malformed reply from %s while %s: %s",
		    sc->j->relay, doing, c->err);
		enh = "4.5.0";
		break;
	default:
		snprintf(text, sizeof(text), "lost connection with %s while %s%s%s",
		    sc->j->relay, doing, c->err[0] != '\0' ? ": " : "", c->err);
		break;
	}
	job_result_rest(sc->j, 0, enh, text, NULL);
	return STEP_DROP;
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

/* The greeting: anything but 2xx answers for every recipient. */
static enum smtp_step
smtp_client_greeting(struct smtp_client *sc)
{
	const struct smtp_reply *r;

	if ((r = smtp_conn_reply(&sc->conn)) == NULL)
		return smtp_client_lost(sc, "receiving the initial server greeting");
	if (!smtp_client_is2xx(r)) {
		smtp_client_reply_rest(sc, r, "in reply to the initial greeting");
		return STEP_QUIT;
	}
	return STEP_NEXT;
}

/* Send one command line and read its reply; NULL when the connection broke. */
static const struct smtp_reply *
smtp_client_command(struct smtp_client *sc, const char *line, const char *doing)
{
	const struct smtp_reply *r;

	if (smtp_conn_write(&sc->conn, line, strlen(line)) == -1) {
		smtp_client_lost(sc, doing);
		return NULL;
	}
	if ((r = smtp_conn_reply(&sc->conn)) == NULL)
		smtp_client_lost(sc, doing);
	return r;
}

/* EHLO, or HELO when the server refuses EHLO permanently (RFC 5321 3.2). */
static enum smtp_step
smtp_client_ehlo(struct smtp_client *sc)
{
	const struct smtp_reply *r;
	char line[MOAT_HELO_MAX + 8];

	snprintf(line, sizeof(line), "EHLO %s\r\n", sc->o->helo_name);
	if ((r = smtp_client_command(sc, line, "performing the EHLO handshake")) == NULL)
		return STEP_DROP;
	if (smtp_client_is2xx(r)) {
		sc->esmtp = 1;
		smtp_ehlo_parse(r, &sc->ext);
		return STEP_NEXT;
	}
	if (r->code < 500) {
		smtp_client_reply_rest(sc, r, "in reply to EHLO command");
		return STEP_QUIT;
	}
	snprintf(line, sizeof(line), "HELO %s\r\n", sc->o->helo_name);
	if ((r = smtp_client_command(sc, line, "performing the HELO handshake")) == NULL)
		return STEP_DROP;
	if (!smtp_client_is2xx(r)) {
		smtp_client_reply_rest(sc, r, "in reply to HELO command");
		return STEP_QUIT;
	}
	return STEP_NEXT;
}

/* One line per connection: what the server offers. */
static void
smtp_client_log_connect(const struct smtp_client *sc)
{
	char size[32];

	if (!sc->esmtp) {
		log_info("id=%s relay=%s event=connect esmtp=no", sc->j->qid,
		    sc->j->relay);
		return;
	}
	if (!sc->ext.size)
		strlcpy_m(size, "no", sizeof(size));
	else if (sc->ext.size_max == 0)
		strlcpy_m(size, "unlimited", sizeof(size));
	else
		snprintf(size, sizeof(size), "%llu", (unsigned long long)sc->ext.size_max);
	log_info("id=%s relay=%s event=connect esmtp=yes pipelining=%s size=%s "
	    "8bitmime=%s", sc->j->qid, sc->j->relay,
	    sc->ext.pipelining ? "yes" : "no", size,
	    sc->ext.eightbitmime ? "yes" : "no");
}

/* RFC 1870: do not send what the server has said it will refuse. */
static enum smtp_step
smtp_client_size_check(struct smtp_client *sc)
{
	char text[MOAT_TEXT_MAX + 1];

	if (!sc->ext.size || sc->ext.size_max == 0 || sc->j->size <= sc->ext.size_max)
		return STEP_NEXT;
	snprintf(text, sizeof(text), "message size %llu exceeds size limit %llu "
	    "of server %s", (unsigned long long)sc->j->size,
	    (unsigned long long)sc->ext.size_max, sc->j->relay);
	job_result_rest(sc->j, 552, "5.3.4", text, NULL);
	return STEP_QUIT;
}

/* "MAIL FROM:<sender>" and the parameters this server understands. */
static void
smtp_client_mail_cmd(const struct smtp_client *sc, struct buf *b)
{
	(void)buf_printf(b, "MAIL FROM:<%s>", sc->j->sender);
	if (sc->ext.size)
		(void)buf_printf(b, " SIZE=%llu", (unsigned long long)sc->j->size);
	/* RFC 6152 asks for BODY=8BITMIME only where the server offers it;
	 * like Postfix, 8-bit mail to an old server still goes, as is. */
	if (sc->j->body_type == MOAT_BODY_8BITMIME && sc->ext.eightbitmime)
		(void)buf_append_str(b, " BODY=8BITMIME");
	(void)buf_append_str(b, "\r\n");
}

/* "RCPT TO:<mailbox>"; job_decode() has checked the mailbox's syntax. */
static void
smtp_client_rcpt_cmd(const struct smtp_client *sc, size_t i, struct buf *b)
{
	(void)buf_printf(b, "RCPT TO:<%s>\r\n", sc->j->rcpt[i].mailbox);
}

/*
 * A RCPT reply: the recipient is accepted (it stays open, for the reply
 * to the end of data), or the reply is its result.
 */
static void
smtp_client_rcpt_reply(struct smtp_client *sc, size_t i, const struct smtp_reply *r)
{
	char text[MOAT_TEXT_MAX + 1];

	if (smtp_client_is2xx(r)) {
		sc->naccepted++;
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
		if (smtp_client_command(sc, ".\r\n", "ending an empty message") == NULL)
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
		w = smtp_conn_write(&sc->conn, b.data, b.len);
	buf_free(&b);
	if (w == -1)
		return smtp_client_lost(sc, "sending the envelope");
	if ((r = smtp_conn_reply(&sc->conn)) == NULL)
		return smtp_client_lost(sc, "sending MAIL FROM");
	if (!(mail_ok = smtp_client_is2xx(r)))
		smtp_client_reply_rest(sc, r, "in reply to MAIL FROM command");
	if (r->code == 421)
		return STEP_DROP;
	for (i = 0; i < sc->j->nrcpt; i++) {
		if ((r = smtp_conn_reply(&sc->conn)) == NULL)
			return smtp_client_lost(sc, "sending RCPT TO");
		if (smtp_client_closing(sc, r, "in reply to RCPT TO command"))
			return STEP_DROP;
		if (mail_ok)
			smtp_client_rcpt_reply(sc, i, r);
	}
	if ((r = smtp_conn_reply(&sc->conn)) == NULL)
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
	r = smtp_client_command(sc, (const char *)b.data, "sending MAIL FROM");
	buf_free(&b);
	if (r == NULL)
		return STEP_DROP;
	if (!smtp_client_is2xx(r)) {
		smtp_client_reply_rest(sc, r, "in reply to MAIL FROM command");
		return STEP_QUIT;
	}
	for (i = 0; i < sc->j->nrcpt; i++) {
		buf_init(&b, SMTP_CLIENT_CMDS_MAX);
		smtp_client_rcpt_cmd(sc, i, &b);
		r = smtp_client_command(sc, (const char *)b.data, "sending RCPT TO");
		buf_free(&b);
		if (r == NULL)
			return STEP_DROP;
		if (smtp_client_closing(sc, r, "in reply to RCPT TO command"))
			return STEP_DROP;
		smtp_client_rcpt_reply(sc, i, r);
	}
	if (sc->naccepted == 0)
		return STEP_QUIT;
	if ((r = smtp_client_command(sc, "DATA\r\n", "sending DATA command")) == NULL)
		return STEP_DROP;
	return smtp_client_data_reply(sc, r);
}

/* A write of the body failed: use the server's reply if it left one. */
static enum smtp_step
smtp_client_body_lost(struct smtp_client *sc)
{
	const struct smtp_reply *r;

	r = smtp_conn_reply_buffered(&sc->conn);
	if (r != NULL && r->code >= 400) {
		smtp_client_reply_rest(sc, r, "while sending message body");
		return STEP_DROP;
	}
	return smtp_client_lost(sc, "sending message body");
}

/* Stream the body from the queue-manager, dot-stuffed, then CRLF.CRLF. */
static enum smtp_step
smtp_client_body(struct smtp_client *sc)
{
	const struct smtp_reply *r;
	struct dotstuff ds;
	const uint8_t *p;
	uint8_t *out;
	size_t n, o;
	int got;

	out = xmalloc(DOTSTUFF_OUT_MAX(IPC_DATA_CHUNK));
	dotstuff_init(&ds);
	while ((got = job_body_next(sc->j, &p, &n)) == 1) {
		o = dotstuff_encode(&ds, p, n, out);
		if (o != 0 && smtp_conn_write(&sc->conn, out, o) == -1) {
			free(out);
			return smtp_client_body_lost(sc);
		}
	}
	if (got == -1) {
		free(out);
		return STEP_FATAL;
	}
	o = dotstuff_finish(&ds, out);
	got = smtp_conn_write(&sc->conn, out, o);
	free(out);
	if (got == -1)
		return smtp_client_body_lost(sc);
	if ((r = smtp_conn_reply(&sc->conn)) == NULL)
		return smtp_client_lost(sc, "sending end of data -- message may be "
		    "sent more than once");
	smtp_client_reply_rest(sc, r, "in reply to end of DATA command");
	return STEP_QUIT;
}

/* Say goodbye politely; the answer changes nothing. */
static void
smtp_client_quit(struct smtp_client *sc)
{
	if (sc->conn.timeout_ms > SMTP_CLIENT_QUIT_MS)
		sc->conn.timeout_ms = SMTP_CLIENT_QUIT_MS;
	if (smtp_conn_write(&sc->conn, "QUIT\r\n", 6) == 0)
		(void)smtp_conn_reply(&sc->conn);
}

/* The conversation, once connected. */
static enum smtp_step
smtp_client_converse(struct smtp_client *sc)
{
	enum smtp_step st;

	if ((st = smtp_client_greeting(sc)) != STEP_NEXT)
		return st;
	if ((st = smtp_client_ehlo(sc)) != STEP_NEXT)
		return st;
	smtp_client_log_connect(sc);
	if ((st = smtp_client_size_check(sc)) != STEP_NEXT)
		return st;
	if (sc->ext.pipelining)
		st = smtp_client_envelope_pipelined(sc);
	else
		st = smtp_client_envelope_serial(sc);
	if (st != STEP_NEXT)
		return st;
	return smtp_client_body(sc);
}

/* Name the next hop as "host[address]:port"; -1 if it is not an address. */
static int
smtp_client_nexthop(struct smtp_client *sc, struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN], text[MOAT_TEXT_MAX + 1];
	unsigned int port;

	if (sc->j->nexthop[0] == '\0' || hostport_parse(sc->j->nexthop, ss) == -1 ||
	    sockaddr_numeric((struct sockaddr *)ss, host, sizeof(host), &port) == -1) {
		strlcpy_m(sc->j->relay, "none", sizeof(sc->j->relay));
		if (sc->j->nexthop[0] == '\0')
			strlcpy_m(text, "no next hop (relay_host is empty)", sizeof(text));
		else
			snprintf(text, sizeof(text), "next hop \"%s\" is not "
			    "[address]:port (routing by DNS is not implemented)",
			    sc->j->nexthop);
		job_result_rest(sc->j, 0, "4.4.3", text, NULL);
		return -1;
	}
	snprintf(sc->j->relay, sizeof(sc->j->relay), "%s[%s]:%u", host, host, port);
	return 0;
}

int
smtp_client_deliver(struct job *j, const struct smtp_client_opts *o)
{
	struct smtp_client sc;
	struct sockaddr_storage ss;
	char text[MOAT_TEXT_MAX + 1];
	enum smtp_step st;
	socklen_t salen;

	memset(&sc, 0, sizeof(sc));
	sc.j = j;
	sc.o = o;
	sc.conn.fd = -1;
	if (smtp_client_nexthop(&sc, &ss) == -1)
		return 0;
	salen = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	if (smtp_conn_open(&sc.conn, (struct sockaddr *)&ss, salen,
	    o->connect_timeout_ms, o->timeout_ms) == -1) {
		snprintf(text, sizeof(text), "connect to %s: %s", j->relay, sc.conn.err);
		job_result_rest(j, 0, "4.4.1", text, NULL);
		smtp_conn_close(&sc.conn);
		return 0;
	}
	st = smtp_client_converse(&sc);
	if (st == STEP_QUIT)
		smtp_client_quit(&sc);
	if (smtp_conn_bare_lf(&sc.conn))
		log_warn("id=%s relay=%s server sends bare LF line ends", j->qid,
		    j->relay);
	smtp_conn_close(&sc.conn);
	return st == STEP_FATAL ? -1 : 0;
}
