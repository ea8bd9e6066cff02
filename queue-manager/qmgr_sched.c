/*
 * qmgr_sched.c: routes, the schedule, and the jobs given to agents.
 *
 * A recipient is due when it is queued or deferred and its next attempt
 * has come.  Each idle delivery agent gets one job: one message and up to
 * QMGR_JOB_MAX_RCPTS of its due recipients for the agent's transport (and
 * the one next hop, relay_host, for relay), marked active while the agent
 * works.  Results are kept with the job and applied together when the
 * agent says DONE (or goes away): the updates, the bounce for the
 * recipients that failed and the removal of a finished message happen in
 * one unit of the transaction, so a bounce is never lost between a
 * recipient marked bounced and its notification (invariant 2).
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
#include "mail/policy.h"
#include "util/log.h"
#include "util/xmalloc.h"
#include "qmgr.h"
#include "queue_dsn.h"

/* Passes over unroutable messages per run, so one run stays short. */
#define QMGR_UNROUTABLE_BURST	100
/* A finished job the database would not take is tried again this soon. */
#define QMGR_UNAPPLIED_RETRY	5

/* The transport (and next hop) of a recipient; returns the policy verdict. */
int
qmgr_route(const struct conf *cfg, const char *client, const char *address,
    enum queue_transport *t, char *nexthop, size_t nhsz)
{
	struct mailaddr ma;
	enum policy_verdict v;

	if (addr_parse_mailbox(address, strlen(address), &ma) != ADDR_OK)
		return -1;
	v = policy_check_rcpt(cfg, client, &ma);
	/* Unknown local users still go to the local transport: for mail we
	 * generate ourselves (bounces), delivery will fail and say so. */
	*t = (v == POLICY_LOCAL || v == POLICY_UNKNOWN_USER) ?
	    QTRANSPORT_LOCAL : QTRANSPORT_RELAY;
	if (nexthop != NULL)
		strlcpy_m(nexthop, *t == QTRANSPORT_RELAY ? qmgr->relay_host : "", nhsz);
	return (int)v;
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

static void
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
	jr->nexthop_stale = strcmp(qr->nexthop, job->nexthop) != 0;
}

/*
 * Gather the due recipients of msg for transport t, as many as one
 * IPC_Q2D_JOB can carry.  NULL when none are due or on a database error.
 */
