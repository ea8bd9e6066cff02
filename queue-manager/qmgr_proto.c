/*
 * qmgr_proto.c: payload to struct for every message a session or a
 * delivery agent may send the queue-manager (see qmgr_proto.h for what
 * is checked here and what the callers check).
 *
 * A session is the least trusted peer moat has: it parsed an internet
 * client's bytes and may be subverted.  So each decoder reads through
 * the ipc_get_* cursor, which caps every length, refuses NUL inside
 * strings and makes every later get fail once one has, and ends with
 * ipc_rd_end() so that trailing bytes are as fatal as missing ones.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"
#include "qmgr_proto.h"
#include "queue_retry.h"

/* The shortest a recipient can be on the wire: str mailbox (its u32
 * length), u32 NOTIFY, str ORCPT. */
#define QMGR_PROTO_RCPT_MIN	12
#define QMGR_PROTO_NOTIFY_ALL	(MOAT_NOTIFY_NEVER | MOAT_NOTIFY_SUCCESS | \
				 MOAT_NOTIFY_FAILURE | MOAT_NOTIFY_DELAY)

/* A HELO name as the session relays it: printable ASCII, no spaces. */
static int
qmgr_proto_helo_ok(const char *h)
{
	for (; *h != '\0'; h++)
		if ((unsigned char)*h <= 0x20 || (unsigned char)*h >= 0x7f)
			return 0;
	return 1;
}

/* DSN texts end up in report header lines: printable ASCII only. */
static int
qmgr_proto_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* NOTIFY: known bits, NEVER only alone (RFC 3461 4.1). */
static int
qmgr_proto_notify_ok(uint32_t n)
{
	return (n & ~(uint32_t)QMGR_PROTO_NOTIFY_ALL) == 0 &&
	    ((n & MOAT_NOTIFY_NEVER) == 0 || n == MOAT_NOTIFY_NEVER);
}

/* ORCPT as the session stores it: "" or "rfc822;addr" / "utf-8;addr". */
static int
qmgr_proto_orcpt_ok(const char *o)
{
	if (o[0] == '\0')
		return 1;
	if (strncmp(o, "rfc822;", 7) != 0 && strncmp(o, "utf-8;", 6) != 0)
		return 0;
	return strchr(o, ';')[1] != '\0' && qmgr_proto_printable(o);
}

/* A reply text on one line: the agent should have made it so already. */
static int
qmgr_proto_line_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '\r' || *s == '\n')
			return 0;
	return 1;
}

/* A mailbox in its stored form; 0 when s is one. */
static int
qmgr_proto_mailbox(const char *s, char *canon, size_t canonsz)
{
	struct mailaddr ma;

	if (addr_parse_mailbox(s, strlen(s), &ma) != ADDR_OK ||
	    addr_format(&ma, canon, canonsz) == -1)
		return -1;
	return 0;
}

/*
 * BEGIN's recipients, in order, into b->rcpt.  The array is sized by the
 * smaller of the count and the string fields the rest of the payload
 * could hold, so a session that claims many recipients and sends few
 * costs no more memory than the bytes it sent.
 */
static enum qmgr_proto_err
qmgr_proto_begin_rcpts(struct ipc_rd *r, struct qmgr_proto_begin *b)
{
	char mb[ADDR_MAILBOX_MAX + 1];
	size_t room = (r->len - r->off) / QMGR_PROTO_RCPT_MIN;
	uint32_t i;

	if (room > b->count)
		room = b->count;
	if (room > 0)
		b->rcpt = xcalloc(room, sizeof(*b->rcpt));
	for (i = 0; i < b->count; i++) {
		/* Out of room means out of payload: the get would fail too. */
		if (i == room || ipc_get_str(r, mb, sizeof(mb)) == -1)
			return QP_MALFORMED;
		b->rcpt[i].notify = ipc_get_u32(r);
		if (ipc_get_str(r, b->rcpt[i].orcpt, sizeof(b->rcpt[i].orcpt)) == -1 ||
		    !qmgr_proto_notify_ok(b->rcpt[i].notify) ||
		    !qmgr_proto_orcpt_ok(b->rcpt[i].orcpt))
			return QP_MALFORMED;
		if (qmgr_proto_mailbox(mb, b->rcpt[i].canon,
		    sizeof(b->rcpt[i].canon)) == -1) {
			strlcpy_m(b->bad, mb, sizeof(b->bad));
			return QP_BAD_RCPT;
		}
		strlcpy_m(b->rcpt[i].mailbox, mb, sizeof(b->rcpt[i].mailbox));
		b->nrcpt = i + 1;
	}
	return ipc_rd_end(r) == -1 ? QP_MALFORMED : QP_OK;
}

