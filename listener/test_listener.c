/*
 * test_listener.c: unit tests for moatd's pieces.
 *
 * The spawn and supervision tests run this same program as the child:
 * a temporary LIBEXECDIR holds links named smtpd-session, queue-manager
 * and delivery-agent that point here, and main() acts as the child when
 * argv[0] names one of them.  No seccomp filter and no capability change
 * is installed by these tests, except in the forked children of
 * test_privdrop (as root only).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "moatd.h"
#include "t.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/privdrop.h"
#include "util/xmalloc.h"

static char tmpdir[PATH_MAX];

/* ---- child side ---------------------------------------------------- */

/* As smtpd-session: report descriptors, arguments and signal state on fd 5. */
static int
child_session(int argc, char **argv)
{
	char rep[1024];
	struct sigaction sa;
	sigset_t mask;
	size_t off = 0;
	int fd, i;

	off += (size_t)snprintf(rep + off, sizeof(rep) - off, "fds=");
	for (fd = 0; fd < 64; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			off += (size_t)snprintf(rep + off, sizeof(rep) - off, "%d,", fd);
	sigprocmask(SIG_SETMASK, NULL, &mask);
	sigaction(SIGUSR1, NULL, &sa);
	off += (size_t)snprintf(rep + off, sizeof(rep) - off,
	    " blocked=%d usr1=%s argv=", sigismember(&mask, SIGTERM),
	    sa.sa_handler == SIG_DFL ? "dfl" : "other");
	for (i = 0; i < argc; i++)
		off += (size_t)snprintf(rep + off, sizeof(rep) - off, "%s%s",
		    i ? " " : "", argv[i]);
	/* The report goes on the channel (5); the client socket (4) gets "C". */
	(void)!write(5, rep, off);
	(void)!write(4, "C", 1);
	return 0;
}

/* ---- helpers ------------------------------------------------------- */

static void
make_links(const char *self)
{
	const char *names[] = { "smtpd-session", "smtpd-session-plain",
	    "queue-manager", "delivery-agent" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *p = xasprintf("%s/%s", tmpdir, names[i]);

		unlink(p);
		if (symlink(self, p) == -1)
			log_fatal("symlink %s: %s", p, strerror(errno));
		free(p);
	}
}

/*
 * Move fd above the numbers the spawn test puts descriptors on by hand,
 * so that the test does not close its own descriptors when it is started
 * with 3, 4 or 5 free (make check happens to hold them; a shell may not).
 */
static int
high_fd(int fd)
{
	int hi;

	if (fd < 0 || fd >= 20)
		return fd;
	if ((hi = fcntl(fd, F_DUPFD_CLOEXEC, 20)) == -1)
		log_fatal("F_DUPFD_CLOEXEC: %s", strerror(errno));
	close(fd);
	return hi;
}

static void
moatd_for_test(struct moatd *m, struct conf *cfg)
{
	enum proc_role r;

	memset(m, 0, sizeof(*m));
	m->cfg = cfg;
	m->cfg_path = "test.conf";
	m->libexecdir = tmpdir;
	m->qmgr_chan = m->control_fd = -1;
	m->admin_gid = (gid_t)-1;
	for (r = 0; r < PROC_NROLES; r++) {
		m->role[r].uid = (uid_t)-1;
		m->role[r].gid = (gid_t)-1;
		m->role[r].chroot_dir = xasprintf("%s/chroot-%d", tmpdir, (int)r);
	}
	m->devnull = high_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
	m->cfg_fd = high_fd(sockets_config_memfd("delivery_agents = 1\n", 20, NULL, 0));
	m->session_cfg_fd = -1;
	m->session_filter_fd = -1;
	violation_init(&m->violations, VIOLATION_MAX_ADDRS, 2, 10000);
}

/* Release what moatd_for_test() made. */
static void
moatd_test_free(struct moatd *m)
{
	enum proc_role r;

	for (r = 0; r < PROC_NROLES; r++)
		free(m->role[r].chroot_dir);
	if (m->devnull != -1)
		close(m->devnull);
	if (m->cfg_fd != -1)
		close(m->cfg_fd);
	violation_free(&m->violations);
}

/* ---- tests --------------------------------------------------------- */

static int
status_of(int how, int val)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		struct rlimit rl = { 0, 0 };

		setrlimit(RLIMIT_CORE, &rl);
		if (how == 0)
			_exit(val);
		signal(val, SIG_DFL);
		raise(val);
		_exit(99);
	}
	waitpid(pid, &st, 0);
	return st;
}

