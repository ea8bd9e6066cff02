/*
 * qmgr_bounce.c: what happens when recipients become final: delivery
 * status notifications (RFC 3464) and the removal of finished messages.
 *
 * Failed recipients of a message with a sender get one failure notice,
 * and recipients that asked for it (NOTIFY=SUCCESS) one success notice:
 * each a new message from <> to that sender, created in the same unit of
 * the transaction that marks the recipients final (invariant 2).  The
 * DSN parameters the client gave (RFC 3461) decide: NOTIFY=NEVER, or a
 * NOTIFY without FAILURE, means no failure notice for that recipient; a
 * recipient whose next hop took the DSN request on gets no success
 * notice from us (that hop reports); ORCPT and ENVID are echoed; RET=FULL
 * returns the whole message when it is small enough.  Mail from <> never
 * gets a notice: a failed bounce is dropped and logged.  Delay warnings
 * use the same builder (qmgr_warn.c).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/log.h"
#include "util/xmalloc.h"
#include "qmgr.h"
#include "queue_dsn.h"

#define QMGR_BOUNCE_TRIES	4
/*
 * The original header section, read from the first body chunks: at most
 * QUEUE_DSN_HEADERS_MAX bytes, cut at a line end.  *len is its length in
 * hdr.  Never more than the cap plus one chunk is held.
 */
static int
qmgr_bounce_headers(int64_t msg, struct buf *hdr, size_t *len)
{
	struct buf chunk;
	uint32_t seq;
	int complete = 0, r = 0;

	buf_init(&chunk, IPC_DATA_CHUNK);
	for (seq = 0; hdr->len < QUEUE_DSN_HEADERS_MAX && !complete; seq++) {
		if ((r = queue_db_chunk_get(qmgr->db, msg, seq, &chunk)) != 1)
			break;
		if (buf_append(hdr, chunk.data, chunk.len) == -1) {
			r = -1;
			break;
		}
		(void)queue_dsn_header_len(hdr->data, hdr->len, &complete);
	}
	buf_free(&chunk);
	if (r == -1)
		return -1;
	*len = queue_dsn_header_len(hdr->data, hdr->len < QUEUE_DSN_HEADERS_MAX ?
	    hdr->len : QUEUE_DSN_HEADERS_MAX, &complete);
	return 0;
}

/* The whole message, which the caller knows fits QUEUE_DSN_FULL_MAX. */
static int
qmgr_bounce_full(int64_t msg, struct buf *out, size_t *len)
{
	struct buf chunk;
	uint32_t seq;
	int r;

	buf_init(&chunk, IPC_DATA_CHUNK);
	for (seq = 0; (r = queue_db_chunk_get(qmgr->db, msg, seq, &chunk)) == 1; seq++)
		if (buf_append(out, chunk.data, chunk.len) == -1) {
			r = -1;
			break;
		}
	buf_free(&chunk);
	*len = out->len;
	return r == -1 ? -1 : 0;
}

/* Any byte with the high bit set? */
static int
qmgr_bounce_8bit(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] >= 0x80)
			return 1;
	return 0;
}

static uint32_t
qmgr_bounce_random(void)
{
	uint32_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = (uint32_t)qmgr_now_us();
	return v;
}

/* Build the notice text; the boundary is drawn again on a clash. */
static int
qmgr_bounce_text(struct queue_dsn *d, const char *nqid, struct buf *out,
    int *body_type)
{
	char boundary[64], msgid[QUEUE_ID_LEN + 8 + 256];
	int tries, r = -1;

	snprintf(msgid, sizeof(msgid), "%s.%s@%s", nqid,
	    d->kind == QUEUE_DSN_FAILURE ? "bounce" : d->kind == QUEUE_DSN_DELAY ?
	    "delay" : "success", qmgr->hostname);
	d->message_id = msgid;
	d->boundary = boundary;
	for (tries = 0; tries < QMGR_BOUNCE_TRIES && r == -1; tries++) {
		snprintf(boundary, sizeof(boundary), "=_moat_%s_%08" PRIx32, nqid,
		    qmgr_bounce_random());
		buf_reset(out);
		r = queue_dsn_build(d, out, body_type);
	}
	d->message_id = d->boundary = NULL;
	return r;
}

