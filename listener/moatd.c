/*
 * moatd.c: the listener, parent of every moat process.
 *
 *   moatd [-d] [-n] [-f CONFIG] [-L LIBEXECDIR]
 *
 * Start-up, in this order: read and check the configuration; as root,
 * resolve the users of the process table; create run_directory and its
 * subdirectories; bind the listening sockets and the control socket; put
 * the configuration into a sealed memfd; drop every capability but the
 * five the children need; no_new_privs; the listener's seccomp filter.
 * Then start the queue-manager and the delivery agents and loop:
 * accept, spawn a session per client, reap and restart children, and
 * keep run_directory/status current for moatctl status (status.c).
 *
 * moatd stays in the foreground and logs to standard error; a service
 * manager captures it.  There is no daemon mode and no syslog of its own.
 *
 * The event loop is poll(2) over a handful of descriptors (the
 * listening sockets, a signalfd, the queue-manager channel while it has
 * a backlog) with the nearest restart time as timeout.  moatd holds no
 * per-client state beyond a pid, so an event library would add nothing
 * but system calls that the seccomp filter, which every child inherits
 * as its outer bound, would have to allow.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "moatd.h"
#include "../smtpd-session/sandbox.h"
#include "../smtpd-session/tls_listen.h"
#include "util/file.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define MOATD_STOP_GRACE_MS	10000	/* agents, queue-manager: SIGTERM to SIGKILL */
#define MOATD_KILL_WAIT_MS	5000	/* after SIGKILL, before giving up */

static void __attribute__((noreturn))
moatd_usage(void)
{
	fprintf(stderr, "usage: moatd [-d] [-n] [-f CONFIG] [-L LIBEXECDIR]\n");
	exit(1);
}

int64_t
moatd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Descriptors 0-2 must be open, or a socket could land on them; whatever
 * else was inherited is not moatd's and is closed.
 */
static void
moatd_fix_stdio(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= STDERR_FILENO)
		;
	(void)close_range(STDERR_FILENO + 1, ~0U, 0);
}

/*
 * Settings that parse but cannot work together (TLS required or
 * implicit without certificates): printed like parse errors.
 */
static int
moatd_tls_check(const struct conf *cfg)
{
	char err[2048];
	int n;

	if ((n = tls_listen_check(cfg, err, sizeof(err))) != 0)
		fprintf(stderr, "%s%s", err,
		    err[0] != '\0' && err[strlen(err) - 1] != '\n' ? "\n" : "");
	return n + tlscheck_pairs(cfg, stderr);
}

/* -n: check the file and print the configuration in effect. */
static int __attribute__((noreturn))
moatd_check(const char *path)
{
	struct conf *cfg;

	if (conf_load_file(path, &cfg, stderr) != 0 || moatd_tls_check(cfg) != 0)
		exit(1);
	conf_print(cfg, stdout);
	conf_free(cfg);
	exit(fflush(stdout) == 0 ? 0 : 1);
}

/* The bytes of the configuration file, which are checked and then sealed. */
static char *
moatd_read_config(const char *path, size_t *lenp)
{
	char err[512], *text;

	if ((text = file_read(path, RELOAD_CONFIG_MAX, lenp, err, sizeof(err))) == NULL)
		log_fatal("%s", err);
	return text;
}

