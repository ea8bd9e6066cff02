/*
 * privdrop.c: give up privileges in one fixed order.
 *
 * Capabilities are read and checked with the raw capget system call and
 * prctl, not libcap, so that every program linking libmoat.a can drop
 * privileges without another library.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdint.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/privdrop.h"

static int
priv_err(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s: %s", what, strerror(errno));
	return -1;
}

static int
priv_setlimit(int resource, char *err, size_t errlen, const char *what)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(resource, &rl) == -1)
		return priv_err(err, errlen, what);
	return 0;
}

/*
 * Capability numbers tried in the bounding set.  Kernels newer than our
 * headers may know more than CAP_LAST_CAP; the sets are 64 bits wide, and
 * PR_CAPBSET_READ / PR_CAPBSET_DROP answer EINVAL for a number the
 * running kernel does not know.  The numbers it knows are contiguous
 * from 0 (cap_valid() in the kernel is 0 <= cap <= CAP_LAST_CAP), so the
 * first EINVAL ends the walk.
 */
#define PRIV_CAP_MAX	63

/*
 * Every kernel with a bounding set (2.6.25) knows capabilities 0 to
 * CAP_SETFCAP (31).  An EINVAL below that means the prctl itself is
 * unknown, not the number, and nothing would have been dropped.
 */
#define PRIV_CAP_MIN_KNOWN	31

/*
 * Empty the bounding set, so that nothing this process execs (nothing,
 * once seccomp and RLIMIT_NPROC are in place) could ever be given a
 * capability back.  Only the capabilities still in the set are dropped
 * (moatd's children inherit a bounding set of five): one PR_CAPBSET_READ
 * per capability the kernel knows plus one PR_CAPBSET_DROP per
 * capability held, instead of 64 drops and 128 reads.  Dropping needs
 * CAP_SETPCAP in the effective set, which a child exec'd by moatd has
 * (listener/caps.c keeps it for this only); without it the first drop
 * fails and so does priv_drop().
 *
 * Nothing can put a capability back into the bounding set, so one read
 * as absent here stays out; the ones dropped are noted in *dropped for
 * priv_verify_caps() to read again.
 */
static int
priv_drop_bounding(uint64_t *dropped, char *err, size_t errlen)
{
	int c, r;

	*dropped = 0;
	for (c = 0; c <= PRIV_CAP_MAX; c++) {
		if ((r = prctl(PR_CAPBSET_READ, c, 0, 0, 0)) == -1) {
			if (errno == EINVAL && c > PRIV_CAP_MIN_KNOWN)
				break;	/* the first number the kernel does not know */
			snprintf(err, errlen, "PR_CAPBSET_READ %d: %s", c,
			    strerror(errno));
			return -1;
		}
		if (r == 0)
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == -1) {
			snprintf(err, errlen, "PR_CAPBSET_DROP %d: %s", c,
			    strerror(errno));
			return -1;
		}
		*dropped |= (uint64_t)1 << c;
	}
	return 0;
}

/*
 * After switching ids: none of the capabilities dropped from the
 * bounding set is back in it (the others were read as absent while it
 * was emptied), no capability in the effective, permitted or
 * inheritable set (capget), and none in the ambient set.  The kernel
 * keeps the ambient set a subset of permitted and inheritable (it clears
 * ambient bits whenever either loses them, and clears the whole ambient
 * set on a switch away from uid 0), so an empty permitted set already
 * proves an empty ambient set; one PR_CAP_AMBIENT_IS_SET for
 * CAP_NET_BIND_SERVICE, the capability an ambient set would most likely
 * be given for a mail server, stays as a cheap second check of that
 * invariant rather than one call per capability.
 */
static int
priv_verify_caps(uint64_t dropped, char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	int c, i;

	for (c = 0; c <= PRIV_CAP_MAX; c++) {
		if ((dropped & ((uint64_t)1 << c)) != 0 &&
		    prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 0) {
			snprintf(err, errlen, "bounding set still holds "
			    "capability %d", c);
			return -1;
		}
	}

	memset(&hdr, 0, sizeof(hdr));
	memset(data, 0, sizeof(data));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	hdr.pid = 0;
	if (syscall(SYS_capget, &hdr, data) == -1)
		return priv_err(err, errlen, "capget");
	for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
		if (data[i].effective != 0 || data[i].permitted != 0 ||
		    data[i].inheritable != 0) {
			snprintf(err, errlen, "capabilities left after dropping "
			    "privileges: effective %08x permitted %08x "
			    "inheritable %08x (word %d)", data[i].effective,
			    data[i].permitted, data[i].inheritable, i);
			return -1;
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE,
	    0, 0) > 0) {
		snprintf(err, errlen, "ambient set still holds capability %d",
		    CAP_NET_BIND_SERVICE);
		return -1;
	}
	return 0;
}