/* Store the text as the body chunks of message rowid. */
static int
qmgr_bounce_store(int64_t rowid, const struct buf *out)
{
	size_t off, n;
	uint32_t seq = 0;

	for (off = 0; off < out->len; off += n) {
		n = out->len - off > IPC_DATA_CHUNK ? IPC_DATA_CHUNK : out->len - off;
		if (queue_db_chunk_add(qmgr->db, rowid, seq++, out->data + off, n) == -1)
			return -1;
	}
	return 0;
}

/* The notice's one recipient, the original sender, routed as any mail. */
static int
qmgr_bounce_rcpt(int64_t rowid, const char *to)
{
	struct queue_rcpt qr;
	int64_t now = qmgr_now();

	memset(&qr, 0, sizeof(qr));
	qr.msg = rowid;
	qr.idx = 0;
	strlcpy_m(qr.address, to, sizeof(qr.address));
	if (qmgr_route(qmgr->cfg, NULL, to, &qr.transport, qr.nexthop,
	    sizeof(qr.nexthop)) == -1)
		return -1;
	qr.state = QRCPT_QUEUED;
	qr.next_attempt = now;
	/* A relay recipient without a route yet is routed again when the
	 * scheduler takes it (and deferred there if it still has none). */
	return queue_db_rcpt_add(qmgr->db, &qr);
}

/* The builder's input: what is said about orig, and to whom. */
static void
qmgr_notice_dsn(struct queue_dsn *d, const struct queue_msg *orig, int kind,
    const struct queue_dsn_rcpt *dr, size_t n)
{
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	d->reporting_mta = qmgr->hostname;
	d->orig_qid = orig->qid;
	d->orig_sender = orig->sender;
	d->envid = orig->dsn_envid;
	d->arrival = orig->arrival_us / 1000000;
	d->now = qmgr_now();
	d->retry_until = d->arrival + qmgr->limits.lifetime;
	d->rcpts = dr;
	d->nrcpts = n;
}

/*
 * Queue a notice of the given kind about orig for the recipients dr[0..n):
 * the text in chunks and its one recipient, the original sender, from
 * <>.  The caller holds the savepoint of the state change it reports.
 */
int
qmgr_notice_create(const struct queue_msg *orig, int kind,
    const struct queue_dsn_rcpt *dr, size_t n, char nqid[QUEUE_ID_LEN + 1],
    uint64_t *size)
{
	struct queue_msg nm;
	struct queue_dsn d;
	struct buf orig_text, out;
	size_t olen = 0;
	int body_type = MOAT_BODY_7BIT, full, r = -1;

	full = kind == QUEUE_DSN_FAILURE && orig->dsn_ret == MOAT_RET_FULL &&
	    orig->size <= QUEUE_DSN_FULL_MAX;
	buf_init(&orig_text, (full ? QUEUE_DSN_FULL_MAX : QUEUE_DSN_HEADERS_MAX) +
	    IPC_DATA_CHUNK);
	buf_init(&out, (full ? QUEUE_DSN_FULL_MAX : QUEUE_DSN_HEADERS_MAX) + 16384 +
	    n * (3 * QMGR_REPLY_MAX + MOAT_ORCPT_MAX + 1024));
	memset(&nm, 0, sizeof(nm));
	nm.arrival_us = qmgr_now_us();
	nm.warned = 1;		/* a notice never gets a delay warning */
	strlcpy_m(nm.client, "local", sizeof(nm.client));
	strlcpy_m(nm.helo, qmgr->hostname, sizeof(nm.helo));
	if ((full ? qmgr_bounce_full(orig->rowid, &orig_text, &olen) :
	    qmgr_bounce_headers(orig->rowid, &orig_text, &olen)) == -1)
		goto out;
	qmgr_notice_dsn(&d, orig, kind, dr, n);
	d.original = orig_text.data;
	d.original_len = olen;
	d.original_full = full;
	/* 8-bit original text makes the notice 8BITMIME. */
	nm.body_type = qmgr_bounce_8bit(orig_text.data, olen) ? MOAT_BODY_8BITMIME :
	    MOAT_BODY_7BIT;
	if (queue_db_msg_create(qmgr->db, &nm) == -1)
		goto out;
	if (qmgr_bounce_text(&d, nm.qid, &out, &body_type) == -1) {
		log_warn("id=%s: the delivery status notification could not be built",
		    orig->qid);
		goto out;
	}
	if (qmgr_bounce_store(nm.rowid, &out) == -1 ||
	    qmgr_bounce_rcpt(nm.rowid, orig->sender) == -1 ||
	    queue_db_msg_set_queued(qmgr->db, nm.rowid, out.len) == -1)
		goto out;
	strlcpy_m(nqid, nm.qid, QUEUE_ID_LEN + 1);
	*size = out.len;
	r = 0;
out:
	buf_free(&orig_text);
	buf_free(&out);
	return r;
}

