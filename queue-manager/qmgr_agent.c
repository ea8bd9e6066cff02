/*
 * qmgr_agent.c: the channels of delivery agents.
 *
 * An agent does one job at a time: it gets IPC_Q2D_JOB, asks for the
 * body chunk by chunk (IPC_D2Q_FETCH, answered from the database with
 * IPC_Q2D_CHUNK), sends one IPC_D2Q_RESULT per recipient and then
 * IPC_D2Q_DONE, naming the next hop it keeps an idle connection open to
 * (which must be the job's, or none); IPC_D2Q_UNCACHED says that
 * connection closed.  Everything it says is checked against its job: the
 * job id, that the index belongs to the job, one result per recipient,
 * reply codes that mean something.  A violation closes the channel; the
 * job's recipients without a result go back to the queue.
 *
 * A chunk the socket has no room for waits in the agent's out slot, and
 * the agent is not read from until it has gone out, so an agent that
 * asks faster than it reads cannot make the queue-manager buffer more
 * than one chunk for it.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "util/log.h"
#include "util/xmalloc.h"
#include "qmgr.h"
#include "qmgr_proto.h"

/* A decoded enhanced status code must fit where a result keeps it. */
_Static_assert(QMGR_PROTO_ENH_MAX == QMGR_ENH_MAX, "enhanced status code caps differ");

#define QMGR_AGENT_BURST	16

static void qmgr_agent_io(int fd, short ev, void *arg);

/* Wait for the agent to become readable, or writable while out is pending. */
static void
qmgr_agent_want(struct qmgr_agent *a, short what)
{
	event_del(a->ev);
	event_assign(a->ev, qmgr->base, a->fd, what | EV_PERSIST, qmgr_agent_io, a);
	event_add(a->ev, NULL);
}

/* A new delivery agent from moatd; the scheduler gives it work. */
void
qmgr_agent_new(int fd, pid_t pid, enum queue_transport t)
{
	struct qmgr_agent *a = xcalloc(1, sizeof(*a));

	a->fd = fd;
	a->pid = pid;
	a->transport = t;
	buf_init(&a->chunk, IPC_DATA_CHUNK);
	if ((a->ev = event_new(qmgr->base, fd, EV_READ | EV_PERSIST, qmgr_agent_io, a)) == NULL ||
	    event_add(a->ev, NULL) == -1)
		log_panic("agent event: out of memory");
	TAILQ_INSERT_TAIL(&qmgr->agents, a, entry);
	qmgr->sched_dirty = 1;
	log_info("agent=%d transport=%s status=connected", (int)pid,
	    queue_transport_name(t));
}

/* Close an agent's channel; its job is applied with what it reported. */
void
qmgr_agent_close(struct qmgr_agent *a, const char *why)
{
	struct qmgr_job *job = a->job;

	if (why != NULL)
		log_warn("agent=%d transport=%s%s%s closed: %s", (int)a->pid,
		    queue_transport_name(a->transport), job != NULL ? " id=" : "",
		    job != NULL ? job->msg.qid : "", why);
	TAILQ_REMOVE(&qmgr->agents, a, entry);
	a->cached[0] = '\0';
	qmgr_sched_agent_hop(a, "");
	qmgr->sched_dirty = 1;	/* its next hop may have room now */
	event_free(a->ev);
	close(a->fd);
	if (a->out_pending)
		ipc_wr_free(&a->out);
	buf_free(&a->chunk);
	a->job = NULL;
	if (job != NULL)
		qmgr_job_finish(job);
	free(a);
}

void
qmgr_agent_close_all(void)
{
	while (!TAILQ_EMPTY(&qmgr->agents))
		qmgr_agent_close(TAILQ_FIRST(&qmgr->agents), NULL);
}

/* Send, or keep the message until the socket has room.  Owns w. */
static int
qmgr_agent_send(struct qmgr_agent *a, struct ipc_wr *w)
{
	if (qmgr_send(a->fd, w) == 0) {
		ipc_wr_free(w);
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		a->out = *w;
		a->out_pending = 1;
		qmgr_agent_want(a, EV_WRITE);
		return 0;
	}
	ipc_wr_free(w);
	return -1;
}