/* After switching ids: prove that neither root nor the old ids come back. */
static int
priv_verify(const struct priv_spec *spec, char *err, size_t errlen)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1)
		return priv_err(err, errlen, "getresuid");
	if (ru != spec->uid || eu != spec->uid || su != spec->uid ||
	    rg != spec->gid || eg != spec->gid || sg != spec->gid) {
		snprintf(err, errlen, "ids not fully switched");
		return -1;
	}
	if (spec->uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
		snprintf(err, errlen, "could regain uid 0 after dropping privileges");
		return -1;
	}
	if (spec->gid != 0 && (setgid(0) != -1 || setegid(0) != -1)) {
		snprintf(err, errlen, "could regain gid 0 after dropping privileges");
		return -1;
	}
	return 0;
}

/*
 * Is the log (standard error) a regular file?  Then RLIMIT_FSIZE 0 would
 * kill the process with SIGXFSZ at its first log line, so the limit is
 * left alone; the seccomp tables of the processes that ask for it refuse
 * open() anyway, so the log is the only file they could write.
 */
static int
priv_log_is_file(void)
{
	struct stat st;

	return fstat(STDERR_FILENO, &st) == 0 && S_ISREG(st.st_mode);
}

int
priv_drop(const struct priv_spec *spec, char *err, size_t errlen)
{
	if (spec->chroot_dir != NULL && geteuid() == 0) {
		if (chroot(spec->chroot_dir) == -1)
			return priv_err(err, errlen, "chroot");
		if (chdir("/") == -1)
			return priv_err(err, errlen, "chdir /");
	} else if (spec->chroot_dir != NULL) {
		/* Unprivileged: no chroot, but the same working directory,
		 * so that relative paths mean the same in both modes. */
		if (chdir(spec->chroot_dir) == -1)
			return priv_err(err, errlen, "chdir");
	}
	if (spec->uid != (uid_t)-1) {
		uint64_t dropped;

		if (priv_drop_bounding(&dropped, err, errlen) == -1)
			return -1;
		if (setgroups(0, NULL) == -1)
			return priv_err(err, errlen, "setgroups");
		if (setresgid(spec->gid, spec->gid, spec->gid) == -1)
			return priv_err(err, errlen, "setresgid");
		if (setresuid(spec->uid, spec->uid, spec->uid) == -1)
			return priv_err(err, errlen, "setresuid");
		if (priv_verify(spec, err, errlen) == -1 ||
		    priv_verify_caps(dropped, err, errlen) == -1)
			return -1;
	}
	if (priv_setlimit(RLIMIT_CORE, err, errlen, "RLIMIT_CORE") == -1)
		return -1;
	if (spec->no_new_procs &&
	    priv_setlimit(RLIMIT_NPROC, err, errlen, "RLIMIT_NPROC") == -1)
		return -1;
	if (spec->no_file_writes && !priv_log_is_file() &&
	    priv_setlimit(RLIMIT_FSIZE, err, errlen, "RLIMIT_FSIZE") == -1)
		return -1;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		return priv_err(err, errlen, "PR_SET_DUMPABLE");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return priv_err(err, errlen, "PR_SET_NO_NEW_PRIVS");
	return 0;
}

static int
priv_parse_id(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < -1 || v > INT_MAX)
		return -1;
	*out = v;
	return 0;
}

int
priv_parse_child_args(int argc, char **argv, struct priv_spec *spec,
    int *debug, const char **config_name, char *err, size_t errlen)
{
	long uid = -1, gid = -1;
	int ch;

	memset(spec, 0, sizeof(*spec));
	*debug = 0;
	*config_name = "moat.conf";
	optind = 1;
	while ((ch = getopt(argc, argv, "u:g:t:dn:")) != -1) {
		switch (ch) {
		case 'u':
			if (priv_parse_id(optarg, &uid) == -1)
				goto bad;
			break;
		case 'g':
			if (priv_parse_id(optarg, &gid) == -1)
				goto bad;
			break;
		case 't':
			spec->chroot_dir = optarg;
			break;
		case 'd':
			*debug = 1;
			break;
		case 'n':
			*config_name = optarg;
			break;
		default:
			goto bad;
		}
	}
	if (optind != argc || (uid == -1) != (gid == -1))
		goto bad;
	spec->uid = (uid_t)uid;
	spec->gid = (gid_t)gid;
	return 0;
bad:
	snprintf(err, errlen, "usage: %s -u UID -g GID [-t CHROOT] [-d] [-n NAME] "
	    "(started by moatd only)", argc > 0 ? argv[0] : "child");
	return -1;
}