/* What a failure notice says of one recipient, from its stored row. */
struct qmgr_bounce_rc {
	int	 found;
	char	 orcpt[MOAT_ORCPT_MAX + 1];
	char	 mta[QUEUE_DSN_MTA_MAX + 1];
	uint32_t notify;
};

/* Find each bounced address's row: its NOTIFY, ORCPT and last relay. */
static int
qmgr_bounce_lookup(const struct queue_msg *orig, const struct qmgr_bounced *b,
    size_t n, struct qmgr_bounce_rc *rc)
{
	struct queue_rcpt qr;
	int64_t after = -1;
	size_t i;
	int r;

	while ((r = queue_db_rcpt_next(qmgr->db, orig->rowid, after, &qr)) == 1) {
		after = qr.idx;
		for (i = 0; i < n; i++) {
			if (rc[i].found || strcmp(b[i].address, qr.address) != 0)
				continue;
			rc[i].found = 1;
			rc[i].notify = qr.dsn_notify;
			strlcpy_m(rc[i].orcpt, qr.dsn_orcpt, sizeof(rc[i].orcpt));
			queue_dsn_remote_mta(qr.last_relay, rc[i].mta, sizeof(rc[i].mta));
			break;
		}
	}
	return r;
}

/*
 * The failure notice for recipients of orig that just bounced: those
 * whose NOTIFY asks for one (or who gave none).  bounce_qid is "" when
 * nobody wanted one.  The caller holds the savepoint in which the
 * recipients are marked bounced.
 */
int
qmgr_bounce_create(const struct queue_msg *orig, const struct qmgr_bounced *b,
    size_t n, char bounce_qid[QUEUE_ID_LEN + 1], uint64_t *size)
{
	struct qmgr_bounce_rc *rc = xcalloc(n, sizeof(*rc));
	struct queue_dsn_rcpt *dr = xcalloc(n, sizeof(*dr));
	int64_t now = qmgr_now();
	size_t i, k = 0;
	int r = -1;

	bounce_qid[0] = '\0';
	*size = 0;
	if (!queue_dsn_wanted(orig->sender)) {
		r = 0;
		goto out;
	}
	if (qmgr_bounce_lookup(orig, b, n, rc) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		if (!queue_dsn_notify_wants(rc[i].notify, QUEUE_DSN_FAILURE))
			continue;
		dr[k].address = b[i].address;
		dr[k].orcpt = rc[i].orcpt;
		dr[k].action = QUEUE_DSN_ACT_FAILED;
		dr[k].status = b[i].status;
		dr[k].diagnostic = b[i].diagnostic;
		/* Remote-MTA and Last-Attempt-Date only when a server gave
		 * the reply reported (not for moatctl bounce, say). */
		if (queue_dsn_smtp_reply(b[i].diagnostic) != NULL) {
			dr[k].remote_mta = rc[i].mta;
			dr[k].last_attempt = now;
		}
		k++;
	}
	if (k == 0) {
		log_info("id=%s nrcpt=%zu status=no-bounce (NOTIFY asked for none)",
		    orig->qid, n);
		r = 0;
	} else
		r = qmgr_notice_create(orig, QUEUE_DSN_FAILURE, dr, k, bounce_qid, size);
out:
	free(rc);
	free(dr);
	return r;
}

