/*
 * job.c: receive jobs and body chunks from the queue-manager, send back
 * results (see job.h for the exchange).  The queue-manager is trusted
 * more than a session, but a bug or a compromise there must not turn
 * into memory corruption or SMTP command injection here, so every field
 * is checked before use.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc_types.h"
#include "job.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/xmalloc.h"

void
job_init(struct job *j, int fd)
{
	memset(j, 0, sizeof(*j));
	j->fd = fd;
	j->buf = xmalloc(IPC_MAX_MSG);
}

void
job_clear(struct job *j)
{
	free(j->rcpt);
	j->rcpt = NULL;
	j->nrcpt = 0;
	j->id = 0;
	j->qid[0] = j->sender[0] = j->nexthop[0] = j->relay[0] = '\0';
	j->envid[0] = j->tls[0] = '\0';
	j->dsn_ret = 0;
	j->size = 0;
	j->body_type = 0;
	j->seq = 0;
	j->got = 0;
	j->eof = 0;
}

/* Say why a message was refused; always -1. */
__attribute__((format(printf, 3, 4))) static int
job_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Queue ids name maildir files and log lines: letters and digits only. */
static int
job_qid_valid(const char *q)
{
	size_t i, n = strlen(q);

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		char c = q[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
		    (c >= 'a' && c <= 'z')))
			return 0;
	}
	return 1;
}

