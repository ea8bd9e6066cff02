/*
 * qmgr.c: the queue-manager's start-up, its event loop and the group
 * commit that keeps invariant 1 (docs/queue.md).
 *
 * The loop runs libevent one batch at a time (EVLOOP_ONCE): every ready
 * descriptor and timer is handled, all of their writes going into one
 * open SQLite transaction.  At the end of the batch, if any session waits
 * for its COMMIT, the transaction is committed (one fsync for all of them)
 * and only then is every waiting session told COMMIT_OK.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf_reload.h"
#include "proc.h"
#include "util/log.h"
#include "util/privdrop.h"
#include "util/xmalloc.h"
#include "qmgr.h"
#include "wal_sync.h"

static struct qmgr qmgr_state;
struct qmgr *qmgr = &qmgr_state;

static int qmgr_in_lost;

int64_t
qmgr_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
qmgr_now(void)
{
	return qmgr_now_us() / 1000000;
}

int
qmgr_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	return 0;
}

/* Send one message on a non-blocking channel; -1 with errno on failure. */
int
qmgr_send(int fd, struct ipc_wr *w)
{
	return ipc_send(fd, w, -1);
}

/* "550 5.1.1 text" from a reply's parts; code 0 means no server answered. */
void
qmgr_reply_text(uint32_t code, const char *enh, const char *text, char *dst,
    size_t dstsz)
{
	if (code == 0)
		snprintf(dst, dstsz, "%s", text);
	else if (enh[0] != '\0')
		snprintf(dst, dstsz, "%u %s %s", code, enh, text);
	else
		snprintf(dst, dstsz, "%u %s", code, text);
}

/* Writes that should reach the disk at the end of this batch. */
void
qmgr_touch(void)
{
	qmgr->urgent = 1;
}

static void
qmgr_recover_timer(int fd, short ev, void *arg)
{
	struct timeval tv = { QMGR_RECOVER_DELAY, 0 };
	struct queue_recovery st;

	(void)fd; (void)ev; (void)arg;
	if (queue_db_recover(qmgr->db, &st) == -1 || qmgr_job_replay() == -1 ||
	    queue_db_commit(qmgr->db) == -1) {
		log_warn("queue database: recovery failed: %s; new mail is refused, "
		    "retrying in %ds", queue_db_errmsg(qmgr->db), QMGR_RECOVER_DELAY);
		(void)queue_db_rollback(qmgr->db);
		qmgr->db_broken = 1;
		evtimer_add(qmgr->recover_ev, &tv);
		return;
	}
	if (qmgr->db_broken || st.incoming_deleted || st.active_requeued)
		log_info("queue database recovered: incoming_deleted=%lld "
		    "active_requeued=%lld", st.incoming_deleted, st.active_requeued);
	qmgr->db_broken = 0;
	qmgr->sched_dirty = 1;
}

/*
 * SQLite threw away the open transaction (disk full, I/O error) or a
 * commit failed.  Nothing written since the last commit exists any more:
 * sessions waiting for a commit are refused, sessions still sending are
 * refused at their COMMIT, and the database is brought back to the
 * start-up state (incoming deleted, active recipients of jobs still in
 * flight marked active again).
 */
static void
qmgr_db_lost(void)
{
	if (qmgr_in_lost)
		return;
	qmgr_in_lost = 1;
	log_warn("queue database: transaction lost: %s; messages in progress "
	    "are refused", queue_db_errmsg(qmgr->db));
	(void)queue_db_rollback(qmgr->db);
	qmgr_session_db_lost();
	evtimer_del(qmgr->flush_ev);
	qmgr_recover_timer(-1, 0, NULL);
	qmgr_in_lost = 0;
}

/* A write failed: log it, and if the transaction is gone, recover. */
void
qmgr_db_trouble(const char *what, int force_lost)
{
	log_warn("queue database: %s: %s", what, queue_db_errmsg(qmgr->db));
	if (force_lost || queue_db_txn_lost(qmgr->db))
		qmgr_db_lost();
}

static void qmgr_sync_start(void);

