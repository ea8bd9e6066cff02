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
 * PR_CAPBSET_DROP / PR_CAPBSET_READ answer EINVAL for a number the
 * running kernel does not know.
 */
#define PRIV_CAP_MAX	63

/*
 * Empty the bounding set, so that nothing this process execs (nothing,
 * once seccomp and RLIMIT_NPROC are in place) could ever be given a
 * capability back.  Needs CAP_SETPCAP in the effective set, which a
 * child exec'd by moatd has (listener/caps.c keeps it for this only).
 */
static int
priv_drop_bounding(char *err, size_t errlen)
{
	int c;

	for (c = 0; c <= PRIV_CAP_MAX; c++) {
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == -1 && errno != EINVAL) {
			snprintf(err, errlen, "PR_CAPBSET_DROP %d: %s", c,
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* After switching ids: no capability in any set, bounding and ambient too. */
static int
priv_verify_caps(char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	int c, i;

	for (c = 0; c <= PRIV_CAP_MAX; c++) {
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) > 0) {
			snprintf(err, errlen, "bounding set still holds "
			    "capability %d", c);
			return -1;
		}
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) > 0) {
			snprintf(err, errlen, "ambient set still holds "
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
		if (priv_drop_bounding(err, errlen) == -1)
			return -1;
		if (setgroups(0, NULL) == -1)
			return priv_err(err, errlen, "setgroups");
		if (setresgid(spec->gid, spec->gid, spec->gid) == -1)
			return priv_err(err, errlen, "setresgid");
		if (setresuid(spec->uid, spec->uid, spec->uid) == -1)
			return priv_err(err, errlen, "setresuid");
		if (priv_verify(spec, err, errlen) == -1 ||
		    priv_verify_caps(err, errlen) == -1)
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