/* IPC_Q2D_JOB: the envelope and the recipients of the job. */
int
qmgr_agent_send_job(struct qmgr_agent *a, struct qmgr_job *job)
{
	struct ipc_wr w;
	uint32_t i;
	int bad = 0;

	ipc_wr_init(&w, IPC_Q2D_JOB, 0);
	ipc_put_u64(&w, job->id);
	ipc_put_str(&w, job->msg.qid);
	ipc_put_str(&w, job->msg.sender);
	ipc_put_u64(&w, job->msg.size);
	ipc_put_u32(&w, (uint32_t)job->msg.body_type);
	ipc_put_str(&w, job->nexthop);
	ipc_put_u32(&w, job->msg.dsn_ret);
	ipc_put_str(&w, job->msg.dsn_envid);
	ipc_put_u32(&w, job->n);
	for (i = 0; i < job->n && !bad; i++) {
		bad |= ipc_put_u32(&w, job->r[i].idx) == -1;
		bad |= ipc_put_str(&w, job->r[i].address) == -1;
		bad |= ipc_put_u32(&w, job->r[i].dsn_notify) == -1;
		bad |= ipc_put_str(&w, job->r[i].dsn_orcpt) == -1;
	}
	if (bad) {
		ipc_wr_free(&w);
		return -1;
	}
	return qmgr_agent_send(a, &w);
}

/* FETCH: one body chunk of the agent's own job, read from the database. */
static int
qmgr_agent_fetch(struct qmgr_agent *a, const struct ipc_frame *f, const char **why)
{
	struct qmgr_job *job = a->job;
	struct qmgr_proto_fetch req;
	struct ipc_wr w;
	uint32_t last;
	int got = 0;

	if (qmgr_proto_fetch(f, &req) != QP_OK)
		return *why = "malformed-fetch", -1;
	if (job == NULL || req.job != job->id)
		return *why = "fetch-for-another-job", -1;
	last = job->nchunks == 0 ? 0 : job->nchunks - 1;
	if (req.seq > last)
		return *why = "fetch-past-the-end", -1;
	buf_reset(&a->chunk);
	if (job->nchunks > 0 &&
	    (got = queue_db_chunk_get(qmgr->db, job->msg.rowid, req.seq, &a->chunk)) != 1) {
		log_warn("id=%s chunk=%u: %s", job->msg.qid, req.seq, got == 0 ?
		    "missing from the queue" : queue_db_errmsg(qmgr->db));
		return *why = "body chunk unreadable", -1;
	}
	ipc_wr_init(&w, IPC_Q2D_CHUNK, f->hdr.reqid);
	ipc_put_u64(&w, req.job);
	ipc_put_u32(&w, req.seq);
	ipc_put_u32(&w, req.seq == last);
	ipc_put_blob(&w, a->chunk.data, a->chunk.len);
	if (qmgr_agent_send(a, &w) == -1)
		return *why = "sending a chunk failed", -1;
	return 0;
}

/*
 * RESULT: kept with the job until DONE applies them all at once.  The
 * reply code is judged after the job checks, as it always was, so the
 * decoder's QP_BAD_CODE waits for them.
 */
static int
qmgr_agent_result(struct qmgr_agent *a, const struct ipc_frame *f, const char **why)
{
	struct qmgr_job *job = a->job;
	struct qmgr_proto_result res;
	struct qmgr_job_rcpt *jr;
	enum qmgr_proto_err e;

	if ((e = qmgr_proto_result(f, &res)) == QP_MALFORMED)
		return *why = "malformed-result", -1;
	if (job == NULL || res.job != job->id)
		return *why = "result-for-another-job", -1;
	if ((jr = qmgr_job_rcpt_find(job, res.idx)) == NULL)
		return *why = "result-for-unknown-recipient", -1;
	if (jr->done)
		return *why = "second-result-for-recipient", -1;
	if (e != QP_OK)
		return *why = "bad-reply-code", -1;
	jr->done = 1;
	jr->code = res.code;
	jr->when_us = qmgr_now_us();
	strlcpy_m(jr->enh, res.enh, sizeof(jr->enh));
	strlcpy_m(jr->relay, res.relay, sizeof(jr->relay));
	jr->result_flags = res.flags;
	strlcpy_m(jr->tls, res.tls, sizeof(jr->tls));
	qmgr_reply_text(res.code, res.enh, res.text, jr->reply, sizeof(jr->reply));
	job->ndone++;
	return 0;
}

/* DONE: every recipient has its result; apply them, free the agent. */
static int
qmgr_agent_done(struct qmgr_agent *a, const struct ipc_frame *f, const char **why)
{
	struct qmgr_job *job = a->job;
	char cached[MOAT_NEXTHOP_MAX + 1];
	uint64_t id;

	if (qmgr_proto_done(f, &id, cached, sizeof(cached)) != QP_OK)
		return *why = "malformed-done", -1;
	if (job == NULL || id != job->id)
		return *why = "done-for-another-job", -1;
	if (job->ndone != job->n)
		return *why = "done-before-every-result", -1;
	/* The only connection an agent may keep is the one it just used. */
	if (cached[0] != '\0' && strcmp(cached, job->nexthop) != 0)
		return *why = "cached-next-hop-not-the-jobs", -1;
	a->job = NULL;
	strlcpy_m(a->cached, cached, sizeof(a->cached));
	qmgr_sched_agent_hop(a, a->cached);
	qmgr_job_finish(job);
	qmgr->sched_dirty = 1;
	return 0;
}

