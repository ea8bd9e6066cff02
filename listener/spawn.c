/*
 * spawn.c: start one child, as common/proc.h describes it.
 *
 * Every child is vfork + exec of a fresh binary (so each gets its own
 * address space and ASLR layout) with its descriptors at the fixed
 * numbers of proc.h and nothing else open:
 *   0, 1  /dev/null        2  moatd's standard error (the log)
 *   3     the sealed configuration memfd
 *   4, 5  per role (client socket, channels, control socket)
 *   6     a session's channel to the keyholder, when TLS is on
 *   7     a session's seccomp program (moatd.c, moatd_session_filter)
 * and the arguments
 *   <name> [-T relay|local] -u UID -g GID -t CHROOT [-d] -n CONFIG
 * The child starts with default signal dispositions and an empty mask
 * (moatd blocks the signals it reads through a signalfd, and blocked
 * masks and ignored signals survive exec), in a session of its own.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "moatd.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define SPAWN_ARGV_MAX	16

/* The delivery-agent binary serves one transport, named by -T. */
static const char *
spawn_transport(enum proc_role role)
{
	switch (role) {
	case PROC_RELAY:
		return "relay";
	case PROC_LOCAL:
		return "local";
	default:
		return NULL;
	}
}

/* Close every descriptor from lowfd up. */
static void
spawn_close_from(int lowfd)
{
	long max, fd;

	if (close_range((unsigned int)lowfd, ~0U, 0) == 0)
		return;
	/* Kernels before 5.9 have no close_range. */
	max = sysconf(_SC_OPEN_MAX);
	for (fd = lowfd; fd < (max > 0 ? max : 1024); fd++)
		(void)close((int)fd);
}

/*
 * Put the descriptors in src[] at their numbers 0..7 (2 is left as it
 * is; -1 leaves that number closed).  Every source is first copied above
 * the fixed range, so a source that sits on another's target number
 * cannot be overwritten before it is moved.
 */
static int
spawn_place_fds(const int src[MOAT_FD_FIRST_FREE])
{
	int tmp[MOAT_FD_FIRST_FREE];
	int i;

	for (i = 0; i < MOAT_FD_FIRST_FREE; i++) {
		tmp[i] = -1;
		if (i == STDERR_FILENO || src[i] < 0)
			continue;
		if ((tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, MOAT_FD_FIRST_FREE)) == -1)
			return -1;
	}
	for (i = 0; i < MOAT_FD_FIRST_FREE; i++) {
		if (i == STDERR_FILENO)
			continue;
		if (tmp[i] < 0)
			(void)close(i);
		else if (dup2(tmp[i], i) == -1)
			return -1;
	}
	/* Our own standard error may have been opened close-on-exec. */
	return fcntl(STDERR_FILENO, F_SETFD, 0);
}

/*
 * The signals whose disposition in moatd is not the default (SIGPIPE is
 * ignored; a --enable-sandbox-debug build handles SIGSYS).  moatd sets
 * them during start-up only, before its first child, so they are found
 * once, here in the parent; a child then resets these few instead of
 * making some sixty sigaction calls per connection.
 */
static sigset_t spawn_nondefault;
static int spawn_nondefault_known;

/* Fill spawn_nondefault, once. */
static void
spawn_find_nondefault(void)
{
	struct sigaction sa;
	int sig;

	if (spawn_nondefault_known)
		return;
	sigemptyset(&spawn_nondefault);
	for (sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		/* Not SIG_DFL: ignored, or a handler (of either kind). */
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL)
			sigaddset(&spawn_nondefault, sig);
	}
	spawn_nondefault_known = 1;
}

