/*
 * rundir.c: run_directory and the directories under it.
 *
 * moatd creates them at start-up, while it is still root, and corrects
 * the owner and mode of ones that exist, because every child relies on
 * them: the queue-manager chroots into queue/ and must own it, sessions
 * and relay agents chroot into empty/, which must be root's, read-only
 * and empty, and the local agent chroots into maildir/ and owns it.
 * Subdirectories are opened with O_NOFOLLOW relative to run_directory,
 * so a symbolic link planted there is refused rather than followed.
 *
 * queue/ and maildir/ are mode 0710 with group root, not 0700: a child
 * chroots into its directory while it is still uid 0 but holds only
 * CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_SYS_CHROOT and CAP_KILL, and
 * without CAP_DAC_OVERRIDE root is an ordinary "other" to a directory
 * owned by moat-queue.  Group root's search bit lets exactly the
 * processes with gid 0 (moatd's children before priv_drop, and root) in,
 * and lists nothing; other users still get nothing at all.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "moatd.h"
#include "util/log.h"
#include "util/xmalloc.h"

struct rundir_entry {
	const char	*name;
	enum proc_chroot chroot;
	enum proc_role	 owner;		/* PROC_LISTENER: root */
	mode_t		 mode;
	int		 must_be_empty;
};

static const struct rundir_entry rundir_table[] = {
	{ "queue",	CHROOT_QUEUE,	PROC_QMGR,	0710, 0 },
	{ "empty",	CHROOT_EMPTY,	PROC_LISTENER,	0555, 1 },
	{ "maildir",	CHROOT_MAILDIR,	PROC_LOCAL,	0710, 0 },
};

static int
rundir_err(char *err, size_t errlen, const char *path, const char *what)
{
	snprintf(err, errlen, "%s: %s: %s", path, what, strerror(errno));
	return -1;
}

/* Give the directory behind fd the owner and mode it must have. */
static int
rundir_fix(const struct moatd *m, int fd, const char *path, uid_t uid,
    gid_t gid, mode_t mode, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		return rundir_err(err, errlen, path, "fstat");
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", path);
		return -1;
	}
	if (m->privileged && (st.st_uid != uid || st.st_gid != gid)) {
		if (fchown(fd, uid, gid) == -1)
			return rundir_err(err, errlen, path, "fchown");
		log_info("dir=%s owner=%ld:%ld (was %ld:%ld)", path, (long)uid,
		    (long)gid, (long)st.st_uid, (long)st.st_gid);
	}
	if ((st.st_mode & 07777) != mode) {
		if (fchmod(fd, mode) == -1)
			return rundir_err(err, errlen, path, "fchmod");
		log_info("dir=%s mode=%04o (was %04o)", path, (unsigned int)mode,
		    (unsigned int)(st.st_mode & 07777));
	}
	return 0;
}

/* The chroot of sessions must hold nothing they could use. */
static int
rundir_check_empty(int fd, const char *path, char *err, size_t errlen)
{
	struct dirent *de;
	DIR *d;
	int dfd, found = 0;

	if ((dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1)
		return rundir_err(err, errlen, path, "dup");
	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return rundir_err(err, errlen, path, "opendir");
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			found = 1;
			break;
		}
	}
	closedir(d);
	if (found) {
		snprintf(err, errlen, "%s is not empty: it is the chroot of "
		    "smtpd-session and relay agents and must stay empty; remove "
		    "what is in it", path);
		return -1;
	}
	return 0;
}

/* Create (or check) one directory under run_directory. */
static int
rundir_sub(struct moatd *m, int rfd, const struct rundir_entry *e,
    char *err, size_t errlen)
{
	const struct moatd_role *owner = &m->role[e->owner];
	char *path;
	int fd, r = -1;
	uid_t uid = 0;
	const gid_t gid = 0;

	path = xasprintf("%s/%s", m->rundir, e->name);
	if (mkdirat(rfd, e->name, 0700) == -1 && errno != EEXIST) {
		rundir_err(err, errlen, path, "mkdir");
		goto out;
	}
	fd = openat(rfd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		struct stat st;

		/* With O_DIRECTORY a symbolic link fails as ENOTDIR, not ELOOP. */
		if (fstatat(rfd, e->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st.st_mode))
			snprintf(err, errlen, "%s: is a symbolic link, refused", path);
		else
			rundir_err(err, errlen, path, "open");
		goto out;
	}
	if (e->owner != PROC_LISTENER)
		uid = owner->uid;	/* group stays root: see the top */
	if (rundir_fix(m, fd, path, uid, gid, e->mode, err, errlen) == 0 &&
	    (!e->must_be_empty || rundir_check_empty(fd, path, err, errlen) == 0))
		r = 0;
	close(fd);
out:
	if (r == 0) {
		enum proc_role role;

		for (role = 0; role < PROC_NROLES; role++)
			if (proc_info(role)->chroot == e->chroot) {
				free(m->role[role].chroot_dir);
				m->role[role].chroot_dir = xstrdup(path);
			}
	}
	free(path);
	return r;
}

/*
 * Create run_directory (0755, root's) and queue/, empty/ and maildir/
 * under it, and note each role's chroot directory in m->role[].
 */
int
rundir_setup(struct moatd *m, char *err, size_t errlen)
{
	size_t i;
	int rfd;

	if (mkdir(m->rundir, 0755) == -1 && errno != EEXIST)
		return rundir_err(err, errlen, m->rundir, "mkdir");
	if ((rfd = open(m->rundir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return rundir_err(err, errlen, m->rundir, "open");
	if (rundir_fix(m, rfd, m->rundir, 0, 0, 0755, err, errlen) == -1) {
		close(rfd);
		return -1;
	}
	for (i = 0; i < sizeof(rundir_table) / sizeof(rundir_table[0]); i++) {
		if (rundir_sub(m, rfd, &rundir_table[i], err, errlen) == -1) {
			close(rfd);
			return -1;
		}
	}
	close(rfd);
	return 0;
}
