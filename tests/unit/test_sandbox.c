/*
 * test_sandbox.c: sandbox_apply() in forked children.  Each child
 * installs the same small table, then makes one call; the parent checks
 * that allowed calls run, soft refusals give their errno, calls with the
 * wrong arguments, calls missing from the table and calls through a
 * foreign architecture kill the process, and that a table libseccomp
 * refuses fails loudly and installs nothing.  The same cases run again
 * with the program built once by sandbox_export() and installed by each
 * child with sandbox_load(), as moatd and the sessions do, with tgkill
 * allowed only towards the child's own pid; sandbox_load() refuses what
 * is not such a program.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

#include "util/sandbox.h"
#include "t.h"

enum act {
	A_GETPID,		/* allowed */
	A_OPENAT,		/* refused softly: EACCES */
	A_MMAP_RW,		/* allowed: no PROT_EXEC */
	A_MMAP_EXEC,		/* mask does not match: killed */
	A_FCNTL_OK,		/* both arguments match */
	A_FCNTL_BADFD,		/* first argument does not */
	A_GETPPID,		/* not in the table */
	A_I386,			/* getpid through the i386 ABI */
	A_NOTHING,		/* apply only */
	A_TGKILL_SELF,		/* signal 0 to itself: allowed */
	A_TGKILL_PARENT,	/* signal 0 to its parent: killed */
};

/* 1: children install the program of export_fd with sandbox_load(). */
static int use_export;
static pid_t getppid_cached;	/* the parent's pid, known before the fork */
static int export_fd = -1;

struct child_out {
	int	 applied;	/* sandbox_apply() result */
	long	 ret;		/* the call's result */
	int	 err;		/* its errno */
	char	 msg[200];
};

/* The table every child installs. */
static struct sandbox_rule rules[] = {
	SB_ERRNO(openat, EACCES),
	SB_ALLOW(write),
	SB_ALLOW(getpid),
	SB_ALLOW(gettid),
	SB_ALLOW_ARG_MASK(mmap, 2, PROT_EXEC, 0),
	SB_ALLOW(munmap),
	SB_ALLOW_ARGS(fcntl, 0, 0, 1, F_GETFD),
	SB_ALLOW_ARG_MASK(tgkill, 0, 0xffffffffu, SANDBOX_SELF),
	SB_ALLOW(exit_group),
#ifdef __NR_socketcall
	SB_ALLOW(socketcall),
#else
	/* not a call on x86_64: the entry must be skipped */
	{ -1, SB_ACT_ALLOW, 0, 0, { { 0, 0, 0, 0 } } },
#endif
};
#define NRULES	(sizeof(rules) / sizeof(rules[0]))

/* The tgkill rule's pid: SANDBOX_SELF to export, the child's own to apply. */
static void
rules_self(uint32_t self)
{
	size_t i;

	for (i = 0; i < NRULES; i++)
		if (rules[i].nr == SCMP_SYS(tgkill))
			rules[i].args[0].datum_b = self;
}

static int
apply_table(char *err, size_t errlen)
{
	if (use_export)
		return sandbox_load("test", export_fd, (uint32_t)getpid(), err, errlen);
	rules_self((uint32_t)getpid());
	return sandbox_apply("test", rules, NRULES, err, errlen);
}

/* A table libseccomp refuses: its second rule names argument 7 of 6. */
static int
apply_refused(char *err, size_t errlen)
{
	const struct sandbox_rule bad[] = {
		SB_ALLOW(getppid),
		SB_ALLOW_ARG(read, 7, SCMP_CMP_EQ, 0),
	};

	return sandbox_apply("test", bad, sizeof(bad) / sizeof(bad[0]), err, errlen);
}

/* In the child: make the call "a" and report what it returned. */
static void
child_act(enum act a, struct child_out *o)
{
	void *p;

	errno = 0;
	switch (a) {
	case A_GETPID:
		o->ret = syscall(SYS_getpid);
		break;
	case A_OPENAT:
		o->ret = syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY);
		break;
	case A_MMAP_RW:
	case A_MMAP_EXEC:
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE |
		    (a == A_MMAP_EXEC ? PROT_EXEC : 0),
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		o->ret = p == MAP_FAILED ? -1 : 0;
		break;
	case A_FCNTL_OK:
		o->ret = syscall(SYS_fcntl, 0, F_GETFD);
		break;
	case A_FCNTL_BADFD:
		o->ret = syscall(SYS_fcntl, 1, F_GETFD);
		break;
	case A_GETPPID:
		o->ret = syscall(SYS_getppid);
		break;
	case A_I386:
#if defined(__x86_64__)
		{
			long r;

			/* __NR_getpid is 20 in the i386 ABI */
			__asm__ volatile ("int $0x80" : "=a"(r) : "a"(20L) : "memory");
			o->ret = r;
		}
#else
		o->ret = -2;
#endif
		break;
	case A_NOTHING:
		o->ret = 0;
		break;
	case A_TGKILL_SELF:
		o->ret = syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), 0);
		break;
	case A_TGKILL_PARENT:
		o->ret = syscall(SYS_tgkill, getppid_cached, getppid_cached, 0);
		break;
	}
	o->err = errno;
}

