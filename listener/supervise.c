/*
 * supervise.c: moatd's children, why they end, and when they come back.
 *
 * Sessions are counted (in total and per client address, for the limits
 * checked before accepting another) and never restarted: a session is
 * one client.  A session killed by its seccomp filter counts against its
 * client's address (violation.c).  The queue-manager and the delivery
 * agents are long-lived and restarted with back-off: 1 s after a death,
 * doubling up to 60 s, back to 1 s once a child has run 60 s.  Five or
 * more deaths in a row are reported as a crash loop on every further
 * death, so an operator sees the loop rather than a trickle of restarts.
 *
 * The keyholder (only when smtpd_tls_cert_files is set, keys.c) is
 * restarted the same way, on its own: it talks to moatd and to sessions,
 * not to the queue-manager.  It is stopped with the agents, after the
 * sessions that need it.
 *
 * Agents talk to the queue-manager over a channel made when they start;
 * when the queue-manager dies those channels lead nowhere, so the agents
 * are stopped and started again after the new queue-manager.  An agent
 * that dies alone is restarted alone, with a new channel.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "moatd.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define SUP_BACKOFF_MIN_S	1
#define SUP_BACKOFF_MAX_S	60
#define SUP_GOOD_RUN_MS		60000	/* this long alive resets the back-off */
#define SUP_CRASH_LOOP		5	/* deaths in a row called a crash loop */
#define SUP_STOP_GRACE_MS	10000	/* SIGTERM to SIGKILL for agents we stop */

enum sup_state {
	SUP_RUNNING,
	SUP_WAIT_TIMER,		/* restart at next_start */
	SUP_WAIT_QMGR,		/* an agent waiting for a queue-manager */
	SUP_DONE		/* shutting down: not restarted */
};

/* One child that is not a session: the queue-manager or an agent. */
struct sup_child {
	enum proc_role	 role;
	pid_t		 pid;
	enum sup_state	 state;
	int64_t		 started;	/* monotonic ms */
	int64_t		 next_start;	/* SUP_WAIT_TIMER */
	int64_t		 kill_at;	/* SIGKILL if still alive then; 0: none */
	int		 stopped_by_us;
	unsigned int	 restarts;	/* deaths in the current run of short lives */
	int64_t		 first_death;
	time_t		 started_wall;	/* for moatctl status */
	unsigned int	 starts;	/* since moatd started; restarts = starts - 1 */
};

struct sup_session {
	pid_t	 pid;
	char	 addr[MOATD_ADDR_MAX];
};

static struct sup_child *sup_kids;	/* [0] is the queue-manager */
static size_t sup_nkids;
static struct sup_child sup_keys = {	/* the keyholder, SUP_DONE when off */
	.role = PROC_KEYS, .pid = -1, .state = SUP_DONE
};
static struct sup_session *sup_sess;
static size_t sup_nsess, sup_sess_alloc;
static int sup_stopping;

static const char *
supervise_name(enum proc_role role)
{
	return proc_info(role)->name;
}

/* Every long-lived child: the queue-manager, the agents, the keyholder. */
static size_t
supervise_nall(void)
{
	return sup_nkids + 1;
}

static struct sup_child *
supervise_kid(size_t i)
{
	return i < sup_nkids ? &sup_kids[i] : &sup_keys;
}

/* "status=exited code=1", "status=killed signal=SIGSYS (seccomp violation)" */
const char *
supervise_describe_status(int status, char *buf, size_t bufsz)
{
	if (WIFEXITED(status)) {
		int code = WEXITSTATUS(status);

#ifdef MOAT_SANDBOX_DEBUG
		if (code == 128 + SIGSYS) {
			snprintf(buf, bufsz, "status=exited code=%d (seccomp "
			    "violation, see its sandbox=violation line)", code);
			return buf;
		}
#endif
		snprintf(buf, bufsz, "status=exited code=%d", code);
	} else if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		const char *abbrev = sigabbrev_np(sig);
		char num[16];

		if (abbrev == NULL) {
			snprintf(num, sizeof(num), "%d", sig);
			abbrev = num;
		}
		snprintf(buf, bufsz, "status=killed signal=SIG%s%s%s", abbrev,
		    sig == SIGSYS ? " (seccomp violation)" :
		    sig == SIGXFSZ ? " (RLIMIT_FSIZE: it wrote to a regular file)" : "",
		    WCOREDUMP(status) ? " core=dumped" : "");
	} else
		snprintf(buf, bufsz, "status=unknown wait=0x%x", (unsigned int)status);
	return buf;
}