static void
test_describe_status(void)
{
	static const struct {
		int how, val;
		const char *want;
	} cases[] = {
		{ 0, 0, "status=exited code=0" },
		{ 0, 3, "status=exited code=3" },
		{ 0, 127, "status=exited code=127" },
		{ 1, SIGSYS, "status=killed signal=SIGSYS (seccomp violation)" },
		{ 1, SIGKILL, "status=killed signal=SIGKILL" },
		{ 1, SIGTERM, "status=killed signal=SIGTERM" },
		{ 1, SIGXFSZ, "status=killed signal=SIGXFSZ (RLIMIT_FSIZE: it wrote to a regular file)" },
	};
	char buf[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		supervise_describe_status(status_of(cases[i].how, cases[i].val),
		    buf, sizeof(buf));
		T_OK(strcmp(buf, cases[i].want) == 0, "describe status: %s (got %s)",
		    cases[i].want, buf);
	}
}

static void
test_memfd(void)
{
	static const char text[] = "listen = 127.0.0.1:2525\n# comment\n";
	char back[64], err[128];
	int fd, seals;

	fd = sockets_config_memfd(text, sizeof(text) - 1, err, sizeof(err));
	T_OK(fd >= 0, "memfd: created");
	if (fd < 0)
		return;
	memset(back, 0, sizeof(back));
	T_OK(pread(fd, back, sizeof(back), 0) == (ssize_t)(sizeof(text) - 1) &&
	    memcmp(back, text, sizeof(text) - 1) == 0, "memfd: holds the exact bytes");
	seals = fcntl(fd, F_GET_SEALS);
	T_OK(seals == (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE),
	    "memfd: all four seals (0x%x)", (unsigned int)seals);
	T_OK(pwrite(fd, "x", 1, 0) == -1 && errno == EPERM, "memfd: write refused");
	T_OK(ftruncate(fd, 0) == -1 && errno == EPERM, "memfd: shrink refused");
	T_OK(ftruncate(fd, 4096) == -1 && errno == EPERM, "memfd: grow refused");
	T_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) == -1 && errno == EPERM,
	    "memfd: no further seals");
	T_OK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "memfd: close-on-exec");
	close(fd);
}

static int
mode_of(const char *dir, const char *name)
{
	struct stat st;
	char *p = xasprintf("%s/%s", dir, name);
	int r = lstat(p, &st) == -1 ? -1 : (int)(st.st_mode & 07777);

	free(p);
	return r;
}

static void
test_rundir(struct conf *cfg)
{
	struct moatd m;
	char err[512], *rd, *p;
	int r;

	moatd_for_test(&m, cfg);
	m.rundir = rd = xasprintf("%s/run", tmpdir);
	r = rundir_setup(&m, err, sizeof(err));
	T_OK(r == 0, "rundir: created (%s)", r == 0 ? "ok" : err);
	T_OK(mode_of(rd, ".") == 0755, "rundir: run_directory 0755");
	T_OK(mode_of(rd, "queue") == 0710, "rundir: queue 0710");
	T_OK(mode_of(rd, "empty") == 0555, "rundir: empty 0555");
	T_OK(mode_of(rd, "maildir") == 0710, "rundir: maildir 0710");
	p = xasprintf("%s/queue", rd);
	T_OK(m.role[PROC_QMGR].chroot_dir != NULL &&
	    strcmp(m.role[PROC_QMGR].chroot_dir, p) == 0, "rundir: queue-manager chroot");
	free(p);
	p = xasprintf("%s/empty", rd);
	T_OK(strcmp(m.role[PROC_SESSION].chroot_dir, p) == 0 &&
	    strcmp(m.role[PROC_RELAY].chroot_dir, p) == 0,
	    "rundir: session and relay chroot is empty/");
	free(p);

	/* Wrong modes are corrected. */
	p = xasprintf("%s/queue", rd);
	chmod(p, 0777);
	free(p);
	T_OK(rundir_setup(&m, err, sizeof(err)) == 0 && mode_of(rd, "queue") == 0710,
	    "rundir: mode 0777 corrected to 0710");

	/* Something in empty/ is refused. */
	p = xasprintf("%s/empty", rd);
	chmod(p, 0755);
	free(p);
	p = xasprintf("%s/empty/planted", rd);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	r = rundir_setup(&m, err, sizeof(err));
	T_OK(r == -1 && strstr(err, "not empty") != NULL, "rundir: non-empty empty/ refused");
	unlink(p);
	free(p);

	/* A symbolic link in place of queue/ is refused, not followed. */
	p = xasprintf("%s/queue", rd);
	rmdir(p);
	symlink("/", p);
	r = rundir_setup(&m, err, sizeof(err));
	T_OK(r == -1 && strstr(err, "symbolic link") != NULL, "rundir: symlinked queue refused");
	unlink(p);
	free(p);

	/* A file where run_directory should be. */
	p = xasprintf("%s/notadir", tmpdir);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	m.rundir = p;
	T_OK(rundir_setup(&m, err, sizeof(err)) == -1, "rundir: a file is refused");
	unlink(p);
	free(p);
	free(rd);
	moatd_test_free(&m);
}

