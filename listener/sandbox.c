/*
 * sandbox.c: the listener's seccomp allow-list.
 *
 * A seccomp filter is inherited by every child and kept across execve,
 * and filters stack: a child's system call must pass its own table AND
 * this one.  So this table has two parts:
 *
 *  1. what moatd itself does after start-up (poll, accept, fork, exec,
 *     wait, kill) and what a forked child does before execve;
 *  2. the outer bound of every moat process: what a freshly exec'd
 *     child needs until its own filter is in place (the dynamic loader,
 *     reading the configuration memfd, opening its files, priv_drop(),
 *     sandbox_apply()), and everything its own table allows after.
 *
 * Part 2 must stay a superset of smtpd-session/sandbox.c,
 * queue-manager/sandbox.c, delivery-agent/sandbox.c and
 * keyholder/sandbox.c: a call a child
 * allows but this table does not kills that child with SIGSYS, and moatd
 * logs `status=killed signal=SIGSYS (seccomp violation)`.  What no moat
 * process does at all stays forbidden everywhere: ptrace, mount, bpf,
 * io_uring, module loading, kexec, keyrings, namespaces, perf events,
 * userfaultfd, clock setting, reboot, and so on.
 */
#include "config.h"

#include <stddef.h>
#include <sys/socket.h>

#include "moatd.h"