/*
 * Fork a child that installs a table and acts; returns the wait status,
 * *o what the child reported (zeroed if it was killed first).
 */
static int
run(enum act a, int refused, struct child_out *o)
{
	int p[2], st = -1;
	pid_t pid;

	memset(o, 0, sizeof(*o));
	o->applied = -2;
	getppid_cached = getpid();
	if (pipe(p) == -1 || (pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		struct child_out c;

		close(p[0]);
		memset(&c, 0, sizeof(c));
		c.applied = refused ? apply_refused(c.msg, sizeof(c.msg)) :
		    apply_table(c.msg, sizeof(c.msg));
		if (c.applied == 0 || refused)
			child_act(a, &c);
		(void)!write(p[1], &c, sizeof(c));
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], o, sizeof(*o)) != (ssize_t)sizeof(*o))
		memset(o, 0, sizeof(*o));
	close(p[0]);
	if (waitpid(pid, &st, 0) == -1)
		return -1;
	return st;
}

#if defined(__x86_64__)
/* Can this kernel run i386 system calls at all (IA32 emulation)? */
static int
i386_available(void)
{
	int st;
	pid_t pid;

	if ((pid = fork()) == 0) {
		long r;

		__asm__ volatile ("int $0x80" : "=a"(r) : "a"(20L) : "memory");
		_exit(r > 0 ? 0 : 1);
	}
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0;
}
#endif

/* Killed by the filter: SIGSYS, or the debug build's exit after its log line. */
static int
killed(int st)
{
	return (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS) ||
	    (WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGSYS);
}

static void
test_table(void)
{
	static const struct {
		const char	*label;
		enum act	 act;
		int		 want_killed;
		long		 want_ret;	/* when not killed */
		int		 want_errno;
	} cases[] = {
		{ "allowed call runs", A_GETPID, 0, 1, 0 },
		{ "refused softly: EACCES", A_OPENAT, 0, -1, EACCES },
		{ "mmap without PROT_EXEC runs", A_MMAP_RW, 0, 0, 0 },
		{ "mmap with PROT_EXEC kills", A_MMAP_EXEC, 1, 0, 0 },
		{ "both pinned arguments match: runs", A_FCNTL_OK, 0, 0, 0 },
		{ "one pinned argument differs: kills", A_FCNTL_BADFD, 1, 0, 0 },
		{ "call not in the table kills", A_GETPPID, 1, 0, 0 },
#if defined(__x86_64__)
		{ "foreign architecture (i386 getpid) kills", A_I386, 1, 0, 0 },
#endif
		{ "table with a skipped entry applies", A_NOTHING, 0, 0, 0 },
		{ "tgkill to its own pid runs", A_TGKILL_SELF, 0, 0, 0 },
		{ "tgkill to another pid kills", A_TGKILL_PARENT, 1, 0, 0 },
	};
	const char *how = use_export ? "exported" : "applied";
	struct child_out o;
	size_t i;
	int st;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
#if defined(__x86_64__)
		if (cases[i].act == A_I386 && !i386_available()) {
			T_OK(1, "sandbox %s: %s # SKIP no IA32 emulation", how,
			    cases[i].label);
			continue;
		}
#endif
		st = run(cases[i].act, 0, &o);
		if (cases[i].want_killed) {
			T_OK(killed(st), "sandbox %s: %s (status %#x)", how,
			    cases[i].label, st);
			continue;
		}
		T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && o.applied == 0,
		    "sandbox %s: %s: child ran (status %#x, apply %d %s)",
		    how, cases[i].label, st, o.applied, o.msg);
		if (cases[i].act == A_GETPID)
			T_OK(o.ret > 0, "sandbox %s: %s: returned %ld", how,
			    cases[i].label, o.ret);
		else if (cases[i].act == A_FCNTL_OK)	/* fd 0 may be closed */
			T_OK(o.ret >= 0 || o.err == EBADF,
			    "sandbox %s: %s: returned %ld errno %d", how,
			    cases[i].label, o.ret, o.err);
		else
			T_OK(o.ret == cases[i].want_ret &&
			    (cases[i].want_ret != -1 || o.err == cases[i].want_errno),
			    "sandbox %s: %s: returned %ld errno %d", how,
			    cases[i].label, o.ret, o.err);
	}
}