static void
test_spawn(struct conf *cfg)
{
	struct moatd m;
	struct pollfd pfd;
	struct sigaction sa;
	sigset_t set, old;
	char rep[1024], c = 0, *want;
	int client[2], chan[2], stray[2];
	pid_t pid;
	ssize_t n;
	int st;

	moatd_for_test(&m, cfg);
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, client);
	ipc_socketpair(chan);
	client[0] = high_fd(client[0]);
	client[1] = high_fd(client[1]);
	chan[0] = high_fd(chan[0]);
	chan[1] = high_fd(chan[1]);
	/* A descriptor without close-on-exec must still not reach the child. */
	pipe(stray);
	/* Sources sitting on each other's target numbers: 4 <-> 5. */
	dup2(client[1], 40);
	dup2(chan[1], 41);
	dup3(41, 4, O_CLOEXEC);	/* the channel sits on the client's number */
	dup3(40, 5, O_CLOEXEC);	/* and the client on the channel's */
	/* What moatd does to itself must not reach the child. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, &old);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGUSR1, &sa, NULL);

	pid = spawn_child(&m, PROC_SESSION, 5, 4);
	T_OK(pid > 0, "spawn: forked");
	/* Had 4 and 5 been mixed up, the report would not come on chan[0]. */
	pfd.fd = chan[0];
	pfd.events = POLLIN;
	n = poll(&pfd, 1, 5000) == 1 ? read(chan[0], rep, sizeof(rep) - 1) : -1;
	rep[n > 0 ? n : 0] = '\0';
	T_OK(n > 0, "spawn: child's fd 5 is the channel");
	pfd.fd = client[0];
	T_OK(poll(&pfd, 1, 5000) == 1 && read(client[0], &c, 1) == 1 && c == 'C',
	    "spawn: child's fd 4 is the client socket");
	waitpid(pid, &st, 0);
	T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "spawn: child exited 0");
	T_OK(strncmp(rep, "fds=0,1,2,3,4,5, ", 17) == 0, "spawn: exactly fds 0-5 (%s)", rep);
	T_OK(strstr(rep, "blocked=0") != NULL, "spawn: signal mask cleared");
	T_OK(strstr(rep, "usr1=dfl") != NULL, "spawn: ignored signals reset");
	want = xasprintf("argv=smtpd-session -u -1 -g -1 -t %s -n test.conf",
	    m.role[PROC_SESSION].chroot_dir);
	T_OK(strstr(rep, want) != NULL, "spawn: arguments (%s)", rep);
	free(want);

	sigprocmask(SIG_SETMASK, &old, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGUSR1, &sa, NULL);
	close(4);
	close(5);
	close(40);
	close(41);
	close(stray[0]);
	close(stray[1]);
	close(client[0]);
	close(client[1]);
	close(chan[0]);
	close(chan[1]);
	moatd_test_free(&m);
}