enum qmgr_proto_err
qmgr_proto_begin(const struct ipc_frame *f, uint32_t max_rcpt,
    struct qmgr_proto_begin *b)
{
	char sender[ADDR_MAILBOX_MAX + 1];
	struct ipc_rd r;

	memset(b, 0, sizeof(*b));
	ipc_rd_init(&r, f);
	ipc_get_str(&r, b->helo, sizeof(b->helo));
	ipc_get_str(&r, sender, sizeof(sender));
	b->body_type = ipc_get_u32(&r);
	b->declared = ipc_get_u64(&r);
	b->dsn_ret = ipc_get_u32(&r);
	ipc_get_str(&r, b->dsn_envid, sizeof(b->dsn_envid));
	b->count = ipc_get_u32(&r);
	if (r.err || b->body_type > MOAT_BODY_8BITMIME || !qmgr_proto_helo_ok(b->helo) ||
	    b->dsn_ret > MOAT_RET_HDRS || !qmgr_proto_printable(b->dsn_envid))
		return QP_MALFORMED;
	if (b->count == 0 || b->count > max_rcpt)
		return QP_RCPT_COUNT;
	if (sender[0] != '\0' &&
	    qmgr_proto_mailbox(sender, b->sender, sizeof(b->sender)) == -1)
		return QP_BAD_SENDER;
	return qmgr_proto_begin_rcpts(&r, b);
}

void
qmgr_proto_begin_free(struct qmgr_proto_begin *b)
{
	free(b->rcpt);
	b->rcpt = NULL;
	b->nrcpt = 0;
}

enum qmgr_proto_err
qmgr_proto_data(const struct ipc_frame *f, const uint8_t **p, size_t *n)
{
	struct ipc_rd r;

	ipc_rd_init(&r, f);
	if (ipc_get_blob(&r, p, n, IPC_DATA_CHUNK) == -1 || ipc_rd_end(&r) == -1 ||
	    *n == 0)
		return QP_MALFORMED;
	return QP_OK;
}

enum qmgr_proto_err
qmgr_proto_commit(const struct ipc_frame *f, uint64_t *total)
{
	struct ipc_rd r;

	ipc_rd_init(&r, f);
	*total = ipc_get_u64(&r);
	return ipc_rd_end(&r) == -1 ? QP_MALFORMED : QP_OK;
}

enum qmgr_proto_err
qmgr_proto_abort(const struct ipc_frame *f)
{
	return f->len != 0 ? QP_MALFORMED : QP_OK;
}

enum qmgr_proto_err
qmgr_proto_fetch(const struct ipc_frame *f, struct qmgr_proto_fetch *out)
{
	struct ipc_rd r;

	ipc_rd_init(&r, f);
	out->job = ipc_get_u64(&r);
	out->seq = ipc_get_u32(&r);
	return ipc_rd_end(&r) == -1 ? QP_MALFORMED : QP_OK;
}

enum qmgr_proto_err
qmgr_proto_result(const struct ipc_frame *f, struct qmgr_proto_result *out)
{
	struct ipc_rd r;

	ipc_rd_init(&r, f);
	out->job = ipc_get_u64(&r);
	out->idx = ipc_get_u32(&r);
	out->code = ipc_get_u32(&r);
	ipc_get_str(&r, out->enh, sizeof(out->enh));
	ipc_get_str(&r, out->text, sizeof(out->text));
	ipc_get_str(&r, out->relay, sizeof(out->relay));
	out->flags = ipc_get_u32(&r);
	ipc_get_str(&r, out->tls, sizeof(out->tls));
	if (ipc_rd_end(&r) == -1 || !qmgr_proto_line_ok(out->text) ||
	    !qmgr_proto_line_ok(out->relay) || !qmgr_proto_line_ok(out->enh) ||
	    !qmgr_proto_line_ok(out->tls) ||
	    (out->flags & ~(uint32_t)(MOAT_RESULT_DSN_PASSED | MOAT_RESULT_FINAL)) != 0)
		return QP_MALFORMED;
	if (queue_outcome_of(out->code) == QOUT_INVALID)
		return QP_BAD_CODE;
	return QP_OK;
}

enum qmgr_proto_err
qmgr_proto_done(const struct ipc_frame *f, uint64_t *job, char *cached,
    size_t cachedsz)
{
	char hop[MOAT_NEXTHOP_MAX + 1];
	struct ipc_rd r;

	ipc_rd_init(&r, f);
	*job = ipc_get_u64(&r);
	cached[0] = '\0';
	if (ipc_get_str(&r, hop, sizeof(hop)) == -1 || ipc_rd_end(&r) == -1 ||
	    !qmgr_proto_line_ok(hop) || strlen(hop) >= cachedsz)
		return QP_MALFORMED;
	memcpy(cached, hop, strlen(hop) + 1);
	return QP_OK;
}
