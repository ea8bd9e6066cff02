/*
 * qmgr_warn.c: delay warnings (RFC 3464 "Action: delayed").
 *
 * A message still waiting for some recipients delay_warning_time after
 * it arrived gets one warning to its sender, for the recipients still
 * pending whose NOTIFY includes DELAY or who gave no NOTIFY (as Postfix
 * does when delay_warning_time is set).  The message's warned column
 * records that it was looked at, so a warning goes out once, and the
 * candidates come from the index messages_warn (warned, arrival_us): each
 * run reads only the unwarned messages past the age, never the queue.
 * Mail from <> is stored warned and never gets one.
 *
 * The scheduler calls qmgr_warn_run() at the end of every run; a timer
 * here wakes it when the next message reaches the age, so a warning is
 * not late when nothing else happens in the queue.  Setting
 * delay_warning_time to 0 turns warnings off.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "util/log.h"
#include "util/xmalloc.h"
#include "qmgr.h"
#include "queue_dsn.h"

/* Messages looked at per run, so one run stays short; the rest next time. */
#define QMGR_WARN_BURST		64

static struct event *qmgr_warn_ev;

/* The timer: the next message reached the age; let the scheduler run. */
static void
qmgr_warn_timer(int fd, short ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
	qmgr->sched_dirty = 1;
}

/* The recipients of m still pending that want a delay notice, into dr. */
static int
qmgr_warn_rcpts(const struct queue_msg *m, struct queue_dsn_rcpt **dr,
    struct queue_rcpt **rows, size_t *n)
{
	struct queue_rcpt qr, *row;
	size_t alloc = 0, i;
	int64_t after = -1;
	int r;

	*n = 0;
	while ((r = queue_db_rcpt_next(qmgr->db, m->rowid, after, &qr)) == 1) {
		after = qr.idx;
		if (qr.state == QRCPT_SENT || qr.state == QRCPT_BOUNCED ||
		    !queue_dsn_notify_wants(qr.dsn_notify, QUEUE_DSN_DELAY))
			continue;
		if (*n == alloc) {
			alloc = alloc == 0 ? 8 : alloc * 2;
			*rows = xreallocarray(*rows, alloc, sizeof(**rows));
		}
		(*rows)[(*n)++] = qr;
	}
	if (r == -1)
		return -1;
	*dr = xcalloc(*n + 1, sizeof(**dr));
	for (i = 0; i < *n; i++) {
		row = &(*rows)[i];
		(*dr)[i].address = row->address;
		(*dr)[i].orcpt = row->dsn_orcpt;
		(*dr)[i].action = QUEUE_DSN_ACT_DELAYED;
		(*dr)[i].status = NULL;
		(*dr)[i].diagnostic = row->last_reply[0] != '\0' ? row->last_reply :
		    "delivery not yet attempted";
		(*dr)[i].last_attempt = 0;
	}
	return 0;
}

/* Remote-MTA and Status of a row, kept while the notice is built. */
struct qmgr_warn_extra {
	char	mta[QUEUE_DSN_MTA_MAX + 1];
	char	enh[16];
};

/* Queue the warning for one message and mark it warned, in one unit. */
static int
qmgr_warn_msg(const struct queue_msg *m, char nqid[QUEUE_ID_LEN + 1], size_t *nrcpt,
    uint64_t *size)
{
	struct queue_dsn_rcpt *dr = NULL;
	struct queue_rcpt *rows = NULL;
	struct qmgr_warn_extra *ex = NULL;
	size_t n = 0, i;
	int r = -1;

	nqid[0] = '\0';
	if (queue_db_sp_begin(qmgr->db) == -1)
		return -1;
	if (qmgr_warn_rcpts(m, &dr, &rows, &n) == -1)
		goto out;
	ex = xcalloc(n + 1, sizeof(*ex));
	for (i = 0; i < n; i++) {
		/* Remote-MTA and Status only when a server gave the last reply. */
		if (queue_dsn_smtp_reply(rows[i].last_reply) == NULL)
			continue;
		queue_dsn_remote_mta(rows[i].last_relay, ex[i].mta, sizeof(ex[i].mta));
		queue_dsn_reply_enh(rows[i].last_reply, ex[i].enh, sizeof(ex[i].enh));
		dr[i].remote_mta = ex[i].mta;
		dr[i].status = ex[i].enh;
	}
	if (n > 0 && qmgr_notice_create(m, QUEUE_DSN_DELAY, dr, n, nqid, size) == -1)
		goto out;
	if (queue_db_msg_set_warned(qmgr->db, m->rowid) == -1)
		goto out;
	r = 0;
out:
	if (r == -1)
		queue_db_sp_rollback(qmgr->db);
	else if (queue_db_sp_release(qmgr->db) == -1)
		r = -1;
	*nrcpt = n;
	free(dr);
	free(rows);
	free(ex);
	return r;
}

/* Wake the scheduler when the next unwarned message reaches the age. */
static void
qmgr_warn_arm(int64_t now, int64_t age)
{
	struct timeval tv = { 0, 0 };
	int64_t first_us, due;

	if (qmgr_warn_ev == NULL &&
	    (qmgr_warn_ev = evtimer_new(qmgr->base, qmgr_warn_timer, NULL)) == NULL)
		log_panic("delay warning timer: out of memory");
	evtimer_del(qmgr_warn_ev);
	if (queue_db_warn_first(qmgr->db, (now - age) * 1000000, &first_us) != 1)
		return;
	due = first_us / 1000000 + age + 1;
	tv.tv_sec = due > now ? (time_t)(due - now) : 1;
	evtimer_add(qmgr_warn_ev, &tv);
}

void
qmgr_warn_run(int64_t now)
{
	int64_t age = conf_num(qmgr->cfg, CONF_DELAY_WARNING_TIME);
	int64_t after_us = -1, after_id = 0;
	char nqid[QUEUE_ID_LEN + 1];
	struct queue_msg m;
	uint64_t size = 0;
	size_t nrcpt;
	int i, r;

	if (age <= 0 || qmgr->db_broken)
		return;
	for (i = 0; i < QMGR_WARN_BURST; i++) {
		r = queue_db_warn_next(qmgr->db, (now - age) * 1000000, after_us,
		    after_id, &m);
		if (r != 1) {
			if (r == -1)
				log_warn("queue database: %s", queue_db_errmsg(qmgr->db));
			break;
		}
		after_us = m.arrival_us;
		after_id = m.rowid;
		if (qmgr_warn_msg(&m, nqid, &nrcpt, &size) == -1) {
			qmgr_db_trouble("queue a delay warning", 0);
			return;
		}
		if (nqid[0] == '\0')
			continue;
		log_info("id=%s dsn_id=%s nrcpt=%zu status=delay-warning-queued",
		    m.qid, nqid, nrcpt);
		log_info("id=%s client=local from=<> size=%" PRIu64 " nrcpt=1 "
		    "status=queued origin=%s", nqid, size, m.qid);
		qmgr_touch();
	}
	if (i == QMGR_WARN_BURST)
		qmgr->sched_dirty = 1;	/* more next time */
	else
		qmgr_warn_arm(now, age);
}
