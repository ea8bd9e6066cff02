/*
 * test_privdrop.c: priv_drop() in forked children, as root, from the
 * capability states a child can be in: moatd's five capabilities, a
 * full set, an empty bounding set, no CAP_SETPCAP, capabilities that a
 * switch of ids does not clear (inheritable, SECBIT_KEEP_CAPS), an
 * ambient capability, and a kernel that knows fewer capabilities (or no
 * bounding set at all) or whose drop fails silently, simulated with a
 * seccomp filter.  What each
 * child ends with is read from /proc/self/status, not from the prctl
 * calls under test.
 */
#include "config.h"

#include <errno.h>
#include <linux/securebits.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/privdrop.h"
#include "t.h"

enum setup {
	SU_NONE,		/* as root: everything */
	SU_MOATD,		/* the five capabilities moatd hands down */
	SU_BOUND_EMPTY,		/* bounding set already empty */
	SU_NO_SETPCAP,		/* CAP_SETPCAP not effective */
	SU_NO_SETPCAP_EMPTY,	/* ... but nothing left to drop */
	SU_INHERITABLE,		/* CAP_KILL inheritable: survives setresuid */
	SU_KEEPCAPS,		/* SECBIT_KEEP_CAPS: permitted survives */
	SU_AMBIENT,		/* CAP_NET_BIND_SERVICE ambient (so inheritable) */
	SU_KERNEL_35,		/* kernel "knows" capabilities 0..34 only */
	SU_KERNEL_NONE,		/* PR_CAPBSET_READ unknown to the kernel */
	SU_SILENT_DROP,		/* PR_CAPBSET_DROP answers 0, drops nothing */
};

struct result {
	int		 r;
	unsigned long long bnd, inh, prm, eff, amb;
	char		 err[256];
};

/* One capability set from /proc/self/status ("CapBnd:" ...). */
static unsigned long long
status_caps(const char *key)
{
	char line[256];
	unsigned long long v = ~0ULL;
	size_t klen = strlen(key);
	FILE *f;

	if ((f = fopen("/proc/self/status", "r")) == NULL)
		return v;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == ':')
			v = strtoull(line + klen + 1, NULL, 16);
	fclose(f);
	return v;
}

/*
 * Set the process's capability sets to exactly v (effective = permitted)
 * and, if inh is not negative, that one capability as inheritable.
 */
static int
set_caps(const cap_value_t *v, int n, cap_value_t inh)
{
	cap_t c;
	int r;

	if ((c = cap_init()) == NULL)
		return -1;
	r = cap_set_flag(c, CAP_PERMITTED, n, v, CAP_SET) == -1 ||
	    cap_set_flag(c, CAP_EFFECTIVE, n, v, CAP_SET) == -1 ||
	    (inh >= 0 && cap_set_flag(c, CAP_INHERITABLE, 1, &inh, CAP_SET) == -1) ||
	    cap_set_proc(c) == -1 ? -1 : 0;
	cap_free(c);
	return r;
}

/* Drop every bounding capability except those in keep. */
static int
trim_bounding(const cap_value_t *keep, int nkeep)
{
	int c, i, k;

	for (c = 0; c <= 63; c++) {
		for (k = 0, i = 0; i < nkeep; i++)
			k |= keep[i] == c;
		if (!k && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == -1 && errno != EINVAL)
			return -1;
	}
	return 0;
}

/* Make PR_CAPBSET_READ / DROP answer EINVAL from capability "from" on. */
static int
fake_kernel(unsigned int from)
{
	static const int opts[] = { PR_CAPBSET_READ, PR_CAPBSET_DROP };
	scmp_filter_ctx ctx;
	size_t i;
	int r = 0;

	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL)
		return -1;
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]) && r == 0; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EINVAL), SCMP_SYS(prctl), 2,
		    SCMP_CMP(0, SCMP_CMP_EQ, (scmp_datum_t)opts[i], 0),
		    SCMP_CMP(1, SCMP_CMP_GE, (scmp_datum_t)from, 0));
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

