/*
 * qmgr_session.c: the channels of smtpd-session processes.
 *
 * The session is the least trusted peer: it faces the internet.  It may
 * only walk BEGIN -> DATA* -> COMMIT (or ABORT), one message at a time,
 * and every field it sends is checked again here: the recipients against
 * the relay policy with the client address moatd saw in accept(), sizes
 * against the limits, the byte count at COMMIT against the bytes stored.
 * Any violation closes the channel and deletes the message in progress.
 *
 *   idle --BEGIN--> receiving --DATA*--> receiving --COMMIT--> waiting
 *   waiting --group commit--> idle (COMMIT_OK or FAIL)
 *   receiving --ABORT--> idle
 *
 * Body bytes are gathered into IPC_DATA_CHUNK-sized chunks and stored as
 * they fill, inside the open group transaction, so neither side ever
 * holds more than one chunk of a message.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <event2/event.h>

#include "mail/addr.h"
#include "mail/policy.h"
#include "util/log.h"
#include "util/xmalloc.h"
#include "qmgr.h"
#include "qmgr_proto.h"
#ifdef MOAT_TEST_HOOKS
#include "test_hooks.h"
#endif

/* Messages handled per wake-up, so one busy session cannot hold a batch. */
#define QMGR_SESSION_BURST	16

static const char *const qmgr_session_state_names[] = {
	[QS_IDLE] = "idle", [QS_RECEIVING] = "receiving", [QS_WAITING] = "waiting",
	[QS_SYNCING] = "syncing",
};

static void qmgr_session_read(int fd, short ev, void *arg);

/* A new session channel from moatd, with the client moatd accepted. */
void
qmgr_session_new(int fd, pid_t pid, const char *client, unsigned int cport,
    const char *local, unsigned int lport)
{
	struct qmgr_session *s = xcalloc(1, sizeof(*s));

	s->fd = fd;
	s->pid = pid;
	strlcpy_m(s->client, client, sizeof(s->client));
	s->client_port = cport;
	strlcpy_m(s->local, local, sizeof(s->local));
	s->local_port = lport;
	s->state = QS_IDLE;
	buf_init(&s->pend, 2 * IPC_DATA_CHUNK);
	s->ev = event_new(qmgr->base, fd, EV_READ | EV_PERSIST, qmgr_session_read, s);
	if (s->ev == NULL || event_add(s->ev, NULL) == -1)
		log_panic("session event: out of memory");
	TAILQ_INSERT_TAIL(&qmgr->sessions, s, entry);
	log_debug("session=%d client=%s port=%u local=%s:%u connected", (int)pid,
	    client, cport, local, lport);
}

/* Forget the message in progress; its rows go unless it was committed. */
static void
qmgr_session_drop_msg(struct qmgr_session *s)
{
	int64_t rowid = s->msg.rowid;

	if (s->state == QS_SYNCING) {
		/* Committed, not yet answered: it stays, as a message does
		 * whose client went away after the end of data (the client
		 * may send it again: a duplicate, never a loss). */
		log_info("id=%s client=%s status=queued (the session went away "
		    "before its 250)", s->msg.qid, s->client);
		qmgr->sched_dirty = 1;
		s->state = QS_IDLE;
		s->msg.rowid = 0;
		return;
	}
	if (s->state == QS_WAITING)
		qmgr->nwaiting--;
	/* Idle first: a failing delete may recover the database, which
	 * must not see this session as still holding a message. */
	s->state = QS_IDLE;
	s->msg.rowid = 0;
	s->failed = 0;
	buf_reset(&s->pend);
	if (rowid != 0 && !qmgr->db_broken &&
	    queue_db_msg_delete(qmgr->db, rowid) == -1)
		qmgr_db_trouble("delete message", 0);
}

