/*
 * local.c: the local transport (see local.h and maildir.h).
 *
 * Each recipient gets its own file, since the Delivered-To: header
 * differs.  With one recipient (the usual case) the body streams from
 * the queue-manager straight into the maildir.  With several, the body is
 * first copied once into an unnamed spool file beside the maildirs
 * (O_TMPFILE: it vanishes with the process), and every recipient's file
 * is written from there; so one recipient's full or broken maildir never
 * costs the others their body.  No result is 2xx before the message is
 * fsync'd in new/.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "job.h"
#include "local.h"
#include "maildir.h"
#include "mail/policy.h"
#include "util/xmalloc.h"

#define LOCAL_BUF	(IPC_DATA_CHUNK + 1)

enum local_src_r {
	SRC_ERR_CHANNEL = -2,	/* the queue-manager channel failed (j->err) */
	SRC_ERR_IO = -1,	/* reading the spool failed (errno) */
	SRC_END = 0,
	SRC_DATA = 1,
};

/* Where the body comes from: the queue-manager, or the spool file. */
struct local_src {
	struct job		*j;
	int			 spool;		/* -1: from the queue-manager */
	off_t			 off;
	int			 end;
	struct maildir_lf	 lf;
	uint8_t			*buf;
};

/* The next piece of the body, LF line ends already. */
static enum local_src_r
local_src_next(struct local_src *s, const uint8_t **p, size_t *n)
{
	const uint8_t *cp;
	size_t cn;
	ssize_t r;

	*p = s->buf;
	if (s->spool != -1) {
		do {
			r = pread(s->spool, s->buf, LOCAL_BUF, s->off);
		} while (r == -1 && errno == EINTR);
		if (r == -1)
			return SRC_ERR_IO;
		s->off += r;
		*n = (size_t)r;
		return r == 0 ? SRC_END : SRC_DATA;
	}
	while (!s->end) {
		switch (job_body_next(s->j, &cp, &cn)) {
		case -1:
			return SRC_ERR_CHANNEL;
		case 0:
			s->end = 1;
			*n = maildir_lf_finish(&s->lf, s->buf);
			return *n != 0 ? SRC_DATA : SRC_END;
		default:
			if ((*n = maildir_lf_convert(&s->lf, cp, cn, s->buf)) != 0)
				return SRC_DATA;
		}
	}
	return SRC_END;
}

/* write(2) until all of p is out; -1 with errno on the first error. */
static int
local_write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, b, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A failed delivery: a full disk is 452 4.3.1, anything else 451 4.3.0. */
static void
local_fail(struct job *j, size_t i, const char *what, int err)
{
	char text[MOAT_TEXT_MAX + 1];
	int full = err == ENOSPC || err == EDQUOT;

	snprintf(text, sizeof(text), "maildir delivery failed: %s: %s", what,
	    strerror(err));
	job_result(j, i, full ? 452 : 451, full ? "4.3.1" : "4.3.0", text, NULL);
}

/* An anonymous file in the maildir root; a named one when O_TMPFILE fails. */
static int
local_spool_open(const struct job *j)
{
	char name[64];
	int fd;

	fd = openat(AT_FDCWD, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd != -1 || (errno != EOPNOTSUPP && errno != EISDIR))
		return fd;
	/* A leading dot: no maildir folder name can start with one. */
	snprintf(name, sizeof(name), ".spool.%s.%ld", j->qid, (long)getpid());
	fd = openat(AT_FDCWD, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd != -1)
		(void)unlinkat(AT_FDCWD, name, 0);
	return fd;
}

/*
 * Copy the whole body into a spool file and switch s to it.  Returns 0,
 * -1 on a local error (every open recipient gets it), -2 on a channel
 * failure.
 */
static int
local_spool(struct job *j, struct local_src *s)
{
	const uint8_t *p;
	size_t i, n;
	int fd, r, err;

	if ((fd = local_spool_open(j)) == -1) {
		err = errno;
		goto fail;
	}
	while ((r = local_src_next(s, &p, &n)) == SRC_DATA) {
		if (local_write_all(fd, p, n) == -1) {
			err = errno;
			close(fd);
			goto fail;
		}
	}
	if (r == SRC_ERR_CHANNEL) {
		close(fd);
		return -2;
	}
	s->spool = fd;
	s->off = 0;
	return 0;
fail:
	for (i = 0; i < j->nrcpt; i++)
		local_fail(j, i, "spool file", err);
	return -1;
}

