/*
 * sandbox.h: seccomp filters written as tables.
 *
 * Each process keeps its allow-list in its own folder as a table of
 * sandbox_rule lines (see smtpd-session/sandbox.c for an example):
 *
 *   SB_ERRNO(open, EACCES),              refused softly: library probes
 *   SB_ALLOW(read),                      allowed
 *   SB_ALLOW_ARG(socket, 0, SCMP_CMP_EQ, AF_UNIX),   allowed for AF_UNIX only
 *
 * sandbox_apply() builds the filter with libseccomp: architecture check
 * first (a foreign architecture kills), the table in order, and
 * SECCOMP_RET_KILL_PROCESS for everything else.  Built with
 * --enable-sandbox-debug the default is a trap whose handler logs the
 * call's name and number and then exits; built with --disable-sandbox
 * (sanitizer builds only) sandbox_apply() only sets no_new_privs and
 * returns.
 */
#ifndef MOAT_SANDBOX_H
#define MOAT_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <seccomp.h>

enum sb_action { SB_ACT_ALLOW, SB_ACT_ERRNO };

struct sandbox_rule {
	int			 nr;	/* from SCMP_SYS(); negative = not on this arch */
	enum sb_action		 action;
	int			 err;	/* errno for SB_ACT_ERRNO */
	unsigned int		 argc;
	struct scmp_arg_cmp	 args[2];
};

#define SB_ALLOW(name) { SCMP_SYS(name), SB_ACT_ALLOW, 0, 0, { { 0, 0, 0, 0 } } }
#define SB_ERRNO(name, e) { SCMP_SYS(name), SB_ACT_ERRNO, (e), 0, { { 0, 0, 0, 0 } } }
#define SB_ALLOW_ARG(name, idx, op, val) \
	{ SCMP_SYS(name), SB_ACT_ALLOW, 0, 1, { SCMP_CMP((idx), (op), (val), 0), { 0, 0, 0, 0 } } }
/* Two arguments pinned to exact values; both must match. */
#define SB_ALLOW_ARGS(name, i0, v0, i1, v1) \
	{ SCMP_SYS(name), SB_ACT_ALLOW, 0, 2, \
	  { SCMP_CMP((i0), SCMP_CMP_EQ, (v0), 0), SCMP_CMP((i1), SCMP_CMP_EQ, (v1), 0) } }
#define SB_ALLOW_ARG_MASK(name, idx, mask, val) \
	{ SCMP_SYS(name), SB_ACT_ALLOW, 0, 1, { SCMP_CMP((idx), SCMP_CMP_MASKED_EQ, (mask), (val)), { 0, 0, 0, 0 } } }

/* Install the filter for process role "role" (used in debug logs). */
int	sandbox_apply(const char *role, const struct sandbox_rule *rules, size_t n,
	    char *err, size_t errlen);

/*
 * A filter built once and installed by many processes: moatd builds the
 * session's at start and hands it to every session, which then skips
 * libseccomp's work (a tenth of a session's CPU).  SANDBOX_SELF stands
 * in a table for the pid of the process that installs the filter; it is
 * above any pid (PID_MAX_LIMIT is 2^22).
 *
 * sandbox_export() writes the classic BPF program of a table into a new
 * sealed memfd (close-on-exec) and returns it, or -1 and err.
 * sandbox_load() reads such a program, puts self where SANDBOX_SELF is
 * compared (and refuses a program that uses SANDBOX_SELF any other way),
 * sets no_new_privs and installs it, as sandbox_apply() would have; 0, or
 * -1 and err.
 */
#define SANDBOX_SELF	0x6d6f6174u
#define SANDBOX_PROG_MAX 4096	/* instructions: the kernel's BPF_MAXINSNS */
int	sandbox_export(const struct sandbox_rule *rules, size_t n, char *err,
	    size_t errlen);
int	sandbox_load(const char *role, int fd, uint32_t self, char *err, size_t errlen);

/* 1 if this build filters system calls. */
int	sandbox_available(void);

#endif
