/*
 * test_queue_wal.c: the queue database's commit path.
 *
 * Covers what queue_db.c promises about the WAL: SQLite never
 * checkpoints on its own inside a COMMIT (the queue-manager does it
 * after the waiting sessions were answered), queue_db_checkpoint() does
 * nothing inside a transaction and copies every frame between them, the
 * WAL is written from its start again after a checkpoint, a new file
 * gets the queue's page size while an existing one keeps its own, and
 * queue_db_rcpt_update_from() counts exactly what queue_db_rcpt_update()
 * counts; queue_db_defer_sync() takes the fsync out of COMMIT and hands
 * out the WAL, and wal_sync.c runs that fsync through native AIO.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <errno.h>
#include <poll.h>
#include <sys/wait.h>

#include <seccomp.h>
#include <sqlite3.h>

#include "t.h"
#include "t_queue.h"
#include "util/buf.h"
#include "queue-manager/queue_db.h"
#include "queue-manager/wal_sync.h"

#define CHUNK	65536

static char dir[64];
static char path[128];
static char walpath[160];

static void
setup(void)
{
	t_qfile_make("qwal", dir, sizeof(dir), path, sizeof(path));
	snprintf(walpath, sizeof(walpath), "%s-wal", path);
}

static void
remove_files(void)
{
	t_qfile_unlink(path);
}

static long long
file_size(const char *p)
{
	struct stat sb;

	return stat(p, &sb) == -1 ? -1 : (long long)sb.st_size;
}

/* A queued message with one recipient and nchunks full chunks; its rowid. */
static int64_t
add_message(struct queue_db *db, int nchunks, unsigned char fill)
{
	static unsigned char body[CHUNK];
	struct queue_msg m;
	int i;

	memset(body, fill, sizeof(body));
	if (t_qmsg_one(db, "a@example.org", "b@example.com", 0, &m) == -1)
		return -1;
	for (i = 0; i < nchunks; i++) {
		body[0] = (unsigned char)i;
		if (queue_db_chunk_add(db, m.rowid, (uint32_t)i, body, sizeof(body)) == -1)
			return -1;
	}
	if (queue_db_msg_set_queued(db, m.rowid, (uint64_t)nchunks * CHUNK) == -1)
		return -1;
	return m.rowid;
}

/* Chunk seq of msg is CHUNK bytes of fill, its first byte the seq. */
static int
chunk_ok(struct queue_db *db, int64_t msg, uint32_t seq, unsigned char fill)
{
	struct buf b;
	size_t i;
	int ok;

	buf_init(&b, CHUNK);
	ok = queue_db_chunk_get(db, msg, seq, &b) == 1 && b.len == CHUNK &&
	    b.data[0] == (unsigned char)seq;
	for (i = 1; ok && i < b.len; i++)
		ok = b.data[i] == fill;
	buf_free(&b);
	return ok;
}

