/*
 * moatctl_signal.c: `moatctl reload` (SIGHUP) and `moatctl stop`
 * (SIGTERM) for moatd.
 *
 * moatd writes its pid to run_directory/moatd.pid at start.  Only root
 * and members of admin_group may ask; the pid is believed only if
 * /proc/PID/comm says moatd, so a stale file cannot make moatctl signal
 * an unrelated process.  moatctl says the signal was sent; what moatd
 * made of it (reload=ok, reload=refused, the stop) is in its log.
 * The configuration file is read (for run_directory and admin_group):
 * with errors in it nothing is signalled and the errors are shown.
 * Signalling needs the right to signal moatd's user: a member of
 * admin_group who is not root can signal a moatd that runs as root only
 * through sudo or the service manager, and is told so.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "moatctl_signal.h"
#include "util/conf.h"

#define CTL_SIGNAL_GROUPS_MAX	1024

/* Is the caller root or a member of admin_group? */
static int
ctl_signal_is_admin(const char *group)
{
	gid_t groups[CTL_SIGNAL_GROUPS_MAX];
	struct group *gr;
	int i, n;

	if (geteuid() == 0)
		return 1;
	if (group == NULL || group[0] == '\0' || (gr = getgrnam(group)) == NULL)
		return 0;
	if (getegid() == gr->gr_gid)
		return 1;
	if ((n = getgroups(CTL_SIGNAL_GROUPS_MAX, groups)) == -1)
		return 0;
	for (i = 0; i < n; i++)
		if (groups[i] == gr->gr_gid)
			return 1;
	return 0;
}

/* Read a small file into buf (NUL-terminated); -1 on failure. */
static int
ctl_signal_read(const char *path, char *buf, size_t bufsz)
{
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	n = read(fd, buf, bufsz - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* The pid in run_directory/moatd.pid if it is a live moatd, else -1. */
static pid_t
ctl_signal_find(const char *rundir, char *err, size_t errlen)
{
	char path[PATH_MAX], text[64], *end;
	long pid;

	snprintf(path, sizeof(path), "%s/moatd.pid", rundir);
	if (ctl_signal_read(path, text, sizeof(text)) == -1) {
		snprintf(err, errlen, "%s: %s (is moatd running?)", path, strerror(errno));
		return -1;
	}
	errno = 0;
	pid = strtol(text, &end, 10);
	if (errno != 0 || end == text || (*end != '\n' && *end != '\0') ||
	    pid <= 1 || pid > INT_MAX) {
		snprintf(err, errlen, "%s: not a pid", path);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	if (ctl_signal_read(path, text, sizeof(text)) == -1 ||
	    strcmp(text, "moatd\n") != 0) {
		snprintf(err, errlen, "pid %ld from %s/moatd.pid is not moatd (stale "
		    "pid file: moatd is not running)", pid, rundir);
		return -1;
	}
	return (pid_t)pid;
}

int
ctl_signal_moatd(const char *cfgpath, const char *cmd)
{
	int sig = strcmp(cmd, "stop") == 0 ? SIGTERM : SIGHUP;
	struct conf *cfg;
	char err[PATH_MAX + 128];
	pid_t pid;

	/*
	 * The file names run_directory; a file with errors is also one that
	 * moatd would refuse to reload, so the operator sees why here.
	 */
	if (conf_load_file(cfgpath, &cfg, stderr) != 0) {
		fprintf(stderr, "moatctl: %s: %s has errors; moatd not signalled "
		    "(it keeps running on the configuration it has)\n", cmd, cfgpath);
		return 1;
	}
	if (!ctl_signal_is_admin(conf_str(cfg, CONF_ADMIN_GROUP))) {
		fprintf(stderr, "moatctl: %s: permission denied (root or members of "
		    "admin_group %s only)\n", cmd, conf_str(cfg, CONF_ADMIN_GROUP));
		conf_free(cfg);
		return 1;
	}
	if ((pid = ctl_signal_find(conf_str(cfg, CONF_RUN_DIRECTORY), err,
	    sizeof(err))) == -1) {
		fprintf(stderr, "moatctl: %s: %s\n", cmd, err);
		conf_free(cfg);
		return 1;
	}
	conf_free(cfg);
	if (kill(pid, sig) == -1) {
		if (errno == EPERM)
			fprintf(stderr, "moatctl: %s: moatd (pid %ld) runs as another "
			    "user: run this as root\n", cmd, (long)pid);
		else
			fprintf(stderr, "moatctl: %s: kill %ld: %s\n", cmd, (long)pid,
			    strerror(errno));
		return 1;
	}
	printf("%s: signal %s sent to moatd pid %ld (its log says what came "
	    "of it)\n", cmd, sig == SIGTERM ? "TERM" : "HUP", (long)pid);
	return fflush(stdout) == 0 ? 0 : 1;
}