const struct sandbox_rule listener_sandbox[] = {
	/* 1. moatd's event loop */
	SB_ALLOW(poll),
	SB_ALLOW(ppoll),
	SB_ALLOW(read),
	SB_ALLOW(write),
	SB_ALLOW(accept4),
	SB_ALLOW(getsockname),
	SB_ALLOW(socketpair),
	SB_ALLOW(sendmsg),
	SB_ALLOW(sendto),
	SB_ALLOW(close),
	SB_ALLOW(fcntl),
	SB_ALLOW(wait4),
	SB_ALLOW(waitid),
	SB_ALLOW(kill),
	SB_ALLOW(unlink),		/* control.sock, moatd.pid, status at shutdown */
	/* run_directory/status (status.c) also needs openat, fchmod and
	 * rename, which part 2 allows */
	SB_ALLOW(memfd_create),		/* a reload's new configuration */
	SB_ALLOW(clock_gettime),
	SB_ALLOW(gettimeofday),
	SB_ALLOW(time),
	SB_ALLOW(getpid),
	SB_ALLOW(gettid),
	SB_ALLOW(rt_sigreturn),
	SB_ALLOW(restart_syscall),
	SB_ALLOW(exit),
	SB_ALLOW(exit_group),
	SB_ALLOW(brk),
	SB_ALLOW(mmap),
	SB_ALLOW(munmap),
	SB_ALLOW(mremap),
	SB_ALLOW(madvise),
	/* fork and the child up to execve */
	SB_ALLOW(clone),
	SB_ALLOW(clone3),
	SB_ALLOW(vfork),		/* spawn.c */
	SB_ALLOW(set_robust_list),
	SB_ALLOW(rt_sigaction),
	SB_ALLOW(rt_sigprocmask),
	SB_ALLOW(dup),
	SB_ALLOW(dup2),
	SB_ALLOW(dup3),
	SB_ALLOW(close_range),
	SB_ALLOW(setsid),
	SB_ALLOW(execve),

	/* 2. every child: loader and libc start-up */
	SB_ALLOW(arch_prctl),
	SB_ALLOW(set_tid_address),
	SB_ALLOW(rseq),
	SB_ALLOW(mprotect),
	SB_ALLOW(openat),
	SB_ALLOW(open),
	SB_ALLOW(access),
	SB_ALLOW(faccessat),
	SB_ALLOW(faccessat2),
	SB_ALLOW(newfstatat),
	SB_ALLOW(fstat),
	SB_ALLOW(stat),
	SB_ALLOW(lstat),
	SB_ALLOW(statx),
	SB_ALLOW(pread64),
	SB_ALLOW(pwrite64),
	SB_ALLOW(readv),
	SB_ALLOW(writev),
	SB_ALLOW(lseek),
	SB_ALLOW(prlimit64),
	SB_ALLOW(getrlimit),
	SB_ALLOW(setrlimit),
	SB_ALLOW(getrandom),
	SB_ALLOW(futex),
	SB_ALLOW(sched_yield),
	SB_ALLOW(sched_getaffinity),
	SB_ALLOW(nanosleep),
	SB_ALLOW(clock_nanosleep),
	SB_ALLOW(clock_getres),
	SB_ALLOW(getuid),
	SB_ALLOW(geteuid),
	SB_ALLOW(getgid),
	SB_ALLOW(getegid),
	SB_ALLOW(getppid),
	SB_ALLOW(uname),
	SB_ALLOW(sysinfo),
	SB_ALLOW(readlink),
	SB_ALLOW(getcwd),
	SB_ALLOW(ioctl),
	SB_ALLOW(sigaltstack),
	SB_ALLOW(tgkill),
	/* priv_drop() and sandbox_apply() */
	SB_ALLOW(chroot),
	SB_ALLOW(chdir),
	SB_ALLOW(fchdir),
	SB_ALLOW(setgroups),
	SB_ALLOW(setresuid),
	SB_ALLOW(setresgid),
	SB_ALLOW(getresuid),
	SB_ALLOW(getresgid),
	SB_ALLOW(setuid),		/* priv_verify: must fail with EPERM */
	SB_ALLOW(setgid),
	SB_ALLOW(setreuid),
	SB_ALLOW(setregid),
	SB_ALLOW(setfsuid),
	SB_ALLOW(setfsgid),
	SB_ALLOW(capget),
	SB_ALLOW(capset),
	SB_ALLOW(prctl),
	SB_ALLOW(seccomp),
	/* the queue-manager: SQLite in WAL mode, statvfs, its event loop */
	SB_ALLOW(fsync),
	SB_ALLOW(fdatasync),
	SB_ALLOW(ftruncate),
	SB_ALLOW(fallocate),
	SB_ALLOW(fchown),
	SB_ALLOW(fchmod),
	SB_ALLOW(umask),
	SB_ALLOW(flock),
	SB_ALLOW(unlinkat),
	SB_ALLOW(rename),
	SB_ALLOW(renameat),
	SB_ALLOW(renameat2),
	SB_ALLOW(link),
	SB_ALLOW(linkat),
	SB_ALLOW(mkdir),
	SB_ALLOW(mkdirat),
	SB_ALLOW(rmdir),
	SB_ALLOW(getdents64),
	SB_ALLOW(statfs),
	SB_ALLOW(fstatfs),
	/* the queue-manager's fdatasync of its WAL through native AIO
	 * (queue-manager/wal_sync.c); io_uring stays forbidden */
	SB_ALLOW(io_setup),
	SB_ALLOW(io_submit),
	SB_ALLOW(io_getevents),
	SB_ALLOW(io_destroy),
	SB_ALLOW(utimensat),
	SB_ALLOW(epoll_create1),
	SB_ALLOW(epoll_ctl),
	SB_ALLOW(epoll_wait),
	SB_ALLOW(epoll_pwait),
	SB_ALLOW(eventfd2),
	SB_ALLOW(pipe2),
	SB_ALLOW(select),
	SB_ALLOW(pselect6),
	SB_ALLOW(timerfd_create),
	SB_ALLOW(timerfd_settime),
	/* sockets: control socket, channels, relay agents' outgoing SMTP and DNS */
	SB_ALLOW(accept),
	SB_ALLOW(recvmsg),
	SB_ALLOW(recvfrom),
	SB_ALLOW(recvmmsg),
	SB_ALLOW(sendmmsg),
	SB_ALLOW(shutdown),
	SB_ALLOW(getsockopt),
	SB_ALLOW(setsockopt),
	SB_ALLOW(getpeername),
	/* Only the families moat uses: AF_UNIX (channels, nscd probes of
	 * getpwnam before a child's own filter), AF_INET and AF_INET6 (relay
	 * agents).  Netlink, packet and every other family kill. */
	SB_ALLOW_ARG(socket, 0, SCMP_CMP_EQ, AF_UNIX),
	SB_ALLOW_ARG(socket, 0, SCMP_CMP_EQ, AF_INET),
	SB_ALLOW_ARG(socket, 0, SCMP_CMP_EQ, AF_INET6),
	SB_ALLOW(connect),
	SB_ALLOW(bind),
	SB_ALLOW(listen),
};

const size_t listener_sandbox_len = sizeof(listener_sandbox) / sizeof(listener_sandbox[0]);