/* Close the channel; a message still in progress is deleted. */
static void
qmgr_session_free(struct qmgr_session *s)
{
	if (s->state == QS_SYNCING)
		qmgr_session_drop_msg(s);
	else if (s->state != QS_IDLE) {
		log_info("id=%s client=%s status=aborted (session went away "
		    "before the message was accepted)", s->msg.qid, s->client);
		qmgr_session_drop_msg(s);
	}
	TAILQ_REMOVE(&qmgr->sessions, s, entry);
	event_free(s->ev);
	close(s->fd);
	buf_free(&s->pend);
	free(s);
}

/* A protocol violation: log it with the client, close, delete. */
static void
qmgr_session_violation(struct qmgr_session *s, const char *what)
{
	if (s->state != QS_IDLE)
		log_warn("id=%s client=%s session=%d violation=%s", s->msg.qid,
		    s->client, (int)s->pid, what);
	else
		log_warn("client=%s session=%d violation=%s", s->client, (int)s->pid, what);
	qmgr_session_free(s);
}

/*
 * Make the channel report end of file on the next turn of the loop, for
 * code that may not free the session where it stands.
 */
static void
qmgr_session_kill(struct qmgr_session *s)
{
	(void)shutdown(s->fd, SHUT_RDWR);
}

/* IPC_Q2S_FAIL: the message in progress, if any, is gone. */
static int
qmgr_session_fail(struct qmgr_session *s, uint32_t reqid, uint32_t code,
    const char *enh, const char *text)
{
	struct ipc_wr w;
	int r;

	ipc_wr_init(&w, IPC_Q2S_FAIL, reqid);
	ipc_put_u32(&w, code);
	ipc_put_str(&w, enh);
	ipc_put_str(&w, text);
	r = qmgr_send(s->fd, &w);
	ipc_wr_free(&w);
	return r;
}

/* BEGIN_OK or COMMIT_OK, each carrying the queue id. */
static int
qmgr_session_send_qid(struct qmgr_session *s, uint32_t type, uint32_t reqid)
{
	struct ipc_wr w;
	int r;

	ipc_wr_init(&w, type, reqid);
	ipc_put_str(&w, s->msg.qid);
	r = qmgr_send(s->fd, &w);
	ipc_wr_free(&w);
	return r;
}

/* Is there room for another message on the queue's file system? */
static int
qmgr_session_disk_ok(uint64_t *avail)
{
	struct statvfs sv;

	*avail = 0;
	if (fstatvfs(qmgr->dirfd, &sv) == -1)
		return 1;	/* cannot tell: the write itself will say */
	*avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
	return *avail >= qmgr->min_free;
}

/*
 * The relay policy over the recipients BEGIN carried, in order: each
 * must be permitted for this client.  Returns 0, or -1 after answering
 * and closing.
 */
static int
qmgr_session_check_rcpts(struct qmgr_session *s, const struct qmgr_proto_begin *b,
    uint32_t reqid)
{
	char safe[ADDR_MAILBOX_MAX * 4 + 1], why[1200];
	const char *rcpt;
	enum queue_transport t;
	enum policy_verdict v;
	uint32_t i;

	for (i = 0; i < b->nrcpt; i++) {
		rcpt = b->rcpt[i].mailbox;
		v = qmgr_route(qmgr->cfg, s->client, rcpt, &t, NULL, 0);
		if (v == POLICY_LOCAL || v == POLICY_RELAY)
			continue;
		snprintf(why, sizeof(why), "%s to=<%s>", v == POLICY_DENY_RELAY ?
		    "relay-denied" : "unknown-recipient",
		    log_sanitize(safe, sizeof(safe), rcpt, strlen(rcpt)));
		if (v == POLICY_DENY_RELAY)
			(void)qmgr_session_fail(s, reqid, 554, "5.7.1", "Relay access denied");
		else
			(void)qmgr_session_fail(s, reqid, 550, "5.1.1", "User unknown");
		qmgr_session_violation(s, why);
		return -1;
	}
	return 0;
}

