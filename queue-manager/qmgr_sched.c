/*
 * qmgr_sched.c: routes, the schedule, and the jobs given to agents.
 *
 * A recipient is due when it is queued or deferred and its next attempt
 * has come.  A relay recipient's route is its next hop (the canonical
 * form of common/mail/nexthop.h: transport_maps, else relay_host, else
 * MX of its domain), stored with it; a job is one message's due
 * recipients that share one next hop (up to QMGR_JOB_MAX_RCPTS), so a
 * message to three domains makes three jobs that may run at once.
 *
 * Each relay agent holds at most one connection, and counts against the
 * next hop of its job or, idle, of the connection it keeps open
 * (qmgr->hops); relay_destination_concurrency_limit caps that count.
 * An idle agent gets work for its open connection first, else the
 * oldest due work whose next hop has room (qmgr_hop.c decides, from
 * what is found here), else nothing until a job finishes.  Local
 * agents take the oldest due local work, with no limit.
 *
 * Recipients are marked active while the agent works.  Results are kept
 * with the job and applied together when the agent says DONE (or goes
 * away): the updates, the bounce for the recipients that failed and the
 * removal of a finished message happen in one unit of the transaction,
 * so a bounce is never lost between a recipient marked bounced and its
 * notification (invariant 2).
 *
 * A libevent timer wakes the scheduler for the next recipient that
 * becomes due; agents that finish or arrive wake it too.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "mail/addr.h"
#include "mail/nexthop.h"
#include "mail/policy.h"
#include "util/log.h"
#include "util/xmalloc.h"
#include "qmgr.h"
#include "queue_dsn.h"

/* A finished job the database would not take is tried again this soon. */
#define QMGR_UNAPPLIED_RETRY	5
/* Due rows read in age order before the choice falls back to one
 * lookup per next hop (see qmgr_sched_next). */
#define QMGR_SCAN_ROWS		64
/* Jobs that came out empty (stale routes fixed) before an agent waits
 * for the next run. */
#define QMGR_DISPATCH_TRIES	8

/* The next hop of a relay recipient, from the running configuration. */
int
qmgr_route_relay(const struct conf *cfg, const char *address, char *nexthop,
    size_t nhsz, char *err, size_t errlen)
{
	char domain[QUEUE_SENDER_MAX + 1];

	queue_domain_of(address, domain, sizeof(domain));
	nexthop[0] = '\0';
	if (domain[0] == '\0') {
		snprintf(err, errlen, "no domain in the recipient address");
		return -1;
	}
	if (nexthop_route(cfg, domain, nexthop, nhsz, err, errlen) == -1) {
		nexthop[0] = '\0';
		return -1;
	}
	return 0;
}

/*
 * The transport (and next hop) of a recipient; returns the policy
 * verdict.  A relay recipient whose route fails gets next hop "": the
 * scheduler routes it again when it is due, and defers it with the
 * reason if it still fails.
 */
int
qmgr_route(const struct conf *cfg, const char *client, const char *address,
    enum queue_transport *t, char *nexthop, size_t nhsz)
{
	struct mailaddr ma;
	enum policy_verdict v;
	char err[256], safe[QUEUE_SENDER_MAX * 4 + 1];

	if (addr_parse_mailbox(address, strlen(address), &ma) != ADDR_OK)
		return -1;
	v = policy_check_rcpt(cfg, client, &ma);
	/* Unknown local users still go to the local transport: for mail we
	 * generate ourselves (bounces), delivery will fail and say so. */
	*t = (v == POLICY_LOCAL || v == POLICY_UNKNOWN_USER) ?
	    QTRANSPORT_LOCAL : QTRANSPORT_RELAY;
	if (nexthop == NULL)
		return (int)v;
	nexthop[0] = '\0';
	if (*t == QTRANSPORT_RELAY &&
	    qmgr_route_relay(cfg, address, nexthop, nhsz, err, sizeof(err)) == -1)
		log_warnx("to=<%s> no route: %s",
		    log_sanitize(safe, sizeof(safe), address, strlen(address)), err);
	return (int)v;
}

/*
 * Count agent a against next hop hop ("" none) in qmgr->hops, instead of
 * whatever it counted against before.
 */