void
supervise_init(struct moatd *m)
{
	size_t i, nrelay = (size_t)conf_num(m->cfg, CONF_DELIVERY_AGENTS);

	sup_nkids = 1 + nrelay + 1;
	sup_kids = xcalloc(sup_nkids, sizeof(*sup_kids));
	for (i = 0; i < sup_nkids; i++) {
		sup_kids[i].pid = -1;
		sup_kids[i].state = SUP_WAIT_QMGR;
		sup_kids[i].role = i == 0 ? PROC_QMGR :
		    i == sup_nkids - 1 ? PROC_LOCAL : PROC_RELAY;
	}
	sup_kids[0].state = SUP_WAIT_TIMER;
	sup_keys.pid = -1;
	sup_keys.state = keys_enabled(m) && m->keys_fd != -1 ?
	    SUP_WAIT_TIMER : SUP_DONE;
}

int
supervise_qmgr_running(void)
{
	return sup_nkids > 0 && sup_kids[0].state == SUP_RUNNING;
}

/* After a death or a failed start: when may this child run again? */
static void
supervise_backoff(struct sup_child *k, int64_t now)
{
	unsigned int delay;

	if (now - k->started >= SUP_GOOD_RUN_MS)
		k->restarts = 0;
	if (k->restarts++ == 0)
		k->first_death = now;
	delay = k->restarts > 7 ? SUP_BACKOFF_MAX_S :
	    SUP_BACKOFF_MIN_S << (k->restarts - 1);
	if (delay > SUP_BACKOFF_MAX_S)
		delay = SUP_BACKOFF_MAX_S;
	k->state = SUP_WAIT_TIMER;
	k->next_start = now + (int64_t)delay * 1000;
	if (k->restarts >= SUP_CRASH_LOOP)
		log_warn("child=%s restarts=%u in=%llds: crash loop, next restart "
		    "in %us", supervise_name(k->role), k->restarts,
		    (long long)((now - k->first_death) / 1000), delay);
	else
		log_info("child=%s restarts=%u next restart in %us",
		    supervise_name(k->role), k->restarts, delay);
}

static void supervise_spawn(struct moatd *m, struct sup_child *k, int64_t now);

/* A child is running: log it, count it, and let the status file say so. */
static void
supervise_started(struct sup_child *k)
{
	k->state = SUP_RUNNING;
	k->started_wall = time(NULL);
	k->starts++;
	log_info("child=%s pid=%ld started", supervise_name(k->role), (long)k->pid);
	status_changed(1);
}

/* Start the queue-manager with a fresh channel; then the agents waiting for it. */
static void
supervise_spawn_qmgr(struct moatd *m, struct sup_child *k, int64_t now)
{
	int child_end;
	size_t i;

	k->started = now;
	if (qchan_open(m, &child_end) == -1) {
		supervise_backoff(k, now);
		return;
	}
	k->pid = spawn_child(m, PROC_QMGR, child_end, m->control_fd);
	close(child_end);
	if (k->pid == -1) {
		qchan_close(m);
		supervise_backoff(k, now);
		return;
	}
	supervise_started(k);
	for (i = 1; i < sup_nkids; i++)
		if (sup_kids[i].state == SUP_WAIT_QMGR)
			supervise_spawn(m, &sup_kids[i], now);
}

/* Start an agent with a new channel whose other end goes to the queue-manager. */
static void
supervise_spawn_agent(struct moatd *m, struct sup_child *k, int64_t now)
{
	int sv[2];

	if (!supervise_qmgr_running() || m->qmgr_chan == -1) {
		k->state = SUP_WAIT_QMGR;
		return;
	}
	k->started = now;
	if (ipc_socketpair(sv) == -1) {
		log_warnx("child=%s socketpair", supervise_name(k->role));
		supervise_backoff(k, now);
		return;
	}
	k->pid = spawn_child(m, k->role, sv[1], -1);
	close(sv[1]);
	if (k->pid == -1) {
		close(sv[0]);
		supervise_backoff(k, now);
		return;
	}
	supervise_started(k);
	qchan_agent(m, k->pid, k->role, sv[0]);
}