static void
test_checkpoint(void)
{
	struct queue_db *db;
	char err[256];
	int64_t m1, m2, m3, wal1, wal2;
	long long walsize;
	int frames = -1;

	remove_files();
	db = queue_db_open(path, err, sizeof(err));
	T_OK(db != NULL, "open a new queue");
	if (db == NULL) {
		printf("# %s\n", err);
		return;
	}
	T_OK(queue_db_wal_bytes(db) < 1024 * 1024, "a new queue starts with a short WAL");

	/* Two commits of 3 MB each: more than SQLite's own 1000-page
	 * threshold, so with its checkpoint in COMMIT the WAL would have
	 * been copied and restarted in between. */
	m1 = add_message(db, 48, 'a');
	T_OK(m1 > 0 && queue_db_commit(db) == 0, "first large commit");
	wal1 = queue_db_wal_bytes(db);
	m2 = add_message(db, 48, 'b');
	T_OK(m2 > 0 && queue_db_commit(db) == 0, "second large commit");
	wal2 = queue_db_wal_bytes(db);
	T_OK(wal1 >= 48LL * CHUNK && wal2 >= wal1 + 48LL * CHUNK,
	    "no checkpoint inside COMMIT: the WAL holds both commits");
	T_OK(file_size(walpath) >= wal2, "the WAL file holds them too");

	/* Inside a transaction a checkpoint does nothing. */
	m3 = add_message(db, 1, 'c');
	T_OK(m3 > 0 && queue_db_in_txn(db), "a transaction is open");
	T_OK(queue_db_checkpoint(db, &frames) == 0 && frames == 0,
	    "checkpoint inside a transaction copies nothing");
	T_OK(queue_db_wal_bytes(db) == wal2, "and leaves the WAL as it was");
	T_OK(queue_db_in_txn(db), "and the transaction open");
	T_OK(queue_db_commit(db) == 0, "commit the small message");

	/* Between transactions it copies every frame. */
	T_OK(queue_db_checkpoint(db, &frames) == 0, "checkpoint between transactions");
	T_OK(frames > 96, "every frame of both large commits copied");
	T_OK(queue_db_wal_bytes(db) == 0, "the WAL is empty afterwards");
	T_OK(queue_db_checkpoint(db, &frames) == 0 && frames == 0,
	    "a second checkpoint has nothing to do");

	/* The next commit writes the WAL from its start: the file does not grow. */
	walsize = file_size(walpath);
	T_OK(queue_db_msg_set_held(db, m3, 1) == 1 && queue_db_commit(db) == 0,
	    "a small commit after the checkpoint");
	T_OK(queue_db_wal_bytes(db) > 0 && queue_db_wal_bytes(db) < 1024 * 1024,
	    "the WAL starts again from its beginning");
	T_OK(file_size(walpath) == walsize, "the WAL file did not grow");

	/* Everything is still there, byte for byte, after the checkpoint
	 * and after a close and reopen. */
	T_OK(chunk_ok(db, m1, 0, 'a') && chunk_ok(db, m1, 47, 'a') &&
	    chunk_ok(db, m2, 47, 'b') && chunk_ok(db, m3, 0, 'c'),
	    "bodies read back after the checkpoint");
	T_OK(queue_db_msg_delete(db, m1) == 0 && queue_db_commit(db) == 0,
	    "delete a large message");
	queue_db_close(db);
	T_OK(file_size(walpath) <= 0, "close checkpoints and removes the WAL");
	T_OK(t_sql_int(path, "PRAGMA page_size") == 8192, "a new queue file has 8 KB pages");
	db = queue_db_open(path, err, sizeof(err));
	T_OK(db != NULL, "reopen");
	if (db == NULL)
		return;
	T_OK(chunk_ok(db, m2, 0, 'b') && chunk_ok(db, m2, 47, 'b') &&
	    chunk_ok(db, m3, 0, 'c'), "bodies read back after reopening");
	{
		struct buf b;

		buf_init(&b, CHUNK);
		T_OK(queue_db_chunk_get(db, m1, 0, &b) == 0, "the deleted message's chunks are gone");
		buf_free(&b);
	}
	queue_db_close(db);
}

/* A queue file made before the page size was set keeps its 4 KB pages. */
static void
test_old_page_size(void)
{
	struct queue_db *db;
	char err[256];
	int64_t m;

	remove_files();
	T_OK(t_sql_exec(path, "PRAGMA page_size = 4096; CREATE TABLE x (a); DROP TABLE x;")
	    == 0, "make a 4 KB-page file");
	T_OK(t_sql_int(path, "PRAGMA page_size") == 4096, "it has 4 KB pages");
	db = queue_db_open(path, err, sizeof(err));
	T_OK(db != NULL, "the queue-manager opens it");
	if (db == NULL) {
		printf("# %s\n", err);
		return;
	}
	m = add_message(db, 3, 'o');
	T_OK(m > 0 && queue_db_commit(db) == 0, "and stores a message in it");
	T_OK(queue_db_wal_bytes(db) >= 3LL * CHUNK, "WAL bytes counted in its page size");
	queue_db_close(db);
	T_OK(t_sql_int(path, "PRAGMA page_size") == 4096, "the file keeps its 4 KB pages");
	db = queue_db_open(path, err, sizeof(err));
	T_OK(db != NULL && chunk_ok(db, m, 2, 'o'), "the message reads back");
	queue_db_close(db);
}