void
qmgr_sched_agent_hop(struct qmgr_agent *a, const char *hop)
{
	if (strcmp(a->counted, hop) == 0)
		return;
	if (qmgr_hops_release(&qmgr->hops, a->counted) == -1)
		log_warnx("agent=%d nexthop=%s connection count was already zero",
		    (int)a->pid, a->counted);
	qmgr_hops_take(&qmgr->hops, hop);
	strlcpy_m(a->counted, hop, sizeof(a->counted));
}

void
qmgr_job_free(struct qmgr_job *job)
{
	if (job == NULL)
		return;
	free(job->r);
	free(job);
}

/* The job's recipient with index idx (recipients are sorted by index). */
struct qmgr_job_rcpt *
qmgr_job_rcpt_find(struct qmgr_job *job, uint32_t idx)
{
	uint32_t lo = 0, hi = job->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (job->r[mid].idx == idx)
			return &job->r[mid];
		if (job->r[mid].idx < idx)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct qmgr_job_rcpt *
qmgr_job_add(struct qmgr_job *job, const struct queue_rcpt *qr, size_t *alloc)
{
	struct qmgr_job_rcpt *jr;

	if (job->n == *alloc) {
		*alloc = *alloc == 0 ? 16 : *alloc * 2;
		job->r = xreallocarray(job->r, *alloc, sizeof(*job->r));
	}
	jr = &job->r[job->n++];
	memset(jr, 0, sizeof(*jr));
	jr->idx = qr->idx;
	strlcpy_m(jr->address, qr->address, sizeof(jr->address));
	jr->attempts = qr->attempts;
	jr->dsn_notify = qr->dsn_notify;
	strlcpy_m(jr->dsn_orcpt, qr->dsn_orcpt, sizeof(jr->dsn_orcpt));
	jr->nexthop_stale = strcmp(qr->nexthop, job->nexthop) != 0;
	return jr;
}

static int qmgr_job_apply(struct qmgr_job *job);

/* Bytes a recipient takes in IPC_Q2D_JOB. */
static size_t
qmgr_job_rcpt_size(const struct queue_rcpt *qr)
{
	return 4 + 4 + strlen(qr->address) + 4 + 4 + strlen(qr->dsn_orcpt);
}

/*
 * A job of message msg for transport t and next hop hop, no recipient
 * yet; NULL if the message is gone (*r 0) or unreadable (*r -1).
 */
static struct qmgr_job *
qmgr_job_new(int64_t msg, enum queue_transport t, const char *hop, int *r)
{
	struct qmgr_job *job = xcalloc(1, sizeof(*job));

	job->transport = t;
	strlcpy_m(job->nexthop, hop, sizeof(job->nexthop));
	if ((*r = queue_db_msg_get(qmgr->db, msg, &job->msg)) != 1) {
		qmgr_job_free(job);
		return NULL;
	}
	return job;
}

/*
 * Recipients whose route fails now (a configuration that cannot route
 * them): deferred at once with the reason, like a temporary failure of
 * the next hop, and bounced once the message outlives its lifetime.
 */
static void
qmgr_job_defer_unroutable(struct qmgr_job *job)
{
	uint32_t i;

	for (i = 0; i < job->n; i++) {
		job->r[i].done = 1;
		job->r[i].code = 0;
		job->r[i].when_us = qmgr_now_us();
		strlcpy_m(job->r[i].relay, "none", sizeof(job->r[i].relay));
	}
	(void)qmgr_job_apply(job);
	qmgr_job_free(job);
}

/*
 * Route a due relay recipient again with the running configuration (a
 * reload may have changed transport_maps or relay_host).  0: it still
 * goes to hop.  1: it goes elsewhere, and its stored next hop now says
 * so (a later job takes it); or it cannot be routed and was put on
 * *fail.  -1: a database error.
 */
static int
qmgr_job_reroute(const struct queue_rcpt *qr, const char *hop, struct qmgr_job **fail,
    size_t *falloc)
{
	char cur[MOAT_NEXTHOP_MAX + 1], err[MOAT_TEXT_MAX];
	struct qmgr_job_rcpt *jr;
	int r;

	if (qmgr_route_relay(qmgr->cfg, qr->address, cur, sizeof(cur), err,
	    sizeof(err)) == -1) {
		if (*fail == NULL && (*fail = qmgr_job_new(qr->msg, QTRANSPORT_RELAY,
		    "", &r)) == NULL)
			return -1;
		jr = qmgr_job_add(*fail, qr, falloc);
		snprintf(jr->reply, sizeof(jr->reply), "no route: %s", err);
		return 1;
	}
	if (strcmp(cur, hop) == 0)
		return 0;
	return queue_db_rcpt_set_nexthop(qmgr->db, qr->msg, qr->idx, cur) == -1 ? -1 : 1;
}

/* The next due recipient of msg for the job (relay: stored with its hop). */
static int
qmgr_job_next_due(const struct qmgr_job *job, int64_t now, int64_t after,
    struct queue_rcpt *qr)
{
	if (job->transport == QTRANSPORT_LOCAL)
		return queue_db_due_rcpt(qmgr->db, job->msg.rowid, QTRANSPORT_LOCAL, now,
		    after, qr);
	return queue_db_due_rcpt_hop(qmgr->db, job->msg.rowid, QTRANSPORT_RELAY,
	    job->nexthop, now, after, qr);
}

/*
 * Gather the due recipients of msg for transport t and next hop hop ("" for
 * local), as many as one IPC_Q2D_JOB can carry.  NULL when none are due
 * (*dberr 0: the ones found were routed elsewhere or deferred) or on a
 * database error (*dberr 1).
 */
static struct qmgr_job *
qmgr_job_build(int64_t msg, enum queue_transport t, const char *hop, int64_t now,
    int *dberr)
{
	struct qmgr_job *job, *fail = NULL;
	struct queue_rcpt qr;
	size_t alloc = 0, falloc = 0, size, rs;
	int64_t after = -1;
	int r = 0, moved;

	if ((job = qmgr_job_new(msg, t, hop, &r)) == NULL) {
		if ((*dberr = r == -1))
			log_warn("queue database: %s", queue_db_errmsg(qmgr->db));
		return NULL;
	}
	*dberr = 1;
	size = 8 + 4 + strlen(job->msg.qid) + 4 + strlen(job->msg.sender) + 8 + 4 +
	    4 + strlen(job->nexthop) + 4 + 4 + strlen(job->msg.dsn_envid) + 4;
	while (job->n < QMGR_JOB_MAX_RCPTS &&
	    (r = qmgr_job_next_due(job, now, after, &qr)) == 1) {
		after = qr.idx;
		if (t == QTRANSPORT_RELAY &&
		    (moved = qmgr_job_reroute(&qr, hop, &fail, &falloc)) != 0) {
			if (moved == -1) {
				r = -1;
				break;
			}
			continue;
		}
		if (size + (rs = qmgr_job_rcpt_size(&qr)) > IPC_MAX_PAYLOAD)
			break;
		size += rs;
		qmgr_job_add(job, &qr, &alloc);
	}
	if (fail != NULL)
		qmgr_job_defer_unroutable(fail);
	if (r == -1 || (job->n > 0 &&
	    queue_db_chunk_count(qmgr->db, msg, &job->nchunks) == -1))
		goto fail;
	*dberr = 0;
	if (job->n == 0)
		goto fail;
	job->id = ++qmgr->next_job_id;
	return job;
fail:
	if (*dberr)
		log_warn("queue database: %s", queue_db_errmsg(qmgr->db));
	qmgr_job_free(job);
	return NULL;
}

/* Mark the job's recipients active (and their route current). */
static int
qmgr_job_mark_active(struct qmgr_job *job)
{
	uint32_t i;

	for (i = 0; i < job->n; i++) {
		if (queue_db_rcpt_set_state(qmgr->db, job->msg.rowid, job->r[i].idx,
		    QRCPT_ACTIVE) == -1)
			return -1;
		if (job->r[i].nexthop_stale && queue_db_rcpt_set_nexthop(qmgr->db,
		    job->msg.rowid, job->r[i].idx, job->nexthop) == -1)
			return -1;
	}
	return 0;
}

/*
 * After a recovery put every active recipient back to queued: the ones
 * that jobs still hold become active again, so that no second agent gets
 * them while the first is still delivering.
 */
int
qmgr_job_replay(void)
{
	struct qmgr_agent *a;
	struct qmgr_job *job;

	TAILQ_FOREACH(a, &qmgr->agents, entry)
		if (a->job != NULL && qmgr_job_mark_active(a->job) == -1)
			return -1;
	TAILQ_FOREACH(job, &qmgr->unapplied, entry)
		if (qmgr_job_mark_active(job) == -1)
			return -1;
	return 0;
}

/* Decide each recipient's new state from its result. */
static void
qmgr_job_outcome(struct qmgr_job *job, struct qmgr_job_rcpt *jr, int64_t now,
    struct queue_rcpt *qr)
{
	char expired[QMGR_REPLY_MAX + 32];
	int64_t next = 0;

	if (!jr->done) {
		/* The agent went away first: try again soon, no attempt counted. */
		qr->state = jr->final = QRCPT_QUEUED;
		qr->next_attempt = now + QMGR_REQUEUE_DELAY;
		return;
	}
	qr->attempts = jr->attempts + 1;
	strlcpy_m(qr->last_reply, jr->reply, sizeof(qr->last_reply));
	strlcpy_m(qr->last_relay, jr->relay, sizeof(qr->last_relay));
	switch (queue_outcome_of(jr->code)) {
	case QOUT_SENT:
		qr->state = jr->final = QRCPT_SENT;
		break;
	case QOUT_DEFER:
		if (queue_retry_next(&qmgr->limits, job->msg.sender[0] == '\0',
		    job->msg.arrival_us / 1000000, now, qr->attempts, &next) == 0) {
			qr->state = jr->final = QRCPT_DEFERRED;
			qr->next_attempt = next;
			break;
		}
		jr->expired = 1;
		snprintf(expired, sizeof(expired), "message expired: %s", jr->reply);
		strlcpy_m(jr->reply, expired, sizeof(jr->reply));
		strlcpy_m(jr->enh, "5.4.7", sizeof(jr->enh));
		strlcpy_m(qr->last_reply, jr->reply, sizeof(qr->last_reply));
		qr->state = jr->final = QRCPT_BOUNCED;
		break;
	default:
		qr->state = jr->final = QRCPT_BOUNCED;
		break;
	}
}

/*
 * The common end of a message: every recipient of the job was delivered,
 * each is still active in the database, and no other recipient of the
 * message is pending.  Then the message is deleted at once, in the
 * caller's savepoint, without first writing each recipient's new state
 * into rows the deletion removes; the counters get the same counts (a
 * recipient that became sent), and no failure notice is due.  Returns
 * 1 when it did that, 0 when the job needs the general path, -1 on a
 * database error.
 */
static int
qmgr_job_apply_all_sent(struct qmgr_job *job, int64_t now, int *removed)
{
	struct queue_rcpt qr;
	uint32_t i, pending;

	for (i = 0; i < job->n; i++)
		if (!job->r[i].done || queue_outcome_of(job->r[i].code) != QOUT_SENT)
			return 0;
	if (queue_db_msg_pending(qmgr->db, job->msg.rowid, &pending) == -1)
		return -1;
	if (pending != job->n)
		return 0;
	for (i = 0; i < job->n; i++) {
		if (queue_db_rcpt_get(qmgr->db, job->msg.rowid, job->r[i].idx, &qr) != 1)
			return -1;
		if (qr.state != QRCPT_ACTIVE)
			return 0;
		qmgr_job_outcome(job, &job->r[i], now, &qr);	/* final: sent */
	}
	for (i = 0; i < job->n; i++)
		queue_db_rcpt_counted(qmgr->db, QRCPT_ACTIVE, job->r[i].attempts,
		    job->r[i].final, job->r[i].attempts + 1);
	if (qmgr_bounce_success(job) == -1 ||
	    queue_db_msg_delete(qmgr->db, job->msg.rowid) == -1)
		return -1;
	*removed = 1;
	return 1;
}

/* The database half of applying a job; the caller holds a savepoint. */
static int
qmgr_job_apply_db(struct qmgr_job *job, char *bqid, uint64_t *bsize, size_t *nb,
    int *removed)
{
	struct qmgr_bounced *b;
	struct queue_rcpt qr;
	enum queue_rcpt_state old_state;
	int64_t old_attempts, now = qmgr_now();
	uint32_t i;
	int r = -1;

	*nb = 0;
	bqid[0] = '\0';
	*removed = 0;
	if ((r = qmgr_job_apply_all_sent(job, now, removed)) != 0)
		return r == 1 ? 0 : -1;
	r = -1;
	b = xcalloc(job->n, sizeof(*b));
	*nb = 0;
	for (i = 0; i < job->n; i++) {
		struct qmgr_job_rcpt *jr = &job->r[i];

		if (queue_db_rcpt_get(qmgr->db, job->msg.rowid, jr->idx, &qr) != 1)
			goto out;
		old_state = qr.state;
		old_attempts = qr.attempts;
		qmgr_job_outcome(job, jr, now, &qr);
		if (queue_db_rcpt_update_from(qmgr->db, &qr, old_state,
		    old_attempts) == -1)
			goto out;
		if (jr->final == QRCPT_BOUNCED) {
			b[*nb].address = jr->address;
			b[*nb].status = jr->enh;
			b[*nb].diagnostic = jr->reply;
			(*nb)++;
		}
	}
	bqid[0] = '\0';
	if (*nb > 0 && queue_dsn_wanted(job->msg.sender) &&
	    qmgr_bounce_create(&job->msg, b, *nb, bqid, bsize) == -1)
		goto out;
	if (qmgr_bounce_success(job) == -1)
		goto out;
	if (qmgr_msg_remove_if_done(&job->msg, removed) == -1)
		goto out;
	r = 0;
out:
	free(b);
	return r;
}

static void
qmgr_job_log(const struct qmgr_job *job, const char *bqid, uint64_t bsize,
    size_t nb, int removed)
{
	char reply[QMGR_REPLY_MAX * 4 + 1], relay[MOAT_NEXTHOP_MAX * 4 + 1];
	char tls[sizeof(job->r[0].tls) * 4 + 8], *q;
	const struct qmgr_job_rcpt *jr;
	uint32_t i, lost = 0;
	const char *drop;

	for (i = 0; i < job->n; i++) {
		jr = &job->r[i];
		if (!jr->done) {
			lost++;
			continue;
		}
		drop = "";
		if (jr->final == QRCPT_BOUNCED && !queue_dsn_wanted(job->msg.sender))
			drop = jr->expired ? " dropped: bounce expired" :
			    " dropped: bounce of a bounce";
		/* The TLS text has spaces: quoted, and only when there is one. */
		tls[0] = '\0';
		if (jr->tls[0] != '\0') {
			strlcpy_m(tls, " tls=\"", sizeof(tls));
			log_sanitize(tls + 6, sizeof(tls) - 7, jr->tls, strlen(jr->tls));
			for (q = tls + 6; *q != '\0'; q++)
				if (*q == '"')
					*q = '\'';
			strlcpy_m(tls + strlen(tls), "\"", sizeof(tls) - strlen(tls));
		}
		log_info("id=%s to=<%s> relay=%s delay=%.1f attempts=%u%s status=%s (%s)%s",
		    job->msg.qid, jr->address,
		    log_sanitize(relay, sizeof(relay), jr->relay, strlen(jr->relay)),
		    (double)(jr->when_us - job->msg.arrival_us) / 1e6, jr->attempts + 1,
		    tls, queue_rcpt_state_name(jr->final),
		    log_sanitize(reply, sizeof(reply), jr->reply, strlen(jr->reply)), drop);
	}
	if (lost > 0)
		log_warn("id=%s agent=%d nrcpt=%u status=requeued (delivery agent went "
		    "away before finishing the job)", job->msg.qid, (int)job->agent_pid, lost);
	if (bqid[0] != '\0') {
		log_info("id=%s bounce_id=%s nrcpt=%zu status=bounce-queued",
		    job->msg.qid, bqid, nb);
		log_info("id=%s client=local from=<> size=%" PRIu64 " nrcpt=1 "
		    "status=queued origin=%s", bqid, bsize, job->msg.qid);
	}
	if (removed)
		log_info("id=%s status=removed", job->msg.qid);
}

/* Apply a finished job's results in one unit; -1 leaves the db as it was. */
static int
qmgr_job_apply(struct qmgr_job *job)
{
	char bqid[QUEUE_ID_LEN + 1] = "";
	uint64_t bsize = 0;
	size_t nb = 0;
	int removed = 0;

	if (queue_db_sp_begin(qmgr->db) == -1)
		goto fail;
	if (qmgr_job_apply_db(job, bqid, &bsize, &nb, &removed) == -1) {
		queue_db_sp_rollback(qmgr->db);
		goto fail;
	}
	if (queue_db_sp_release(qmgr->db) == -1)
		goto fail;
	qmgr_job_log(job, bqid, bsize, nb, removed);
	qmgr_touch();
	return 0;
fail:
	qmgr_db_trouble("apply delivery results", 0);
	return -1;
}

/*
 * The agent said DONE or went away.  The job waits on the unapplied list
 * while it is applied, so that a recovery triggered by a failure in the
 * middle still counts its recipients as taken.
 */
void
qmgr_job_finish(struct qmgr_job *job)
{
	if (job->agent != NULL)
		job->agent_pid = job->agent->pid;
	job->agent = NULL;
	TAILQ_INSERT_TAIL(&qmgr->unapplied, job, entry);
	qmgr->sched_dirty = 1;
	if (qmgr->db_broken || qmgr_job_apply(job) == -1)
		return;
	TAILQ_REMOVE(&qmgr->unapplied, job, entry);
	qmgr_job_free(job);
}

static void
qmgr_sched_unapplied(void)
{
	struct qmgr_job *job, *next;

	for (job = TAILQ_FIRST(&qmgr->unapplied); job != NULL; job = next) {
		next = TAILQ_NEXT(job, entry);
		if (qmgr->db_broken || qmgr_job_apply(job) == -1)
			return;
		TAILQ_REMOVE(&qmgr->unapplied, job, entry);
		qmgr_job_free(job);
	}
}

/* Mark the job's recipients active: 0, or -1 after reporting the trouble. */
static int
qmgr_sched_activate(struct qmgr_job *job)
{
	if (queue_db_sp_begin(qmgr->db) == -1 || qmgr_job_mark_active(job) == -1) {
		queue_db_sp_rollback(qmgr->db);
		qmgr_db_trouble("mark recipients active", 0);
		return -1;
	}
	if (queue_db_sp_release(qmgr->db) == -1) {
		qmgr_db_trouble("mark recipients active", 0);
		return -1;
	}
	return 0;
}

/*
 * Hand job to agent a.  The agent now counts against the job's next hop;
 * an idle connection it kept to another next hop is closed first (the
 * agent does that when it sees a job for elsewhere).
 */
static void
qmgr_sched_give(struct qmgr_agent *a, struct qmgr_job *job)
{
	int reuse;

	if (qmgr_sched_activate(job) == -1) {
		qmgr_job_free(job);
		return;
	}
	reuse = a->cached[0] != '\0' && strcmp(a->cached, job->nexthop) == 0;
	if (job->transport == QTRANSPORT_RELAY)
		qmgr->jobs_relay++;
	if (reuse)
		qmgr->jobs_reused++;
	a->cached[0] = '\0';
	a->job = job;
	job->agent = a;
	job->agent_pid = a->pid;
	qmgr_sched_agent_hop(a, job->nexthop);
	log_debug("id=%s agent=%d job=%" PRIu64 " nrcpt=%u transport=%s nexthop=%s "
	    "reuse=%s conns=%u status=dispatched", job->msg.qid, (int)a->pid, job->id,
	    job->n, queue_transport_name(job->transport),
	    job->nexthop[0] != '\0' ? job->nexthop : "none", reuse ? "yes" : "no",
	    qmgr_hops_count(&qmgr->hops, job->nexthop));
	if (qmgr_agent_send_job(a, job) == -1)
		qmgr_agent_close(a, "sending the job failed");
}

/* Give an idle local agent the oldest due local work. */
static void
qmgr_sched_local(struct qmgr_agent *a, int64_t now)
{
	struct qmgr_job *job;
	int64_t msg;
	int r, dberr;

	if ((r = queue_db_due_msg(qmgr->db, QTRANSPORT_LOCAL, now, &msg)) != 1) {
		if (r == -1)
			log_warn("queue database: %s", queue_db_errmsg(qmgr->db));
		return;
	}
	if ((job = qmgr_job_build(msg, QTRANSPORT_LOCAL, "", now, &dberr)) != NULL)
		qmgr_sched_give(a, job);
}

/* An oldest due (message, next hop) of one next hop, for the fallback. */
struct qmgr_sched_due {
	char		 hop[MOAT_NEXTHOP_MAX + 1];
	int64_t		 msg;
	int64_t		 when;
};

/* The due work oldest first, fed to qmgr_hop_choose(). */
struct qmgr_sched_scan {
	int64_t			 now;
	const char		*cached;
	unsigned int		 limit;
	struct queue_scan	 sc;
	int			 open;		/* sc needs queue_db_scan_end */
	int			 rows;		/* read from sc */
	struct qmgr_sched_due	*due;		/* the fallback, by age */
	size_t			 ndue, idue;
	int			 fallback;
	char			 hop[MOAT_NEXTHOP_MAX + 1];
};

static int
qmgr_sched_due_cmp(const void *a, const void *b)
{
	const struct qmgr_sched_due *x = a, *y = b;

	return x->when < y->when ? -1 : x->when > y->when;
}

/*
 * The fallback: the oldest due work of every next hop that has room, one
 * lookup per distinct next hop (recipients_hop), sorted by age.  Costs
 * one seek per next hop instead of one row per due recipient, which
 * matters when a long backlog for next hops at their limit fills the
 * front of the due order.
 */
/* Add hop's oldest due work, if it has room and some is due. */
static int
qmgr_sched_fallback_hop(struct qmgr_sched_scan *ss, const char *hop, size_t *alloc)
{
	struct qmgr_sched_due *d;
	int64_t msg, when;
	int r;

	if (!qmgr_hop_room(&qmgr->hops, ss->limit, ss->cached, hop))
		return 0;
	if ((r = queue_db_due_hop(qmgr->db, QTRANSPORT_RELAY, hop, ss->now, &msg,
	    &when)) != 1)
		return r;
	if (ss->ndue == *alloc) {
		*alloc = *alloc == 0 ? 16 : *alloc * 2;
		ss->due = xreallocarray(ss->due, *alloc, sizeof(*ss->due));
	}
	d = &ss->due[ss->ndue++];
	strlcpy_m(d->hop, hop, sizeof(d->hop));
	d->msg = msg;
	d->when = when;
	return 0;
}

static int
qmgr_sched_fallback(struct qmgr_sched_scan *ss)
{
	char prev[MOAT_NEXTHOP_MAX + 1] = "", hop[MOAT_NEXTHOP_MAX + 1];
	size_t alloc = 0;
	int r;

	/* "" (to be routed again) sorts first and hop_next starts after it. */
	if (qmgr_sched_fallback_hop(ss, "", &alloc) == -1)
		return -1;
	while ((r = queue_db_hop_next(qmgr->db, QTRANSPORT_RELAY, prev, hop,
	    sizeof(hop))) == 1) {
		strlcpy_m(prev, hop, sizeof(prev));
		if (qmgr_sched_fallback_hop(ss, hop, &alloc) == -1)
			return -1;
	}
	if (r == -1)
		return -1;
	if (ss->ndue > 1)
		qsort(ss->due, ss->ndue, sizeof(*ss->due), qmgr_sched_due_cmp);
	return 0;
}

/*
 * qmgr_hop_next_fn over the database: due rows in age order, at most
 * QMGR_SCAN_ROWS of them, then the per-next-hop fallback.
 */
static int
qmgr_sched_next(void *arg, struct qmgr_hop_cand *c)
{
	struct qmgr_sched_scan *ss = arg;
	int r;

	if (!ss->fallback && ss->rows < QMGR_SCAN_ROWS) {
		if (!ss->open) {
			if (queue_db_scan_begin(qmgr->db, &ss->sc, QTRANSPORT_RELAY,
			    ss->now) == -1)
				return -1;
			ss->open = 1;
		}
		if ((r = queue_db_scan_next(qmgr->db, &ss->sc, &c->msg, ss->hop,
		    sizeof(ss->hop))) != 1) {
			if (r == 0)
				return 0;	/* every due row was seen */
			return -1;
		}
		ss->rows++;
		c->hop = ss->hop;
		return 1;
	}
	if (!ss->fallback) {
		queue_db_scan_end(qmgr->db, &ss->sc);
		ss->open = 0;
		ss->fallback = 1;
		if (qmgr_sched_fallback(ss) == -1)
			return -1;
	}
	if (ss->idue == ss->ndue)
		return 0;
	c->hop = ss->due[ss->idue].hop;
	c->msg = ss->due[ss->idue].msg;
	ss->idue++;
	return 1;
}

/*
 * What one scheduling run learnt that its other idle agents can skip:
 * blocked, once a search found nothing with room; nodue, a next hop
 * found to have no due work.  Idle agents mostly hold a connection to
 * the same next hop, so without nodue each of them would ask the
 * database again in the same run.  A job given out can change routes
 * (qmgr_job_build), so it forgets nodue.
 */
struct qmgr_sched_turn {
	int		 blocked;
	char		 nodue[MOAT_NEXTHOP_MAX + 1];
};

/* Give an idle relay agent work (see the top of this file). */
static void
qmgr_sched_relay(struct qmgr_agent *a, int64_t now, struct qmgr_sched_turn *turn)
{
	char hop[MOAT_NEXTHOP_MAX + 1];
	struct qmgr_sched_scan ss;
	struct qmgr_hop_cand cand;
	enum qmgr_hop_choice ch;
	struct qmgr_job *job;
	int64_t msg = 0, when;
	int tries, due, dberr;

	for (tries = 0; tries < QMGR_DISPATCH_TRIES; tries++) {
		due = 0;
		if (a->cached[0] != '\0' && strcmp(a->cached, turn->nodue) != 0) {
			if ((due = queue_db_due_hop(qmgr->db, QTRANSPORT_RELAY,
			    a->cached, now, &msg, &when)) == -1)
				goto dberror;
			if (!due)
				strlcpy_m(turn->nodue, a->cached, sizeof(turn->nodue));
		}
		if (!due && turn->blocked)
			return;
		memset(&ss, 0, sizeof(ss));
		ss.now = now;
		ss.cached = a->cached;
		ss.limit = (unsigned int)conf_num(qmgr->cfg,
		    CONF_RELAY_DESTINATION_CONCURRENCY_LIMIT);
		ch = qmgr_hop_choose(&qmgr->hops, ss.limit, a->cached, due,
		    qmgr_sched_next, &ss, &cand);
		if (ch == QH_NEW) {
			strlcpy_m(hop, cand.hop, sizeof(hop));
			msg = cand.msg;
		} else if (ch == QH_REUSE)
			strlcpy_m(hop, a->cached, sizeof(hop));
		if (ss.open)
			queue_db_scan_end(qmgr->db, &ss.sc);
		free(ss.due);
		if (ch == QH_ERROR)
			goto dberror;
		if (ch == QH_NONE) {
			turn->blocked = 1;
			return;
		}
		turn->nodue[0] = '\0';
		if ((job = qmgr_job_build(msg, QTRANSPORT_RELAY, hop, now, &dberr)) != NULL) {
			qmgr_sched_give(a, job);
			return;
		}
		if (dberr)
			return;
	}
	qmgr->sched_dirty = 1;	/* routes were fixed: more next turn */
	return;
dberror:
	log_warn("queue database: %s", queue_db_errmsg(qmgr->db));
}

/* Wake up for the next recipient that becomes due. */
static void
qmgr_sched_arm(int64_t now)
{
	struct timeval tv = { 0, 0 };
	int64_t when, delay = -1;

	if (queue_db_next_due(qmgr->db, now, &when) == 1)
		delay = when - now;
	if (!TAILQ_EMPTY(&qmgr->unapplied) && (delay < 0 || delay > QMGR_UNAPPLIED_RETRY))
		delay = QMGR_UNAPPLIED_RETRY;
	evtimer_del(qmgr->sched_ev);
	if (qmgr->sched_dirty) {
		/* A run stopped early with work left: go on at the next turn. */
		evtimer_add(qmgr->sched_ev, &tv);
		return;
	}
	if (delay < 0)
		return;
	tv.tv_sec = delay < 1 ? 1 : (time_t)delay;
	evtimer_add(qmgr->sched_ev, &tv);
}

/*
 * Apply what waits, then feed every idle agent: those with an open
 * connection first, so that work for it goes to it rather than to a
 * second connection.
 */
void
qmgr_sched_run(void)
{
	struct qmgr_agent *a, *next;
	int64_t now = qmgr_now();
	struct qmgr_sched_turn turn = { 0, "" };
	int pass;

	if (qmgr->db_broken)
		return;
	qmgr_sched_unapplied();
	for (pass = 0; pass < 2; pass++) {
		for (a = TAILQ_FIRST(&qmgr->agents); a != NULL; a = next) {
			next = TAILQ_NEXT(a, entry);
			if (qmgr->db_broken)
				return;
			if (a->job != NULL || a->out_pending || a->stopping ||
			    (a->cached[0] != '\0') != (pass == 0))
				continue;
			if (a->transport == QTRANSPORT_LOCAL)
				qmgr_sched_local(a, now);
			else
				qmgr_sched_relay(a, now, &turn);
		}
	}
	qmgr_warn_run(now);
	qmgr_sched_arm(now);
}

void
qmgr_sched_timer(int fd, short ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
	qmgr->sched_dirty = 1;
}