/* Start the keyholder with a new channel from moatd, then send it the keys. */
static void
supervise_spawn_keys(struct moatd *m, struct sup_child *k, int64_t now)
{
	int child_end;

	k->started = now;
	if (keys_open(m, &child_end) == -1) {
		supervise_backoff(k, now);
		return;
	}
	k->pid = spawn_child(m, PROC_KEYS, child_end, -1);
	close(child_end);
	if (k->pid == -1) {
		keys_close();
		supervise_backoff(k, now);
		return;
	}
	supervise_started(k);
	keys_started(m);
}

static void
supervise_spawn(struct moatd *m, struct sup_child *k, int64_t now)
{
	if (sup_stopping) {
		k->state = SUP_DONE;
		return;
	}
	k->stopped_by_us = 0;
	k->kill_at = 0;
	if (k->role == PROC_QMGR)
		supervise_spawn_qmgr(m, k, now);
	else if (k->role == PROC_KEYS)
		supervise_spawn_keys(m, k, now);
	else
		supervise_spawn_agent(m, k, now);
}

/* The keyholder first, so that it is there for the first session. */
void
supervise_start_all(struct moatd *m, int64_t now)
{
	if (sup_keys.state == SUP_WAIT_TIMER)
		supervise_spawn(m, &sup_keys, now);
	supervise_spawn(m, &sup_kids[0], now);
}

/*
 * A reload turned TLS on: the keyholder, which did not run, starts at
 * the next turn of the event loop (supervise_timers).
 */
void
supervise_keys_enable(void)
{
	if (sup_keys.state == SUP_DONE && !sup_stopping) {
		sup_keys.state = SUP_WAIT_TIMER;
		sup_keys.next_start = 0;
	}
}

/* Stop a running child: SIGTERM now, SIGKILL if it is still there later. */
static void
supervise_stop(struct sup_child *k, int64_t now)
{
	if (k->state != SUP_RUNNING || k->stopped_by_us)
		return;
	k->stopped_by_us = 1;
	k->kill_at = now + SUP_STOP_GRACE_MS;
	if (kill(k->pid, SIGTERM) == -1)
		log_warnx("child=%s pid=%ld kill", supervise_name(k->role), (long)k->pid);
}

/*
 * The queue-manager is gone or unreachable: drop its channel and stop
 * the agents, whose channels led to it; they start again after it.
 */
void
supervise_qmgr_lost(struct moatd *m, int64_t now)
{
	size_t i;

	qchan_close(m);
	supervise_stop(&sup_kids[0], now);
	for (i = 1; i < sup_nkids; i++)
		supervise_stop(&sup_kids[i], now);
}

/* A queue-manager or agent ended: log why and plan its return. */
static void
supervise_kid_died(struct moatd *m, struct sup_child *k, int status, int64_t now)
{
	char why[128];
	int ours = k->stopped_by_us;
	long pid = (long)k->pid;

	supervise_describe_status(status, why, sizeof(why));
	status_changed(1);
	if (k->role == PROC_KEYS)
		keys_close();
	k->pid = -1;
	k->stopped_by_us = 0;
	k->kill_at = 0;
	if (sup_stopping) {
		log_info("child=%s pid=%ld %s", supervise_name(k->role), pid, why);
		k->state = SUP_DONE;
		return;
	}
	if (k->role == PROC_QMGR) {
		log_warn("child=%s pid=%ld %s", supervise_name(k->role), pid, why);
		k->state = SUP_WAIT_TIMER;
		supervise_qmgr_lost(m, now);
		supervise_backoff(k, now);
		return;
	}
	if (ours) {
		/* Stopped because its queue-manager went away: not its fault. */
		log_info("child=%s pid=%ld %s (stopped by moatd)", supervise_name(k->role),
		    pid, why);
		supervise_spawn(m, k, now);
		return;
	}
	log_warn("child=%s pid=%ld %s", supervise_name(k->role), pid, why);
	supervise_backoff(k, now);
}

/*
 * Did this status come from a seccomp violation?  SIGSYS is how the
 * kernel kills a filtered process; a --enable-sandbox-debug build traps
 * instead, logs the call and exits 128 + SIGSYS.
 */