/* A BEGIN the decoder refused: name the violation, close. */
static void
qmgr_session_begin_malformed(struct qmgr_session *s, enum qmgr_proto_err e,
    const struct qmgr_proto_begin *b)
{
	char safe[ADDR_MAILBOX_MAX * 4 + 1], why[1200];

	switch (e) {
	case QP_RCPT_COUNT:
		qmgr_session_violation(s, "recipient-count");
		return;
	case QP_BAD_SENDER:
		qmgr_session_violation(s, "bad-sender");
		return;
	case QP_BAD_RCPT:
		snprintf(why, sizeof(why), "bad-recipient to=<%s>",
		    log_sanitize(safe, sizeof(safe), b->bad, strlen(b->bad)));
		qmgr_session_violation(s, why);
		return;
	default:
		qmgr_session_violation(s, "malformed-begin");
		return;
	}
}

/* Store the recipients with their routes and DSN parameters. */
static int
qmgr_session_store_rcpts(struct qmgr_session *s, const struct qmgr_proto_begin *b)
{
	struct queue_rcpt qr;
	int64_t now = qmgr_now();
	uint32_t i;

	for (i = 0; i < b->nrcpt; i++) {
		memset(&qr, 0, sizeof(qr));
		strlcpy_m(qr.address, b->rcpt[i].canon, sizeof(qr.address));
		qmgr_route(qmgr->cfg, s->client, b->rcpt[i].mailbox, &qr.transport,
		    qr.nexthop, sizeof(qr.nexthop));
		qr.msg = s->msg.rowid;
		qr.idx = i;
		qr.dsn_notify = b->rcpt[i].notify;
		strlcpy_m(qr.dsn_orcpt, b->rcpt[i].orcpt, sizeof(qr.dsn_orcpt));
		qr.state = QRCPT_QUEUED;
		qr.next_attempt = now;
		/* No route (cannot happen with a checked configuration): the
		 * scheduler routes it again when due and defers it there. */
		if (queue_db_rcpt_add(qmgr->db, &qr) == -1)
			return -1;
	}
	return 0;
}

/* Refusals that keep the channel: storage, size, a broken database. */
static int
qmgr_session_begin_refuse(struct qmgr_session *s, uint32_t reqid, uint64_t declared)
{
	uint64_t avail;

	if (declared > qmgr->declared_limit) {
		log_info("client=%s status=refused size=%" PRIu64 " (552 5.3.4 "
		    "message size exceeds the limit)", s->client, declared);
		return qmgr_session_fail(s, reqid, 552, "5.3.4",
		    "Message size exceeds fixed maximum message size") == -1 ? -1 : 1;
	}
	if (!qmgr_session_disk_ok(&avail)) {
		log_warn("client=%s status=refused free=%" PRIu64 " queue_min_free=%"
		    PRIu64 " (452 4.3.1 Insufficient system storage)", s->client,
		    avail, qmgr->min_free);
		return qmgr_session_fail(s, reqid, 452, "4.3.1",
		    "Insufficient system storage") == -1 ? -1 : 1;
	}
	if (qmgr->db_broken) {
		log_warn("client=%s status=refused (451 4.3.0 queue database unavailable)",
		    s->client);
		return qmgr_session_fail(s, reqid, 451, "4.3.0",
		    "Queue temporarily unavailable, try again later") == -1 ? -1 : 1;
	}
	return 0;
}