/*
 * Wait (really) until the queue-manager has died and been reaped, and
 * the agents that moatd then stops with it.
 */
static void
wait_qmgr_gone(struct moatd *m, int64_t now)
{
	int i;

	for (i = 0; i < 5000 && supervise_children() > 0; i++) {
		usleep(1000);
		supervise_reap(m, now);
	}
}

static void
test_backoff(struct conf *cfg)
{
	static const int64_t want[] = { 1, 2, 4, 8, 16, 32, 60, 60 };
	struct moatd m;
	int64_t t = 1000000, next;
	size_t i;

	moatd_for_test(&m, cfg);
	supervise_init(&m);
	supervise_start_all(&m, t);
	T_OK(supervise_qmgr_running(), "backoff: queue-manager started");
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		wait_qmgr_gone(&m, t);
		next = supervise_next_deadline(t);
		T_OK(next == t + want[i] * 1000, "backoff: death %zu -> restart in %llds "
		    "(got %lld)", i + 1, (long long)want[i], (long long)(next - t));
		t = next;
		supervise_timers(&m, t);
		T_OK(supervise_qmgr_running(), "backoff: restarted at the deadline");
	}
	/* After 60 s of running, a death starts over at 1 s. */
	wait_qmgr_gone(&m, t + 60000);
	next = supervise_next_deadline(t + 60000);
	T_OK(next == t + 60000 + 1000, "backoff: reset after 60 s of good running "
	    "(got %lld)", (long long)(next - t - 60000));
	supervise_stop_all(SIGKILL);
	moatd_test_free(&m);
}

/* One step of a violation scenario: add or check an address at a time. */
struct viol_step {
	char		 op;		/* 'a': violation_add, 'b': violation_blocked */
	const char	*addr;
	int64_t		 at;		/* ms */
	unsigned int	 want;		/* count returned / reported */
	int		 blocked;	/* 'b': expected answer */
};

struct viol_case {
	const char	*label;
	unsigned int	 limit;
	int64_t		 window_ms;
	struct viol_step steps[10];
};

static const struct viol_case viol_cases[] = {
	{ "unknown address is not blocked", 3, 1000, {
		{ 'b', "192.0.2.1", 0, 0, 0 },
		{ 0, NULL, 0, 0, 0 } } },
	{ "below the limit is not blocked", 3, 1000, {
		{ 'a', "192.0.2.1", 0, 1, 0 },
		{ 'a', "192.0.2.1", 10, 2, 0 },
		{ 'b', "192.0.2.1", 20, 2, 0 },
		{ 0, NULL, 0, 0, 0 } } },
	{ "the limit within the window blocks", 3, 1000, {
		{ 'a', "192.0.2.1", 0, 1, 0 },
		{ 'a', "192.0.2.1", 500, 2, 0 },
		{ 'a', "192.0.2.1", 999, 3, 0 },
		{ 'b', "192.0.2.1", 1000, 3, 1 },
		{ 'b', "192.0.2.1", 1998, 3, 1 },
		{ 'b', "192.0.2.1", 1999, 0, 0 },	/* window after the last */
		{ 0, NULL, 0, 0, 0 } } },
	{ "limit 1: the first violation blocks", 1, 1000, {
		{ 'a', "2001:db8::1", 0, 1, 0 },
		{ 'b', "2001:db8::1", 0, 1, 1 },
		{ 'b', "2001:db8::1", 999, 1, 1 },
		{ 'b', "2001:db8::1", 1000, 0, 0 },
		{ 0, NULL, 0, 0, 0 } } },
	{ "the window is fixed from the first violation", 3, 1000, {
		{ 'a', "192.0.2.1", 0, 1, 0 },
		{ 'a', "192.0.2.1", 600, 2, 0 },
		{ 'a', "192.0.2.1", 1000, 1, 0 },	/* window closed: count restarts */
		{ 'a', "192.0.2.1", 1500, 2, 0 },
		{ 'b', "192.0.2.1", 1600, 2, 0 },
		{ 'a', "192.0.2.1", 1999, 3, 0 },
		{ 'b', "192.0.2.1", 2000, 3, 1 },
		{ 0, NULL, 0, 0, 0 } } },
	{ "addresses are counted apart", 2, 1000, {
		{ 'a', "127.0.0.1", 0, 1, 0 },
		{ 'a', "127.0.0.1", 1, 2, 0 },
		{ 'b', "127.0.0.1", 2, 2, 1 },
		{ 'b', "127.0.0.2", 2, 0, 0 },
		{ 'a', "127.0.0.2", 3, 1, 0 },
		{ 'b', "127.0.0.2", 4, 1, 0 },
		{ 'b', "::ffff:127.0.0.1", 4, 0, 0 },	/* text compared exactly */
		{ 0, NULL, 0, 0, 0 } } },
	{ "a blocked address stays blocked for the whole window", 2, 3600000, {
		{ 'a', "198.51.100.7", 0, 1, 0 },
		{ 'a', "198.51.100.7", 3599999, 2, 0 },
		{ 'b', "198.51.100.7", 7199998, 2, 1 },
		{ 'b', "198.51.100.7", 7199999, 0, 0 },
		{ 'a', "198.51.100.7", 7200000, 1, 0 },	/* starts over */
		{ 'b', "198.51.100.7", 7200001, 1, 0 },
		{ 0, NULL, 0, 0, 0 } } },
};

