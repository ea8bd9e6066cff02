/*
 * test_hooks.c (queue-manager): escape attempts by the live queue-manager
 * (hook builds only).
 *
 * Compiled only when configure was given --enable-test-hooks; default and
 * installed binaries do not contain it.  A well-formed IPC_S2Q_BEGIN whose
 * HELO name is exactly escape-<what>.hooks.test makes the queue-manager,
 * sandboxed in its chroot with the database open, try one thing its
 * seccomp table must forbid, before it handles the BEGIN as usual:
 *
 *   socket   socket(AF_INET)
 *   connect  socket(AF_UNIX), then connect to run_directory/control.sock
 *            (outside its chroot)
 *   exec     execve(/bin/sh)
 *   fork     fork()
 *   open     open of /etc/passwd and ../../../etc/passwd (outside the
 *            chroot, where neither exists)
 *
 * Each step is logged before the call (hook=escape step=...) and the
 * outcome after it (result=failed error="..." or result=SUCCEEDED); a
 * call the filter forbids kills the queue-manager, moatd logs the SIGSYS
 * and restarts it.  The table in sandbox.c is not relaxed for this.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmgr.h"
#include "test_hooks.h"
#include "util/log.h"

#define HOOK_PREFIX	"escape-"
#define HOOK_DOMAIN	".hooks.test"
#define HOOK_WHAT_MAX	32

/* 0 if the forbidden call worked, -1 with errno if it was refused. */
typedef int (*hook_try_fn)(void);

static void
hook_step(const char *step)
{
	log_info("hook=escape step=\"%s\"", step);
}

static int
hook_socket(void)
{
	int fd;

	hook_step("socket(AF_INET)");
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	close(fd);
	return 0;
}

/* The control socket moatctl uses, by the path the chroot hides. */
static int
hook_connect(void)
{
	struct sockaddr_un sun;
	int fd, r;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/control.sock",
	    conf_str(qmgr->cfg, CONF_RUN_DIRECTORY));
	hook_step("socket(AF_UNIX)");
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
		return -1;
	hook_step("connect(control.sock)");
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	return r;
}

static int
hook_exec(void)
{
	char *const argv[] = { "sh", "-c", "exit 0", NULL };
	char *const envp[] = { NULL };

	hook_step("execve(/bin/sh)");
	return execve("/bin/sh", argv, envp);
}

static int
hook_fork(void)
{
	pid_t pid;

	hook_step("fork");
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0)
		_exit(0);
	return 0;
}

static int
hook_open_path(const char *path)
{
	int fd;

	log_info("hook=escape step=\"open(%s)\"", path);
	if ((fd = open(path, O_RDONLY)) == -1)
		return -1;
	close(fd);
	return 0;
}

/* Both ways out of the chroot; either one working is an escape. */
static int
hook_open(void)
{
	if (hook_open_path("/etc/passwd") == 0)
		return 0;
	log_info("hook=escape step=\"open(/etc/passwd)\" error=\"%s\"",
	    strerror(errno));
	return hook_open_path("../../../etc/passwd");
}

static const struct hook_escape {
	const char	*what;
	hook_try_fn	 try;
} hook_escapes[] = {
	{ "socket",	hook_socket },
	{ "connect",	hook_connect },
	{ "exec",	hook_exec },
	{ "fork",	hook_fork },
	{ "open",	hook_open },
};

void
qmgr_test_hook_begin(const char *helo)
{
	size_t np = strlen(HOOK_PREFIX), nd = strlen(HOOK_DOMAIN);
	size_t len = strlen(helo), i;
	char what[HOOK_WHAT_MAX];
	int e;

	if (len <= np + nd || len - np - nd >= sizeof(what) ||
	    strncmp(helo, HOOK_PREFIX, np) != 0 ||
	    strcmp(helo + len - nd, HOOK_DOMAIN) != 0)
		return;
	memcpy(what, helo + np, len - np - nd);
	what[len - np - nd] = '\0';
	for (i = 0; i < sizeof(hook_escapes) / sizeof(hook_escapes[0]); i++) {
		if (strcmp(what, hook_escapes[i].what) != 0)
			continue;
		log_info("hook=escape what=%s attempt", what);
		if (hook_escapes[i].try() == 0) {
			log_info("hook=escape what=%s result=SUCCEEDED", what);
			return;
		}
		e = errno;
		log_info("hook=escape what=%s result=failed error=\"%s\"", what,
		    strerror(e));
		return;
	}
	log_info("hook=escape result=unknown");
}