/* queue_db_rcpt_update_from counts as queue_db_rcpt_update does. */
static void
test_update_from(void)
{
	static const struct {
		const char		*label;
		enum queue_rcpt_state	 from, to;
		uint32_t		 attempts_before, attempts_after;
		int64_t			 sent, deferred, bounced;
	} cases[] = {
		{ "active to sent", QRCPT_ACTIVE, QRCPT_SENT, 0, 1, 1, 0, 0 },
		{ "active to bounced", QRCPT_ACTIVE, QRCPT_BOUNCED, 0, 1, 0, 0, 1 },
		{ "active to deferred, attempt counted", QRCPT_ACTIVE, QRCPT_DEFERRED, 0, 1, 0, 1, 0 },
		{ "active to deferred, no attempt", QRCPT_ACTIVE, QRCPT_DEFERRED, 2, 2, 0, 0, 0 },
		{ "sent again is not counted", QRCPT_SENT, QRCPT_SENT, 1, 1, 0, 0, 0 },
		{ "bounced again is not counted", QRCPT_BOUNCED, QRCPT_BOUNCED, 1, 1, 0, 0, 0 },
		{ "active to queued", QRCPT_ACTIVE, QRCPT_QUEUED, 0, 0, 0, 0, 0 },
	};
	struct queue_db *db;
	struct queue_stats before, after, b2, a2;
	struct queue_rcpt r, r2;
	char err[256];
	int64_t m, m2;
	size_t i;

	remove_files();
	db = queue_db_open(path, err, sizeof(err));
	T_OK(db != NULL, "open for the counters");
	if (db == NULL)
		return;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		m = add_message(db, 1, 'u');
		m2 = add_message(db, 1, 'v');
		if (m < 0 || m2 < 0 ||
		    queue_db_rcpt_get(db, m, 0, &r) != 1 ||
		    queue_db_rcpt_get(db, m2, 0, &r2) != 1) {
			T_OK(0, "%s: set-up", cases[i].label);
			continue;
		}
		r.state = r2.state = cases[i].from;
		r.attempts = r2.attempts = cases[i].attempts_before;
		(void)queue_db_rcpt_update(db, &r);
		(void)queue_db_rcpt_update(db, &r2);
		(void)queue_db_commit(db);

		/* The new function on one message... */
		(void)queue_db_stats(db, (int64_t)time(NULL), &before);
		r.state = cases[i].to;
		r.attempts = cases[i].attempts_after;
		snprintf(r.last_reply, sizeof(r.last_reply), "250 ok %zu", i);
		T_OK(queue_db_rcpt_update_from(db, &r, cases[i].from,
		    cases[i].attempts_before) == 0 && queue_db_commit(db) == 0, "%s: stored", cases[i].label);
		(void)queue_db_stats(db, (int64_t)time(NULL), &after);
		T_OK(after.total.sent - before.total.sent == cases[i].sent &&
		    after.total.deferred - before.total.deferred == cases[i].deferred &&
		    after.total.bounced - before.total.bounced == cases[i].bounced, "%s: counted", cases[i].label);

		/* ...and the old one on the other count the same. */
		(void)queue_db_stats(db, (int64_t)time(NULL), &b2);
		r2.state = cases[i].to;
		r2.attempts = cases[i].attempts_after;
		(void)queue_db_rcpt_update(db, &r2);
		(void)queue_db_commit(db);
		(void)queue_db_stats(db, (int64_t)time(NULL), &a2);
		T_OK(a2.total.sent - b2.total.sent == after.total.sent - before.total.sent &&
		    a2.total.deferred - b2.total.deferred ==
		    after.total.deferred - before.total.deferred &&
		    a2.total.bounced - b2.total.bounced ==
		    after.total.bounced - before.total.bounced, "%s: as queue_db_rcpt_update", cases[i].label);

		T_OK(queue_db_rcpt_get(db, m, 0, &r) == 1 && r.state == cases[i].to &&
		    r.attempts == cases[i].attempts_after &&
		    strncmp(r.last_reply, "250 ok ", 7) == 0, "%s: row written", cases[i].label);
	}

	/* A change counted without a row written (the row is deleted in
	 * the same transaction) counts the same. */
	{
		static const struct {
			const char		*label;
			enum queue_rcpt_state	 from, to;
			int64_t			 sent, deferred, bounced;
		} cc[] = {
			{ "counted: active to sent", QRCPT_ACTIVE, QRCPT_SENT, 1, 0, 0 },
			{ "counted: active to bounced", QRCPT_ACTIVE, QRCPT_BOUNCED, 0, 0, 1 },
			{ "counted: active to deferred", QRCPT_ACTIVE, QRCPT_DEFERRED, 0, 1, 0 },
			{ "counted: sent to sent", QRCPT_SENT, QRCPT_SENT, 0, 0, 0 },
			{ "counted: active to queued", QRCPT_ACTIVE, QRCPT_QUEUED, 0, 0, 0 },
		};

		for (i = 0; i < sizeof(cc) / sizeof(cc[0]); i++) {
			m = add_message(db, 0, 'w');
			(void)queue_db_commit(db);
			(void)queue_db_stats(db, (int64_t)time(NULL), &before);
			queue_db_rcpt_counted(db, cc[i].from, 0, cc[i].to, 1);
			T_OK(m > 0 && queue_db_msg_delete(db, m) == 0 &&
			    queue_db_commit(db) == 0, "%s: deleted", cc[i].label);
			(void)queue_db_stats(db, (int64_t)time(NULL), &after);
			T_OK(after.total.sent - before.total.sent == cc[i].sent &&
			    after.total.deferred - before.total.deferred == cc[i].deferred &&
			    after.total.bounced - before.total.bounced == cc[i].bounced &&
			    after.total.msgs_out - before.total.msgs_out == 1,
			    "%s", cc[i].label);
		}
		/* A savepoint rolled back takes the count with it. */
		m = add_message(db, 0, 'x');
		(void)queue_db_commit(db);
		(void)queue_db_stats(db, (int64_t)time(NULL), &before);
		T_OK(queue_db_sp_begin(db) == 0, "savepoint");
		queue_db_rcpt_counted(db, QRCPT_ACTIVE, 0, QRCPT_SENT, 1);
		(void)queue_db_msg_delete(db, m);
		queue_db_sp_rollback(db);
		T_OK(queue_db_commit(db) == 0, "commit after the rollback");
		(void)queue_db_stats(db, (int64_t)time(NULL), &after);
		T_OK(after.total.sent == before.total.sent &&
		    after.total.msgs_out == before.total.msgs_out,
		    "counted: a rolled-back savepoint counts nothing");
	}
	queue_db_close(db);
}

