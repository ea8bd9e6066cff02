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
#include <sys/mman.h>
#include <unistd.h>

#include "smtp_session.h"
#include "util/sandbox.h"

int
smtpd_sandbox_apply(char *err, size_t errlen)
{
	const struct sandbox_rule rules[] = {
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
		SB_ALLOW_ARG_MASK(tgkill, 0, 0xffffffffu, (scmp_datum_t)getpid()),

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

	return sandbox_apply("smtpd-session", rules, sizeof(rules) / sizeof(rules[0]),
	    err, errlen);
}
