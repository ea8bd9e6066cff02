/*
 * status.c: run_directory/status, what `moatctl status` shows.
 *
 * moatd rewrites the file whenever something in it changes: a child
 * started, ended or restarted, a reload, the number of sessions.  It is
 * written to status.tmp and renamed over status, so a reader never sees
 * half a file.  Child and reload changes are written at the end of the
 * loop turn that made them; a change of the session count only marks the
 * file dirty, and a dirty file is written at most once a second, so an
 * accept storm costs one write a second, not one per connection.  The
 * file holds no secrets (pids, times, the configuration file's path) and
 * is mode 0644.  It is removed at exit.  The format is in docs/moatctl.md
 * ("status"); moatctl/moatctl_status_parse.c reads it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "moatd.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define STATUS_NAME		"status"
#define STATUS_TMP_NAME		"status.tmp"
#define STATUS_MIN_INTERVAL_MS	1000	/* between writes for session counts */
#define STATUS_MAX		(256 * 1024)

static char	*status_path, *status_tmp;
static time_t	 status_started;	/* moatd, wall clock */
static time_t	 status_loaded;		/* the configuration in force */
static unsigned long status_reloads;
static int	 status_dirty;		/* write within a second */
static int	 status_urgent;		/* write at the end of this turn */
static int64_t	 status_last;		/* monotonic ms of the last write */
static int	 status_failing;	/* log a failing write once, not each second */

void
status_init(struct moatd *m)
{
	status_path = xasprintf("%s/%s", m->rundir, STATUS_NAME);
	status_tmp = xasprintf("%s/%s", m->rundir, STATUS_TMP_NAME);
	status_started = status_loaded = time(NULL);
	status_dirty = status_urgent = 1;
}

/* A reload put a new configuration in force. */
void
status_config_loaded(void)
{
	status_loaded = time(NULL);
	status_reloads++;
	status_changed(1);
}

/* Something in the file changed; urgent: do not wait for the throttle. */
void
status_changed(int urgent)
{
	status_dirty = 1;
	if (urgent)
		status_urgent = 1;
}

/* The configuration path on one line: control bytes become '?'. */
static void
status_put_path(struct buf *b, const char *path)
{
	const unsigned char *p;

	for (p = (const unsigned char *)path; *p != '\0'; p++) {
		char c = *p < 0x20 || *p == 0x7f ? '?' : (char)*p;

		(void)buf_append(b, &c, 1);
	}
}

/* The text of the file. */
static int
status_format(struct moatd *m, struct buf *b)
{
	struct supervise_info si;
	size_t i;
	int r = 0;

	r |= buf_printf(b, "version=1\nupdated=%lld\nmoatd_pid=%ld\n"
	    "moatd_started=%lld\nconfig=", (long long)time(NULL), (long)getpid(),
	    (long long)status_started);
	status_put_path(b, m->cfg_path);
	r |= buf_printf(b, "\nconfig_loaded=%lld\nconfig_reloads=%lu\nsessions=%zu\n",
	    (long long)status_loaded, status_reloads, supervise_sessions());
	r |= buf_printf(b, "proc=listener pid=%ld started=%lld restarts=0 "
	    "state=running\n", (long)getpid(), (long long)status_started);
	for (i = 0; supervise_info(i, &si) == 0; i++)
		r |= buf_printf(b, "proc=%s pid=%ld started=%lld restarts=%u "
		    "state=%s\n", si.role == PROC_QMGR ? "queue-manager" :
		    si.role == PROC_LOCAL ? "local" :
		    si.role == PROC_KEYS ? "keyholder" : "relay",
		    si.running ? (long)si.pid : 0L,
		    si.running ? (long long)si.started : 0LL, si.restarts, si.state);
	return r;
}

/* Write status.tmp and rename it over status. */
static int
status_write(struct moatd *m)
{
	struct buf b;
	size_t off = 0;
	int fd, ok = 0;

	buf_init(&b, STATUS_MAX);
	if (status_format(m, &b) != 0) {
		if (!status_failing)
			log_warnx("%s: too large", status_path);
		buf_free(&b);
		return -1;
	}
	(void)unlink(status_tmp);
	if ((fd = open(status_tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0644)) == -1) {
		if (!status_failing)
			log_warnx("%s: open", status_tmp);
		buf_free(&b);
		return -1;
	}
	while (off < b.len) {
		ssize_t n = write(fd, b.data + off, b.len - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (off == b.len && fchmod(fd, 0644) == 0)
		ok = 1;
	else if (!status_failing)
		log_warnx("%s: write", status_tmp);
	close(fd);
	buf_free(&b);
	if (ok && rename(status_tmp, status_path) == -1) {
		if (!status_failing)
			log_warnx("%s: rename", status_path);
		ok = 0;
	}
	if (!ok)
		(void)unlink(status_tmp);
	return ok ? 0 : -1;
}

/* From the event loop: write the file if it is due. */
void
status_tick(struct moatd *m, int64_t now)
{
	if (!status_dirty || status_path == NULL)
		return;
	if (!status_urgent && now - status_last < STATUS_MIN_INTERVAL_MS)
		return;
	/* A failed write is retried a second later, not on every turn. */
	status_last = now;
	status_dirty = status_urgent = 0;
	if (status_write(m) == -1) {
		status_dirty = 1;
		status_failing = 1;	/* retried each second, logged once */
	} else if (status_failing) {
		status_failing = 0;
		log_info("%s: written again", status_path);
	}
}

/* When status_tick has work, or -1. */
int64_t
status_next_deadline(void)
{
	if (!status_dirty || status_path == NULL)
		return -1;
	return status_urgent ? 0 : status_last + STATUS_MIN_INTERVAL_MS;
}

/* At exit: no status file for a moatd that is not running. */
void
status_remove(void)
{
	if (status_path == NULL)
		return;
	if (unlink(status_path) == -1 && errno != ENOENT)
		log_warnx("%s: unlink", status_path);
	(void)unlink(status_tmp);
}