/*
 * In a child whose fsync and fdatasync fail with EIO: a message and its
 * COMMIT, after queue_db_defer_sync() when defer is set.  The child's
 * exit status: 0 committed, 1 the commit failed, 2 set-up failed.
 */
static int
commit_without_fsync(int defer)
{
	scmp_filter_ctx ctx;
	struct queue_db *db;
	char err[256];
	pid_t pid;
	int st, r;

	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		if ((db = queue_db_open(path, err, sizeof(err))) == NULL ||
		    (defer && queue_db_defer_sync(db) == -1))
			_exit(2);
		if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL ||
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EIO), SCMP_SYS(fsync), 0) != 0 ||
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EIO), SCMP_SYS(fdatasync), 0) != 0 ||
		    seccomp_load(ctx) != 0)
			_exit(2);
		if (add_message(db, 1, 'd') == -1)
			_exit(2);
		r = queue_db_commit(db);
		_exit(r == 0 ? 0 : 1);	/* no close: it would sync */
	}
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* queue_db_defer_sync(): COMMIT stops waiting for the disk, the returned
 * descriptor is the WAL, and the close syncs again. */
static void
test_defer_sync(void)
{
	struct queue_db *db;
	struct stat a, b;
	char err[256];
	int fd, fd2;

	remove_files();
	T_OK((db = queue_db_open(path, err, sizeof(err))) != NULL, "open: %s", err);
	if (db == NULL)
		return;
	fd = queue_db_defer_sync(db);
	T_OK(fd >= 0, "defer_sync: %s", fd >= 0 ? "" : queue_db_errmsg(db));
	fd2 = queue_db_defer_sync(db);
	T_OK(fd2 == fd, "defer_sync twice: the same descriptor (%d, %d)", fd, fd2);
	T_OK(fd >= 0 && fstat(fd, &a) == 0 && stat(walpath, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino,
	    "defer_sync: the descriptor is the WAL SQLite writes");
	T_OK(add_message(db, 2, 'w') > 0 && queue_db_commit(db) == 0,
	    "deferred: a message committed");
	T_OK(fd >= 0 && fdatasync(fd) == 0, "deferred: the WAL's fdatasync");
	queue_db_close(db);
	T_OK(access(walpath, F_OK) == -1, "deferred: the close checkpointed and removed the WAL");
	T_OK((db = queue_db_open(path, err, sizeof(err))) != NULL, "reopen: %s", err);
	if (db != NULL) {
		T_OK(chunk_ok(db, 1, 0, 'w') && chunk_ok(db, 1, 1, 'w'),
		    "deferred: the message is there after the close");
		queue_db_close(db);
	}

	/* The proof that COMMIT no longer syncs, and that it did before. */
	remove_files();
	T_OK(commit_without_fsync(0) == 1,
	    "synchronous=FULL: a COMMIT whose fdatasync fails fails");
	remove_files();
	T_OK(commit_without_fsync(1) == 0,
	    "after defer_sync: a COMMIT makes no fsync (the caller does)");
	remove_files();
}

/* wal_sync: an fdatasync through native AIO, its eventfd, its errors. */
static void
test_wal_sync(void)
{
	struct wal_sync *ws;
	struct pollfd pfd;
	char err[256], tmp[] = "/tmp/moat-walsync-XXXXXX";
	int fd, r = -1, result = -1, p[2];

	/* Debian's kernels have it; where it is missing the queue-manager
	 * lets COMMIT sync, and this test says why it could not run. */
	ws = wal_sync_new(err, sizeof(err));
	T_OK(ws != NULL, "wal_sync_new: %s", ws != NULL ? "native AIO" : err);
	if (ws == NULL)
		return;
	T_OK((fd = mkstemp(tmp)) >= 0 && write(fd, "x", 1) == 1, "a file to sync");
	T_OK(!wal_sync_busy(ws), "wal_sync: idle at start");
	T_OK(wal_sync_reap(ws, &result) == -1 && errno == EINVAL,
	    "wal_sync: nothing to reap before a start");
	T_OK(wal_sync_start(ws, fd) == 0 && wal_sync_busy(ws), "wal_sync: started");
	T_OK(wal_sync_start(ws, fd) == -1 && errno == EBUSY,
	    "wal_sync: a second start while one runs is refused");
	pfd.fd = wal_sync_fd(ws);
	pfd.events = POLLIN;
	T_OK(poll(&pfd, 1, 10000) == 1, "wal_sync: the eventfd becomes readable");
	r = wal_sync_reap(ws, &result);
	T_OK(r == 1 && result == 0,
	    "wal_sync: reaped, fdatasync succeeded (r=%d result=%d)", r, result);
	T_OK(!wal_sync_busy(ws), "wal_sync: idle after the reap");
	/* Once more, so the eventfd was emptied and signals again. */
	T_OK(wal_sync_start(ws, fd) == 0 && poll(&pfd, 1, 10000) == 1 &&
	    wal_sync_reap(ws, &result) == 1 && result == 0, "wal_sync: a second sync");
	/* Descriptors that cannot be synced: refused at the start. */
	T_OK(pipe(p) == 0, "a pipe");
	T_OK(wal_sync_start(ws, p[0]) == -1 && errno == EINVAL && !wal_sync_busy(ws),
	    "wal_sync: a pipe is refused (EINVAL), nothing in flight");
	close(p[0]);
	close(p[1]);
	T_OK(wal_sync_start(ws, 1000) == -1 && errno == EBADF && !wal_sync_busy(ws),
	    "wal_sync: a closed descriptor is refused (EBADF)");
	/* Freed while a sync runs: it waits for it. */
	T_OK(wal_sync_start(ws, fd) == 0, "wal_sync: started before the free");
	wal_sync_free(ws);
	close(fd);
	unlink(tmp);
}

int
main(void)
{
	setup();
	test_checkpoint();
	test_old_page_size();
	test_update_from();
	test_defer_sync();
	test_wal_sync();
	remove_files();
	rmdir(dir);
	return t_done();
}