/* Default dispositions and an empty mask, as a freshly started program has. */
static void
spawn_reset_signals(void)
{
	struct sigaction sa;
	sigset_t none;
	int sig;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (sig = 1; sig < NSIG; sig++) {
		if (sigismember(&spawn_nondefault, sig) == 1)
			(void)sigaction(sig, &sa, NULL);
	}
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * What a vfork child may say: it shares moatd's memory until execve, so
 * it writes one fixed line with write(2) and touches neither stdio nor
 * the log's buffers.
 */
static void
spawn_child_fail(const char *name, const char *what)
{
	struct iovec iov[5];

	iov[0].iov_base = (void *)"moat/moatd: warning: child=";
	iov[0].iov_len = strlen(iov[0].iov_base);
	iov[1].iov_base = (void *)name;
	iov[1].iov_len = strlen(name);
	iov[2].iov_base = (void *)" ";
	iov[2].iov_len = 1;
	iov[3].iov_base = (void *)what;
	iov[3].iov_len = strlen(what);
	iov[4].iov_base = (void *)"\n";
	iov[4].iov_len = 1;
	(void)writev(STDERR_FILENO, iov, 5);
}

/*
 * Children start with an empty environment: nothing in moat reads one,
 * and what an operator's shell exported (OPENSSL_CONF, GLIBC_TUNABLES,
 * MALLOC_*, RES_OPTIONS, ...) must not change how a session or an agent
 * behaves.  Postfix's master passes only its import_environment list;
 * moat passes nothing.  It also saves every session copying and scanning
 * moatd's environment at start.
 */
static char *const spawn_environment[] = { NULL };

/*
 * In the vfork child: arrange descriptors and signals, then exec.  Only
 * system calls on this stack until execve: no malloc, no stdio, no
 * writes to memory moatd uses.
 */
static void __attribute__((noreturn))
spawn_exec(const char *name, const char *path, char *const argv[],
    const int src[MOAT_FD_FIRST_FREE])
{
	spawn_reset_signals();
	/* Its own session: a ^C or hang-up on moatd's terminal reaches moatd
	 * only, which then stops the children in order. */
	(void)setsid();
	if (spawn_place_fds(src) == -1) {
		spawn_child_fail(name, "descriptors");
		_exit(127);
	}
	spawn_close_from(MOAT_FD_FIRST_FREE);
	execve(path, argv, spawn_environment);
	spawn_child_fail(name, "exec failed");
	_exit(127);
}

/* Descriptors 0..7 of a child of this role. */
static void
spawn_fds(const struct moatd *m, int fd4, int fd5, int fd6,
    int src[MOAT_FD_FIRST_FREE])
{
	src[STDIN_FILENO] = m->devnull;
	src[STDOUT_FILENO] = m->devnull;
	src[STDERR_FILENO] = STDERR_FILENO;
	src[MOAT_FD_CONFIG] = m->cfg_fd;
	src[4] = fd4;
	src[5] = fd5;
	src[6] = fd6;
	src[MOAT_FD_SESSION_FILTER] = -1;
}

/*
 * Fork and exec the child of this role with fd4 and fd5 as its
 * descriptors 4 and 5 (-1: none).  The caller keeps and closes its own
 * copies.  A session also gets its channel to the keyholder at
 * MOAT_FD_SESSION_KEYS when TLS is on (keys.c), made and passed on here.
 * Returns the pid, or -1 (logged).
 */
pid_t
spawn_child(const struct moatd *m, enum proc_role role, int fd4, int fd5)
{
	const struct proc_info *pi = proc_info(role);
	const struct moatd_role *r = &m->role[role];
	const char *argv[SPAWN_ARGV_MAX], *transport;
	int src[MOAT_FD_FIRST_FREE];
	char uid[24], gid[24], *path;
	int keys_session_end = -1, keys_holder_end = -1;
	size_t n = 0;
	pid_t pid;

	snprintf(uid, sizeof(uid), "%ld", m->privileged ? (long)r->uid : -1L);
	snprintf(gid, sizeof(gid), "%ld", m->privileged ? (long)r->gid : -1L);
	/* Without certificates a session needs no TLS code at all. */
	path = xasprintf("%s/%s", m->libexecdir, role == PROC_SESSION &&
	    !keys_enabled(m) ? PROC_SESSION_PLAIN_BINARY : pi->binary);
	argv[n++] = pi->name;
	if ((transport = spawn_transport(role)) != NULL) {
		argv[n++] = "-T";
		argv[n++] = transport;
	}
	argv[n++] = "-u";
	argv[n++] = uid;
	argv[n++] = "-g";
	argv[n++] = gid;
	argv[n++] = "-t";
	argv[n++] = r->chroot_dir;
	if (m->debug)
		argv[n++] = "-d";
	argv[n++] = "-n";
	argv[n++] = m->cfg_path;
	argv[n] = NULL;
	if (role == PROC_SESSION)
		(void)keys_session_pair(m, &keys_session_end, &keys_holder_end);
	spawn_find_nondefault();
	spawn_fds(m, fd4, fd5, keys_session_end, src);
	if (role == PROC_SESSION && m->session_cfg_fd != -1)
		src[MOAT_FD_CONFIG] = m->session_cfg_fd;
	if (role == PROC_SESSION)
		src[MOAT_FD_SESSION_FILTER] = m->session_filter_fd;

	/* vfork: no copy of moatd's page tables for a child that execs at
	 * once (a session per connection makes that copy add up); moatd
	 * waits the few microseconds until the execve. */
	if ((pid = vfork()) == -1)
		log_warnx("child=%s fork", pi->name);
	else if (pid == 0)
		spawn_exec(pi->name, path, (char *const *)argv, src);
	free(path);
	if (keys_session_end != -1)
		close(keys_session_end);
	if (keys_holder_end != -1 && pid != -1)
		keys_session(pid, keys_holder_end);
	else if (keys_holder_end != -1)
		close(keys_holder_end);
	return pid;
}

/* Refuse to start when a child binary is missing from LIBEXECDIR. */
int
spawn_check_binaries(const char *libexecdir, char *err, size_t errlen)
{
	enum proc_role role;

	/* One more than the roles: the session's build without TLS. */
	for (role = 0; role <= PROC_NROLES; role++) {
		const char *binary = role == PROC_NROLES ?
		    PROC_SESSION_PLAIN_BINARY : proc_info(role)->binary;
		struct stat st;
		char *path;
		int bad;

		/* The keyholder runs with TLS only; keys.c checks it then. */
		if (role == PROC_LISTENER || role == PROC_KEYS)
			continue;
		path = xasprintf("%s/%s", libexecdir, binary);
		errno = 0;
		bad = stat(path, &st) == -1 || !S_ISREG(st.st_mode) ||
		    access(path, X_OK) == -1;
		if (bad)
			snprintf(err, errlen, "%s: %s (set -L to the directory "
			    "holding smtpd-session, queue-manager and "
			    "delivery-agent)", path,
			    errno != 0 ? strerror(errno) : "not an executable");
		free(path);
		if (bad)
			return -1;
	}
	return 0;
}