/* The counting and the window, table-driven. */
static void
test_violation_cases(void)
{
	struct violation_table vt;
	unsigned int count;
	size_t i, j;
	int b;

	for (i = 0; i < sizeof(viol_cases) / sizeof(viol_cases[0]); i++) {
		const struct viol_case *vc = &viol_cases[i];

		violation_init(&vt, 16, vc->limit, vc->window_ms);
		for (j = 0; vc->steps[j].op != 0; j++) {
			const struct viol_step *st = &vc->steps[j];

			if (st->op == 'a') {
				count = violation_add(&vt, st->addr, st->at);
				T_OK(count == st->want, "violation: %s: step %zu add %s at "
				    "%lld -> %u (got %u)", vc->label, j + 1, st->addr,
				    (long long)st->at, st->want, count);
			} else {
				b = violation_blocked(&vt, st->addr, st->at, &count);
				T_OK(b == st->blocked && count == st->want, "violation: %s: "
				    "step %zu %s at %lld blocked=%d count=%u (got %d %u)",
				    vc->label, j + 1, st->addr, (long long)st->at,
				    st->blocked, st->want, b, count);
			}
		}
		violation_free(&vt);
	}
}

/* The table never holds more than its cap; the oldest goes first. */
static void
test_violation_bounds(void)
{
	struct violation_table vt;
	char addr[MOATD_ADDR_MAX], longaddr[200];
	unsigned int count;
	size_t i, n;
	int b;

	violation_init(&vt, 4, 1, 1000000);
	for (i = 0; i < 4; i++) {
		snprintf(addr, sizeof(addr), "192.0.2.%zu", i);
		violation_add(&vt, addr, (int64_t)i);
	}
	T_OK(violation_tracked(&vt) == 4 && vt.evicted == 0, "violation: 4 of 4 tracked");
	violation_add(&vt, "192.0.2.0", 10);	/* now the newest */
	violation_add(&vt, "203.0.113.9", 11);	/* evicts 192.0.2.1, the oldest */
	n = violation_tracked(&vt);
	T_OK(n == 4 && vt.evicted == 1, "violation: full table evicts one "
	    "(tracked %zu evicted %lu)", n, vt.evicted);
	b = violation_blocked(&vt, "192.0.2.1", 12, &count);
	T_OK(!b && count == 0, "violation: the oldest was evicted");
	b = violation_blocked(&vt, "192.0.2.0", 12, &count);
	T_OK(b && count == 2, "violation: a refreshed address was kept (count %u)",
	    count);
	T_OK(violation_blocked(&vt, "192.0.2.2", 12, &count) &&
	    violation_blocked(&vt, "192.0.2.3", 12, &count) &&
	    violation_blocked(&vt, "203.0.113.9", 12, &count),
	    "violation: the others were kept");

	/* A flood of addresses: the table stays at its cap. */
	for (i = 0; i < 10000; i++) {
		snprintf(addr, sizeof(addr), "10.%zu.%zu.%zu", i >> 16, (i >> 8) & 255,
		    i & 255);
		violation_add(&vt, addr, 100 + (int64_t)i);
	}
	n = violation_tracked(&vt);
	T_OK(n == 4, "violation: flood keeps the cap (%zu)", n);
	T_OK(vt.alloc <= 4, "violation: never allocated past the cap (%zu)", vt.alloc);
	T_OK(violation_blocked(&vt, "10.0.39.15", 10100, &count),
	    "violation: the newest of the flood is tracked");

	/* Expired entries are dropped when met, making room without eviction. */
	b = violation_blocked(&vt, "10.0.39.15", 10099 + 1000000, &count);
	n = violation_tracked(&vt);
	T_OK(!b && n == 0, "violation: expired entries dropped (%zu left)", n);
	violation_free(&vt);

	/* An address longer than the slot is cut, never overflowing it. */
	memset(longaddr, 'a', sizeof(longaddr) - 1);
	longaddr[sizeof(longaddr) - 1] = '\0';
	violation_init(&vt, 2, 1, 1000);
	T_OK(violation_add(&vt, longaddr, 0) == 1, "violation: over-long address counted");
	T_OK(strlen(vt.v[0].addr) == MOATD_ADDR_MAX - 1, "violation: over-long address cut");
	violation_free(&vt);

	/* The real cap. */
	violation_init(&vt, VIOLATION_MAX_ADDRS, 3, 3600000);
	for (i = 0; i < VIOLATION_MAX_ADDRS + 100; i++) {
		snprintf(addr, sizeof(addr), "2001:db8::%zx", i);
		violation_add(&vt, addr, (int64_t)i);
	}
	n = violation_tracked(&vt);
	T_OK(n == VIOLATION_MAX_ADDRS && vt.evicted == 100,
	    "violation: %d addresses at most (tracked %zu evicted %lu)",
	    VIOLATION_MAX_ADDRS, n, vt.evicted);
	violation_free(&vt);
}

