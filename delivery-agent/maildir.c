/*
 * maildir.c: durable maildir delivery (see maildir.h).
 *
 * All paths are relative to directory descriptors opened with
 * O_NOFOLLOW, so a symbolic link planted in a mailbox cannot send a
 * message (or a mkdir) anywhere else, even when the agent runs
 * unprivileged without a chroot.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir.h"

#define MAILDIR_DIR_FLAGS	(O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* Say what failed, keeping errno for the caller's reply code. */
__attribute__((format(printf, 3, 4))) static int
maildir_fail(char *err, size_t errlen, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	errno = saved;
	return -1;
}

/* mkdir that counts an existing directory as success; *made says which. */
static int
maildir_mkdir(int at, const char *name, int *made)
{
	if (mkdirat(at, name, 0700) == 0) {
		*made = 1;
		return 0;
	}
	return errno == EEXIST ? 0 : -1;
}

/* fsync a directory, so that entries just made in it survive a crash. */
static int
maildir_sync_dir(int at, const char *name)
{
	int fd, r, saved;

	if ((fd = openat(at, name, MAILDIR_DIR_FLAGS)) == -1)
		return -1;
	r = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

static void
maildir_init(struct maildir *md)
{
	md->dirfd = md->tmpfd = md->newfd = -1;
}

int
maildir_open(struct maildir *md, const char *name, char *err, size_t errlen)
{
	static const char *const sub[] = { "tmp", "new", "cur" };
	size_t i;
	int made = 0, saved;

	maildir_init(md);
	if (maildir_mkdir(AT_FDCWD, name, &made) == -1)
		return maildir_fail(err, errlen, "mkdir %s", name);
	if (made && maildir_sync_dir(AT_FDCWD, ".") == -1)
		return maildir_fail(err, errlen, "fsync maildir root");
	if ((md->dirfd = openat(AT_FDCWD, name, MAILDIR_DIR_FLAGS)) == -1)
		return maildir_fail(err, errlen, "open %s", name);
	made = 0;
	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		if (maildir_mkdir(md->dirfd, sub[i], &made) == -1) {
			maildir_fail(err, errlen, "mkdir %s/%s", name, sub[i]);
			goto fail;
		}
	}
	if (made && fsync(md->dirfd) == -1) {
		maildir_fail(err, errlen, "fsync %s", name);
		goto fail;
	}
	md->tmpfd = openat(md->dirfd, "tmp", MAILDIR_DIR_FLAGS);
	md->newfd = openat(md->dirfd, "new", MAILDIR_DIR_FLAGS);
	if (md->tmpfd == -1 || md->newfd == -1) {
		maildir_fail(err, errlen, "open %s/%s", name,
		    md->tmpfd == -1 ? "tmp" : "new");
		goto fail;
	}
	return 0;
fail:
	saved = errno;
	maildir_close(md);
	errno = saved;
	return -1;
}

void
maildir_close(struct maildir *md)
{
	if (md->tmpfd != -1)
		close(md->tmpfd);
	if (md->newfd != -1)
		close(md->newfd);
	if (md->dirfd != -1)
		close(md->dirfd);
	maildir_init(md);
}

int
maildir_tmp_create(struct maildir *md, const char *unique, char *err,
    size_t errlen)
{
	int fd;

	fd = openat(md->tmpfd, unique,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		return maildir_fail(err, errlen, "create tmp/%s", unique);
	return fd;
}

void
maildir_discard(struct maildir *md, const char *unique, int fd)
{
	int saved = errno;

	if (fd != -1)
		close(fd);
	(void)unlinkat(md->tmpfd, unique, 0);
	errno = saved;
}

int
maildir_commit(struct maildir *md, const char *unique, int fd, char *err,
    size_t errlen)
{
	const char *what;
	int r;

	if (fsync(fd) == -1) {
		what = "fsync tmp/";
		goto fail;
	}
	r = close(fd);
	fd = -1;
	if (r == -1) {
		what = "close tmp/";
		goto fail;
	}
	if (linkat(md->tmpfd, unique, md->newfd, unique, 0) == -1) {
		what = "link to new/";
		goto fail;
	}
	if (fsync(md->newfd) == -1) {
		/* Not known to be on disk: take it back, so that a retry does
		 * not leave two copies. */
		what = "fsync new/";
		r = errno;
		(void)unlinkat(md->newfd, unique, 0);
		errno = r;
		goto fail;
	}
	/* Delivered.  A stale tmp/ name is harmless (readers remove them). */
	(void)unlinkat(md->tmpfd, unique, 0);
	return 0;
fail:
	maildir_fail(err, errlen, "%s%s", what, unique);
	maildir_discard(md, unique, fd);
	return -1;
}

/* Append s to dst at *o, escaping as maildir(5) and maildir_unique() say. */
static int
maildir_put_host(char *dst, size_t dstsz, size_t *o, const char *host)
{
	size_t i;
	int n;

	for (i = 0; host[i] != '\0'; i++) {
		unsigned char c = (unsigned char)host[i];

		if (c > 0x20 && c < 0x7f && c != '/' && c != ':' && c != '\\')
			n = snprintf(dst + *o, dstsz - *o, "%c", c);
		else
			n = snprintf(dst + *o, dstsz - *o, "\\%03o", c);
		if (n < 0 || (size_t)n >= dstsz - *o)
			return -1;
		*o += (size_t)n;
	}
	return 0;
}

int
maildir_unique(char *dst, size_t dstsz, long long sec, long usec, long pid,
    const char *qid, uint32_t rindex, const char *host)
{
	size_t o;
	int n;

	n = snprintf(dst, dstsz, "%lld.M%06ldP%ldQ%sR%u.", sec, usec, pid, qid,
	    rindex);
	if (n < 0 || (size_t)n >= dstsz)
		return -1;
	o = (size_t)n;
	if (strchr(qid, '/') != NULL || strchr(qid, '.') != NULL)
		return -1;
	return maildir_put_host(dst, dstsz, &o, host[0] != '\0' ? host : "localhost");
}

size_t
maildir_lf_convert(struct maildir_lf *s, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (s->cr) {
			s->cr = 0;
			if (in[i] == '\n') {
				out[o++] = '\n';
				continue;
			}
			out[o++] = '\r';	/* a lone CR stays */
		}
		if (in[i] == '\r')
			s->cr = 1;
		else
			out[o++] = in[i];
	}
	return o;
}

size_t
maildir_lf_finish(struct maildir_lf *s, uint8_t *out)
{
	if (!s->cr)
		return 0;
	s->cr = 0;
	out[0] = '\r';
	return 1;
}