/* Create the message and its recipients as one unit of the transaction. */
static int
qmgr_session_create(struct qmgr_session *s, const struct qmgr_proto_begin *b)
{
	memset(&s->msg, 0, sizeof(s->msg));
	s->msg.arrival_us = qmgr_now_us();
	strlcpy_m(s->msg.sender, b->sender, sizeof(s->msg.sender));
	strlcpy_m(s->msg.client, s->client, sizeof(s->msg.client));
	strlcpy_m(s->msg.helo, b->helo, sizeof(s->msg.helo));
	s->msg.body_type = (int)b->body_type;
	s->msg.dsn_ret = b->dsn_ret;
	strlcpy_m(s->msg.dsn_envid, b->dsn_envid, sizeof(s->msg.dsn_envid));
	if (queue_db_sp_begin(qmgr->db) == -1)
		goto fail;
	if (queue_db_msg_create(qmgr->db, &s->msg) == -1 ||
	    qmgr_session_store_rcpts(s, b) == -1) {
		queue_db_sp_rollback(qmgr->db);
		goto fail;
	}
	if (queue_db_sp_release(qmgr->db) == -1)
		goto fail;
	return 0;
fail:
	s->msg.rowid = 0;
	qmgr_db_trouble("store new message", 0);
	return -1;
}

/* A well-formed BEGIN whose recipients are permitted: store it, answer. */
static void
qmgr_session_begin_accept(struct qmgr_session *s, const struct qmgr_proto_begin *b,
    uint32_t reqid)
{
	int refused;

	if ((refused = qmgr_session_begin_refuse(s, reqid, b->declared)) != 0) {
		if (refused == -1)
			qmgr_session_kill(s);
		return;
	}
	if (qmgr_session_create(s, b) == -1) {
		if (qmgr_session_fail(s, reqid, 451, "4.3.0",
		    "Queue file write error, try again later") == -1)
			qmgr_session_kill(s);
		return;
	}
	s->state = QS_RECEIVING;
	s->nrcpt = b->nrcpt;
	s->bytes = 0;
	s->nchunks = 0;
	s->failed = 0;
	buf_reset(&s->pend);
	if (qmgr_session_send_qid(s, IPC_Q2S_BEGIN_OK, reqid) == -1) {
		qmgr_session_kill(s);
		return;
	}
	log_debug("id=%s client=%s begin nrcpt=%u", s->msg.qid, s->client, b->nrcpt);
}

/*
 * BEGIN: decode it, judge its recipients, then create the message and
 * answer BEGIN_OK with the new queue id, or refuse.  The policy looks at
 * the recipients that decoded before the decoder's verdict is reported,
 * so a relay-denied recipient ahead of a broken field is refused as
 * relay-denied, as when each recipient was judged the moment it was read.
 */
static int
qmgr_session_begin(struct qmgr_session *s, const struct ipc_frame *f)
{
	struct qmgr_proto_begin b;
	enum qmgr_proto_err e;
	int r = -1;

	e = qmgr_proto_begin(f, qmgr->rcpt_limit, &b);
	if (qmgr_session_check_rcpts(s, &b, f->hdr.reqid) == -1)
		goto out;
	if (e != QP_OK) {
		qmgr_session_begin_malformed(s, e, &b);
		goto out;
	}
#ifdef MOAT_TEST_HOOKS
	qmgr_test_hook_begin(b.helo);
#endif
	qmgr_session_begin_accept(s, &b, f->hdr.reqid);
	r = 0;
out:
	qmgr_proto_begin_free(&b);
	return r;
}

/* Store one chunk of the message in progress; a failure refuses it later. */
static void
qmgr_session_store(struct qmgr_session *s, size_t n)
{
	if (queue_db_chunk_add(qmgr->db, s->msg.rowid, s->nchunks, s->pend.data, n) == -1) {
		s->failed = 1;
		buf_reset(&s->pend);
		qmgr_db_trouble("store chunk", 0);
		return;
	}
	s->nchunks++;
	buf_consume(&s->pend, n);
}