static int
supervise_is_violation(int status)
{
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		return 1;
#ifdef MOAT_SANDBOX_DEBUG
	if (WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGSYS)
		return 1;
#endif
	return 0;
}

/* A session ended: forget it; say so loudly only if it did not end well. */
static int
supervise_session_died(struct moatd *m, pid_t pid, int status, int64_t now)
{
	struct sup_session *ss;
	char why[128];
	unsigned int count;
	size_t i;

	for (i = 0; i < sup_nsess; i++) {
		if (sup_sess[i].pid != pid)
			continue;
		ss = &sup_sess[i];
		supervise_describe_status(status, why, sizeof(why));
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			log_debug("child=%s pid=%ld %s", supervise_name(PROC_SESSION),
			    (long)pid, why);
		else
			log_warn("child=%s pid=%ld client=%s %s",
			    supervise_name(PROC_SESSION), (long)pid, ss->addr, why);
		if (supervise_is_violation(status)) {
			count = violation_add(&m->violations, ss->addr, now);
			log_warn("client=%s violations=%u limit=%u window=%llds%s",
			    ss->addr, count, m->violations.limit,
			    (long long)(m->violations.window_ms / 1000),
			    count >= m->violations.limit ?
			    ": further connections refused" : "");
		}
		*ss = sup_sess[--sup_nsess];
		status_changed(0);
		return 1;
	}
	return 0;
}

/* Collect every child that has ended. */
void
supervise_reap(struct moatd *m, int64_t now)
{
	char why[128];
	pid_t pid;
	int status;
	size_t i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (supervise_session_died(m, pid, status, now))
			continue;
		for (i = 0; i < supervise_nall(); i++) {
			if (supervise_kid(i)->pid == pid &&
			    supervise_kid(i)->state == SUP_RUNNING)
				break;
		}
		if (i < supervise_nall())
			supervise_kid_died(m, supervise_kid(i), status, now);
		else
			log_warn("child=unknown pid=%ld %s", (long)pid,
			    supervise_describe_status(status, why, sizeof(why)));
	}
	if (pid == -1 && errno != ECHILD)
		log_warnx("waitpid");
}

/* Restarts that are due, and SIGKILL for children that ignored SIGTERM. */
void
supervise_timers(struct moatd *m, int64_t now)
{
	size_t i;

	for (i = 0; i < supervise_nall(); i++) {
		struct sup_child *k = supervise_kid(i);

		if (k->state == SUP_WAIT_TIMER && now >= k->next_start)
			supervise_spawn(m, k, now);
		else if (k->state == SUP_RUNNING && k->kill_at != 0 &&
		    now >= k->kill_at) {
			log_warn("child=%s pid=%ld did not stop on SIGTERM: SIGKILL",
			    supervise_name(k->role), (long)k->pid);
			k->kill_at = 0;
			(void)kill(k->pid, SIGKILL);
		}
	}
}

/* The earliest time supervise_timers has work, or -1. */
int64_t
supervise_next_deadline(int64_t now)
{
	int64_t next = -1;
	size_t i;

	(void)now;
	for (i = 0; i < supervise_nall(); i++) {
		const struct sup_child *k = supervise_kid(i);
		int64_t t = -1;

		if (k->state == SUP_WAIT_TIMER)
			t = k->next_start;
		else if (k->state == SUP_RUNNING && k->kill_at != 0)
			t = k->kill_at;
		if (t != -1 && (next == -1 || t < next))
			next = t;
	}
	return next;
}

void
supervise_add_session(pid_t pid, const char *addr)
{
	if (sup_nsess == sup_sess_alloc) {
		sup_sess_alloc = sup_sess_alloc ? sup_sess_alloc * 2 : 64;
		sup_sess = xreallocarray(sup_sess, sup_sess_alloc, sizeof(*sup_sess));
	}
	sup_sess[sup_nsess].pid = pid;
	strlcpy_m(sup_sess[sup_nsess].addr, addr, sizeof(sup_sess[sup_nsess].addr));
	sup_nsess++;
	status_changed(0);
}

size_t
supervise_sessions(void)
{
	return sup_nsess;
}

/*
 * Sessions from one client address.  A linear count: the table is at
 * most smtpd_max_sessions long and is walked once per accepted client.
 */
