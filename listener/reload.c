/*
 * reload.c: configuration reload (SIGHUP, `moatctl reload`) and the pid
 * file that moatctl signals.
 *
 * A reload reads the file again and checks it with the code of
 * `moatd -n`.  A file with errors changes nothing: every error is logged
 * as file:line: message, then reload=refused errors=N.  A good file
 * becomes a new sealed memfd that every child started from now on gets
 * at fd 3 (sessions already running keep the copy they parsed); the
 * queue-manager gets a copy of it (IPC_L2Q_RELOAD) and swaps in what may
 * change; the TLS key files are read again for the keyholder (keys.c);
 * the delivery agents are restarted one at a time, each after
 * its current job, so that their pool never empties.  Settings that only
 * a restart applies (common/conf_reload.c) keep their running values and
 * are logged as "needs a restart".
 *
 * The pid file, run_directory/moatd.pid, is written at start and removed
 * at exit; moatctl reload|stop reads it to find moatd.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_reload.h"
#include "moatd.h"
#include "../smtpd-session/tls_listen.h"
#include "util/file.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define RELOAD_PID_NAME		"moatd.pid"

/* The rolling restart of agents after a reload. */
static int reload_rolling;
static size_t reload_next;		/* agent being restarted */
static pid_t reload_waiting = -1;	/* its old pid, while it finishes */

/*
 * Children cannot open the lookup tables after their chroot, and the
 * queue-manager gets a reload's configuration as a memfd: so the memfd
 * carries the tables too (conf_bundle).  Sessions route nothing and
 * parse their configuration once per connection: they get the plain
 * text, without the cost of the tables.
 */
