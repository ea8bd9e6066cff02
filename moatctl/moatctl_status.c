/*
 * moatctl_status.c: `moatctl status [--json]`: moatd's processes, pids,
 * uptimes and restarts, the number of sessions, and the configuration in
 * force, read from run_directory/status (written by moatd, mode 0644:
 * pids and times, no secrets, so any user may run this).  moatd is
 * taken to be running only if the pid in the file is alive and its
 * /proc/PID/comm is moatd: a file left behind by a moatd that was killed
 * is not believed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "moatctl_fmt.h"
#include "moatctl_status.h"
#include "util/buf.h"
#include "util/conf.h"
#include "util/xmalloc.h"

/* The whole file, or NULL and errno. */
static char *
ctl_status_read(const char *path, size_t *lenp)
{
	char *text = xmalloc(STATUS_FILE_MAX + 1);
	size_t off = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY)) == -1) {
		free(text);
		return NULL;
	}
	while (off <= STATUS_FILE_MAX) {
		n = read(fd, text + off, STATUS_FILE_MAX + 1 - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	*lenp = off;
	return text;
}

/* Is pid a live process named moatd? */
static int
ctl_status_is_moatd(long pid)
{
	char path[64], comm[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	comm[n] = '\0';
	return strcmp(comm, "moatd\n") == 0;
}

static void
ctl_status_time(long long t, char *dst, size_t dstsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(dst, dstsz, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(dst, dstsz, "%lld", t);
}

static void
ctl_status_table(const struct status_info *si, long long now)
{
	char up[32], when[64], ago[32];
	size_t i;

	printf("%-14s  %8s  %-8s  %7s  %8s\n", "PROCESS", "PID", "STATE", "UPTIME",
	    "RESTARTS");
	for (i = 0; i < si->nproc; i++) {
		const struct status_proc *p = &si->proc[i];

		if (p->pid > 0)
			fmt_age(now - p->started, up, sizeof(up));
		else
			strlcpy_m(up, "-", sizeof(up));
		if (p->pid > 0)
			printf("%-14s  %8ld  %-8s  %7s  %8lu\n", p->role, p->pid,
			    p->state, up, p->restarts);
		else
			printf("%-14s  %8s  %-8s  %7s  %8lu\n", p->role, "-",
			    p->state, up, p->restarts);
	}
	printf("sessions: %lu\n", si->sessions);
	ctl_status_time(si->config_loaded, when, sizeof(when));
	fmt_age(now - si->config_loaded, ago, sizeof(ago));
	/* The path is moatd's own and was cleaned of control bytes there. */
	printf("config: %s (loaded %s, %s ago; reloads: %lu)\n", si->config, when,
	    ago, si->config_reloads);
}

static void
ctl_status_json(const struct status_info *si, long long now)
{
	struct buf b;
	size_t i;
	int r = 0;

	buf_init(&b, SIZE_MAX / 2);
	r |= buf_printf(&b, "{\"moatd\": {\"pid\": %ld, \"started\": %lld, "
	    "\"uptime\": %lld}, \"config\": {\"path\": ", si->moatd_pid,
	    si->moatd_started, now - si->moatd_started);
	r |= fmt_json_str(&b, si->config);
	r |= buf_printf(&b, ", \"loaded\": %lld, \"reloads\": %lu}, \"sessions\": %lu, "
	    "\"updated\": %lld, \"processes\": [", si->config_loaded,
	    si->config_reloads, si->sessions, si->updated);
	for (i = 0; i < si->nproc; i++) {
		const struct status_proc *p = &si->proc[i];

		r |= buf_printf(&b, "%s{\"role\": \"%s\", \"pid\": %ld, \"state\": "
		    "\"%s\", \"started\": %lld, \"uptime\": %lld, \"restarts\": %lu}",
		    i ? ", " : "", p->role, p->pid, p->state, p->started,
		    p->pid > 0 ? now - p->started : 0LL, p->restarts);
	}
	r |= buf_append_str(&b, "]}\n");
	if (r == 0)
		fwrite(b.data, 1, b.len, stdout);
	buf_free(&b);
}

int
ctl_status(const char *cfgpath, int json)
{
	struct status_info si;
	struct conf *cfg;
	char path[PATH_MAX], err[256], *text;
	size_t len;

	if (conf_load_file(cfgpath, &cfg, stderr) != 0) {
		fprintf(stderr, "moatctl: status: %s has errors\n", cfgpath);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/status", conf_str(cfg, CONF_RUN_DIRECTORY));
	conf_free(cfg);
	if ((text = ctl_status_read(path, &len)) == NULL) {
		if (errno == ENOENT)
			fprintf(stderr, "moatctl: status: moatd is not running (no %s)\n",
			    path);
		else
			fprintf(stderr, "moatctl: status: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (status_parse(text, len, &si, err, sizeof(err)) == -1) {
		fprintf(stderr, "moatctl: status: %s: %s\n", path, err);
		free(text);
		return 1;
	}
	free(text);
	if (!ctl_status_is_moatd(si.moatd_pid)) {
		fprintf(stderr, "moatctl: status: moatd is not running (pid %ld from %s "
		    "is not moatd: the file is stale)\n", si.moatd_pid, path);
		status_free(&si);
		return 1;
	}
	if (json)
		ctl_status_json(&si, (long long)time(NULL));
	else
		ctl_status_table(&si, (long long)time(NULL));
	status_free(&si);
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}