/* RFC 3461 4.4: an ENVID is printable US-ASCII (space included). */
static int
job_envid_valid(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/*
 * NOTIFY: the four defined bits only, and NEVER alone (RFC 3461 4.1).
 */
static int
job_notify_valid(uint32_t n)
{
	const uint32_t all = MOAT_NOTIFY_NEVER | MOAT_NOTIFY_SUCCESS |
	    MOAT_NOTIFY_FAILURE | MOAT_NOTIFY_DELAY;

	if (n & ~all)
		return 0;
	return !(n & MOAT_NOTIFY_NEVER) || n == MOAT_NOTIFY_NEVER;
}

/*
 * ORCPT, decoded: "" or addr-type ";" address (RFC 3461 4.2), the type
 * an atom of letters, digits and '-', the address without control bytes.
 * It is xtext-encoded again on the way out, so other bytes are harmless.
 */
static int
job_orcpt_valid(const char *s)
{
	const char *semi;
	size_t i;

	if (*s == '\0')
		return 1;
	if ((semi = strchr(s, ';')) == NULL || semi == s || semi - s > 32 ||
	    semi[1] == '\0')
		return 0;
	for (i = 0; s + i < semi; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	for (s = semi + 1; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

/* Each recipient index may appear once: one result per index goes back. */
static int
job_indices_unique(const struct job *j)
{
	size_t a, b;

	for (a = 0; a < j->nrcpt; a++)
		for (b = a + 1; b < j->nrcpt; b++)
			if (j->rcpt[a].idx == j->rcpt[b].idx)
				return 0;
	return 1;
}

/* Read the recipients of an IPC_Q2D_JOB into j->rcpt. */
static int
job_decode_rcpts(struct job *j, struct ipc_rd *r, char *err, size_t errlen)
{
	uint32_t n, i;

	n = ipc_get_u32(r);
	if (r->err || n == 0 || n > JOB_RCPT_MAX)
		return job_fail(err, errlen, "bad recipient count %u", n);
	j->rcpt = xcalloc(n, sizeof(*j->rcpt));
	j->nrcpt = n;
	for (i = 0; i < n; i++) {
		struct job_rcpt *rc = &j->rcpt[i];

		rc->idx = ipc_get_u32(r);
		if (ipc_get_str(r, rc->mailbox, sizeof(rc->mailbox)) == -1)
			return job_fail(err, errlen, "recipient %u unreadable", i);
		if (addr_parse_mailbox(rc->mailbox, strlen(rc->mailbox),
		    &rc->addr) != ADDR_OK)
			return job_fail(err, errlen, "recipient %u is not a mailbox", i);
		rc->notify = ipc_get_u32(r);
		if (r->err || !job_notify_valid(rc->notify))
			return job_fail(err, errlen, "recipient %u: bad NOTIFY", i);
		if (ipc_get_str(r, rc->orcpt, sizeof(rc->orcpt)) == -1 ||
		    !job_orcpt_valid(rc->orcpt))
			return job_fail(err, errlen, "recipient %u: bad ORCPT", i);
	}
	if (!job_indices_unique(j))
		return job_fail(err, errlen, "recipient index repeated");
	return 0;
}

int
job_decode(struct job *j, const struct ipc_frame *f, char *err, size_t errlen)
{
	struct mailaddr a;
	struct ipc_rd r;

	job_clear(j);
	if (f->hdr.type != IPC_Q2D_JOB)
		return job_fail(err, errlen, "expected IPC_Q2D_JOB, got %s",
		    ipc_type_name(f->hdr.type));
	if (f->fd != -1)
		return job_fail(err, errlen, "unexpected descriptor with a job");
	ipc_rd_init(&r, f);
	j->id = ipc_get_u64(&r);
	if (ipc_get_str(&r, j->qid, sizeof(j->qid)) == -1 || !job_qid_valid(j->qid))
		return job_fail(err, errlen, "bad queue id");
	if (ipc_get_str(&r, j->sender, sizeof(j->sender)) == -1 ||
	    (j->sender[0] != '\0' &&
	    addr_parse_mailbox(j->sender, strlen(j->sender), &a) != ADDR_OK))
		return job_fail(err, errlen, "bad sender");
	j->size = ipc_get_u64(&r);
	j->body_type = ipc_get_u32(&r);
	if (r.err || (j->body_type != MOAT_BODY_7BIT &&
	    j->body_type != MOAT_BODY_8BITMIME))
		return job_fail(err, errlen, "bad body type");
	if (ipc_get_str(&r, j->nexthop, sizeof(j->nexthop)) == -1)
		return job_fail(err, errlen, "bad next hop");
	j->dsn_ret = ipc_get_u32(&r);
	if (r.err || j->dsn_ret > MOAT_RET_HDRS)
		return job_fail(err, errlen, "bad DSN RET");
	if (ipc_get_str(&r, j->envid, sizeof(j->envid)) == -1 ||
	    !job_envid_valid(j->envid))
		return job_fail(err, errlen, "bad DSN ENVID");
	if (job_decode_rcpts(j, &r, err, errlen) == -1)
		return -1;
	if (ipc_rd_end(&r) == -1)
		return job_fail(err, errlen, "trailing bytes after the job");
	return 0;
}

int
job_chunk_decode(struct job *j, const struct ipc_frame *f,
    const uint8_t **p, size_t *n, char *err, size_t errlen)
{
	struct ipc_rd r;
	uint64_t id;
	uint32_t seq, last;

	if (f->hdr.type != IPC_Q2D_CHUNK)
		return job_fail(err, errlen, "expected IPC_Q2D_CHUNK, got %s",
		    ipc_type_name(f->hdr.type));
	if (f->fd != -1)
		return job_fail(err, errlen, "unexpected descriptor with a chunk");
	ipc_rd_init(&r, f);
	id = ipc_get_u64(&r);
	seq = ipc_get_u32(&r);
	last = ipc_get_u32(&r);
	if (ipc_get_blob(&r, p, n, IPC_DATA_CHUNK) == -1 || ipc_rd_end(&r) == -1)
		return job_fail(err, errlen, "malformed chunk");
	if (id != j->id)
		return job_fail(err, errlen, "chunk for job %llu, not %llu",
		    (unsigned long long)id, (unsigned long long)j->id);
	if (seq != j->seq)
		return job_fail(err, errlen, "chunk %u, expected %u", seq, j->seq);
	if (last > 1 || (*n == 0 && !last))
		return job_fail(err, errlen, "chunk %u: bad last flag or empty", seq);
	if (*n > j->size - j->got ||
	    (last && j->got + *n != j->size))
		return job_fail(err, errlen, "body does not match its size %llu",
		    (unsigned long long)j->size);
	j->got += *n;
	j->seq++;
	j->eof = last;
	return 0;
}

/* Receive one message; 1, 0 on end of file, -1 with j->err set. */
static int
job_read(struct job *j, struct ipc_frame *f)
{
	const char *why = "?";
	int r;

	r = ipc_recv(j->fd, j->buf, f, &why);
	if (r == -1) {
		if (errno == EPROTO)
			snprintf(j->err, sizeof(j->err), "malformed message: %s", why);
		else
			snprintf(j->err, sizeof(j->err), "receive: %s", strerror(errno));
	} else if (r == 0)
		snprintf(j->err, sizeof(j->err), "queue-manager closed the channel");
	return r;
}

int
job_recv(struct job *j)
{
	struct ipc_frame f;
	int r;

	if ((r = job_read(j, &f)) != 1)
		return r;
	if (job_decode(j, &f, j->err, sizeof(j->err)) == -1) {
		if (f.fd != -1)
			close(f.fd);
		return -1;
	}
	return 1;
}

int
job_body_next(struct job *j, const uint8_t **p, size_t *n)
{
	struct ipc_wr w;
	struct ipc_frame f;
	int r;

	if (j->eof)
		return 0;
	ipc_wr_init(&w, IPC_D2Q_FETCH, 0);
	(void)ipc_put_u64(&w, j->id);
	(void)ipc_put_u32(&w, j->seq);
	r = ipc_send(j->fd, &w, -1);
	ipc_wr_free(&w);
	if (r == -1) {
		snprintf(j->err, sizeof(j->err), "send fetch: %s", strerror(errno));
		return -1;
	}
	if ((r = job_read(j, &f)) != 1)
		return -1;
	if (job_chunk_decode(j, &f, p, n, j->err, sizeof(j->err)) == -1) {
		if (f.fd != -1)
			close(f.fd);
		return -1;
	}
	return 1;
}

void
job_result(struct job *j, size_t i, unsigned int code, const char *enh,
    const char *text, const char *stage)
{
	struct job_rcpt *rc;
	size_t k;

	if (i >= j->nrcpt || j->rcpt[i].done)
		return;
	rc = &j->rcpt[i];
	rc->done = 1;
	rc->code = code;
	rc->stage = stage;
	strlcpy_m(rc->enh, enh != NULL ? enh : "", sizeof(rc->enh));
	strlcpy_m(rc->text, text != NULL ? text : "", sizeof(rc->text));
	for (k = 0; rc->text[k] != '\0'; k++) {
		unsigned char c = (unsigned char)rc->text[k];

		if (c < 0x20 || c >= 0x7f)
			rc->text[k] = '?';
	}
}

void
job_result_rest(struct job *j, unsigned int code, const char *enh,
    const char *text, const char *stage)
{
	size_t i;

	for (i = 0; i < j->nrcpt; i++)
		job_result(j, i, code, enh, text, stage);
}

int
job_pending(const struct job *j)
{
	size_t i;

	for (i = 0; i < j->nrcpt; i++)
		if (!j->rcpt[i].done)
			return 1;
	return 0;
}

/* Postfix's words for what a reply code means for the message. */
static const char *
job_status(unsigned int code)
{
	if (code >= 200 && code < 300)
		return "sent";
	if (code >= 500 && code < 600)
		return "bounced";
	return "deferred";
}

/* One log line per result, in Postfix's words. */
static void
job_log_result(const struct job *j, const struct job_rcpt *rc)
{
	char to[ADDR_MAILBOX_MAX * 4 + 1], text[MOAT_TEXT_MAX * 4 + 1];
	char dsn[JOB_ENH_MAX], reply[MOAT_TEXT_MAX * 4 + 64];
	char tls[JOB_TLS_MAX + 8] = "";
	const char *status = job_status(rc->code);

	log_sanitize(to, sizeof(to), rc->mailbox, strlen(rc->mailbox));
	log_sanitize(text, sizeof(text), rc->text, strlen(rc->text));
	if (rc->enh[0] != '\0')
		strlcpy_m(dsn, rc->enh, sizeof(dsn));
	else
		snprintf(dsn, sizeof(dsn), "%u.0.0",
		    rc->code >= 200 && rc->code < 600 ? rc->code / 100 : 4);
	if (j->tls[0] != '\0')
		snprintf(tls, sizeof(tls), " tls=\"%s\"", j->tls);
	if (rc->code == 0) {
		log_info("id=%s to=<%s> relay=%s%s dsn=%s status=%s (%s)", j->qid,
		    to, j->relay, tls, dsn, status, text);
		return;
	}
	snprintf(reply, sizeof(reply), "%u%s%s%s%s", rc->code,
	    rc->enh[0] != '\0' ? " " : "", rc->enh, text[0] != '\0' ? " " : "",
	    text);
	if (rc->stage != NULL && rc->code >= 400)
		log_info("id=%s to=<%s> relay=%s%s dsn=%s status=%s (host %s "
		    "said: %s (%s))", j->qid, to, j->relay, tls, dsn, status,
		    j->relay, reply, rc->stage);
	else
		log_info("id=%s to=<%s> relay=%s%s dsn=%s status=%s (%s)", j->qid,
		    to, j->relay, tls, dsn, status, reply);
}

/* Send one message; -1 with j->err set. */
static int
job_send(struct job *j, struct ipc_wr *w)
{
	int r;

	r = ipc_send(j->fd, w, -1);
	ipc_wr_free(w);
	if (r == -1) {
		snprintf(j->err, sizeof(j->err), "send: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
job_finish(struct job *j, const char *cached)
{
	struct ipc_wr w;
	size_t i;

	/* A transport that forgot a recipient is a bug; never lose one. */
	if (job_pending(j)) {
		log_warn("id=%s internal error: recipient without a result", j->qid);
		job_result_rest(j, 0, "4.3.0", "internal error: no result", NULL);
	}
	for (i = 0; i < j->nrcpt; i++) {
		struct job_rcpt *rc = &j->rcpt[i];

		job_log_result(j, rc);
		ipc_wr_init(&w, IPC_D2Q_RESULT, 0);
		(void)ipc_put_u64(&w, j->id);
		(void)ipc_put_u32(&w, rc->idx);
		(void)ipc_put_u32(&w, rc->code);
		(void)ipc_put_str(&w, rc->enh);
		(void)ipc_put_str(&w, rc->text);
		(void)ipc_put_str(&w, j->relay);
		(void)ipc_put_u32(&w, rc->flags);
		(void)ipc_put_str(&w, j->tls);
		if (job_send(j, &w) == -1)
			return -1;
	}
	ipc_wr_init(&w, IPC_D2Q_DONE, 0);
	(void)ipc_put_u64(&w, j->id);
	(void)ipc_put_str(&w, cached != NULL ? cached : "");
	return job_send(j, &w);
}

int
job_uncached(struct job *j)
{
	struct ipc_wr w;

	ipc_wr_init(&w, IPC_D2Q_UNCACHED, 0);
	return job_send(j, &w);
}