/* Make PR_CAPBSET_DROP answer 0 without doing anything (RET_ERRNO of 0). */
static int
fake_silent_drop(void)
{
	scmp_filter_ctx ctx;
	int r;

	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL)
		return -1;
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(0), SCMP_SYS(prctl), 1,
	    SCMP_CMP(0, SCMP_CMP_EQ, (scmp_datum_t)PR_CAPBSET_DROP, 0));
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

/* Bring a freshly forked child into the state "s" describes. */
static int
setup(enum setup s)
{
	static const cap_value_t moatd[] = {
		CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_SYS_CHROOT, CAP_KILL
	};
	static const cap_value_t no_pcap[] = { CAP_SETUID, CAP_SETGID };
	static const cap_value_t amb[] = {
		CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_NET_BIND_SERVICE
	};
	static const cap_value_t kill[] = { CAP_KILL };

	switch (s) {
	case SU_NONE:
		return 0;
	case SU_MOATD:
		return trim_bounding(moatd, 5) == -1 ? -1 : set_caps(moatd, 5, -1);
	case SU_BOUND_EMPTY:
		return trim_bounding(NULL, 0);
	case SU_NO_SETPCAP:
		return trim_bounding(moatd, 5) == -1 ? -1 : set_caps(no_pcap, 2, -1);
	case SU_NO_SETPCAP_EMPTY:
		return trim_bounding(NULL, 0) == -1 ? -1 : set_caps(no_pcap, 2, -1);
	case SU_INHERITABLE: {
		cap_t c;
		int r;

		if ((c = cap_get_proc()) == NULL)
			return -1;
		r = cap_set_flag(c, CAP_INHERITABLE, 1, kill, CAP_SET) == -1 ||
		    cap_set_proc(c) == -1 ? -1 : 0;
		cap_free(c);
		return r;
	}
	case SU_KEEPCAPS:
		return prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS, 0, 0, 0);
	case SU_AMBIENT:
		if (set_caps(amb, 4, CAP_NET_BIND_SERVICE) == -1)
			return -1;
		return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE,
		    CAP_NET_BIND_SERVICE, 0, 0);
	case SU_KERNEL_35:
		return fake_kernel(35);
	case SU_KERNEL_NONE:
		return fake_kernel(0);
	case SU_SILENT_DROP:
		return fake_silent_drop();
	}
	return -1;
}

/* Run priv_drop() in a child set up as "s"; what it ended with in *res. */
static int
run(enum setup s, struct result *res)
{
	struct priv_spec spec = { 65534, 65534, NULL, 0, 0 };
	int p[2], st;
	ssize_t n;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	if (pipe(p) == -1)
		return -1;
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		struct result out;

		close(p[0]);
		memset(&out, 0, sizeof(out));
		if (setup(s) == -1)
			_exit(2);
		out.r = priv_drop(&spec, out.err, sizeof(out.err));
		out.bnd = status_caps("CapBnd");
		out.inh = status_caps("CapInh");
		out.prm = status_caps("CapPrm");
		out.eff = status_caps("CapEff");
		out.amb = status_caps("CapAmb");
		(void)!write(p[1], &out, sizeof(out));
		_exit(0);
	}
	close(p[1]);
	n = read(p[0], res, sizeof(*res));
	close(p[0]);
	if (waitpid(pid, &st, 0) == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
	    n != (ssize_t)sizeof(*res))
		return -1;
	res->err[sizeof(res->err) - 1] = '\0';
	return 0;
}

