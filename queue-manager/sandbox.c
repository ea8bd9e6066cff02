/*
 * sandbox.c: the queue-manager's seccomp allow-list.
 *
 * By the time it is installed the queue-manager has its database open,
 * its event loop built and every listening or connected socket it will
 * ever own, except the control connections it accepts.  So it needs no
 * way to open a file, to create a socket, to connect or bind one, to run
 * a program or to make a process: none of those calls is here.  It reads
 * and writes the database (pread/pwrite/fsync, and the WAL's fdatasync
 * through the kernel's native AIO), moves messages on its channels
 * (sendmsg/recvmsg), accepts moatctl on the control socket it was
 * handed, and waits in epoll.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>

#include "qmgr.h"

const struct sandbox_rule qmgr_sandbox[] = {
	/* Refused quietly: SQLite probes for journal files and directories
	 * it does not need in exclusive WAL mode once the database is open. */
	SB_ERRNO(open, EACCES),
	SB_ERRNO(openat, EACCES),

	/* Memory; never executable. */
	SB_ALLOW(brk),
	SB_ALLOW_ARG_MASK(mmap, 2, PROT_EXEC, 0),
	SB_ALLOW_ARG_MASK(mprotect, 2, PROT_EXEC, 0),
	SB_ALLOW(munmap),
	SB_ALLOW(mremap),
	SB_ALLOW(madvise),

	/* The database file and its WAL, opened before the filter. */
	SB_ALLOW(pread64),
	SB_ALLOW(pwrite64),
	SB_ALLOW(lseek),
	SB_ALLOW(fsync),
	SB_ALLOW(fdatasync),
	SB_ALLOW(ftruncate),
	SB_ALLOW(fstat),
	SB_ALLOW(newfstatat),
	SB_ALLOW(fcntl),
	SB_ALLOW(unlink),	/* the WAL, at a clean close */
	SB_ALLOW(fstatfs),	/* free space before BEGIN (fstatvfs) */
	/* The WAL's fdatasync handed to the kernel (wal_sync.c); its
	 * context and eventfd are made before the filter. */
	SB_ALLOW(io_submit),
	SB_ALLOW(io_getevents),
	SB_ALLOW(io_destroy),

	/* Channels: moatd, sessions, agents, moatctl. */
	SB_ALLOW(read),
	SB_ALLOW(write),
	SB_ALLOW(close),
	SB_ALLOW(sendmsg),
	SB_ALLOW(recvmsg),
	SB_ALLOW(accept4),
	SB_ALLOW(getsockopt),	/* SO_PEERCRED, SO_PEERGROUPS, SO_TYPE */
	SB_ALLOW(shutdown),

	/* The event loop and its signals. */
	SB_ALLOW(epoll_wait),
	SB_ALLOW(epoll_pwait),
	SB_ALLOW(epoll_ctl),
	SB_ALLOW(clock_gettime),
	SB_ALLOW(gettimeofday),
	SB_ALLOW(rt_sigaction),
	SB_ALLOW(rt_sigprocmask),
	SB_ALLOW(rt_sigreturn),

	SB_ALLOW(getpid),
	SB_ALLOW(getrandom),	/* queue ids, MIME boundaries */
	SB_ALLOW(uname),	/* gethostname() when a reload re-parses the config */
	SB_ALLOW(exit_group),
	SB_ALLOW(exit),
};

const size_t qmgr_sandbox_len = sizeof(qmgr_sandbox) / sizeof(qmgr_sandbox[0]);
