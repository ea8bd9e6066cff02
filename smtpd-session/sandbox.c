/*
 * sandbox.c: the seccomp allow-list of smtpd-session, the tightest in moat.
 *
 * By the time this is installed the session holds its two sockets and
 * nothing else, so all it may still do is read and write them, wait on
 * them, manage its own memory and exit.  No open (refused softly with
 * EACCES, so that a stray library probe fails quietly rather than
 * killing the process), no socket, connect, bind, listen or accept, no
 * exec, fork or clone, no ptrace, and no signals to anyone but itself.
 * Memory may never become executable: mmap and mprotect are allowed only
 * without PROT_EXEC.  Everything else kills the process.
 *
 * The list was found by running sessions under strace and under a build
 * configured with --enable-sandbox-debug (see docs/smtp-server.md).
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox.h"
#include "util/log.h"

static struct sandbox_rule smtpd_sandbox_rules_tab[] = {
	/*
	 * Refused softly: probes by libraries, such as glibc's first
	 * gmtime_r() looking for /etc/localtime (UTC needs no file).
	 */
	SB_ERRNO(open, EACCES),
	SB_ERRNO(openat, EACCES),

	/* The client socket and the queue-manager channel. */
	SB_ALLOW(read),
	SB_ALLOW(write),
	SB_ALLOW(recvmsg),
	SB_ALLOW(sendmsg),
	SB_ALLOW(poll),
	SB_ALLOW(ppoll),
	SB_ALLOW(close),

	/* Memory, never executable. */
	SB_ALLOW(brk),
	SB_ALLOW_ARG_MASK(mmap, 2, PROT_EXEC, 0),
	SB_ALLOW_ARG_MASK(mprotect, 2, PROT_EXEC, 0),
	SB_ALLOW(munmap),
	SB_ALLOW(mremap),
	SB_ALLOW(madvise),

	/*
	 * Time and identity for log lines and the Received: header;
	 * the clock calls are normally answered by the vDSO and reach
	 * the kernel only where it is missing.
	 */
	SB_ALLOW(clock_gettime),
	SB_ALLOW(gettimeofday),
	SB_ALLOW(time),
	SB_ALLOW(getpid),

	/*
	 * abort() after a broken invariant signals this process only:
	 * tgkill's first argument (an int) must be our own pid.
	 */
	SB_ALLOW(rt_sigprocmask),
	SB_ALLOW(rt_sigreturn),
	SB_ALLOW(gettid),
	SB_ALLOW_ARG_MASK(tgkill, 0, 0xffffffffu, SANDBOX_SELF),

	/*
	 * TLS: OpenSSL's random generator reseeds from the kernel
	 * during handshakes (seeded first before the filter, in
	 * smtpd_session.c).  Signing goes to the keyholder over the
	 * SEQPACKET channel with sendmsg/recvmsg and poll, above.
	 */
	SB_ALLOW(getrandom),
	/*
	 * OpenSSL starts only when a client asks for TLS, inside this
	 * filter: its run-once initialisers end in pthread_once(),
	 * which wakes waiters (there are none: one thread) with
	 * FUTEX_WAKE_PRIVATE.  No other futex operation.
	 */
	SB_ALLOW_ARG_MASK(futex, 1, 0xffffffffu, FUTEX_WAKE_PRIVATE),
	/*
	 * glibc's qsort (OpenSSL sorts its tables) asks sysinfo for
	 * the memory size; refused, it assumes plenty.
	 */
	SB_ERRNO(sysinfo, EPERM),

	SB_ALLOW(exit_group),
};

/*
 * The table with self as the pid tgkill may signal: SANDBOX_SELF when
 * moatd builds the filter once for every session (sandbox_export).
 */
const struct sandbox_rule *
smtpd_sandbox_rules(uint32_t self, size_t *n)
{
	size_t i;

	*n = sizeof(smtpd_sandbox_rules_tab) / sizeof(smtpd_sandbox_rules_tab[0]);
	for (i = 0; i < *n; i++)
		if (smtpd_sandbox_rules_tab[i].nr == SCMP_SYS(tgkill))
			smtpd_sandbox_rules_tab[i].args[0].datum_b = self;
	return smtpd_sandbox_rules_tab;
}

/*
 * Install the filter moatd built from this table and handed over at
 * filter_fd (closed here), or, when that descriptor is not open (a
 * session started by hand, or a build without filters), build it here.
 */
int
smtpd_sandbox_apply(int filter_fd, char *err, size_t errlen)
{
	const struct sandbox_rule *rules;
	struct stat st;
	size_t n;
	int r;

	if (fstat(filter_fd, &st) == 0) {
		log_debug("sandbox=moatd");
		r = sandbox_load("smtpd-session", filter_fd, (uint32_t)getpid(), err, errlen);
		(void)close(filter_fd);
		return r;
	}
	log_debug("sandbox=session");
	rules = smtpd_sandbox_rules((uint32_t)getpid(), &n);
	return sandbox_apply("smtpd-session", rules, n, err, errlen);
}