/* Dropping privileges from each starting state, as root. */
static void
test_drop(void)
{
	/* Capabilities 35.. left in the bounding set by a "kernel" that stops at 34. */
	const unsigned long long above34 = (status_caps("CapBnd") >> 35) << 35;
	static const struct {
		const char	*label;
		enum setup	 setup;
		int		 want_ok;
		const char	*want_err;	/* substring, when it fails */
	} cases[] = {
		{ "as root with every capability", SU_NONE, 1, NULL },
		{ "with moatd's five capabilities", SU_MOATD, 1, NULL },
		{ "bounding set already empty", SU_BOUND_EMPTY, 1, NULL },
		{ "without CAP_SETPCAP: the drop fails", SU_NO_SETPCAP, 0,
		    "PR_CAPBSET_DROP" },
		{ "without CAP_SETPCAP, nothing left to drop", SU_NO_SETPCAP_EMPTY, 1,
		    NULL },
		{ "inheritable capability left: refused", SU_INHERITABLE, 0,
		    "inheritable 00000020" },
		{ "SECBIT_KEEP_CAPS keeps permitted: refused", SU_KEEPCAPS, 0,
		    "capabilities left after dropping privileges" },
		/* The switch clears ambient, but the inheritable bit it
		 * needed stays, and is refused. */
		{ "ambient capability: refused", SU_AMBIENT, 0,
		    "inheritable 00000400" },
		{ "kernel knowing capabilities 0..34: stops there", SU_KERNEL_35, 1,
		    NULL },
		{ "kernel without a bounding set: refused", SU_KERNEL_NONE, 0,
		    "PR_CAPBSET_READ 0" },
		{ "drop that reports success but drops nothing: refused",
		    SU_SILENT_DROP, 0, "bounding set still holds capability 0" },
	};
	struct result res;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *label = cases[i].label;
		unsigned long long want_bnd = 0;

		if (run(cases[i].setup, &res) == -1) {
			T_OK(0, "privdrop: %s: child could not be set up", label);
			continue;
		}
		if (!cases[i].want_ok) {
			T_OK(res.r == -1 && strstr(res.err, cases[i].want_err) != NULL,
			    "privdrop: %s (%d: %s)", label, res.r, res.err);
			T_OK(res.amb == 0, "privdrop: %s: ambient set empty (%llx)",
			    label, res.amb);
			continue;
		}
		if (cases[i].setup == SU_KERNEL_35)
			want_bnd = above34;
		T_OK(res.r == 0, "privdrop: %s: succeeds (%s)", label, res.err);
		T_OK(res.bnd == want_bnd && res.inh == 0 && res.prm == 0 &&
		    res.eff == 0 && res.amb == 0,
		    "privdrop: %s: sets bnd %llx inh %llx prm %llx eff %llx amb %llx",
		    label, res.bnd, res.inh, res.prm, res.eff, res.amb);
	}
}

/* Started by an ordinary user (uid -1): no id switch, limits still set. */
static void
test_unprivileged(void)
{
	struct priv_spec spec = { (uid_t)-1, (gid_t)-1, "/", 0, 0 };
	int p[2], st, got[3] = { -1, -1, -1 };
	pid_t pid;

	if (pipe(p) == -1 || (pid = fork()) == -1) {
		T_OK(0, "privdrop: unprivileged: fork");
		return;
	}
	if (pid == 0) {
		char err[256];
		int out[3];

		close(p[0]);
		out[0] = priv_drop(&spec, err, sizeof(err));
		out[1] = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
		out[2] = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
		(void)!write(p[1], out, sizeof(out));
		_exit(0);
	}
	close(p[1]);
	(void)!read(p[0], got, sizeof(got));
	close(p[0]);
	waitpid(pid, &st, 0);
	T_OK(got[0] == 0 && got[1] == 0 && got[2] == 1,
	    "privdrop: unprivileged: ok, not dumpable, no_new_privs (%d %d %d)",
	    got[0], got[1], got[2]);
}

int
main(void)
{
	if (geteuid() != 0) {
		T_OK(1, "privdrop: # SKIP needs root");
		return t_done();
	}
	test_drop();
	test_unprivileged();
	return t_done();
}
