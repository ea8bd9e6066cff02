/*
 * sandbox.c: the seccomp allow-list of the keyholder.
 *
 * Installed after priv_drop(), before the first message is read.  The
 * keyholder then holds moatd's channel and, later, the channels and key
 * memfds moatd passes it; all it may do is receive and send on them,
 * read a key memfd (fstat, pread), set a new channel non-blocking, wait
 * with poll, use memory (never executable), draw random numbers for the
 * signatures (getrandom), log, and exit.  No open (refused softly with
 * EACCES, so that a stray OpenSSL probe for a file fails quietly), no
 * socket, connect or accept, no exec, fork or clone, no signals to
 * others.  Everything else kills the process.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#include "keyholder.h"
#include "util/sandbox.h"

int
keyholder_sandbox_apply(char *err, size_t errlen)
{
	const struct sandbox_rule rules[] = {
		/* Refused softly: OpenSSL and libc probing for files. */
		SB_ERRNO(open, EACCES),
		SB_ERRNO(openat, EACCES),

		/* moatd's channel, the sessions' channels, the key memfds. */
		SB_ALLOW(recvmsg),
		SB_ALLOW(sendmsg),
		SB_ALLOW(poll),
		SB_ALLOW(ppoll),
		SB_ALLOW(close),
		SB_ALLOW(fstat),
		SB_ALLOW(newfstatat),
		SB_ALLOW(pread64),
		SB_ALLOW_ARG(fcntl, 1, SCMP_CMP_EQ, F_GETFL),
		SB_ALLOW_ARG(fcntl, 1, SCMP_CMP_EQ, F_SETFL),
		SB_ALLOW(write),		/* the log */

		/* Memory, never executable. */
		SB_ALLOW(brk),
		SB_ALLOW_ARG_MASK(mmap, 2, PROT_EXEC, 0),
		SB_ALLOW_ARG_MASK(mprotect, 2, PROT_EXEC, 0),
		SB_ALLOW(munmap),
		SB_ALLOW(mremap),
		SB_ALLOW(madvise),
		SB_ALLOW(futex),		/* OpenSSL's locks */

		/* Random numbers: ECDSA nonces and RSA blinding. */
		SB_ALLOW(getrandom),

		/* Time for log lines. */
		SB_ALLOW(clock_gettime),
		SB_ALLOW(gettimeofday),
		SB_ALLOW(time),
		SB_ALLOW(getpid),

		/* abort() after a broken invariant signals this process only. */
		SB_ALLOW(rt_sigprocmask),
		SB_ALLOW(rt_sigreturn),
		SB_ALLOW(gettid),
		SB_ALLOW_ARG_MASK(tgkill, 0, 0xffffffffu, (scmp_datum_t)getpid()),

		SB_ALLOW(exit_group),
	};

	return sandbox_apply("keyholder", rules, sizeof(rules) / sizeof(rules[0]),
	    err, errlen);
}
