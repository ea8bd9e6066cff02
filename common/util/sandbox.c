/*
 * sandbox.c: build and install a seccomp filter from a table, or build
 * it once (sandbox_export) for processes that install it as it is
 * (sandbox_load).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

#include "util/log.h"
#include "util/sandbox.h"

int
sandbox_available(void)
{
#ifdef MOAT_SANDBOX_DISABLED
	return 0;
#else
	return 1;
#endif
}

#ifdef MOAT_SANDBOX_DEBUG
static const char *sandbox_role = "?";

/* Debug builds only: name the forbidden call, then die as the filter would. */
static void
sandbox_sigsys(int sig, siginfo_t *info, void *ctx)
{
	char *name;

	(void)ctx;
	name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, info->si_syscall);
	log_warn("sandbox=violation role=%s syscall=%s nr=%d", sandbox_role,
	    name != NULL ? name : "?", info->si_syscall);
	signal(sig, SIG_DFL);
	_exit(128 + SIGSYS);
}
#endif

#ifndef MOAT_SANDBOX_DISABLED
/* What a call the table does not name gets. */
#ifdef MOAT_SANDBOX_DEBUG
#define SANDBOX_DEFAULT	SCMP_ACT_TRAP
#else
#define SANDBOX_DEFAULT	SCMP_ACT_KILL_PROCESS
#endif

/* Before a filter goes in: the debug build's SIGSYS handler. */
static void
sandbox_prepare(const char *role)
{
#ifdef MOAT_SANDBOX_DEBUG
	struct sigaction sa;

	sandbox_role = role;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sandbox_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSYS, &sa, NULL);
#else
	(void)role;
#endif
}

/* libseccomp's filter of a table: the architecture check, then the rules. */
static scmp_filter_ctx
sandbox_build(uint32_t def, const struct sandbox_rule *rules, size_t n,
    char *err, size_t errlen)
{
	scmp_filter_ctx ctx;
	size_t i;
	int r;

	if ((ctx = seccomp_init(def)) == NULL) {
		snprintf(err, errlen, "seccomp_init failed");
		return NULL;
	}
	/* A call from a foreign architecture (e.g. the i386 ABI) kills. */
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0) {
		snprintf(err, errlen, "seccomp: %s", strerror(-r));
		seccomp_release(ctx);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		uint32_t act = rules[i].action == SB_ACT_ALLOW ?
		    SCMP_ACT_ALLOW : SCMP_ACT_ERRNO((uint32_t)rules[i].err);

		if (rules[i].nr < 0)
			continue;	/* not a call on this architecture */
		if (rules[i].argc == 0)
			r = seccomp_rule_add(ctx, act, rules[i].nr, 0);
		else
			r = seccomp_rule_add_array(ctx, act, rules[i].nr,
			    rules[i].argc, rules[i].args);
		if (r < 0) {
			snprintf(err, errlen, "seccomp rule %zu (syscall %d): %s",
			    i, rules[i].nr, strerror(-r));
			seccomp_release(ctx);
			return NULL;
		}
	}
	return ctx;
}
#endif

int
sandbox_apply(const char *role, const struct sandbox_rule *rules, size_t n,
    char *err, size_t errlen)
{
#ifdef MOAT_SANDBOX_DISABLED
	(void)role; (void)rules; (void)n;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	return 0;
#else
	scmp_filter_ctx ctx;
	int r;

	sandbox_prepare(role);
	if ((ctx = sandbox_build(SANDBOX_DEFAULT, rules, n, err, errlen)) == NULL)
		return -1;
	if ((r = seccomp_load(ctx)) < 0) {
		snprintf(err, errlen, "seccomp: %s", strerror(-r));
		seccomp_release(ctx);
		return -1;
	}
	seccomp_release(ctx);
	return 0;
#endif
}

int
sandbox_export(const struct sandbox_rule *rules, size_t n, char *err, size_t errlen)
{
#ifdef MOAT_SANDBOX_DISABLED
	(void)rules; (void)n;
	snprintf(err, errlen, "this build has no seccomp filters");
	return -1;
#else
	scmp_filter_ctx ctx;
	struct stat st;
	int fd, r;

	if ((ctx = sandbox_build(SANDBOX_DEFAULT, rules, n, err, errlen)) == NULL)
		return -1;
	if ((fd = memfd_create("moat-filter", MFD_CLOEXEC | MFD_ALLOW_SEALING)) == -1) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		seccomp_release(ctx);
		return -1;
	}
	r = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	if (r < 0) {
		snprintf(err, errlen, "seccomp_export_bpf: %s", strerror(-r));
		goto fail;
	}
	if (fstat(fd, &st) == -1 || st.st_size <= 0 ||
	    st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
	    st.st_size > (off_t)(SANDBOX_PROG_MAX * sizeof(struct sock_filter))) {
		snprintf(err, errlen, "seccomp_export_bpf wrote no usable program");
		goto fail;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_WRITE) == -1) {
		snprintf(err, errlen, "filter memfd seal: %s", strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
#endif
}

#ifndef MOAT_SANDBOX_DISABLED
/* Read the whole program of a sandbox_export() memfd: its instruction count, or -1. */
static ssize_t
sandbox_read(int fd, struct sock_filter *prog, char *err, size_t errlen)
{
	struct stat st;
	size_t want, off = 0;
	ssize_t r;

	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "filter descriptor %d: %s", fd, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size % (off_t)sizeof(*prog) != 0 ||
	    st.st_size > (off_t)(SANDBOX_PROG_MAX * sizeof(*prog))) {
		snprintf(err, errlen, "filter descriptor %d: not a filter program "
		    "(%lld bytes)", fd, (long long)st.st_size);
		return -1;
	}
	want = (size_t)st.st_size;
	while (off < want) {
		r = pread(fd, (char *)prog + off, want - off, (off_t)off);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "filter descriptor %d: %s", fd,
			    r == 0 ? "short read" : strerror(errno));
			return -1;
		}
		off += (size_t)r;
	}
	return (ssize_t)(want / sizeof(*prog));
}
#endif

int
sandbox_load(const char *role, int fd, uint32_t self, char *err, size_t errlen)
{
#ifdef MOAT_SANDBOX_DISABLED
	(void)role; (void)fd; (void)self;
	snprintf(err, errlen, "this build has no seccomp filters");
	return -1;
#else
	static struct sock_filter prog[SANDBOX_PROG_MAX];
	struct sock_fprog fp;
	ssize_t len, i;

	if ((len = sandbox_read(fd, prog, err, errlen)) == -1)
		return -1;
	for (i = 0; i < len; i++) {
		if (prog[i].k != SANDBOX_SELF)
			continue;
		if (prog[i].code != (BPF_JMP | BPF_JEQ | BPF_K)) {
			snprintf(err, errlen, "filter: instruction %zd uses the "
			    "placeholder pid other than in a comparison", i);
			return -1;
		}
		prog[i].k = self;
	}
	sandbox_prepare(role);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	fp.len = (unsigned short)len;
	fp.filter = prog;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp, 0, 0) == -1) {
		snprintf(err, errlen, "PR_SET_SECCOMP: %s", strerror(errno));
		return -1;
	}
	return 0;
#endif
}