/* As root: the ids of every role's user, and the admin group. */
static void
moatd_resolve_users(struct moatd *m)
{
	enum proc_role role;
	struct group *gr;

	for (role = 0; role < PROC_NROLES; role++) {
		const struct proc_info *pi = proc_info(role);
		struct moatd_role *r = &m->role[role];
		struct passwd *pw;

		r->uid = (uid_t)-1;
		r->gid = (gid_t)-1;
		if (pi->user_setting == NULL)
			continue;
		r->user = conf_str(m->cfg, role == PROC_SESSION ? CONF_SMTPD_USER :
		    role == PROC_QMGR ? CONF_QUEUE_USER :
		    role == PROC_RELAY ? CONF_RELAY_USER :
		    role == PROC_KEYS ? CONF_KEYHOLDER_USER : CONF_LOCAL_USER);
		pw = getpwnam(r->user);
		if (pw == NULL && role == PROC_KEYS && !keys_enabled(m)) {
			/* No TLS, no keyholder: keys.c will not start one
			 * without its user. */
			log_warn("user %s (%s) does not exist: TLS cannot be "
			    "turned on by a reload", r->user, pi->user_setting);
			continue;
		}
		if (pw == NULL)
			log_fatal("user %s (%s) does not exist: create it with "
			    "`useradd --system --no-create-home --shell "
			    "/usr/sbin/nologin %s` (the set-up script creates "
			    "moat's users)", r->user, pi->user_setting, r->user);
		if (pw->pw_uid == 0 || pw->pw_gid == 0)
			log_fatal("user %s (%s) has uid or gid 0: each moat process "
			    "needs an unprivileged user of its own", r->user,
			    pi->user_setting);
		r->uid = pw->pw_uid;
		r->gid = pw->pw_gid;
	}
	m->role[PROC_LISTENER].uid = 0;
	m->role[PROC_LISTENER].gid = 0;
	if ((gr = getgrnam(conf_str(m->cfg, CONF_ADMIN_GROUP))) != NULL)
		m->admin_gid = gr->gr_gid;
	else
		log_warn("group %s (admin_group) does not exist: only root may use "
		    "moatctl; create it with `groupadd --system %s`",
		    conf_str(m->cfg, CONF_ADMIN_GROUP), conf_str(m->cfg, CONF_ADMIN_GROUP));
}

/* Started by an ordinary user: every child keeps that user. */
static void
moatd_unprivileged_roles(struct moatd *m)
{
	enum proc_role role;

	for (role = 0; role < PROC_NROLES; role++) {
		m->role[role].uid = (uid_t)-1;
		m->role[role].gid = (gid_t)-1;
	}
}