static struct qmgr_job *
qmgr_job_build(int64_t msg, enum queue_transport t, int64_t now)
{
	struct qmgr_job *job = xcalloc(1, sizeof(*job));
	struct queue_rcpt qr;
	size_t alloc = 0, size;
	int64_t after = -1;
	int r = 0;

	job->transport = t;
	strlcpy_m(job->nexthop, t == QTRANSPORT_RELAY ? qmgr->relay_host : "",
	    sizeof(job->nexthop));
	if (queue_db_msg_get(qmgr->db, msg, &job->msg) != 1)
		goto fail;
	size = 8 + 4 + QUEUE_ID_LEN + 4 + strlen(job->msg.sender) + 8 + 4 +
	    4 + strlen(job->nexthop) + 4;
	while (job->n < QMGR_JOB_MAX_RCPTS &&
	    (r = queue_db_due_rcpt(qmgr->db, msg, t, now, after, &qr)) == 1) {
		if (size + 8 + strlen(qr.address) > IPC_MAX_PAYLOAD)
			break;
		size += 8 + strlen(qr.address);
		qmgr_job_add(job, &qr, &alloc);
		after = qr.idx;
	}
	if (r == -1 || job->n == 0 ||
	    queue_db_chunk_count(qmgr->db, msg, &job->nchunks) == -1)
		goto fail;
	job->id = ++qmgr->next_job_id;
	return job;
fail:
	if (r == -1)
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

/* The database half of applying a job; the caller holds a savepoint. */
static int
qmgr_job_apply_db(struct qmgr_job *job, char *bqid, uint64_t *bsize, size_t *nb,
    int *removed)
{
	struct qmgr_bounced *b;
	struct queue_rcpt qr;
	int64_t now = qmgr_now();
	uint32_t i;
	int r = -1;

	b = xcalloc(job->n, sizeof(*b));
	*nb = 0;
	for (i = 0; i < job->n; i++) {
		struct qmgr_job_rcpt *jr = &job->r[i];

		if (queue_db_rcpt_get(qmgr->db, job->msg.rowid, jr->idx, &qr) != 1)
			goto out;
		qmgr_job_outcome(job, jr, now, &qr);
		if (queue_db_rcpt_update(qmgr->db, &qr) == -1)
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
		log_info("id=%s to=<%s> relay=%s delay=%.1f attempts=%u status=%s (%s)%s",
		    job->msg.qid, jr->address,
		    log_sanitize(relay, sizeof(relay), jr->relay, strlen(jr->relay)),
		    (double)(jr->when_us - job->msg.arrival_us) / 1e6, jr->attempts + 1,
		    queue_rcpt_state_name(jr->final),
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

/*
 * Without relay_host, relay recipients have nowhere to go: each time they
 * come due they are deferred again (and bounced once the message has
 * outlived its lifetime), like a temporary failure of the next hop.
 */
static void
qmgr_sched_unroutable(int64_t now)
{
	struct qmgr_job *job;
	int64_t msg;
	int i, r;
	uint32_t k;

	for (i = 0; i < QMGR_UNROUTABLE_BURST; i++) {
		if ((r = queue_db_due_msg(qmgr->db, QTRANSPORT_RELAY, now, &msg)) != 1) {
			if (r == -1)
				log_warn("queue database: %s", queue_db_errmsg(qmgr->db));
			return;
		}
		if ((job = qmgr_job_build(msg, QTRANSPORT_RELAY, now)) == NULL)
			return;
		for (k = 0; k < job->n; k++) {
			job->r[k].done = 1;
			job->r[k].code = 0;
			job->r[k].when_us = qmgr_now_us();
			strlcpy_m(job->r[k].reply, "no relay_host configured",
			    sizeof(job->r[k].reply));
			strlcpy_m(job->r[k].relay, "none", sizeof(job->r[k].relay));
		}
		r = qmgr_job_apply(job);
		qmgr_job_free(job);
		if (r == -1)
			return;
	}
	qmgr->sched_dirty = 1;	/* more next time */
}

/* Give an idle agent the oldest due work of its transport. */
static void
qmgr_sched_dispatch(struct qmgr_agent *a, int64_t now)
{
	struct qmgr_job *job;
	int64_t msg;
	int r;

	if ((r = queue_db_due_msg(qmgr->db, a->transport, now, &msg)) != 1) {
		if (r == -1)
			log_warn("queue database: %s", queue_db_errmsg(qmgr->db));
		return;
	}
	if ((job = qmgr_job_build(msg, a->transport, now)) == NULL)
		return;
	if (queue_db_sp_begin(qmgr->db) == -1 || qmgr_job_mark_active(job) == -1) {
		queue_db_sp_rollback(qmgr->db);
		qmgr_job_free(job);
		qmgr_db_trouble("mark recipients active", 0);
		return;
	}
	if (queue_db_sp_release(qmgr->db) == -1) {
		qmgr_job_free(job);
		qmgr_db_trouble("mark recipients active", 0);
		return;
	}
	a->job = job;
	job->agent = a;
	job->agent_pid = a->pid;
	log_debug("id=%s agent=%d job=%" PRIu64 " nrcpt=%u transport=%s nexthop=%s",
	    job->msg.qid, (int)a->pid, job->id, job->n,
	    queue_transport_name(job->transport), job->nexthop);
	if (qmgr_agent_send_job(a, job) == -1)
		qmgr_agent_close(a, "sending the job failed");
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

/* Apply what waits, defer the unroutable, feed every idle agent. */
void
qmgr_sched_run(void)
{
	struct qmgr_agent *a, *next;
	int64_t now = qmgr_now();

	if (qmgr->db_broken)
		return;
	qmgr_sched_unapplied();
	if (qmgr->relay_host[0] == '\0')
		qmgr_sched_unroutable(now);
	for (a = TAILQ_FIRST(&qmgr->agents); a != NULL; a = next) {
		next = TAILQ_NEXT(a, entry);
		if (qmgr->db_broken)
			return;
		if (a->job != NULL || a->out_pending)
			continue;
		if (a->transport == QTRANSPORT_RELAY && qmgr->relay_host[0] == '\0')
			continue;
		qmgr_sched_dispatch(a, now);
	}
	qmgr_sched_arm(now);
}

void
qmgr_sched_timer(int fd, short ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
	qmgr->sched_dirty = 1;
}
