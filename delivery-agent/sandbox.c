/*
 * sandbox.c (delivery-agent): what each transport may ask of the kernel.
 *
 * Both run after priv_drop() (chroot, own uid, RLIMIT_NPROC 0) with the
 * queue-manager channel already open.
 *
 * relay: talks TCP to next hops and SEQPACKET to the queue-manager.  It
 * may create only non-blocking IPv4/IPv6 stream sockets, connect them,
 * read SO_ERROR after a non-blocking connect, and poll; it may not open
 * a file (refused softly with EACCES, so a stray library probe fails
 * instead of killing), and RLIMIT_FSIZE 0 stops writes to any file.
 *
 * local: writes maildirs under its working directory.  It may open,
 * create directories, link, unlink and fsync, but has no socket() or
 * connect() at all: it has no business on a network.
 *
 * Memory may not be made executable (mmap/mprotect with PROT_EXEC die).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "ipc_types.h"
#include "sandbox.h"
#include "util/sandbox.h"

/* Two pinned arguments: both must match. */
#define SB_ALLOW_ARG2(name, i0, v0, i1, v1) \
	{ SCMP_SYS(name), SB_ACT_ALLOW, 0, 2, \
	  { SCMP_CMP((i0), SCMP_CMP_EQ, (v0)), SCMP_CMP((i1), SCMP_CMP_EQ, (v1)) } }

#define DELIVERY_SOCK_TYPE	(SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC)

/* Calls both transports need: memory, time, logging, the channel. */
#define DELIVERY_COMMON_RULES \
	SB_ALLOW(read), \
	SB_ALLOW(write), \
	SB_ALLOW(close), \
	SB_ALLOW(sendmsg), \
	SB_ALLOW(recvmsg), \
	SB_ALLOW(getpid), \
	SB_ALLOW(clock_gettime), \
	SB_ALLOW(gettimeofday), \
	SB_ALLOW(brk), \
	SB_ALLOW_ARG_MASK(mmap, 2, PROT_EXEC, 0), \
	SB_ALLOW_ARG_MASK(mprotect, 2, PROT_EXEC, 0), \
	SB_ALLOW(munmap), \
	SB_ALLOW(mremap), \
	SB_ALLOW(madvise), \
	SB_ALLOW(rt_sigreturn), \
	SB_ALLOW(exit), \
	SB_ALLOW(exit_group)

static const struct sandbox_rule delivery_relay_rules[] = {
	SB_ERRNO(open, EACCES),
	SB_ERRNO(openat, EACCES),
	DELIVERY_COMMON_RULES,
	SB_ALLOW_ARG2(socket, 0, AF_INET, 1, DELIVERY_SOCK_TYPE),
	SB_ALLOW_ARG2(socket, 0, AF_INET6, 1, DELIVERY_SOCK_TYPE),
	SB_ALLOW(connect),
	SB_ALLOW_ARG2(getsockopt, 1, SOL_SOCKET, 2, SO_ERROR),
	SB_ALLOW(sendto),
	SB_ALLOW(poll),
	SB_ALLOW(ppoll),
};

static const struct sandbox_rule delivery_local_rules[] = {
	SB_ERRNO(open, EACCES),
	DELIVERY_COMMON_RULES,
	SB_ALLOW(openat),
	SB_ALLOW(pread64),
	SB_ALLOW(mkdirat),
	SB_ALLOW(linkat),
	SB_ALLOW(unlinkat),
	SB_ALLOW(fsync),
};

const struct sandbox_rule *
delivery_sandbox_rules(int transport, size_t *n)
{
	if (transport == MOAT_TRANSPORT_RELAY) {
		*n = sizeof(delivery_relay_rules) / sizeof(delivery_relay_rules[0]);
		return delivery_relay_rules;
	}
	*n = sizeof(delivery_local_rules) / sizeof(delivery_local_rules[0]);
	return delivery_local_rules;
}