/*
 * A failed fdatasync ends the queue-manager.  Linux may have dropped the
 * pages it could not write, and a later sync that succeeds would not
 * bring them back: no 250 may rest on this process's view of the WAL any
 * more.  The sessions waiting for the sync are refused first; moatd
 * starts a new queue-manager, which recovers from what the file holds.
 */
static void
qmgr_sync_failed(uint64_t gen, int err)
{
	qmgr_session_synced(gen, 0);
	log_fatal("queue database: fdatasync of the WAL failed: %s; stopping, so "
	    "that the queue is read again from the disk", strerror(err));
}

/*
 * The commits up to gen are on disk (err 0) or their sync failed: answer
 * their sessions, and start the next sync if commits came meanwhile.
 */
static void
qmgr_synced(uint64_t gen, int err)
{
	if (err != 0)
		qmgr_sync_failed(gen, err);
	qmgr->synced_gen = gen;
	qmgr_session_synced(gen, 1);
	if (qmgr->commit_gen > gen)
		qmgr_sync_start();
}

/*
 * One sync of the WAL for every commit so far.  While one is in flight,
 * later commits wait for the next, started when it finishes; so the
 * WAL's sync overlaps the loop's work instead of stopping it.  Without
 * native AIO (qmgr->ws NULL) COMMIT itself synced, as synchronous=FULL.
 */
static void
qmgr_sync_start(void)
{
	uint64_t gen = qmgr->commit_gen;

	if (qmgr->ws == NULL) {
		qmgr_synced(gen, 0);
		return;
	}
	if (wal_sync_busy(qmgr->ws))
		return;
	if (wal_sync_start(qmgr->ws, qmgr->wal_fd) == -1) {
		/* Not expected once io_setup worked; the same sync, waited for. */
		log_debug("event=sync io_submit: %s", strerror(errno));
		qmgr_synced(gen, fdatasync(qmgr->wal_fd) == -1 ? errno : 0);
		return;
	}
	qmgr->sync_gen = gen;
}

static void
qmgr_sync_event(int fd, short ev, void *arg)
{
	uint64_t gen = qmgr->sync_gen;
	int r, result;

	(void)fd; (void)ev; (void)arg;
	if ((r = wal_sync_reap(qmgr->ws, &result)) == 0)
		return;
	/* The kernel holds the request and commits wait behind it: start
	 * afresh (moatd restarts the queue-manager; no session waiting
	 * now was told 250). */
	if (r == -1)
		log_fatal("queue database: io_getevents: %s", strerror(errno));
	qmgr->sync_gen = 0;
	qmgr_synced(gen, result);
}

/*
 * What is committed is on disk when this returns: for a caller that must
 * not answer before, outside the sessions' path.
 */
void
qmgr_sync_wait(void)
{
	if (qmgr->ws != NULL && fdatasync(qmgr->wal_fd) == -1)
		qmgr_sync_failed(qmgr->commit_gen, errno);
}

/* Everything committed reaches the disk before the queue-manager exits. */
static void
qmgr_sync_finish(void)
{
	if (qmgr->ws == NULL || qmgr->synced_gen == qmgr->commit_gen)
		return;
	qmgr_synced(qmgr->commit_gen, fdatasync(qmgr->wal_fd) == -1 ? errno : 0);
}

/* The group commit, then the WAL's sync; sessions are answered after both. */
static void
qmgr_commit(void)
{
	log_debug("event=commit waiting=%d", qmgr->nwaiting);
	evtimer_del(qmgr->flush_ev);
	if (queue_db_commit(qmgr->db) == -1) {
		log_warn("queue database: commit failed: %s", queue_db_errmsg(qmgr->db));
		qmgr_session_commit_failed();
		qmgr_db_lost();
		return;
	}
	qmgr_session_committed(++qmgr->commit_gen);
	qmgr_sync_start();
}

/*
 * Copy the WAL into the database once it is long enough, between
 * transactions and after the sessions of the last commit were answered,
 * so a checkpoint (its writes and the database file's fsync) never sits
 * between a commit and its 250s.  It bounds the WAL to about
 * QMGR_CHECKPOINT_BYTES plus one group transaction.
 */
