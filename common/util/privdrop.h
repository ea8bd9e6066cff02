/*
 * privdrop.h: giving up privileges, in one fixed order, in one place.
 *
 * priv_drop() does, in this order (OpenSSH's order):
 *   chroot(dir) + chdir("/")           if spec->chroot_dir
 *   empty the capability bounding set   if spec->uid != (uid_t)-1
 *     (PR_CAPBSET_DROP of every capability the kernel knows; needs
 *     CAP_SETPCAP, which moatd keeps for this only)
 *   setgroups(0), setresgid, setresuid  if spec->uid != (uid_t)-1
 *   check that uid 0 / the old ids cannot be regained, and that the
 *     bounding, ambient, effective, permitted and inheritable
 *     capability sets are all empty (error otherwise)
 *   RLIMIT_CORE 0, RLIMIT_NPROC 0 and RLIMIT_FSIZE 0 where spec asks
 *     (RLIMIT_FSIZE only while standard error is not a regular file:
 *     `moatd 2>>moat.log` must not kill the processes that log there)
 *   PR_SET_DUMPABLE 0, PR_SET_NO_NEW_PRIVS 1
 * The caller opens whatever it needs before, and installs its seccomp
 * filter (sandbox_apply) right after.  Started by an ordinary user, a
 * process passes uid (uid_t)-1; chroot_dir then only becomes the working
 * directory (chroot needs root), so relative paths such as "queue.db"
 * mean the same in both modes.
 */
#ifndef MOAT_PRIVDROP_H
#define MOAT_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

struct priv_spec {
	uid_t		 uid;		/* (uid_t)-1: keep */
	gid_t		 gid;
	const char	*chroot_dir;	/* NULL: none */
	int		 no_new_procs;	/* RLIMIT_NPROC 0 */
	int		 no_file_writes;/* RLIMIT_FSIZE 0, unless the log is a file */
};

int	priv_drop(const struct priv_spec *spec, char *err, size_t errlen);

/*
 * Parse the common child arguments "-u UID -g GID [-t CHROOT] [-d]
 * [-n NAME]" (see proc.h) into *spec, *debug and *name.  Returns 0, or -1
 * with a message in err.
 */
int	priv_parse_child_args(int argc, char **argv, struct priv_spec *spec,
	    int *debug, const char **config_name, char *err, size_t errlen);

#endif
