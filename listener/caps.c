/*
 * caps.c: what moatd keeps of root.
 *
 * moatd stays uid 0 so that the children it execs start as root, but
 * root only means the capabilities a process has: after caps_drop() the
 * bounding set, the permitted and the effective set hold exactly
 * CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_SYS_CHROOT and CAP_KILL.  A
 * child exec'd by root gets its bounding set as permitted and effective
 * set, so every child starts with those five, which is what priv_drop()
 * needs: chroot (CAP_SYS_CHROOT), emptying its own bounding set
 * (CAP_SETPCAP), setgroups, setresgid, setresuid (CAP_SETGID,
 * CAP_SETUID); switching to its own user then clears the rest.
 * CAP_SETPCAP is kept only so that children can empty their bounding
 * set; moatd itself never uses it after caps_drop().  moatd uses
 * CAP_KILL to signal children that run under other users.  Because
 * moatd runs with no_new_privs, the five must stay in its permitted set:
 * the kernel never gives an exec'd child more than its parent had.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "moatd.h"

static const cap_value_t caps_keep[] = {
	CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_SYS_CHROOT, CAP_KILL
};
#define CAPS_NKEEP	(sizeof(caps_keep) / sizeof(caps_keep[0]))

/* For the start-up log line. */
const char *
caps_kept_names(void)
{
	return "cap_setuid,cap_setgid,cap_setpcap,cap_sys_chroot,cap_kill";
}

static int
caps_is_kept(cap_value_t c)
{
	size_t i;

	for (i = 0; i < CAPS_NKEEP; i++)
		if (caps_keep[i] == c)
			return 1;
	return 0;
}

/* Remove every other capability from the bounding set (needs CAP_SETPCAP). */
static int
caps_drop_bounding(char *err, size_t errlen)
{
	cap_value_t c;

	for (c = 0; c < (cap_value_t)cap_max_bits(); c++) {
		if (caps_is_kept(c) || !CAP_IS_SUPPORTED(c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == -1) {
			snprintf(err, errlen, "PR_CAPBSET_DROP %d: %s", (int)c,
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Check that what the kernel now holds is what was asked for. */
static int
caps_verify(const cap_t want, char *err, size_t errlen)
{
	cap_value_t c;
	cap_t have;
	int diff;

	if ((have = cap_get_proc()) == NULL) {
		snprintf(err, errlen, "cap_get_proc: %s", strerror(errno));
		return -1;
	}
	diff = cap_compare(have, want);
	cap_free(have);
	if (diff != 0) {
		snprintf(err, errlen, "capability sets differ from the ones set");
		return -1;
	}
	for (c = 0; c < (cap_value_t)cap_max_bits(); c++) {
		if (CAP_IS_SUPPORTED(c) && cap_get_bound(c) != caps_is_kept(c)) {
			snprintf(err, errlen, "bounding set still holds "
			    "capability %d", (int)c);
			return -1;
		}
	}
	return 0;
}

/*
 * Reduce moatd to the five capabilities it and its children need: the
 * bounding set first, while CAP_SETPCAP is still held, then the
 * permitted and effective sets; inheritable and ambient become empty.
 */
int
caps_drop(char *err, size_t errlen)
{
	cap_t want;
	int r = -1;

	if (caps_drop_bounding(err, errlen) == -1)
		return -1;
	if (cap_reset_ambient() == -1) {
		snprintf(err, errlen, "cap_reset_ambient: %s", strerror(errno));
		return -1;
	}
	if ((want = cap_init()) == NULL) {
		snprintf(err, errlen, "cap_init: %s", strerror(errno));
		return -1;
	}
	if (cap_set_flag(want, CAP_PERMITTED, CAPS_NKEEP, caps_keep, CAP_SET) == -1 ||
	    cap_set_flag(want, CAP_EFFECTIVE, CAPS_NKEEP, caps_keep, CAP_SET) == -1) {
		snprintf(err, errlen, "cap_set_flag: %s", strerror(errno));
		goto out;
	}
	if (cap_set_proc(want) == -1) {
		snprintf(err, errlen, "cap_set_proc: %s", strerror(errno));
		goto out;
	}
	r = caps_verify(want, err, errlen);
out:
	cap_free(want);
	return r;
}