/* DATA: count, cap, and store the bytes a chunk at a time. */
static int
qmgr_session_data(struct qmgr_session *s, const struct ipc_frame *f)
{
	const uint8_t *p;
	size_t n;

	if (qmgr_proto_data(f, &p, &n) != QP_OK) {
		qmgr_session_violation(s, "malformed-data");
		return -1;
	}
	s->bytes += n;
	if (s->bytes > qmgr->size_limit) {
		qmgr_session_violation(s, "message-too-large");
		return -1;
	}
	if (s->failed)
		return 0;	/* refused at COMMIT */
	if (buf_append(&s->pend, p, n) == -1)
		log_panic("session chunk buffer overflow");
	if (s->pend.len >= IPC_DATA_CHUNK)
		qmgr_session_store(s, IPC_DATA_CHUNK);
	return 0;
}

/* Log why the message was refused, then answer its COMMIT with 451. */
static void
qmgr_session_refuse_451(struct qmgr_session *s, uint32_t reqid, const char *why)
{
	log_warn("id=%s client=%s status=refused (451 4.3.0 %s)", s->msg.qid,
	    s->client, why);
	if (qmgr_session_fail(s, reqid, 451, "4.3.0",
	    "Queue file write error, try again later") == -1)
		qmgr_session_kill(s);
}

/* A message that could not be stored whole: 451 at its COMMIT. */
static void
qmgr_session_refuse_commit(struct qmgr_session *s, uint32_t reqid)
{
	qmgr_session_drop_msg(s);	/* keeps s->msg.qid for the log */
	qmgr_session_refuse_451(s, reqid, "queue write error");
}

/*
 * COMMIT: store the last chunk and mark the message queued; the answer
 * waits for the group commit at the end of the batch.
 */
static int
qmgr_session_commit(struct qmgr_session *s, const struct ipc_frame *f)
{
	uint64_t total;
	char why[96];

	if (qmgr_proto_commit(f, &total) != QP_OK) {
		qmgr_session_violation(s, "malformed-commit");
		return -1;
	}
	if (total != s->bytes) {
		snprintf(why, sizeof(why), "commit-size-mismatch said=%" PRIu64
		    " received=%" PRIu64, total, s->bytes);
		qmgr_session_violation(s, why);
		return -1;
	}
	if (!s->failed && s->pend.len > 0)
		qmgr_session_store(s, s->pend.len);
	if (!s->failed && queue_db_msg_set_queued(qmgr->db, s->msg.rowid, s->bytes) == -1) {
		s->failed = 1;
		qmgr_db_trouble("queue message", 0);
	}
	if (s->failed) {
		qmgr_session_refuse_commit(s, f->hdr.reqid);
		return 0;
	}
	s->state = QS_WAITING;
	s->reqid = f->hdr.reqid;
	qmgr->nwaiting++;
	return 0;
}

/* 0: handled; -1: the session was closed and freed. */
static int
qmgr_session_handle(struct qmgr_session *s, const struct ipc_frame *f)
{
	char why[128];

	if (f->fd >= 0) {
		close(f->fd);
		qmgr_session_violation(s, "descriptor-passed");
		return -1;
	}
	switch (f->hdr.type) {
	case IPC_S2Q_BEGIN:
		if (s->state != QS_IDLE)
			break;
		return qmgr_session_begin(s, f);
	case IPC_S2Q_DATA:
		if (s->state != QS_RECEIVING)
			break;
		return qmgr_session_data(s, f);
	case IPC_S2Q_COMMIT:
		if (s->state != QS_RECEIVING)
			break;
		return qmgr_session_commit(s, f);
	case IPC_S2Q_ABORT:
		if (qmgr_proto_abort(f) != QP_OK || s->state == QS_WAITING ||
		    s->state == QS_SYNCING)
			break;
		/* An ABORT with nothing in progress is harmless: a session
		 * may send one after a refused BEGIN. */
		if (s->state == QS_RECEIVING) {
			log_info("id=%s client=%s status=aborted (by the session)",
			    s->msg.qid, s->client);
			qmgr_session_drop_msg(s);
		}
		return 0;
	default:
		break;
	}
	snprintf(why, sizeof(why), "unexpected-%s state=%s", ipc_type_name(f->hdr.type),
	    qmgr_session_state_names[s->state]);
	qmgr_session_violation(s, why);
	return -1;
}

