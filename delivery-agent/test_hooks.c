/*
 * test_hooks.c (delivery-agent): escape attempts by a live agent (hook
 * builds only).
 *
 * Compiled only when configure was given --enable-test-hooks; default and
 * installed binaries do not contain it.  A job whose sender is exactly
 * escape-<what>@hooks.test makes the agent, sandboxed and holding a real
 * job, try one thing its transport's seccomp table must forbid, before it
 * delivers the job as usual:
 *
 *   relay  open (/etc/passwd), exec, fork, unixsock (socket(AF_UNIX): a
 *          relay may create only TCP sockets)
 *   local  socket (AF_INET), open-outside (openat of /etc/passwd and
 *          ../../etc/passwd: outside the maildir chroot), exec
 *
 * Each step is logged before the call (hook=escape what=... step=...)
 * and the outcome after it (result=failed error="..." or
 * result=SUCCEEDED); a call the filter forbids kills the agent, moatd
 * logs the SIGSYS and starts a new one.  The tables are not relaxed for
 * this.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc_types.h"
#include "job.h"
#include "test_hooks.h"
#include "util/log.h"

#define HOOK_PREFIX	"escape-"
#define HOOK_DOMAIN	"@hooks.test"
#define HOOK_WHAT_MAX	32

/* 0 if the forbidden call worked, -1 with errno if it was refused. */
typedef int (*hook_try_fn)(const char *qid);

static void
hook_step(const char *qid, const char *step)
{
	log_info("id=%s hook=escape step=\"%s\"", qid, step);
}

static int
hook_open_path(const char *qid, const char *path)
{
	int fd;

	log_info("id=%s hook=escape step=\"openat(%s)\"", qid, path);
	if ((fd = openat(AT_FDCWD, path, O_RDONLY)) == -1)
		return -1;
	close(fd);
	return 0;
}

static int
hook_open(const char *qid)
{
	return hook_open_path(qid, "/etc/passwd");
}

/* Both ways out of the chroot; either one working is an escape. */
static int
hook_open_outside(const char *qid)
{
	int e;

	if (hook_open_path(qid, "/etc/passwd") == 0)
		return 0;
	e = errno;
	log_info("id=%s hook=escape step=\"openat(/etc/passwd)\" error=\"%s\"", qid,
	    strerror(e));
	if (hook_open_path(qid, "../../etc/passwd") == 0)
		return 0;
	return -1;
}

static int
hook_socket_family(const char *qid, int family, const char *step)
{
	int fd;

	hook_step(qid, step);
	if ((fd = socket(family, SOCK_STREAM, 0)) == -1)
		return -1;
	close(fd);
	return 0;
}

static int
hook_socket(const char *qid)
{
	return hook_socket_family(qid, AF_INET, "socket(AF_INET)");
}

static int
hook_unixsock(const char *qid)
{
	return hook_socket_family(qid, AF_UNIX, "socket(AF_UNIX)");
}

static int
hook_exec(const char *qid)
{
	char *const argv[] = { "sh", "-c", "exit 0", NULL };
	char *const envp[] = { NULL };

	hook_step(qid, "execve(/bin/sh)");
	return execve("/bin/sh", argv, envp);
}

static int
hook_fork(const char *qid)
{
	pid_t pid;

	hook_step(qid, "fork");
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0)
		_exit(0);
	return 0;
}

static const struct hook_escape {
	int		 transport;
	const char	*what;
	hook_try_fn	 try;
} hook_escapes[] = {
	{ MOAT_TRANSPORT_RELAY,	"open",		hook_open },
	{ MOAT_TRANSPORT_RELAY,	"exec",		hook_exec },
	{ MOAT_TRANSPORT_RELAY,	"fork",		hook_fork },
	{ MOAT_TRANSPORT_RELAY,	"unixsock",	hook_unixsock },
	{ MOAT_TRANSPORT_LOCAL,	"socket",	hook_socket },
	{ MOAT_TRANSPORT_LOCAL,	"open-outside",	hook_open_outside },
	{ MOAT_TRANSPORT_LOCAL,	"exec",		hook_exec },
};

void
delivery_test_hook_job(const struct job *j, int transport)
{
	size_t np = strlen(HOOK_PREFIX), nd = strlen(HOOK_DOMAIN);
	size_t len = strlen(j->sender), i;
	char what[HOOK_WHAT_MAX];
	int e;

	if (len <= np + nd || len - np - nd >= sizeof(what) ||
	    strncmp(j->sender, HOOK_PREFIX, np) != 0 ||
	    strcmp(j->sender + len - nd, HOOK_DOMAIN) != 0)
		return;
	memcpy(what, j->sender + np, len - np - nd);
	what[len - np - nd] = '\0';
	for (i = 0; i < sizeof(hook_escapes) / sizeof(hook_escapes[0]); i++) {
		if (hook_escapes[i].transport != transport ||
		    strcmp(what, hook_escapes[i].what) != 0)
			continue;
		log_info("id=%s hook=escape what=%s attempt", j->qid, what);
		if (hook_escapes[i].try(j->qid) == 0) {
			log_info("id=%s hook=escape what=%s result=SUCCEEDED", j->qid,
			    what);
			return;
		}
		e = errno;
		log_info("id=%s hook=escape what=%s result=failed error=\"%s\"",
		    j->qid, what, strerror(e));
		return;
	}
	log_info("id=%s hook=escape result=unknown", j->qid);
}
