/*
 * test_hooks.c: escape attempts from inside a live session (hook builds only).
 *
 * Compiled only when configure was given --enable-test-hooks; the default
 * and installed binaries do not contain it (test_sandbox.py checks their
 * strings).  "XESCAPE <what>" makes the sandboxed session try exactly one
 * thing its sandbox must forbid, as code smuggled in through a parser bug
 * would, from the state a real session is in: after priv_drop() and
 * sandbox_apply(), with the client mid-dialogue.  The seccomp table is the
 * real one; nothing here relaxes it.
 *
 * A call the filter refuses softly returns, and the client gets
 * "550 escape <what> failed: <strerror>"; a call that succeeds gets
 * "250 escape <what> SUCCEEDED" (the test fails on that); a call the
 * filter forbids kills the process, the client sees the connection close
 * and moatd logs the SIGSYS.  Each attempt is logged first
 * (hook=escape what=... step=...), so a kill can be matched to its call.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "smtp_session.h"
#include "test_hooks.h"
#include "util/conf.h"
#include "util/log.h"

#define HOOK_VERB	"XESCAPE "
#define HOOK_WHAT_MAX	32

/* moatd's pid, taken before main(): getppid() is not in the filter. */
static pid_t hook_parent = -1;

__attribute__((constructor)) static void
smtpd_test_hooks_parent(void)
{
	hook_parent = getppid();
}

/* Each attempt returns 0 if the forbidden call worked, -1 with errno if not. */
typedef int (*hook_try_fn)(struct smtp_session *);

static void
hook_step(const char *what, const char *step)
{
	log_info("hook=escape what=%s step=\"%s\"", what, step);
}

static int
hook_open(struct smtp_session *s)
{
	int fd;

	(void)s;
	hook_step("open", "open(/etc/passwd)");
	if ((fd = open("/etc/passwd", O_RDONLY)) == -1)
		return -1;
	close(fd);
	return 0;
}

static int
hook_socket(struct smtp_session *s)
{
	int fd;

	(void)s;
	hook_step("socket", "socket(AF_INET)");
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	close(fd);
	return 0;
}

/* A socket of its own to the queue database: the socket alone is an escape. */
static int
hook_connect(struct smtp_session *s)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/queue/queue.db",
	    conf_str(s->cfg, CONF_RUN_DIRECTORY));
	hook_step("connect", "socket(AF_UNIX)");
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
		return -1;
	hook_step("connect", "connect(queue.db)");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		log_info("hook=escape what=connect step=\"connect(queue.db)\" "
		    "error=\"%s\"", strerror(errno));
	close(fd);
	return 0;
}

static int
hook_exec(struct smtp_session *s)
{
	char *const argv[] = { "sh", "-c", "exit 0", NULL };
	char *const envp[] = { NULL };

	(void)s;
	hook_step("exec", "execve(/bin/sh)");
	return execve("/bin/sh", argv, envp);
}

static int
hook_fork(struct smtp_session *s)
{
	pid_t pid;

	(void)s;
	hook_step("fork", "fork");
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0)
		_exit(0);
	return 0;
}

static int
hook_ptrace(struct smtp_session *s)
{
	(void)s;
	hook_step("ptrace", "ptrace(PTRACE_TRACEME)");
	return ptrace(PTRACE_TRACEME, 0, NULL, NULL) == -1 ? -1 : 0;
}

/* Writable memory made executable: the step from a write bug to code. */
static int
hook_mprotect(struct smtp_session *s)
{
	size_t len = (size_t)sysconf(_SC_PAGESIZE);
	void *p;

	(void)s;
	hook_step("mprotect", "mmap(PROT_READ|PROT_WRITE)");
	if ((p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
		return -1;
	hook_step("mprotect", "mprotect(PROT_READ|PROT_EXEC)");
	if (mprotect(p, len, PROT_READ | PROT_EXEC) == -1) {
		int saved = errno;

		munmap(p, len);
		errno = saved;
		return -1;
	}
	munmap(p, len);
	return 0;
}

static int
hook_kill(struct smtp_session *s)
{
	(void)s;
	log_info("hook=escape what=kill step=\"kill(%ld, SIGTERM)\"", (long)hook_parent);
	if (hook_parent <= 1) {
		errno = ESRCH;
		return -1;
	}
	return kill(hook_parent, SIGTERM);
}

static const struct hook_escape {
	const char	*what;
	hook_try_fn	 try;
} hook_escapes[] = {
	{ "open",	hook_open },
	{ "socket",	hook_socket },
	{ "connect",	hook_connect },
	{ "exec",	hook_exec },
	{ "fork",	hook_fork },
	{ "ptrace",	hook_ptrace },
	{ "mprotect",	hook_mprotect },
	{ "kill",	hook_kill },
};

int
smtpd_test_hook_command(struct smtp_session *s, const char *line, size_t len)
{
	char what[HOOK_WHAT_MAX];
	size_t i, n = strlen(HOOK_VERB);

	if (len < n || strncasecmp(line, HOOK_VERB, n) != 0)
		return 0;
	if (len - n >= sizeof(what)) {
		smtp_session_reply(s, "501 escape: what is too long");
		return 1;
	}
	memcpy(what, line + n, len - n);
	what[len - n] = '\0';
	for (i = 0; i < sizeof(hook_escapes) / sizeof(hook_escapes[0]); i++) {
		if (strcmp(what, hook_escapes[i].what) != 0)
			continue;
		if (hook_escapes[i].try(s) == 0) {
			log_info("hook=escape what=%s result=SUCCEEDED", what);
			smtp_session_reply(s, "250 escape %s SUCCEEDED", what);
		} else {
			int e = errno;

			log_info("hook=escape what=%s result=failed error=\"%s\"",
			    what, strerror(e));
			smtp_session_reply(s, "550 escape %s failed: %s", what,
			    strerror(e));
		}
		return 1;
	}
	smtp_session_reply(s, "501 escape: unknown what");
	return 1;
}
