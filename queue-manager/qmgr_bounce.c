/*
 * qmgr_bounce.c: what happens when recipients become final.
 *
 * Failed recipients of a message with a sender get one delivery status
 * notification, a new message from <> to that sender, created in the
 * same unit of the transaction that marks them bounced (invariant 2).
 * Mail from <> never gets one: a failed bounce is dropped and logged.
 * A message whose recipients are all sent or bounced is removed.
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

/* Build the notification text; the boundary is drawn again on a clash. */
static int
qmgr_bounce_text(const struct queue_msg *orig, const struct qmgr_bounced *b,
    size_t n, const char *bqid, const struct buf *hdr, size_t hdrlen,
    struct buf *out, int *body_type)
{
	struct queue_dsn_rcpt *dr = xcalloc(n, sizeof(*dr));
	char boundary[64], msgid[QUEUE_ID_LEN + 8 + 256];
	struct queue_dsn d;
	size_t i;
	int tries, r = -1;

	for (i = 0; i < n; i++) {
		dr[i].address = b[i].address;
		dr[i].status = b[i].status;
		dr[i].diagnostic = b[i].diagnostic;
	}
	snprintf(msgid, sizeof(msgid), "%s.bounce@%s", bqid, qmgr->hostname);
	memset(&d, 0, sizeof(d));
	d.reporting_mta = qmgr->hostname;
	d.orig_qid = orig->qid;
	d.orig_sender = orig->sender;
	d.arrival = orig->arrival_us / 1000000;
	d.now = qmgr_now();
	d.message_id = msgid;
	d.boundary = boundary;
	d.rcpts = dr;
	d.nrcpts = n;
	d.headers = hdr->data;
	d.headers_len = hdrlen;
	for (tries = 0; tries < QMGR_BOUNCE_TRIES && r == -1; tries++) {
		snprintf(boundary, sizeof(boundary), "=_moat_%s_%08" PRIx32, bqid,
		    qmgr_bounce_random());
		buf_reset(out);
		r = queue_dsn_build(&d, out, body_type);
	}
	free(dr);
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

/* The bounce's one recipient, the original sender, routed as any mail. */
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
	if (qr.transport == QTRANSPORT_RELAY && qr.nexthop[0] == '\0') {
		qr.state = QRCPT_DEFERRED;
		qr.next_attempt = now + qmgr->limits.min_backoff;
		strlcpy_m(qr.last_reply, "no relay_host configured", sizeof(qr.last_reply));
	}
	return queue_db_rcpt_add(qmgr->db, &qr);
}

/*
 * Queue the bounce for recipients of orig: the notification text in
 * chunks and its one recipient, the original sender.  The caller holds
 * the savepoint in which the recipients are marked bounced.
 */
int
qmgr_bounce_create(const struct queue_msg *orig, const struct qmgr_bounced *b,
    size_t n, char bounce_qid[QUEUE_ID_LEN + 1], uint64_t *size)
{
	struct queue_msg bm;
	struct buf hdr, out;
	size_t hdrlen = 0;
	int body_type = MOAT_BODY_7BIT, r = -1;

	buf_init(&hdr, QUEUE_DSN_HEADERS_MAX + IPC_DATA_CHUNK);
	buf_init(&out, QUEUE_DSN_HEADERS_MAX + 16384 + n * (2 * QMGR_REPLY_MAX + 512));
	memset(&bm, 0, sizeof(bm));
	bm.arrival_us = qmgr_now_us();
	strlcpy_m(bm.client, "local", sizeof(bm.client));
	strlcpy_m(bm.helo, qmgr->hostname, sizeof(bm.helo));
	if (qmgr_bounce_headers(orig->rowid, &hdr, &hdrlen) == -1)
		goto out;
	/* 8-bit original headers make the bounce 8BITMIME. */
	bm.body_type = qmgr_bounce_8bit(hdr.data, hdrlen) ? MOAT_BODY_8BITMIME : MOAT_BODY_7BIT;
	if (queue_db_msg_create(qmgr->db, &bm) == -1)
		goto out;
	if (qmgr_bounce_text(orig, b, n, bm.qid, &hdr, hdrlen, &out, &body_type) == -1) {
		log_warn("id=%s: the bounce text could not be built", orig->qid);
		goto out;
	}
	if (qmgr_bounce_store(bm.rowid, &out) == -1 ||
	    qmgr_bounce_rcpt(bm.rowid, orig->sender) == -1 ||
	    queue_db_msg_set_queued(qmgr->db, bm.rowid, out.len) == -1)
		goto out;
	strlcpy_m(bounce_qid, bm.qid, QUEUE_ID_LEN + 1);
	*size = out.len;
	r = 0;
out:
	buf_free(&hdr);
	buf_free(&out);
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