/*
 * Success notices (RFC 3461 NOTIFY=SUCCESS) for the recipients of a job
 * that were just delivered: "delivered" when the agent put the message
 * into a mailbox, "relayed" when it went to a next hop that did not take
 * the DSN request; nothing when the next hop took it (that hop reports).
 * The caller holds the savepoint of the job's results.
 */
int
qmgr_bounce_success(const struct qmgr_job *job)
{
	struct queue_dsn_rcpt *dr;
	char (*orcpt)[MOAT_ORCPT_MAX + 1], (*mta)[QUEUE_DSN_MTA_MAX + 1];
	char nqid[QUEUE_ID_LEN + 1] = "";
	const struct qmgr_job_rcpt *jr;
	uint64_t size = 0;
	uint32_t i;
	size_t k = 0;
	int r;

	if (!queue_dsn_wanted(job->msg.sender) || job->n == 0)
		return 0;
	dr = xcalloc(job->n, sizeof(*dr));
	orcpt = xcalloc(job->n, sizeof(*orcpt));
	mta = xcalloc(job->n, sizeof(*mta));
	for (i = 0; i < job->n; i++) {
		jr = &job->r[i];
		if (!jr->done || jr->final != QRCPT_SENT ||
		    (jr->result_flags & MOAT_RESULT_DSN_PASSED) != 0)
			continue;
		/* NOTIFY and ORCPT never change once stored: the job's
		 * copy (read when it was built) is the row's. */
		if (!queue_dsn_notify_wants(jr->dsn_notify, QUEUE_DSN_SUCCESS))
			continue;
		strlcpy_m(orcpt[k], jr->dsn_orcpt, sizeof(orcpt[k]));
		queue_dsn_remote_mta(jr->relay, mta[k], sizeof(mta[k]));
		dr[k].address = jr->address;
		dr[k].orcpt = orcpt[k];
		dr[k].action = (jr->result_flags & MOAT_RESULT_FINAL) != 0 ?
		    QUEUE_DSN_ACT_DELIVERED : QUEUE_DSN_ACT_RELAYED;
		dr[k].status = jr->enh;
		dr[k].diagnostic = jr->reply;
		dr[k].remote_mta = mta[k];
		dr[k].last_attempt = jr->when_us / 1000000;
		k++;
	}
	r = 0;
	if (k > 0 && (r = qmgr_notice_create(&job->msg, QUEUE_DSN_SUCCESS, dr, k,
	    nqid, &size)) == 0) {
		log_info("id=%s dsn_id=%s nrcpt=%zu status=success-notice-queued",
		    job->msg.qid, nqid, k);
		log_info("id=%s client=local from=<> size=%" PRIu64 " nrcpt=1 "
		    "status=queued origin=%s", nqid, size, job->msg.qid);
	}
	free(dr);
	free(orcpt);
	free(mta);
	return r;
}

/* Delete a message none of whose recipients is pending any more. */
int
qmgr_msg_remove_if_done(const struct queue_msg *m, int *removed)
{
	uint32_t pending;

	*removed = 0;
	if (queue_db_msg_pending(qmgr->db, m->rowid, &pending) == -1)
		return -1;
	if (pending > 0)
		return 0;
	if (queue_db_msg_delete(qmgr->db, m->rowid) == -1)
		return -1;
	*removed = 1;
	return 0;
}