int
moatd_config_fds(const struct conf *cfg, const char *text, size_t len,
    int *session_fd, char *err, size_t errlen)
{
	char *bundle;
	size_t blen;
	int fd;

	if ((bundle = conf_bundle(cfg, text, len, &blen)) == NULL) {
		snprintf(err, errlen, "configuration and lookup tables too "
		    "large to hand to the children");
		return -1;
	}
	fd = sockets_config_memfd(bundle, blen, err, errlen);
	free(bundle);
	if (fd == -1)
		return -1;
	if ((*session_fd = sockets_config_memfd(text, len, err, errlen)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Parse text as `moatd -n` does; log every error line and return the
 * error count (0: *cfgp is set).
 */
static int
reload_parse(const char *path, const char *text, size_t len, struct conf **cfgp)
{
	char *errs = NULL, *line, *save = NULL;
	size_t errlen = 0;
	FILE *f;
	int n;

	if ((f = open_memstream(&errs, &errlen)) == NULL) {
		log_warnx("reload: open_memstream");
		return 1;
	}
	n = conf_parse_file(path, text, len, cfgp, f);
	if (n == 0) {
		char terr[2048];
		int t;

		/* What parses but cannot work (TLS without certificates). */
		if ((t = tls_listen_check(*cfgp, terr, sizeof(terr))) != 0) {
			fputs(terr, f);
			conf_free(*cfgp);
			*cfgp = NULL;
			n = t;
		}
	}
	fclose(f);
	for (line = strtok_r(errs, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		log_warn("%s", line);
	free(errs);
	return n;
}

/* The settings moatd itself reads after start, from the new configuration. */
static void
reload_apply_moatd(struct moatd *m)
{
	free((char *)m->hostname);
	m->hostname = xstrdup(conf_myhostname(m->cfg));
	m->violations.limit = (unsigned int)conf_num(m->cfg, CONF_SMTPD_VIOLATION_LIMIT);
	m->violations.window_ms = conf_num(m->cfg, CONF_SMTPD_VIOLATION_WINDOW) * 1000;
}

/* SIGHUP: see the top of this file. */
void
reload_config(struct moatd *m)
{
	struct conf *next, *old;
	char err[512];
	size_t len, nrestart;
	char *text;
	int n, fd, sfd;

	log_info("signal=HUP: reloading config=%s", m->cfg_path);
	if ((text = file_read(m->cfg_path, RELOAD_CONFIG_MAX, &len, err,
	    sizeof(err))) == NULL) {
		log_warn("%s", err);
		log_warn("reload=refused errors=1 config=%s (keeping the running "
		    "configuration)", m->cfg_path);
		return;
	}
	if ((n = reload_parse(m->cfg_path, text, len, &next)) != 0) {
		log_warn("reload=refused errors=%d config=%s (keeping the running "
		    "configuration)", n, m->cfg_path);
		free(text);
		return;
	}
	if ((fd = moatd_config_fds(next, text, len, &sfd, err,
	    sizeof(err))) == -1) {
		log_warn("%s", err);
		log_warn("reload=refused errors=1 config=%s (keeping the running "
		    "configuration)", m->cfg_path);
		conf_free(next);
		free(text);
		return;
	}
	free(text);
	/* next takes the running restart-only values; old gets the new ones. */
	nrestart = conf_reload_keep(m->cfg, next, 1);
	old = m->cfg;
	m->cfg = next;
	conf_free(old);
	reload_apply_moatd(m);
	close(m->cfg_fd);
	m->cfg_fd = fd;
	if (m->session_cfg_fd != -1)
		close(m->session_cfg_fd);
	m->session_cfg_fd = sfd;
	(void)qchan_reload(m, m->cfg_fd);
	/* New certificates come with new keys: the keyholder gets them now,
	 * and keeps the previous ones for sessions already started. */
	if (keys_reload(m) == 1)
		supervise_keys_enable();
	reload_rolling = 1;
	reload_next = 0;
	reload_waiting = -1;
	status_config_loaded();
	log_info("reload=ok config=%s needs_restart=%zu agents=%zu (restarted one "
	    "at a time after their current job)", m->cfg_path, nrestart,
	    supervise_nagents());
}

/*
 * From the event loop: move the rolling restart on.  An agent is asked
 * to stop once the one before it is back (supervise.c starts a child it
 * stopped again at once, with the current memfd).
 */
void
reload_tick(int stopping)
{
	pid_t pid;

	if (!reload_rolling)
		return;
	if (stopping) {
		reload_rolling = 0;
		return;
	}
	for (;;) {
		if (reload_next >= supervise_nagents()) {
			reload_rolling = 0;
			log_info("reload: every delivery agent runs the new configuration");
			return;
		}
		if (reload_waiting != -1) {
			if (supervise_agent_pid(reload_next) == reload_waiting)
				return;		/* still finishing its job */
			reload_waiting = -1;
			reload_next++;
			continue;
		}
		pid = supervise_agent_pid(reload_next);
		if (pid == -1 || supervise_agent_recycle(reload_next) == -1) {
			/* Not running: it starts later with the new memfd. */
			reload_next++;
			continue;
		}
		reload_waiting = pid;
		log_info("reload: agent pid=%ld asked to stop after its current job",
		    (long)pid);
		return;
	}
}

/* run_directory/moatd.pid, 0644, for moatctl reload|stop. */
int
reload_pidfile_write(struct moatd *m, char *err, size_t errlen)
{
	char line[32];
	int fd, len;

	m->pid_path = xasprintf("%s/%s", m->rundir, RELOAD_PID_NAME);
	(void)unlink(m->pid_path);
	if ((fd = open(m->pid_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0644)) == -1) {
		snprintf(err, errlen, "%s: %s", m->pid_path, strerror(errno));
		return -1;
	}
	len = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (fchmod(fd, 0644) == -1 || write(fd, line, (size_t)len) != len) {
		snprintf(err, errlen, "%s: write: %s", m->pid_path, strerror(errno));
		close(fd);
		(void)unlink(m->pid_path);
		return -1;
	}
	close(fd);
	return 0;
}

/* At exit. */
void
reload_pidfile_remove(struct moatd *m)
{
	if (m->pid_path != NULL && unlink(m->pid_path) == -1)
		log_warnx("%s: unlink", m->pid_path);
}