/* Signals arrive as reads on a signalfd, so the loop handles them in order. */
static int
moatd_signals(void)
{
	sigset_t set;
	int fd;

	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		log_fatal("signal SIGPIPE: %s", strerror(errno));
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		log_fatal("sigprocmask: %s", strerror(errno));
	if ((fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		log_fatal("signalfd: %s", strerror(errno));
	return fd;
}

/* Give up what moatd no longer needs; the filter comes last. */
static void
moatd_confine(struct moatd *m)
{
	char err[256];

	if (m->privileged) {
		/* Children start with gid 0 and no extra groups: gid 0 is what
		 * lets them search queue/ and maildir/ (see rundir.c). */
		if (setgroups(0, NULL) == -1 || setresgid(0, 0, 0) == -1)
			log_fatal("setgroups/setresgid 0: %s", strerror(errno));
		if (caps_drop(err, sizeof(err)) == -1)
			log_fatal("capabilities: %s", err);
		log_info("capabilities=%s (bounding, permitted, effective)",
		    caps_kept_names());
	} else if (sandbox_available())
		log_warn("running unprivileged (uid %ld): no per-process users, no "
		    "chroot, no capability drop; seccomp and no_new_privs are on",
		    (long)getuid());
	else
		log_warn("running unprivileged (uid %ld): no per-process users, no "
		    "chroot, no capability drop, no seccomp; no_new_privs is on",
		    (long)getuid());
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		log_fatal("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	if (sandbox_apply("listener", listener_sandbox, listener_sandbox_len,
	    err, sizeof(err)) == -1)
		log_fatal("sandbox: %s", err);
}

/*
 * The sessions' seccomp program, built once here instead of by libseccomp
 * in every session (smtpd-session/sandbox.c has the table; each session
 * puts its own pid in and installs it).  A build without filters has
 * none to hand over.
 */
static void
moatd_session_filter(struct moatd *m)
{
	const struct sandbox_rule *rules;
	char err[256];
	size_t n;

	if (!sandbox_available())
		return;
	rules = smtpd_sandbox_rules(SANDBOX_SELF, &n);
	if ((m->session_filter_fd = sandbox_export(rules, n, err, sizeof(err))) == -1)
		log_fatal("the sessions' seccomp filter: %s", err);
}

/* Everything before the first child: see the top of this file. */
static void
moatd_setup(struct moatd *m, const char *text, size_t len)
{
	char err[512];

	m->privileged = geteuid() == 0;
	if (!sandbox_available())
		log_warn("THIS BUILD HAS NO SECCOMP FILTERS (--disable-sandbox): it "
		    "is for sanitizer testing only; never run it on a real host");
	if (m->privileged)
		moatd_resolve_users(m);
	else
		moatd_unprivileged_roles(m);
	m->hostname = xstrdup(conf_myhostname(m->cfg));
	m->rundir = conf_str(m->cfg, CONF_RUN_DIRECTORY);
	if (spawn_check_binaries(m->libexecdir, err, sizeof(err)) == -1 ||
	    rundir_setup(m, err, sizeof(err)) == -1 ||
	    sockets_listen(m, err, sizeof(err)) == -1 ||
	    sockets_control(m, err, sizeof(err)) == -1)
		log_fatal("%s", err);
	if ((m->cfg_fd = moatd_config_fds(m->cfg, text, len,
	    &m->session_cfg_fd, err, sizeof(err))) == -1)
		log_fatal("%s", err);
	if ((m->devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		log_fatal("/dev/null: %s", strerror(errno));
	moatd_session_filter(m);
	/* The TLS keys are read while moatd may still read any file. */
	if (keys_setup(m, err, sizeof(err)) == -1)
		log_fatal("%s", err);
}

struct moatd_loop {
	int	 sigfd;
	int	 stopping;
	int	 stage;		/* while stopping: index in moatd_stop_order */
	int	 killed;	/* this stage had its SIGKILL */
	int64_t	 deadline;	/* while stopping: next escalation */
};

/*
 * The order of a stop: sessions drain (those in DATA finish their
 * message, within shutdown_timeout), then the agents finish or give back
 * their job while the queue-manager can still take the results, then the
 * queue-manager commits and closes the database.  Each stage gets
 * SIGTERM, then SIGKILL at its deadline.
 */
static const enum proc_role moatd_stop_order[] = {
	PROC_SESSION, PROC_RELAY, PROC_QMGR
};
#define MOATD_NSTAGES	((int)(sizeof(moatd_stop_order) / sizeof(moatd_stop_order[0])))

static const char *
moatd_stage_name(int stage)
{
	switch (moatd_stop_order[stage]) {
	case PROC_SESSION:
		return "sessions";
	case PROC_QMGR:
		return "queue-manager";
	default:
		return "agents";
	}
}

/* SIGTERM to one stage, with its deadline. */
static void
moatd_stage_start(struct moatd *m, struct moatd_loop *lp, int64_t now)
{
	enum proc_role which = moatd_stop_order[lp->stage];

	lp->killed = 0;
	lp->deadline = now + (which == PROC_SESSION ?
	    conf_num(m->cfg, CONF_SHUTDOWN_TIMEOUT) * 1000 : MOATD_STOP_GRACE_MS);
	log_info("stopping=%s running=%zu wait=%llds", moatd_stage_name(lp->stage),
	    supervise_running(which), (long long)((lp->deadline - now) / 1000));
	supervise_stop_stage(which, SIGTERM);
}

/* SIGTERM/SIGINT: stop accepting (listening sockets first), then drain. */
static void
moatd_begin_stop(struct moatd *m, struct moatd_loop *lp, int sig, int64_t now)
{
	size_t i;

	if (lp->stopping)
		return;
	log_info("signal=%s: stopping: closing listening sockets",
	    sigabbrev_np(sig));
	lp->stopping = 1;
	for (i = 0; i < m->nlisten; i++)
		close(m->listen_fd[i]);
	m->nlisten = 0;
	lp->stage = 0;
	moatd_stage_start(m, lp, now);
}

static void
moatd_read_signals(struct moatd *m, struct moatd_loop *lp, int64_t now)
{
	struct signalfd_siginfo si;

	while (read(lp->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			supervise_reap(m, now);
			break;
		case SIGTERM:
		case SIGINT:
			moatd_begin_stop(m, lp, (int)si.ssi_signo, now);
			break;
		case SIGHUP:
			if (lp->stopping)
				log_info("signal=HUP: stopping; not reloaded");
			else
				reload_config(m);
			break;
		}
	}
	/* A SIGCHLD may be merged with one read earlier: reap regardless. */
	supervise_reap(m, now);
}

/* While stopping: move through the stages; 1 once every stage is done. */
static int
moatd_stop_progress(struct moatd *m, struct moatd_loop *lp, int64_t now)
{
	while (lp->stage < MOATD_NSTAGES) {
		enum proc_role which = moatd_stop_order[lp->stage];
		size_t n = supervise_running(which);

		if (n > 0 && now < lp->deadline)
			return 0;
		if (n > 0 && !lp->killed) {
			log_warn("stopping=%s running=%zu after %llds: SIGKILL",
			    moatd_stage_name(lp->stage), n, which == PROC_SESSION ?
			    conf_num(m->cfg, CONF_SHUTDOWN_TIMEOUT) :
			    (long long)(MOATD_STOP_GRACE_MS / 1000));
			supervise_stop_stage(which, SIGKILL);
			lp->killed = 1;
			lp->deadline = now + MOATD_KILL_WAIT_MS;
			return 0;
		}
		if (n > 0)
			log_warn("stopping=%s running=%zu not reaped after SIGKILL: "
			    "going on", moatd_stage_name(lp->stage), n);
		if (++lp->stage < MOATD_NSTAGES)
			moatd_stage_start(m, lp, now);
	}
	if (supervise_children() > 0)
		log_warn("children=%zu not reaped: exiting anyway",
		    supervise_children());
	return 1;
}

/* The poll timeout: until the nearest timer, or forever. */
static int
moatd_timeout(const struct moatd *m, const struct moatd_loop *lp, int64_t now)
{
	int64_t t = supervise_next_deadline(now), s = status_next_deadline();

	if (lp->stopping && (t == -1 || lp->deadline < t))
		t = lp->deadline;
	if (m->accept_paused_until > now && (t == -1 || m->accept_paused_until < t))
		t = m->accept_paused_until;
	if (s != -1 && (t == -1 || s < t))
		t = s;		/* the status file is due */
	if (t == -1)
		return -1;
	if (t <= now)
		return 0;
	return t - now > 60000 ? 60000 : (int)(t - now);
}

/* The queue-manager channel: writable again, or hung up. */
static void
moatd_qchan_event(struct moatd *m, int stopping, short revents, int64_t now)
{
	if (revents & (POLLHUP | POLLERR | POLLNVAL)) {
		if (stopping)
			log_info("child=queue-manager channel closed");
		else
			log_warn("child=queue-manager channel closed");
		supervise_qmgr_lost(m, now);
	} else if (revents & POLLOUT)
		qchan_flush(m);
}

static void __attribute__((noreturn))
moatd_loop(struct moatd *m, struct moatd_loop *lp)
{
	struct pollfd *pfd = xreallocarray(NULL, m->nlisten + 2, sizeof(*pfd));

	for (;;) {
		int64_t now = moatd_now_ms();
		size_t i, n = 0, first_listen;
		int qidx = -1;

		pfd[n].fd = lp->sigfd;
		pfd[n++].events = POLLIN;
		if (m->qmgr_chan != -1) {
			qidx = (int)n;
			pfd[n].fd = m->qmgr_chan;
			pfd[n++].events = qchan_pending() ? POLLOUT : 0;
		}
		first_listen = n;
		if (m->accept_paused_until <= now)
			for (i = 0; i < m->nlisten; i++) {
				pfd[n].fd = m->listen_fd[i];
				pfd[n++].events = POLLIN;
			}
		if (poll(pfd, n, moatd_timeout(m, lp, now)) == -1 && errno != EINTR)
			log_fatal("poll: %s", strerror(errno));
		now = moatd_now_ms();
		if (pfd[0].revents & POLLIN)
			moatd_read_signals(m, lp, now);
		if (qidx != -1 && pfd[qidx].revents != 0 && m->qmgr_chan == pfd[qidx].fd)
			moatd_qchan_event(m, lp->stopping, pfd[qidx].revents, now);
		for (i = first_listen; i < n && !lp->stopping; i++)
			if (pfd[i].revents & POLLIN)
				accept_ready(m, pfd[i].fd, now);
		supervise_timers(m, now);
		reload_tick(lp->stopping);
		status_tick(m, now);
		if (lp->stopping && moatd_stop_progress(m, lp, now))
			break;
	}
	status_remove();
	if (unlink(m->control_path) == -1)
		log_warnx("%s: unlink", m->control_path);
	reload_pidfile_remove(m);
	log_info("stopped");
	exit(0);
}

int
main(int argc, char *argv[])
{
	struct moatd m;
	struct moatd_loop lp;
	char *text, *libexec, err[512];
	size_t len;
	int ch, check = 0;

	moatd_fix_stdio();
	memset(&m, 0, sizeof(m));
	m.cfg_path = MOAT_SYSCONFDIR "/moat.conf";
	m.libexecdir = MOAT_LIBEXECDIR;
	m.qmgr_chan = m.control_fd = m.cfg_fd = m.session_cfg_fd = m.devnull = -1;
	m.session_filter_fd = -1;
	m.keys_fd = -1;
	m.admin_gid = (gid_t)-1;
	while ((ch = getopt(argc, argv, "dnf:L:")) != -1) {
		switch (ch) {
		case 'd':
			m.debug = 1;
			break;
		case 'n':
			check = 1;
			break;
		case 'f':
			m.cfg_path = optarg;
			break;
		case 'L':
			m.libexecdir = optarg;
			break;
		default:
			moatd_usage();
		}
	}
	if (optind != argc)
		moatd_usage();
	log_init("moatd", m.debug);
	if (check)
		moatd_check(m.cfg_path);

	/* A reload opens the file again after the chdir: keep it absolute. */
	if ((libexec = realpath(m.cfg_path, NULL)) == NULL)
		log_fatal("%s: %s", m.cfg_path, strerror(errno));
	m.cfg_path = libexec;
	text = moatd_read_config(m.cfg_path, &len);
	if (conf_parse_file(m.cfg_path, text, len, &m.cfg, stderr) != 0 ||
	    moatd_tls_check(m.cfg) != 0)
		log_fatal("%s: configuration has errors (see above; moatd -n "
		    "checks a file)", m.cfg_path);
	/* Hold no directory busy; children get absolute paths only. */
	if ((libexec = realpath(m.libexecdir, NULL)) == NULL)
		log_fatal("%s: %s (-L names the directory holding the child "
		    "binaries)", m.libexecdir, strerror(errno));
	m.libexecdir = libexec;
	if (chdir("/") == -1)
		log_fatal("chdir /: %s", strerror(errno));
	umask(022);
	moatd_setup(&m, text, len);
	free(text);

	memset(&lp, 0, sizeof(lp));
	lp.sigfd = moatd_signals();
	if (reload_pidfile_write(&m, err, sizeof(err)) == -1)
		log_fatal("%s", err);
	moatd_confine(&m);
	log_info("started: pid=%ld config=%s libexec=%s run_directory=%s "
	    "smtpd_max_sessions=%lld smtpd_client_limit=%lld "
	    "smtpd_violation_limit=%lld smtpd_violation_window=%llds "
	    "delivery_agents=%lld",
	    (long)getpid(), m.cfg_path, m.libexecdir, m.rundir,
	    conf_num(m.cfg, CONF_SMTPD_MAX_SESSIONS),
	    conf_num(m.cfg, CONF_SMTPD_CLIENT_LIMIT),
	    conf_num(m.cfg, CONF_SMTPD_VIOLATION_LIMIT),
	    conf_num(m.cfg, CONF_SMTPD_VIOLATION_WINDOW),
	    conf_num(m.cfg, CONF_DELIVERY_AGENTS));
	violation_init(&m.violations, VIOLATION_MAX_ADDRS,
	    (unsigned int)conf_num(m.cfg, CONF_SMTPD_VIOLATION_LIMIT),
	    conf_num(m.cfg, CONF_SMTPD_VIOLATION_WINDOW) * 1000);
	supervise_init(&m);
	status_init(&m);
	supervise_start_all(&m, moatd_now_ms());
	moatd_loop(&m, &lp);
}