size_t
supervise_sessions_from(const char *addr)
{
	size_t i, n = 0;

	for (i = 0; i < sup_nsess; i++)
		if (strcmp(sup_sess[i].addr, addr) == 0)
			n++;
	return n;
}

/* Shutting down: signal every child and start none again. */
void
supervise_stop_all(int sig)
{
	size_t i;

	sup_stopping = 1;
	for (i = 0; i < sup_nsess; i++)
		(void)kill(sup_sess[i].pid, sig);
	for (i = 0; i < supervise_nall(); i++) {
		struct sup_child *k = supervise_kid(i);

		if (k->state == SUP_RUNNING)
			(void)kill(k->pid, sig);
		else
			k->state = SUP_DONE;
		k->kill_at = 0;
	}
}

/* Children still alive (not yet reaped). */
size_t
supervise_children(void)
{
	size_t i, n = sup_nsess;

	for (i = 0; i < supervise_nall(); i++)
		if (supervise_kid(i)->state == SUP_RUNNING)
			n++;
	return n;
}

/*
 * Shutting down in stages (moatd.c): from now on nothing is restarted;
 * signal one stage: PROC_SESSION the sessions, PROC_RELAY every agent
 * (relay and local) and the keyholder, PROC_QMGR the queue-manager.
 */
void
supervise_stop_stage(enum proc_role which, int sig)
{
	size_t i;

	sup_stopping = 1;
	if (which == PROC_SESSION) {
		for (i = 0; i < sup_nsess; i++)
			(void)kill(sup_sess[i].pid, sig);
		return;
	}
	for (i = 0; i < supervise_nall(); i++) {
		struct sup_child *k = supervise_kid(i);

		if ((which == PROC_QMGR) != (k->role == PROC_QMGR))
			continue;
		if (k->state == SUP_RUNNING)
			(void)kill(k->pid, sig);
		else
			k->state = SUP_DONE;
		k->kill_at = 0;
	}
}

/* Children of one stage still alive (see supervise_stop_stage). */
size_t
supervise_running(enum proc_role which)
{
	size_t i, n = 0;

	if (which == PROC_SESSION)
		return sup_nsess;
	for (i = 0; i < supervise_nall(); i++)
		if (supervise_kid(i)->state == SUP_RUNNING &&
		    (which == PROC_QMGR) == (supervise_kid(i)->role == PROC_QMGR))
			n++;
	return n;
}

/* Agents in the table: the relay agents, then the local one. */
size_t
supervise_nagents(void)
{
	return sup_nkids > 0 ? sup_nkids - 1 : 0;
}

/* Agent i's pid while it runs, else -1. */
pid_t
supervise_agent_pid(size_t i)
{
	if (i + 1 >= sup_nkids || sup_kids[i + 1].state != SUP_RUNNING)
		return -1;
	return sup_kids[i + 1].pid;
}

/*
 * Reload: ask agent i to stop after its current job (SIGTERM, no SIGKILL
 * deadline: a job is bounded by relay_timeout).  Since moatd stopped
 * it, it is started again at once, with the new configuration memfd.
 */
int
supervise_agent_recycle(size_t i)
{
	struct sup_child *k;

	if (i + 1 >= sup_nkids || sup_stopping)
		return -1;
	k = &sup_kids[i + 1];
	if (k->state != SUP_RUNNING || k->stopped_by_us)
		return -1;
	k->stopped_by_us = 1;
	k->kill_at = 0;
	if (kill(k->pid, SIGTERM) == -1) {
		log_warnx("child=%s pid=%ld kill", supervise_name(k->role), (long)k->pid);
		k->stopped_by_us = 0;
		return -1;
	}
	return 0;
}

/*
 * For the status file: the i-th child that is not a session (the
 * queue-manager, then the agents); -1 past the last.
 */
int
supervise_info(size_t i, struct supervise_info *si)
{
	const struct sup_child *k;

	if (i >= sup_nkids)
		return -1;
	k = &sup_kids[i];
	si->role = k->role;
	si->running = k->state == SUP_RUNNING;
	si->pid = k->pid;
	si->started = k->started_wall;
	si->restarts = k->starts > 0 ? k->starts - 1 : 0;
	si->state = k->state == SUP_RUNNING ? "running" :
	    k->state == SUP_DONE ? "stopped" : "waiting";
	return 0;
}
