/*
 * sandbox.c: build and install a seccomp filter from a table.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

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
	uint32_t def = SCMP_ACT_KILL_PROCESS;
	scmp_filter_ctx ctx;
	size_t i;
	int r;

#ifdef MOAT_SANDBOX_DEBUG
	struct sigaction sa;

	sandbox_role = role;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sandbox_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSYS, &sa, NULL);
	def = SCMP_ACT_TRAP;
#else
	(void)role;
#endif
	if ((ctx = seccomp_init(def)) == NULL) {
		snprintf(err, errlen, "seccomp_init failed");
		return -1;
	}
	/* A call from a foreign architecture (e.g. the i386 ABI) kills. */
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0)
		goto fail;
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
			return -1;
		}
	}
	if ((r = seccomp_load(ctx)) < 0)
		goto fail;
	seccomp_release(ctx);
	return 0;
fail:
	snprintf(err, errlen, "seccomp: %s", strerror(-r));
	seccomp_release(ctx);
	return -1;
#endif
}