static void
qmgr_checkpoint(void)
{
	int64_t t0;
	int n;

	if (queue_db_in_txn(qmgr->db) ||
	    queue_db_wal_bytes(qmgr->db) < QMGR_CHECKPOINT_BYTES)
		return;
	t0 = qmgr_now_us();
	if (queue_db_checkpoint(qmgr->db, &n) == -1) {
		log_warn("queue database: %s", queue_db_errmsg(qmgr->db));
		return;
	}
	log_debug("event=checkpoint frames=%d usec=%lld", n,
	    (long long)(qmgr_now_us() - t0));
}

static void
qmgr_batch_end(void)
{
	struct timeval tv = { QMGR_FLUSH_MSEC / 1000, (QMGR_FLUSH_MSEC % 1000) * 1000 };

	if (qmgr->nwaiting > 0 || (qmgr->urgent && queue_db_dirty(qmgr->db))) {
		/* While the WAL's sync runs, the transaction stays open and
		 * gathers what comes meanwhile: one commit and one sync for
		 * all of it once the sync is done (qmgr_sync_event ends a
		 * batch too).  The scheduler waits with it, so it never hands
		 * out a message its COMMIT put in the open transaction. */
		if (qmgr->ws != NULL && wal_sync_busy(qmgr->ws))
			return;
		qmgr_commit();
	}
	qmgr->urgent = 0;
	qmgr_checkpoint();
	if (qmgr->sched_dirty && !qmgr->quit) {
		qmgr->sched_dirty = 0;
		qmgr_sched_run();
	}
	/* Whatever nobody waits for still reaches the disk soon. */
	if (queue_db_dirty(qmgr->db) && !evtimer_pending(qmgr->flush_ev, NULL))
		evtimer_add(qmgr->flush_ev, &tv);
}

static void
qmgr_flush_timer(int fd, short ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
	qmgr_touch();
}

static void
qmgr_signal(int sig, short ev, void *arg)
{
	(void)ev; (void)arg;
	if (sig == SIGHUP) {
		log_info("event=sighup ignored (send SIGHUP to moatd: it checks "
		    "the file and hands the queue-manager the new configuration)");
		return;
	}
	log_info("event=stop signal=%d", sig);
	qmgr->quit = 1;
}

/*
 * The settings that a reload may change (common/conf_reload.h): every
 * pointer kept here points into cfg, which becomes qmgr->cfg.
 */
static void
qmgr_settings_runtime(struct conf *cfg)
{
	const char *rh = conf_str(cfg, CONF_RELAY_HOST);

	qmgr->cfg = cfg;
	qmgr->hostname = conf_myhostname(cfg);
	qmgr->relay_host = rh != NULL ? rh : "";
	qmgr->limits.min_backoff = conf_num(cfg, CONF_MINIMAL_BACKOFF_TIME);
	qmgr->limits.max_backoff = conf_num(cfg, CONF_MAXIMAL_BACKOFF_TIME);
	qmgr->limits.lifetime = conf_num(cfg, CONF_MAXIMAL_QUEUE_LIFETIME);
	qmgr->limits.bounce_lifetime = conf_num(cfg, CONF_BOUNCE_QUEUE_LIFETIME);
	qmgr->declared_limit = (uint64_t)conf_num(cfg, CONF_MESSAGE_SIZE_LIMIT);
	qmgr->size_limit = qmgr->declared_limit + QMGR_RECEIVED_ALLOWANCE;
	qmgr->min_free = (uint64_t)conf_num(cfg, CONF_QUEUE_MIN_FREE);
	qmgr->rcpt_limit = (uint32_t)conf_num(cfg, CONF_SMTPD_RECIPIENT_LIMIT);
}

/* Settings at start: the run-time ones, and admin_group (restart only). */
static void
qmgr_settings(struct conf *cfg)
{
	struct group *gr;
	const char *grname = conf_str(cfg, CONF_ADMIN_GROUP);

	qmgr_settings_runtime(cfg);
	/* The group database is out of reach after the chroot. */
	if (grname != NULL && grname[0] != '\0' && (gr = getgrnam(grname)) != NULL) {
		qmgr->admin_gid = gr->gr_gid;
		qmgr->have_admin_gid = 1;
	} else {
		log_info("admin_group=%s not found: only root and the queue user "
		    "may use moatctl", grname != NULL ? grname : "");
	}
	qmgr_control_settings(cfg);
}

