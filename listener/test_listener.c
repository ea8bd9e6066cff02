/*
 * test_listener.c: unit tests for moatd's pieces.
 *
 * The spawn and supervision tests run this same program as the child:
 * a temporary LIBEXECDIR holds links named smtpd-session, queue-manager
 * and delivery-agent that point here, and main() acts as the child when
 * argv[0] names one of them.  No seccomp filter and no capability change
 * is installed by these tests.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "moatd.h"
#include "t.h"
#include "util/ipc.h"
#include "util/log.h"
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
	const char *names[] = { "smtpd-session", "queue-manager", "delivery-agent" };
	size_t i;

	for (i = 0; i < 3; i++) {
		char *p = xasprintf("%s/%s", tmpdir, names[i]);

		unlink(p);
		if (symlink(self, p) == -1)
			log_fatal("symlink %s: %s", p, strerror(errno));
		free(p);
	}
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
	m->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	m->cfg_fd = sockets_config_memfd("delivery_agents = 1\n", 20, NULL, 0);
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

/* Remove what the tests made under tmpdir. */
static void
cleanup(void)
{
	static const char *paths[] = {
		"smtpd-session", "queue-manager", "delivery-agent",
		"run/queue", "run/empty", "run/maildir", "run",
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

	if (strcmp(base, "smtpd-session") == 0)
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
	cleanup();
	conf_free(cfg);
	return t_done();
}
