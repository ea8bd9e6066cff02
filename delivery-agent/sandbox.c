/*
 * sandbox.c (delivery-agent): what each transport may ask of the kernel.
 *
 * Both run after priv_drop() (chroot, own uid, RLIMIT_NPROC 0) with the
 * queue-manager channel already open.
 *
 * relay: talks TCP to next hops, UDP and TCP to its DNS resolvers
 * (c-ares, dns.c) and SEQPACKET to the queue-manager.  It may create only
 * IPv4/IPv6 stream and datagram sockets, connect them, set them
 * non-blocking and close-on-exec (fcntl F_GETFL/F_SETFL/F_GETFD/F_SETFD)
 * and TCP_NODELAY, read SO_ERROR
 * after a non-blocking connect, and poll; OpenSSL (STARTTLS) and c-ares
 * (query ids) draw randomness with getrandom.  It may not open a file
 * (refused softly with EACCES, so a library probe such as glibc's first
 * gmtime_r() looking for /etc/localtime fails instead of killing): the
 * resolver configuration, the CA file and the TLS policy table are read
 * before the sandbox.
 *
 * local: writes maildirs under its working directory.  It may open,
 * create directories, link, unlink and fsync, but has no socket() or
 * connect() at all: it has no business on a network.
 *
 * Memory may not be made executable (mmap/mprotect with PROT_EXEC die).
 * Everything not listed kills the process.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc_types.h"
#include "sandbox.h"
#include "util/sandbox.h"

#define DELIVERY_SOCK_TYPE	(SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC)

/* Calls both transports need: the channel, the log, memory, time. */
#define DELIVERY_COMMON_RULES \
	SB_ALLOW(read), \
	SB_ALLOW(write), \
	SB_ALLOW(close), \
	SB_ALLOW(sendmsg), \
	SB_ALLOW(recvmsg), \
	/* Memory, never executable. */ \
	SB_ALLOW(brk), \
	SB_ALLOW_ARG_MASK(mmap, 2, PROT_EXEC, 0), \
	SB_ALLOW_ARG_MASK(mprotect, 2, PROT_EXEC, 0), \
	SB_ALLOW(munmap), \
	SB_ALLOW(mremap), \
	SB_ALLOW(madvise), \
	/* Time and pid for log lines and maildir names; the clock calls \
	 * are normally answered by the vDSO. */ \
	SB_ALLOW(clock_gettime), \
	SB_ALLOW(gettimeofday), \
	SB_ALLOW(getpid), \
	/* abort() after a broken invariant signals this process only. */ \
	SB_ALLOW(rt_sigprocmask), \
	SB_ALLOW(rt_sigreturn), \
	SB_ALLOW(gettid), \
	SB_ALLOW_ARG_MASK(tgkill, 0, 0xffffffffu, (scmp_datum_t)getpid()), \
	SB_ALLOW(exit_group)

int
delivery_sandbox_apply(int transport, const char *role, char *err, size_t errlen)
{
	const struct sandbox_rule relay[] = {
		SB_ERRNO(open, EACCES),
		SB_ERRNO(openat, EACCES),
		DELIVERY_COMMON_RULES,
		/* The connection to the next hop. */
		SB_ALLOW_ARGS(socket, 0, AF_INET, 1, DELIVERY_SOCK_TYPE),
		SB_ALLOW_ARGS(socket, 0, AF_INET6, 1, DELIVERY_SOCK_TYPE),
		SB_ALLOW(connect),
		SB_ALLOW_ARGS(getsockopt, 1, SOL_SOCKET, 2, SO_ERROR),
		SB_ALLOW_ARGS(setsockopt, 1, IPPROTO_TCP, 2, TCP_NODELAY),
		SB_ALLOW(sendto),
		SB_ALLOW(poll),
		SB_ALLOW(ppoll),
		/* DNS (c-ares): UDP queries, TCP after a truncated reply; it
		 * makes its sockets non-blocking itself. */
		SB_ALLOW_ARGS(socket, 0, AF_INET, 1, SOCK_DGRAM),
		SB_ALLOW_ARGS(socket, 0, AF_INET6, 1, SOCK_DGRAM),
		SB_ALLOW_ARGS(socket, 0, AF_INET, 1, SOCK_STREAM),
		SB_ALLOW_ARGS(socket, 0, AF_INET6, 1, SOCK_STREAM),
		SB_ALLOW_ARG(fcntl, 1, SCMP_CMP_EQ, F_GETFL),
		SB_ALLOW_ARG(fcntl, 1, SCMP_CMP_EQ, F_SETFL),
		SB_ALLOW_ARG(fcntl, 1, SCMP_CMP_EQ, F_GETFD),
		SB_ALLOW_ARG(fcntl, 1, SCMP_CMP_EQ, F_SETFD),
		/* c-ares marks each DNS socket close-on-exec. */
		SB_ALLOW_ARG(fcntl, 1, SCMP_CMP_EQ, F_SETFD),
		SB_ALLOW(recvfrom),
		SB_ALLOW(writev),
		/* c-ares query ids, OpenSSL's generator; OpenSSL's locks
		 * (one thread: wake-ups at exit, never a wait on another). */
		SB_ALLOW(getrandom),
		SB_ALLOW(futex),
	};
	const struct sandbox_rule local[] = {
		SB_ERRNO(open, EACCES),
		DELIVERY_COMMON_RULES,
		/* Maildirs, and the spool file, under the working directory. */
		SB_ALLOW(openat),
		SB_ALLOW(pread64),
		SB_ALLOW(mkdirat),
		SB_ALLOW(linkat),
		SB_ALLOW(unlinkat),
		SB_ALLOW(fsync),
	};

	if (transport == MOAT_TRANSPORT_RELAY)
		return sandbox_apply(role, relay, sizeof(relay) / sizeof(relay[0]),
		    err, errlen);
	return sandbox_apply(role, local, sizeof(local) / sizeof(local[0]),
	    err, errlen);
}