/*
 * IPC_L2Q_RELOAD: moatd checked a new configuration and sends it as a
 * sealed memfd.  What may change at run time is swapped in at once;
 * restart-only settings keep their running values (moatd logs those).
 * Jobs in flight keep the next hop they were given; routing from now on
 * uses the new transport_maps, relay_host, relay_port and domains (a
 * queued recipient is routed again when it next comes due), and the new
 * relay_destination_concurrency_limit applies to the next job given out
 * (connections above a lowered limit are not cut, they just get no new
 * work until they are under it).
 */
void
qmgr_reload(int fd)
{
	struct conf *next, *old = qmgr->cfg;
	char name[64];

	snprintf(name, sizeof(name), "%s", old->source != NULL ? old->source :
	    "moat.conf");
	if (conf_load_fd(fd, name, &next, stderr) != 0) {
		log_warn("event=reload status=refused (errors above); keeping the "
		    "running configuration");
		close(fd);
		return;
	}
	close(fd);
	(void)conf_reload_keep(old, next, 0);
	qmgr_settings_runtime(next);
	conf_free(old);
	qmgr->sched_dirty = 1;
	log_info("event=reload status=ok relay_host=%s smtpd_recipient_limit=%u "
	    "message_size_limit=%llu relay_destination_concurrency_limit=%lld",
	    qmgr->relay_host[0] != '\0' ? qmgr->relay_host : "(none)",
	    qmgr->rcpt_limit, (unsigned long long)qmgr->declared_limit,
	    conf_num(qmgr->cfg, CONF_RELAY_DESTINATION_CONCURRENCY_LIMIT));
}

static void
qmgr_check_fds(void)
{
	if (fcntl(MOAT_FD_QMGR_PARENT, F_GETFD) == -1)
		log_fatal("descriptor %d (channel from moatd) is not open", MOAT_FD_QMGR_PARENT);
	if (fcntl(MOAT_FD_QMGR_CONTROL, F_GETFD) == -1)
		log_fatal("descriptor %d (control socket) is not open", MOAT_FD_QMGR_CONTROL);
	if (qmgr_set_nonblock(MOAT_FD_QMGR_PARENT) == -1 ||
	    qmgr_set_nonblock(MOAT_FD_QMGR_CONTROL) == -1)
		log_fatal("O_NONBLOCK: %s", strerror(errno));
	(void)fcntl(MOAT_FD_QMGR_PARENT, F_SETFD, FD_CLOEXEC);
	(void)fcntl(MOAT_FD_QMGR_CONTROL, F_SETFD, FD_CLOEXEC);
}