/* Whatever the session sent, a burst at a time. */
static void
qmgr_session_read(int fd, short ev, void *arg)
{
	struct qmgr_session *s = arg;
	struct ipc_frame f;
	const char *why = "";
	char reason[128];
	int i, n;

	(void)ev;
	for (i = 0; i < QMGR_SESSION_BURST; i++) {
		n = ipc_recv(fd, qmgr->rbuf, &f, &why);
		if (n == 1) {
			if (qmgr_session_handle(s, &f) == -1)
				return;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == -1 && errno == EPROTO) {
			snprintf(reason, sizeof(reason), "malformed-message (%s)", why);
			qmgr_session_violation(s, reason);
			return;
		}
		if (n == -1)
			log_warnx("client=%s session=%d receive", s->client, (int)s->pid);
		log_debug("session=%d client=%s closed", (int)s->pid, s->client);
		qmgr_session_free(s);
		return;
	}
}

/* Log an accepted message. */
static void
qmgr_session_log_queued(const struct qmgr_session *s)
{
	log_info("id=%s client=%s from=<%s> size=%" PRIu64 " nrcpt=%u status=queued",
	    s->msg.qid, s->client, s->msg.sender, s->bytes, s->nrcpt);
}

/* The group commit failed: every session waiting for it is refused. */
void
qmgr_session_commit_failed(void)
{
	struct qmgr_session *s, *next;

	for (s = TAILQ_FIRST(&qmgr->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->state != QS_WAITING)
			continue;
		s->state = QS_IDLE;
		s->msg.rowid = 0;
		qmgr_session_refuse_451(s, s->reqid, "commit failed");
	}
	qmgr->nwaiting = 0;
}

/* Group commit gen succeeded: its sessions wait for the WAL's sync. */
void
qmgr_session_committed(uint64_t gen)
{
	struct qmgr_session *s;

	TAILQ_FOREACH(s, &qmgr->sessions, entry) {
		if (s->state != QS_WAITING)
			continue;
		s->state = QS_SYNCING;
		s->commit_gen = gen;
	}
	qmgr->nwaiting = 0;
}

/*
 * The commits up to gen are on disk (ok), or their sync failed: answer
 * their sessions.  After a failed sync the messages stay committed (the
 * queue-manager then exits and recovers from the file); refusing them
 * with 451 may cause a duplicate, saying 250 could cost a message.
 */
void
qmgr_session_synced(uint64_t gen, int ok)
{
	struct qmgr_session *s, *next;

	for (s = TAILQ_FIRST(&qmgr->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->state != QS_SYNCING || s->commit_gen > gen)
			continue;
		s->state = QS_IDLE;
		s->msg.rowid = 0;
		qmgr->sched_dirty = 1;
		if (ok) {
			qmgr_session_log_queued(s);
			if (qmgr_session_send_qid(s, IPC_Q2S_COMMIT_OK, s->reqid) == -1)
				qmgr_session_kill(s);
		} else
			qmgr_session_refuse_451(s, s->reqid, "the queue's sync "
			    "failed; the message may still be delivered");
	}
}

/*
 * The transaction is gone: sessions waiting for it are refused now,
 * sessions still sending are refused at their COMMIT (their rows went
 * with the transaction or go with the recovery that follows).
 */
void
qmgr_session_db_lost(void)
{
	struct qmgr_session *s;

	qmgr_session_commit_failed();
	TAILQ_FOREACH(s, &qmgr->sessions, entry) {
		if (s->state != QS_RECEIVING)
			continue;
		s->failed = 1;
		buf_reset(&s->pend);
	}
}

/* At shutdown: messages still arriving are deleted. */
void
qmgr_session_close_all(void)
{
	while (!TAILQ_EMPTY(&qmgr->sessions))
		qmgr_session_free(TAILQ_FIRST(&qmgr->sessions));
}