/* A fake session that dies of sig, or exits 1 when sig is 0. */
static pid_t
fake_session(int sig)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct rlimit rl = { 0, 0 };

		setrlimit(RLIMIT_CORE, &rl);
		if (sig == 0)
			_exit(1);
		signal(sig, SIG_DFL);
		raise(sig);
		_exit(99);
	}
	return pid;
}

/* Reap until no session is left (bounded). */
static void
reap_sessions(struct moatd *m, int64_t now)
{
	int i;

	for (i = 0; i < 5000 && supervise_sessions() > 0; i++) {
		usleep(1000);
		supervise_reap(m, now);
	}
}

/* supervise_reap counts a session's SIGSYS against its client, nothing else. */
static void
test_violation_reap(struct conf *cfg)
{
	struct moatd m;
	unsigned int count;
	int b;

	moatd_for_test(&m, cfg);	/* limit 2, window 10 s */
	supervise_add_session(fake_session(SIGSYS), "192.0.2.50");
	supervise_add_session(fake_session(SIGSEGV), "192.0.2.51");
	supervise_add_session(fake_session(0), "192.0.2.52");
	reap_sessions(&m, 1000);
	T_OK(supervise_sessions() == 0, "violation: sessions reaped");
	b = violation_blocked(&m.violations, "192.0.2.50", 1000, &count);
	T_OK(!b && count == 1, "violation: SIGSYS counted (%u)", count);
	b = violation_blocked(&m.violations, "192.0.2.51", 1000, &count);
	T_OK(!b && count == 0, "violation: SIGSEGV not counted (%u)", count);
	b = violation_blocked(&m.violations, "192.0.2.52", 1000, &count);
	T_OK(!b && count == 0, "violation: exit 1 not counted (%u)", count);
	supervise_add_session(fake_session(SIGSYS), "192.0.2.50");
	reap_sessions(&m, 2000);
	b = violation_blocked(&m.violations, "192.0.2.50", 2000, &count);
	T_OK(b && count == 2, "violation: second SIGSYS blocks at limit 2 (%u)", count);
	T_OK(!violation_blocked(&m.violations, "192.0.2.50", 12000, &count),
	    "violation: block over after the window");
	moatd_test_free(&m);
}