/*
 * Write the headers and the body into an open tmp/ file; on SRC_ERR_IO
 * *what says which side failed.
 */
static enum local_src_r
local_write_message(struct job *j, size_t i, struct local_src *src, int fd,
    const char **what)
{
	char hdr[2 * ADDR_MAILBOX_MAX + 64];
	const uint8_t *p;
	size_t n;
	int r;

	*what = "write to tmp/";
	snprintf(hdr, sizeof(hdr), "Return-Path: <%s>\nDelivered-To: %s\n",
	    j->sender, j->rcpt[i].mailbox);
	if (local_write_all(fd, hdr, strlen(hdr)) == -1)
		return SRC_ERR_IO;
	while ((r = local_src_next(src, &p, &n)) == SRC_DATA)
		if (local_write_all(fd, p, n) == -1)
			return SRC_ERR_IO;
	if (r == SRC_ERR_IO)
		*what = "read spool file";
	return r;
}

/* Deliver to recipient i; -1 only when the channel failed. */
static int
local_deliver_rcpt(struct job *j, size_t i, struct local_src *src,
    const struct local_opts *o)
{
	char name[ADDR_LOCAL_MAX + 1], unique[MAILDIR_UNIQUE_MAX];
	char err[MAILDIR_UNIQUE_MAX + 64], text[MOAT_TEXT_MAX + 1];
	struct job_rcpt *rc = &j->rcpt[i];
	struct maildir md;
	struct timeval tv;
	const char *what;
	int fd, r;

	if (policy_maildir_name(&rc->addr, name, sizeof(name)) == -1) {
		job_result(j, i, 550, "5.1.3", "local part is not usable as a "
		    "maildir name", NULL);
		return 0;
	}
	gettimeofday(&tv, NULL);
	if (maildir_unique(unique, sizeof(unique), (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid(), j->qid, rc->idx, o->hostname) == -1) {
		local_fail(j, i, "file name", ENAMETOOLONG);
		return 0;
	}
	if (maildir_open(&md, name, err, sizeof(err)) == -1) {
		local_fail(j, i, err, errno);
		return 0;
	}
	if ((fd = maildir_tmp_create(&md, unique, err, sizeof(err))) == -1) {
		local_fail(j, i, err, errno);
		maildir_close(&md);
		return 0;
	}
	if ((r = local_write_message(j, i, src, fd, &what)) != SRC_END) {
		local_fail(j, i, what, errno);
		maildir_discard(&md, unique, fd);
		maildir_close(&md);
		return r == SRC_ERR_CHANNEL ? -1 : 0;
	}
	if (maildir_commit(&md, unique, fd, err, sizeof(err)) == -1)
		local_fail(j, i, err, errno);
	else {
		snprintf(text, sizeof(text), "delivered to maildir as %s/new/%s",
		    name, unique);
		job_result(j, i, 250, "2.0.0", text, NULL);
		/* In the mailbox: a DSN says "delivered", not "relayed". */
		j->rcpt[i].flags |= MOAT_RESULT_FINAL;
	}
	maildir_close(&md);
	return 0;
}

int
local_deliver(struct job *j, const struct local_opts *o)
{
	struct local_src src;
	size_t i;
	int r = 0;

	strlcpy_m(j->relay, "maildir", sizeof(j->relay));
	if (j->nexthop[0] != '\0') {
		snprintf(j->err, sizeof(j->err), "local job with a next hop");
		return -1;
	}
	memset(&src, 0, sizeof(src));
	src.j = j;
	src.spool = -1;
	src.buf = xmalloc(LOCAL_BUF);
	/* A local spool error has given every recipient its result. */
	if (j->nrcpt > 1)
		r = local_spool(j, &src);
	for (i = 0; r == 0 && i < j->nrcpt; i++) {
		/* Every recipient reads the spool from its start. */
		src.off = 0;
		if (local_deliver_rcpt(j, i, &src, o) == -1)
			r = -2;
	}
	if (src.spool != -1)
		close(src.spool);
	free(src.buf);
	return r == -2 ? -1 : 0;
}