/* Open the database and put it back in order after whatever happened. */
static void
qmgr_open_db(void)
{
	struct queue_recovery st;
	char err[512];

	if ((qmgr->dirfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		log_fatal("queue directory: %s", strerror(errno));
	if ((qmgr->db = queue_db_open("queue.db", err, sizeof(err))) == NULL)
		log_fatal("queue database: %s", err);
	/* Commits write; the WAL's fdatasync goes to the kernel's AIO and
	 * the loop goes on (wal_sync.c).  Where that is missing, every
	 * COMMIT waits for its own sync, as before. */
	qmgr->wal_fd = -1;
	if ((qmgr->ws = wal_sync_new(err, sizeof(err))) == NULL)
		log_info("queue database: no native AIO (%s); every commit "
		    "waits for the disk", err);
	else if ((qmgr->wal_fd = queue_db_defer_sync(qmgr->db)) == -1) {
		log_warn("queue database: %s; every commit waits for the disk",
		    queue_db_errmsg(qmgr->db));
		wal_sync_free(qmgr->ws);
		qmgr->ws = NULL;
	}
	if (queue_db_recover(qmgr->db, &st) == -1)
		log_fatal("queue database: recovery: %s", queue_db_errmsg(qmgr->db));
	log_info("event=start incoming_deleted=%lld active_requeued=%lld "
	    "finished_deleted=%lld", st.incoming_deleted, st.active_requeued,
	    st.finished_deleted);
}

static void
qmgr_events(void)
{
	static const int sigs[3] = { SIGTERM, SIGINT, SIGHUP };
	int i;

	if ((qmgr->base = event_base_new()) == NULL)
		log_fatal("event_base_new failed");
	qmgr->parent_ev = event_new(qmgr->base, MOAT_FD_QMGR_PARENT, EV_READ | EV_PERSIST,
	    qmgr_listener_read, NULL);
	qmgr->control_ev = event_new(qmgr->base, MOAT_FD_QMGR_CONTROL, EV_READ | EV_PERSIST,
	    qmgr_control_accept, NULL);
	qmgr->flush_ev = evtimer_new(qmgr->base, qmgr_flush_timer, NULL);
	qmgr->sched_ev = evtimer_new(qmgr->base, qmgr_sched_timer, NULL);
	qmgr->recover_ev = evtimer_new(qmgr->base, qmgr_recover_timer, NULL);
	if (qmgr->ws != NULL &&
	    ((qmgr->sync_ev = event_new(qmgr->base, wal_sync_fd(qmgr->ws),
	    EV_READ | EV_PERSIST, qmgr_sync_event, NULL)) == NULL ||
	    event_add(qmgr->sync_ev, NULL) == -1))
		log_fatal("sync event failed");
	if (qmgr->parent_ev == NULL || qmgr->control_ev == NULL || qmgr->flush_ev == NULL ||
	    qmgr->sched_ev == NULL || qmgr->recover_ev == NULL)
		log_fatal("event_new failed");
	for (i = 0; i < 3; i++) {
		if ((qmgr->sig_ev[i] = evsignal_new(qmgr->base, sigs[i], qmgr_signal, NULL)) == NULL ||
		    event_add(qmgr->sig_ev[i], NULL) == -1)
			log_fatal("signal events failed");
	}
	if (event_add(qmgr->parent_ev, NULL) == -1 || event_add(qmgr->control_ev, NULL) == -1)
		log_fatal("event_add failed");
}

/* SIGTERM: the loop has ended; the last writes are committed and SQLite closed. */
static void
qmgr_shutdown(void)
{
	if (qmgr->nwaiting > 0)
		qmgr_commit();		/* deferred behind a sync in flight */
	qmgr_sync_finish();
	qmgr_control_close_all();
	qmgr_session_close_all();
	qmgr_agent_close_all();
	wal_sync_free(qmgr->ws);
	queue_db_close(qmgr->db);	/* commits what is left */
	log_info("event=exit");
}

int
main(int argc, char **argv)
{
	struct priv_spec spec;
	struct conf *cfg;
	const char *cfgname;
	char err[512];
	int debug;

	log_init("queue-manager", 0);
	if (priv_parse_child_args(argc, argv, &spec, &debug, &cfgname, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	log_set_debug(debug);
	umask(077);
	signal(SIGPIPE, SIG_IGN);
	TAILQ_INIT(&qmgr->sessions);
	TAILQ_INIT(&qmgr->agents);
	TAILQ_INIT(&qmgr->controls);
	TAILQ_INIT(&qmgr->unapplied);
	if (conf_load_fd(MOAT_FD_CONFIG, cfgname, &cfg, stderr) != 0)
		log_fatal("configuration %s: errors above", cfgname);
	qmgr_settings(cfg);
	qmgr_check_fds();

	spec.no_new_procs = 1;
	if (priv_drop(&spec, err, sizeof(err)) == -1)
		log_fatal("dropping privileges: %s", err);
	qmgr->uid = getuid();
	qmgr_open_db();
	qmgr_events();
	if (sandbox_apply("queue-manager", qmgr_sandbox, qmgr_sandbox_len,
	    err, sizeof(err)) == -1)
		log_fatal("sandbox: %s", err);

	qmgr->sched_dirty = 1;
	while (!qmgr->quit) {
		if (event_base_loop(qmgr->base, EVLOOP_ONCE) == -1)
			log_fatal("event loop failed");
		qmgr_batch_end();
	}
	qmgr_shutdown();
	return 0;
}