/*
 * priv_drop() as the children run it, in a forked child as root: the
 * bounding set ends empty, and without CAP_SETPCAP the drop fails
 * rather than leaving capabilities behind.
 */
static void
test_privdrop(void)
{
	static const struct {
		const char	*label;
		int		 clear_setpcap;
		int		 want_ok;
	} cases[] = {
		{ "privdrop: as moatd's child would", 0, 1 },
		{ "privdrop: without CAP_SETPCAP it fails", 1, 0 },
	};
	char rep[512];
	size_t i;

	if (geteuid() != 0) {
		T_OK(1, "privdrop: # SKIP needs root");
		return;
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int p[2], st, r = -1, bnd = -1;
		ssize_t n;
		pid_t pid;

		if (pipe(p) == -1)
			log_fatal("pipe: %s", strerror(errno));
		if ((pid = fork()) == 0) {
			struct priv_spec spec = { 65534, 65534, NULL, 0, 0 };
			char err[256] = "";
			cap_value_t pc = CAP_SETPCAP;
			cap_t caps;
			int c, left = 0;

			close(p[0]);
			if (cases[i].clear_setpcap &&
			    ((caps = cap_get_proc()) == NULL ||
			    cap_set_flag(caps, CAP_EFFECTIVE, 1, &pc, CAP_CLEAR) == -1 ||
			    cap_set_proc(caps) == -1))
				_exit(2);
			r = priv_drop(&spec, err, sizeof(err));
			for (c = 0; c <= 63; c++)
				if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) > 0)
					left++;
			n = snprintf(rep, sizeof(rep), "%d %d %s", r, left, err);
			(void)!write(p[1], rep, (size_t)n);
			_exit(0);
		}
		close(p[1]);
		n = read(p[0], rep, sizeof(rep) - 1);
		rep[n > 0 ? n : 0] = '\0';
		close(p[0]);
		waitpid(pid, &st, 0);
		if (sscanf(rep, "%d %d", &r, &bnd) != 2)
			r = -2;
		if (cases[i].want_ok)
			T_OK(r == 0 && bnd == 0, "%s: ok, bounding set empty (%s)",
			    cases[i].label, rep);
		else
			T_OK(r == -1 && strstr(rep, "PR_CAPBSET_DROP") != NULL,
			    "%s (%s)", cases[i].label, rep);
	}
}

/* Remove what the tests made under tmpdir. */
static void
cleanup(void)
{
	static const char *paths[] = {
		"smtpd-session", "smtpd-session-plain", "queue-manager",
		"delivery-agent", "run/queue", "run/empty", "run/maildir", "run",
	};
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char *p = xasprintf("%s/%s", tmpdir, paths[i]);

		if (unlink(p) == -1)
			(void)rmdir(p);
		free(p);
	}
	(void)rmdir(tmpdir);
}

int
main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	struct conf *cfg;
	char self[PATH_MAX];
	ssize_t n;

	/* Without certificates moatd starts the session's plain build. */
	if (strcmp(base, "smtpd-session") == 0 ||
	    strcmp(base, PROC_SESSION_PLAIN_BINARY) == 0)
		return child_session(argc, argv);
	if (strcmp(base, "queue-manager") == 0)
		return 1;	/* a queue-manager that dies at once */
	if (strcmp(base, "delivery-agent") == 0 || strcmp(base, "local-delivery") == 0)
		for (;;)
			poll(NULL, 0, -1);	/* an agent that waits to be stopped */

	log_init("test_listener", 0);
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) == -1)
		log_fatal("readlink: %s", strerror(errno));
	self[n] = '\0';
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_listener.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		log_fatal("mkdtemp: %s", strerror(errno));
	make_links(self);
	if (conf_parse("test.conf", "delivery_agents = 1\n", 20, &cfg, stderr) != 0)
		log_fatal("conf_parse");

	test_describe_status();
	test_memfd();
	test_rundir(cfg);
	test_spawn(cfg);
	test_backoff(cfg);
	test_violation_cases();
	test_violation_bounds();
	test_violation_reap(cfg);
	test_privdrop();
	cleanup();
	conf_free(cfg);
	return t_done();
}