/*
 * STOP: the agent was asked to stop (SIGTERM) and wants no further job.
 * Its channel is closed as soon as it has none; a job that crossed the
 * STOP is finished first (see qmgr_agent_read).
 */
static int
qmgr_agent_stop(struct qmgr_agent *a, const struct ipc_frame *f, const char **why)
{
	struct ipc_rd r;

	ipc_rd_init(&r, f);
	if (ipc_rd_end(&r) == -1)
		return *why = "malformed-stop", -1;
	if (a->stopping)
		return *why = "second-stop", -1;
	a->stopping = 1;
	return 0;
}

/*
 * UNCACHED: the idle connection of the last DONE is closed.  An agent
 * that was given a job meanwhile counts against the job's next hop
 * already (the two messages crossed): nothing changes then.
 */
static int
qmgr_agent_uncached(struct qmgr_agent *a, const struct ipc_frame *f, const char **why)
{
	struct ipc_rd r;

	ipc_rd_init(&r, f);
	if (ipc_rd_end(&r) == -1)
		return *why = "malformed-uncached", -1;
	if (a->job != NULL)
		return 0;
	if (a->cached[0] == '\0')
		return *why = "uncached-without-connection", -1;
	a->cached[0] = '\0';
	qmgr_sched_agent_hop(a, "");
	qmgr->sched_dirty = 1;
	return 0;
}

/* 0 handled, -1 a violation (why says which). */
static int
qmgr_agent_handle(struct qmgr_agent *a, const struct ipc_frame *f, const char **why)
{
	if (f->fd >= 0) {
		close(f->fd);
		return *why = "descriptor-passed", -1;
	}
	switch (f->hdr.type) {
	case IPC_D2Q_FETCH:
		return qmgr_agent_fetch(a, f, why);
	case IPC_D2Q_RESULT:
		return qmgr_agent_result(a, f, why);
	case IPC_D2Q_DONE:
		return qmgr_agent_done(a, f, why);
	case IPC_D2Q_STOP:
		return qmgr_agent_stop(a, f, why);
	case IPC_D2Q_UNCACHED:
		return qmgr_agent_uncached(a, f, why);
	default:
		return *why = "unexpected-message", -1;
	}
}

/* The socket has room again: send what waited, then read again. */
static void
qmgr_agent_flush(struct qmgr_agent *a)
{
	if (qmgr_send(a->fd, &a->out) == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		qmgr_agent_close(a, "send failed");
		return;
	}
	ipc_wr_free(&a->out);
	a->out_pending = 0;
	qmgr_agent_want(a, EV_READ);
}

/* Whatever the agent sent, a burst at a time. */
static void
qmgr_agent_read(struct qmgr_agent *a)
{
	struct ipc_frame f;
	const char *why = "";
	char reason[160];
	int i, n;

	for (i = 0; i < QMGR_AGENT_BURST && !a->out_pending; i++) {
		n = ipc_recv(a->fd, qmgr->rbuf, &f, &why);
		if (n == 1) {
			if (qmgr_agent_handle(a, &f, &why) == -1) {
				snprintf(reason, sizeof(reason), "violation=%s (%s)", why,
				    ipc_type_name(f.hdr.type));
				qmgr_agent_close(a, reason);
				return;
			}
			if (a->stopping && a->job == NULL) {
				log_info("agent=%d transport=%s status=stopped",
				    (int)a->pid, queue_transport_name(a->transport));
				qmgr_agent_close(a, NULL);
				return;
			}
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == -1 && errno == EPROTO) {
			snprintf(reason, sizeof(reason), "violation=malformed-message (%s)", why);
			qmgr_agent_close(a, reason);
			return;
		}
		if (n == 0 && a->job == NULL)
			log_info("agent=%d transport=%s status=disconnected", (int)a->pid,
			    queue_transport_name(a->transport));
		qmgr_agent_close(a, a->job != NULL ? "channel closed in the middle of a job" :
		    (n == 0 ? NULL : "receive failed"));
		return;
	}
}

static void
qmgr_agent_io(int fd, short ev, void *arg)
{
	struct qmgr_agent *a = arg;

	(void)fd;
	if (ev & EV_WRITE) {
		qmgr_agent_flush(a);
		return;		/* a may be gone; reading resumes next turn */
	}
	if (ev & EV_READ)
		qmgr_agent_read(a);
}