/* libseccomp refuses the table: an error naming the rule, no filter. */
static void
test_refused(void)
{
	struct child_out o;
	int st;

	st = run(A_GETPPID, 1, &o);
	T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && o.applied == -1 &&
	    strstr(o.msg, "seccomp rule 1") != NULL,
	    "sandbox: refused table fails loudly (%d: %s)", o.applied, o.msg);
	T_OK(o.ret > 0, "sandbox: refused table: nothing installed (getppid %ld)",
	    o.ret);
}

/* A sealed memfd holding len bytes of p. */
static int
memfd_with(const void *p, size_t len)
{
	int fd = memfd_create("test-filter", MFD_CLOEXEC);

	if (fd != -1 && write(fd, p, len) != (ssize_t)len) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The program built once: sealed, the placeholder only in comparisons. */
static void
test_export(void)
{
	struct sock_filter prog[SANDBOX_PROG_MAX];
	struct sock_filter bad[2] = {
		/* the placeholder loaded as a constant, not compared */
		BPF_STMT(BPF_LD | BPF_IMM, SANDBOX_SELF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	char err[200];
	ssize_t len;
	int fd, seals, self = 0, other = 0, i;

	rules_self(SANDBOX_SELF);
	export_fd = sandbox_export(rules, NRULES, err, sizeof(err));
	T_OK(export_fd >= 0, "export: a program (%s)", export_fd >= 0 ? "fd" : err);
	if (export_fd < 0)
		return;
	seals = fcntl(export_fd, F_GET_SEALS);
	T_OK(seals != -1 && (seals & F_SEAL_WRITE) && (seals & F_SEAL_SHRINK) &&
	    (seals & F_SEAL_GROW) && (seals & F_SEAL_SEAL), "export: sealed (%#x)", seals);
	len = pread(export_fd, prog, sizeof(prog), 0);
	T_OK(len > 0 && len % (ssize_t)sizeof(prog[0]) == 0,
	    "export: whole instructions (%zd bytes)", len);
	for (i = 0; len > 0 && i < len / (ssize_t)sizeof(prog[0]); i++) {
		if (prog[i].k != SANDBOX_SELF)
			continue;
		if (prog[i].code == (BPF_JMP | BPF_JEQ | BPF_K))
			self++;
		else
			other++;
	}
	T_OK(self >= 1 && other == 0, "export: the placeholder pid is compared %d "
	    "time(s), used otherwise %d", self, other);

	use_export = 1;
	test_table();
	use_export = 0;

	/* Refused before anything is installed (so safe in this process). */
	fd = memfd_with(bad, 12);
	T_OK(fd != -1 && sandbox_load("test", fd, 1, err, sizeof(err)) == -1 &&
	    strstr(err, "not a filter program") != NULL,
	    "load: a size that is not whole instructions is refused: %s", err);
	if (fd != -1)
		close(fd);
	fd = memfd_with(bad, sizeof(bad));
	T_OK(fd != -1 && sandbox_load("test", fd, 1, err, sizeof(err)) == -1 &&
	    strstr(err, "placeholder") != NULL,
	    "load: the placeholder outside a comparison is refused: %s", err);
	if (fd != -1)
		close(fd);
	fd = memfd_with(bad, 0);
	T_OK(fd != -1 && sandbox_load("test", fd, 1, err, sizeof(err)) == -1 &&
	    strstr(err, "not a filter program") != NULL,
	    "load: an empty program is refused: %s", err);
	if (fd != -1)
		close(fd);
	/* One instruction more than the kernel takes: refused before it is read. */
	fd = memfd_create("test-filter", MFD_CLOEXEC);
	T_OK(fd != -1 && ftruncate(fd, (off_t)((SANDBOX_PROG_MAX + 1) * sizeof(bad[0]))) == 0 &&
	    sandbox_load("test", fd, 1, err, sizeof(err)) == -1 &&
	    strstr(err, "not a filter program") != NULL,
	    "load: a program over %d instructions is refused: %s", SANDBOX_PROG_MAX, err);
	if (fd != -1)
		close(fd);
	T_OK(sandbox_load("test", 1000, 1, err, sizeof(err)) == -1,
	    "load: a closed descriptor is an error: %s", err);
	close(export_fd);
	export_fd = -1;
}

int
main(void)
{
	if (!sandbox_available()) {
		T_OK(1, "sandbox: # SKIP built with --disable-sandbox");
		return t_done();
	}
	test_table();
	test_refused();
	test_export();
	return t_done();
}
