/*
 * maildir.h: durable delivery into a maildir (the format of qmail's
 * maildir(5), read by Dovecot, Courier, mutt and others).
 *
 * The working directory is the maildir root (run_directory/maildir, the
 * local agent's chroot); each local recipient has the folder
 *   <name>/tmp  <name>/new  <name>/cur      (mode 0700, made when missing)
 * A message is written to tmp/<unique>, fsync'd, hard-linked to
 * new/<unique>, and new/ is fsync'd; only then is it delivered.  The name
 * in tmp/ is removed afterwards.  A reader never sees a partial message,
 * and a crash at any point leaves at worst a stale file in tmp/ (which
 * maildir readers clean up) or a second copy (delivery is at least once).
 *
 * Messages are stored with LF line ends, as maildir readers expect; the
 * queue holds CRLF, so maildir_lf converts on the way, across chunk
 * boundaries.
 */
#ifndef MOAT_MAILDIR_H
#define MOAT_MAILDIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MAILDIR_UNIQUE_MAX	256

struct maildir {
	int	dirfd;		/* <name>/ */
	int	tmpfd;		/* <name>/tmp */
	int	newfd;		/* <name>/new */
};

/*
 * Make sure folder "name" (one path component) and its tmp, new and cur
 * exist, and open it.  New directories are fsync'd into their parents.
 * Returns 0, or -1 with errno set and a reason ("mkdir x/tmp") in err.
 */
int	maildir_open(struct maildir *md, const char *name, char *err, size_t errlen);
void	maildir_close(struct maildir *md);
/* Create tmp/<unique> for writing; returns the descriptor or -1 (errno, err). */
int	maildir_tmp_create(struct maildir *md, const char *unique, char *err,
	    size_t errlen);
/*
 * Make the message in tmp/<unique> (open as fd, which is closed here)
 * durable and visible: fsync, link into new/, fsync new/, remove the tmp/
 * name.  Returns 0 once it is in new/ and on disk; -1 (errno, err) with
 * the tmp/ file removed.
 */
int	maildir_commit(struct maildir *md, const char *unique, int fd, char *err,
	    size_t errlen);
/* Give up on tmp/<unique>: close fd and remove the file. */
void	maildir_discard(struct maildir *md, const char *unique, int fd);

/*
 * The unique file name "<sec>.M<usec>P<pid>Q<queue id>R<recipient
 * index>.<host>": unique across processes (pid), messages (queue id),
 * recipients of one message (index) and time, as maildir(5) asks.  '/'
 * and ':' in host become \057 and \072 (the maildir convention), other
 * bytes outside printable ASCII \ooo too.  Returns 0, or -1 if it does
 * not fit.
 */
int	maildir_unique(char *dst, size_t dstsz, long long sec, long usec,
	    long pid, const char *qid, uint32_t rindex, const char *host);

/* CRLF to LF, with a CR at the end of one chunk matched in the next. */
struct maildir_lf {
	int	cr;	/* the previous chunk ended with CR */
};
/* Convert in[0..n) into out (n + 1 bytes of room); returns bytes written. */
size_t	maildir_lf_convert(struct maildir_lf *s, const uint8_t *in, size_t n,
	    uint8_t *out);
/* At the end of the body: a CR still held back (0 or 1 byte into out). */
size_t	maildir_lf_finish(struct maildir_lf *s, uint8_t *out);

#endif
