/*
 * queue_db.c: the queue's SQLite schema, its migrations and every
 * statement the queue-manager runs, each prepared once at open.
 *
 * States and transports are stored as words ("queued", "relay") so that
 * an operator reading the file with sqlite3(1) sees what moatctl shows.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "util/xmalloc.h"
#include "queue_db.h"

#define QUEUE_APPLICATION_ID	0x6d6f6174	/* "moat" */
#define QUEUE_ID_TRIES		64
/* The WAL is cut back to this after a checkpoint (bytes). */
#define QUEUE_WAL_LIMIT		"67108864"

/*
 * The schema, one entry per version: entry i takes a database from
 * user_version i to i + 1.  Entries are never edited once released; a
 * change is a new entry.
 */
static const char *const queue_db_migrations[] = {
	/* 0 -> 1: messages, recipients, body chunks. */
	"CREATE TABLE messages ("
	"  id         INTEGER PRIMARY KEY,"
	"  qid        TEXT NOT NULL UNIQUE,"
	"  arrival_us INTEGER NOT NULL,"
	"  sender     TEXT NOT NULL,"
	"  client     TEXT NOT NULL,"
	"  helo       TEXT NOT NULL,"
	"  size       INTEGER NOT NULL DEFAULT 0,"
	"  body_type  INTEGER NOT NULL,"
	"  state      TEXT NOT NULL CHECK (state IN ('incoming', 'queued'))"
	");"
	"CREATE TABLE recipients ("
	"  msg          INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
	"  idx          INTEGER NOT NULL,"
	"  address      TEXT NOT NULL,"
	"  transport    TEXT NOT NULL CHECK (transport IN ('relay', 'local')),"
	"  nexthop      TEXT NOT NULL,"
	"  state        TEXT NOT NULL CHECK (state IN"
	"                 ('queued', 'deferred', 'active', 'sent', 'bounced')),"
	"  attempts     INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt INTEGER NOT NULL DEFAULT 0,"
	"  last_reply   TEXT NOT NULL DEFAULT '',"
	"  last_relay   TEXT NOT NULL DEFAULT '',"
	"  PRIMARY KEY (msg, idx)"
	") WITHOUT ROWID;"
	"CREATE INDEX recipients_due ON recipients (transport, state, next_attempt);"
	"CREATE TABLE chunks ("
	"  msg  INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
	"  seq  INTEGER NOT NULL,"
	"  data BLOB NOT NULL,"
	"  PRIMARY KEY (msg, seq)"
	");"
	"PRAGMA application_id = 1836015988;",	/* QUEUE_APPLICATION_ID */
};
#define QUEUE_DB_NMIGRATIONS \
	(sizeof(queue_db_migrations) / sizeof(queue_db_migrations[0]))

#define MSG_COLS "id, qid, arrival_us, sender, client, helo, size, body_type, state"
#define RCPT_COLS "msg, idx, address, transport, nexthop, state, attempts, " \
	"next_attempt, last_reply, last_relay"
#define WAITING "state IN ('queued', 'deferred')"

enum queue_stmt {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_SP_BEGIN, ST_SP_RELEASE, ST_SP_ROLLBACK,
	ST_MSG_QID_USED, ST_MSG_INSERT, ST_MSG_SET_QUEUED, ST_MSG_DELETE,
	ST_MSG_GET, ST_MSG_FIND, ST_MSG_PENDING,
	ST_RCPT_INSERT, ST_RCPT_GET, ST_RCPT_NEXT, ST_RCPT_SET_STATE,
	ST_RCPT_UPDATE, ST_RCPT_SET_NEXTHOP,
	ST_DUE_MSG, ST_DUE_RCPT, ST_NEXT_DUE,
	ST_CHUNK_INSERT, ST_CHUNK_GET, ST_CHUNK_COUNT,
	ST_SUMMARY_MSG, ST_SUMMARY_COUNTS,
	ST_REC_INCOMING, ST_REC_ACTIVE, ST_REC_FINISHED,
	ST_COUNT
};

static const char *const queue_db_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SP_BEGIN] = "SAVEPOINT unit",
	[ST_SP_RELEASE] = "RELEASE unit",
	[ST_SP_ROLLBACK] = "ROLLBACK TO unit",
	[ST_MSG_QID_USED] = "SELECT 1 FROM messages WHERE qid = ?1",
	[ST_MSG_INSERT] = "INSERT INTO messages (qid, arrival_us, sender, client,"
	    " helo, size, body_type, state) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, 'incoming')",
	[ST_MSG_SET_QUEUED] = "UPDATE messages SET state = 'queued', size = ?2"
	    " WHERE id = ?1 AND state = 'incoming'",
	[ST_MSG_DELETE] = "DELETE FROM messages WHERE id = ?1",
	[ST_MSG_GET] = "SELECT " MSG_COLS " FROM messages WHERE id = ?1",
	[ST_MSG_FIND] = "SELECT " MSG_COLS " FROM messages WHERE qid = ?1",
	[ST_MSG_PENDING] = "SELECT count(*) FROM recipients WHERE msg = ?1"
	    " AND state IN ('queued', 'deferred', 'active')",
	[ST_RCPT_INSERT] = "INSERT INTO recipients (" RCPT_COLS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[ST_RCPT_GET] = "SELECT " RCPT_COLS " FROM recipients WHERE msg = ?1 AND idx = ?2",
	[ST_RCPT_NEXT] = "SELECT " RCPT_COLS " FROM recipients WHERE msg = ?1"
	    " AND idx > ?2 ORDER BY idx LIMIT 1",
	[ST_RCPT_SET_STATE] = "UPDATE recipients SET state = ?3 WHERE msg = ?1 AND idx = ?2",
	[ST_RCPT_UPDATE] = "UPDATE recipients SET state = ?3, attempts = ?4,"
	    " next_attempt = ?5, last_reply = ?6, last_relay = ?7"
	    " WHERE msg = ?1 AND idx = ?2",
	[ST_RCPT_SET_NEXTHOP] = "UPDATE recipients SET nexthop = ?3 WHERE msg = ?1 AND idx = ?2",
	/* One state at a time, so the index hands rows over in due order. */
	[ST_DUE_MSG] = "SELECT r.msg, r.next_attempt FROM recipients r"
	    " JOIN messages m ON m.id = r.msg WHERE r.transport = ?1 AND r.state = ?2"
	    " AND r.next_attempt <= ?3 AND m.state = 'queued'"
	    " ORDER BY r.next_attempt LIMIT 1",
	[ST_DUE_RCPT] = "SELECT " RCPT_COLS " FROM recipients WHERE msg = ?1"
	    " AND transport = ?2 AND " WAITING " AND next_attempt <= ?3 AND idx > ?4"
	    " ORDER BY idx LIMIT 1",
	[ST_NEXT_DUE] = "SELECT min(next_attempt) FROM recipients"
	    " WHERE transport = ?1 AND state = ?2 AND next_attempt > ?3",
	[ST_CHUNK_INSERT] = "INSERT INTO chunks (msg, seq, data) VALUES (?1, ?2, ?3)",
	[ST_CHUNK_GET] = "SELECT data FROM chunks WHERE msg = ?1 AND seq = ?2",
	[ST_CHUNK_COUNT] = "SELECT count(*) FROM chunks WHERE msg = ?1",
	[ST_SUMMARY_MSG] = "SELECT " MSG_COLS " FROM messages WHERE state = 'queued'"
	    " AND id > ?1 ORDER BY id LIMIT 1",
	[ST_SUMMARY_COUNTS] = "SELECT"
	    " coalesce(sum(state IN ('queued', 'deferred', 'active')), 0),"
	    " coalesce(sum(state = 'active'), 0), coalesce(sum(state = 'deferred'), 0)"
	    " FROM recipients WHERE msg = ?1",
	[ST_REC_INCOMING] = "DELETE FROM messages WHERE state = 'incoming'",
	[ST_REC_ACTIVE] = "UPDATE recipients SET state = 'queued' WHERE state = 'active'",
	[ST_REC_FINISHED] = "DELETE FROM messages WHERE state = 'queued' AND NOT EXISTS"
	    " (SELECT 1 FROM recipients r WHERE r.msg = messages.id"
	    " AND r.state IN ('queued', 'deferred', 'active'))",
};

struct queue_db {
	sqlite3		*h;
	sqlite3_stmt	*st[ST_COUNT];
	int		 in_txn;	/* we issued BEGIN and no COMMIT/ROLLBACK yet */
	int		 dirty;
	int		 in_sp;
	uint32_t	 id_counter;
	char		 err[256];
};

static const char *const msg_state_names[] = {
	[QMSG_INCOMING] = "incoming", [QMSG_QUEUED] = "queued",
};
static const char *const rcpt_state_names[] = {
	[QRCPT_QUEUED] = "queued", [QRCPT_DEFERRED] = "deferred",
	[QRCPT_ACTIVE] = "active", [QRCPT_SENT] = "sent", [QRCPT_BOUNCED] = "bounced",
};

const char *
queue_msg_state_name(enum queue_msg_state s)
{
	return (unsigned int)s <= QMSG_QUEUED ? msg_state_names[s] : "?";
}

const char *
queue_rcpt_state_name(enum queue_rcpt_state s)
{
	return (unsigned int)s <= QRCPT_BOUNCED ? rcpt_state_names[s] : "?";
}

const char *
queue_transport_name(enum queue_transport t)
{
	return t == QTRANSPORT_LOCAL ? "local" : "relay";
}

/* Map a stored word back to its enum value; -1 for a word we never write. */
static int
queue_db_word(const char *const *names, size_t n, const unsigned char *w)
{
	size_t i;

	if (w == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if (names[i] != NULL && strcmp(names[i], (const char *)w) == 0)
			return (int)i;
	return -1;
}

static int
queue_db_fail(struct queue_db *db, const char *what)
{
	snprintf(db->err, sizeof(db->err), "%s: %s", what, sqlite3_errmsg(db->h));
	return -1;
}

const char *
queue_db_errmsg(const struct queue_db *db)
{
	return db->err;
}

/* A prepared statement, ready for new bindings. */
static sqlite3_stmt *
queue_db_stmt(struct queue_db *db, enum queue_stmt id)
{
	sqlite3_stmt *st = db->st[id];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* Run a statement that returns no rows. */
static int
queue_db_run(struct queue_db *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE) {
		queue_db_fail(db, what);
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

/* Step a query: 1 for a row, 0 for none, -1 for an error. */
static int
queue_db_row(struct queue_db *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	queue_db_fail(db, what);
	sqlite3_reset(st);
	return -1;
}

static void
queue_db_col_text(sqlite3_stmt *st, int col, char *dst, size_t dstsz)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	strlcpy_m(dst, t != NULL ? (const char *)t : "", dstsz);
}

/* Every write goes through here: it opens the group transaction. */
static int
queue_db_write_begin(struct queue_db *db)
{
	if (db->in_txn && sqlite3_get_autocommit(db->h)) {
		snprintf(db->err, sizeof(db->err), "transaction was rolled back");
		return -1;
	}
	if (!db->in_txn) {
		if (queue_db_run(db, queue_db_stmt(db, ST_BEGIN), "begin") == -1)
			return -1;
		db->in_txn = 1;
		db->dirty = 0;
	}
	db->dirty = 1;
	return 0;
}

int
queue_db_in_txn(const struct queue_db *db)
{
	return db->in_txn;
}

int
queue_db_dirty(const struct queue_db *db)
{
	return db->in_txn && db->dirty;
}

int
queue_db_txn_lost(const struct queue_db *db)
{
	return db->in_txn && sqlite3_get_autocommit(db->h);
}

int
queue_db_commit(struct queue_db *db)
{
	if (!db->in_txn)
		return 0;
	if (db->in_sp)
		queue_db_sp_release(db);
	if (queue_db_run(db, queue_db_stmt(db, ST_COMMIT), "commit") == -1) {
		/* A failed COMMIT may leave the transaction open (busy) or
		 * gone (I/O error); either way its contents are not durable. */
		if (!sqlite3_get_autocommit(db->h))
			(void)queue_db_run(db, queue_db_stmt(db, ST_ROLLBACK), "rollback");
		db->in_txn = db->dirty = 0;
		return -1;
	}
	db->in_txn = db->dirty = 0;
	return 0;
}

int
queue_db_rollback(struct queue_db *db)
{
	int r = 0;

	if (db->in_txn && !sqlite3_get_autocommit(db->h))
		r = queue_db_run(db, queue_db_stmt(db, ST_ROLLBACK), "rollback");
	db->in_txn = db->dirty = db->in_sp = 0;
	return r;
}

int
queue_db_sp_begin(struct queue_db *db)
{
	if (db->in_sp) {
		snprintf(db->err, sizeof(db->err), "savepoint already open");
		return -1;
	}
	if (queue_db_write_begin(db) == -1 ||
	    queue_db_run(db, queue_db_stmt(db, ST_SP_BEGIN), "savepoint") == -1)
		return -1;
	db->in_sp = 1;
	return 0;
}

int
queue_db_sp_release(struct queue_db *db)
{
	if (!db->in_sp)
		return 0;
	db->in_sp = 0;
	return queue_db_run(db, queue_db_stmt(db, ST_SP_RELEASE), "release");
}

void
queue_db_sp_rollback(struct queue_db *db)
{
	if (!db->in_sp)
		return;
	db->in_sp = 0;
	if (queue_db_txn_lost(db))
		return;
	(void)queue_db_run(db, queue_db_stmt(db, ST_SP_ROLLBACK), "rollback to");
	(void)queue_db_run(db, queue_db_stmt(db, ST_SP_RELEASE), "release");
}

static int
queue_db_exec(struct queue_db *db, const char *sql, const char *what)
{
	char *msg = NULL;

	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(db->err, sizeof(db->err), "%s: %s", what,
		    msg != NULL ? msg : sqlite3_errmsg(db->h));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* One integer from a PRAGMA or query, for set-up. */
static int
queue_db_exec_int(struct queue_db *db, const char *sql, long long *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return queue_db_fail(db, sql);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return queue_db_fail(db, sql);
	return 0;
}

/* The journal mode must come back as "wal": anything else is refused. */
static int
queue_db_set_wal(struct queue_db *db)
{
	sqlite3_stmt *st;
	const unsigned char *mode;
	int ok = 0;

	if (sqlite3_prepare_v2(db->h, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
		return queue_db_fail(db, "journal_mode");
	if (sqlite3_step(st) == SQLITE_ROW) {
		mode = sqlite3_column_text(st, 0);
		ok = mode != NULL && strcmp((const char *)mode, "wal") == 0;
	}
	sqlite3_finalize(st);
	if (!ok) {
		snprintf(db->err, sizeof(db->err), "cannot switch the database to WAL mode");
		return -1;
	}
	return 0;
}

/*
 * PRAGMAs first: exclusive locking (no other process opens the queue,
 * and the WAL index then lives in our heap instead of a shared -shm
 * file), WAL, one fsync per commit, and a WAL that shrinks back after
 * a burst of large messages.
 */
static int
queue_db_pragmas(struct queue_db *db)
{
	if (queue_db_exec(db, "PRAGMA locking_mode = EXCLUSIVE", "locking_mode") == -1 ||
	    queue_db_set_wal(db) == -1 ||
	    queue_db_exec(db, "PRAGMA synchronous = FULL", "synchronous") == -1 ||
	    queue_db_exec(db, "PRAGMA temp_store = MEMORY", "temp_store") == -1 ||
	    queue_db_exec(db, "PRAGMA journal_size_limit = " QUEUE_WAL_LIMIT,
	    "journal_size_limit") == -1 ||
	    queue_db_exec(db, "PRAGMA foreign_keys = ON", "foreign_keys") == -1)
		return -1;
	return 0;
}

/* Bring the schema up to QUEUE_DB_SCHEMA_VERSION, one step at a time. */
static int
queue_db_migrate(struct queue_db *db)
{
	long long version, appid;
	char sql[64];
	size_t v;

	if (queue_db_exec_int(db, "PRAGMA user_version", &version) == -1 ||
	    queue_db_exec_int(db, "PRAGMA application_id", &appid) == -1)
		return -1;
	if (appid != 0 && appid != QUEUE_APPLICATION_ID) {
		snprintf(db->err, sizeof(db->err), "not a moat queue database "
		    "(application_id %lld)", appid);
		return -1;
	}
	if (version < 0 || (unsigned long long)version > QUEUE_DB_NMIGRATIONS) {
		snprintf(db->err, sizeof(db->err), "database schema version %lld is "
		    "newer than this program's (%zu)", version, QUEUE_DB_NMIGRATIONS);
		return -1;
	}
	for (v = (size_t)version; v < QUEUE_DB_NMIGRATIONS; v++) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %zu", v + 1);
		if (queue_db_exec(db, "BEGIN IMMEDIATE", "migrate") == -1)
			return -1;
		if (queue_db_exec(db, queue_db_migrations[v], "migrate") == -1 ||
		    queue_db_exec(db, sql, "migrate") == -1 ||
		    queue_db_exec(db, "COMMIT", "migrate") == -1) {
			(void)sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	}
	return 0;
}

static int
queue_db_prepare_all(struct queue_db *db)
{
	int i;

	for (i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(db->h, queue_db_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &db->st[i], NULL) != SQLITE_OK)
			return queue_db_fail(db, "prepare");
	}
	return 0;
}

/* Seed the low bits of queue ids, so two restarts in one microsecond differ. */
static uint32_t
queue_db_seed(void)
{
	uint32_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
	return v;
}

/* Open, set the PRAGMAs, migrate, prepare every statement. */
struct queue_db *
queue_db_open(const char *path, char *err, size_t errlen)
{
	struct queue_db *db = xcalloc(1, sizeof(*db));
	int rc;

	rc = sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, db->h != NULL ?
		    sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(db->h, 1);
	if (queue_db_pragmas(db) == -1 || queue_db_migrate(db) == -1 ||
	    queue_db_prepare_all(db) == -1) {
		snprintf(err, errlen, "%s: %s", path, db->err);
		goto fail;
	}
	db->id_counter = queue_db_seed();
	return db;
fail:
	queue_db_close(db);
	return NULL;
}

void
queue_db_close(struct queue_db *db)
{
	int i;

	if (db == NULL)
		return;
	if (db->h != NULL && db->st[ST_COMMIT] != NULL)
		(void)queue_db_commit(db);
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(db->st[i]);
	sqlite3_close(db->h);
	free(db);
}

int
queue_db_recover(struct queue_db *db, struct queue_recovery *st)
{
	memset(st, 0, sizeof(*st));
	if (queue_db_commit(db) == -1 || queue_db_write_begin(db) == -1)
		return -1;
	if (queue_db_run(db, queue_db_stmt(db, ST_REC_INCOMING), "recover incoming") == -1)
		goto fail;
	st->incoming_deleted = sqlite3_changes(db->h);
	if (queue_db_run(db, queue_db_stmt(db, ST_REC_ACTIVE), "recover active") == -1)
		goto fail;
	st->active_requeued = sqlite3_changes(db->h);
	if (queue_db_run(db, queue_db_stmt(db, ST_REC_FINISHED), "recover finished") == -1)
		goto fail;
	st->finished_deleted = sqlite3_changes(db->h);
	return queue_db_commit(db);
fail:
	(void)queue_db_rollback(db);
	return -1;
}

void
queue_id_format(uint64_t usec, uint32_t low, char out[QUEUE_ID_LEN + 1])
{
	uint64_t v = (usec << 12) | (low & 0xfffu);

	snprintf(out, QUEUE_ID_LEN + 1, "%016" PRIX64, v);
}

int
queue_id_valid(const char *s)
{
	size_t i;

	for (i = 0; i < QUEUE_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return s[QUEUE_ID_LEN] == '\0';
}

/* 1 if the queue id is already taken. */
static int
queue_db_qid_used(struct queue_db *db, const char *qid)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_MSG_QID_USED);
	int r;

	sqlite3_bind_text(st, 1, qid, -1, SQLITE_STATIC);
	r = queue_db_row(db, st, "queue id");
	sqlite3_reset(st);
	return r;
}

/* A new incoming message with a fresh, unused queue id. */
int
queue_db_msg_create(struct queue_db *db, struct queue_msg *m)
{
	sqlite3_stmt *st;
	int tries, used;

	if (queue_db_write_begin(db) == -1)
		return -1;
	for (tries = 0; tries < QUEUE_ID_TRIES; tries++) {
		queue_id_format((uint64_t)m->arrival_us, db->id_counter++, m->qid);
		if ((used = queue_db_qid_used(db, m->qid)) == -1)
			return -1;
		if (!used)
			break;
	}
	if (tries == QUEUE_ID_TRIES) {
		snprintf(db->err, sizeof(db->err), "no free queue id");
		return -1;
	}
	st = queue_db_stmt(db, ST_MSG_INSERT);
	sqlite3_bind_text(st, 1, m->qid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, m->arrival_us);
	sqlite3_bind_text(st, 3, m->sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, m->client, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, m->helo, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, m->body_type);
	if (queue_db_run(db, st, "insert message") == -1)
		return -1;
	m->rowid = sqlite3_last_insert_rowid(db->h);
	m->state = QMSG_INCOMING;
	m->size = 0;
	return 0;
}

/* incoming -> queued, with the size stored; anything else is an error. */
int
queue_db_msg_set_queued(struct queue_db *db, int64_t rowid, uint64_t size)
{
	sqlite3_stmt *st;

	if (size > INT64_MAX || queue_db_write_begin(db) == -1)
		return -1;
	st = queue_db_stmt(db, ST_MSG_SET_QUEUED);
	sqlite3_bind_int64(st, 1, rowid);
	sqlite3_bind_int64(st, 2, (int64_t)size);
	if (queue_db_run(db, st, "queue message") == -1)
		return -1;
	if (sqlite3_changes(db->h) != 1) {
		snprintf(db->err, sizeof(db->err), "message %" PRId64 " is not incoming", rowid);
		return -1;
	}
	return 0;
}

int
queue_db_msg_delete(struct queue_db *db, int64_t rowid)
{
	sqlite3_stmt *st;

	if (queue_db_write_begin(db) == -1)
		return -1;
	st = queue_db_stmt(db, ST_MSG_DELETE);
	sqlite3_bind_int64(st, 1, rowid);
	return queue_db_run(db, st, "delete message");
}

static int
queue_db_msg_read(struct queue_db *db, sqlite3_stmt *st, struct queue_msg *m)
{
	int r, s;

	if ((r = queue_db_row(db, st, "read message")) != 1)
		return r;
	memset(m, 0, sizeof(*m));
	m->rowid = sqlite3_column_int64(st, 0);
	queue_db_col_text(st, 1, m->qid, sizeof(m->qid));
	m->arrival_us = sqlite3_column_int64(st, 2);
	queue_db_col_text(st, 3, m->sender, sizeof(m->sender));
	queue_db_col_text(st, 4, m->client, sizeof(m->client));
	queue_db_col_text(st, 5, m->helo, sizeof(m->helo));
	m->size = (uint64_t)sqlite3_column_int64(st, 6);
	m->body_type = sqlite3_column_int(st, 7);
	s = queue_db_word(msg_state_names, 2, sqlite3_column_text(st, 8));
	m->state = s == QMSG_QUEUED ? QMSG_QUEUED : QMSG_INCOMING;
	sqlite3_reset(st);
	return 1;
}

int
queue_db_msg_get(struct queue_db *db, int64_t rowid, struct queue_msg *m)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_MSG_GET);

	sqlite3_bind_int64(st, 1, rowid);
	return queue_db_msg_read(db, st, m);
}

int
queue_db_msg_find(struct queue_db *db, const char *qid, struct queue_msg *m)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_MSG_FIND);

	sqlite3_bind_text(st, 1, qid, -1, SQLITE_STATIC);
	return queue_db_msg_read(db, st, m);
}

int
queue_db_msg_pending(struct queue_db *db, int64_t rowid, uint32_t *n)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_MSG_PENDING);

	sqlite3_bind_int64(st, 1, rowid);
	if (queue_db_row(db, st, "pending") != 1)
		return -1;
	*n = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

int
queue_db_rcpt_add(struct queue_db *db, const struct queue_rcpt *r)
{
	sqlite3_stmt *st;

	if (queue_db_write_begin(db) == -1)
		return -1;
	st = queue_db_stmt(db, ST_RCPT_INSERT);
	sqlite3_bind_int64(st, 1, r->msg);
	sqlite3_bind_int64(st, 2, r->idx);
	sqlite3_bind_text(st, 3, r->address, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, queue_transport_name(r->transport), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->nexthop, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, queue_rcpt_state_name(r->state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, r->attempts);
	sqlite3_bind_int64(st, 8, r->next_attempt);
	sqlite3_bind_text(st, 9, r->last_reply, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, r->last_relay, -1, SQLITE_STATIC);
	return queue_db_run(db, st, "insert recipient");
}

static int
queue_db_rcpt_read(struct queue_db *db, sqlite3_stmt *st, struct queue_rcpt *r)
{
	int res, s;

	if ((res = queue_db_row(db, st, "read recipient")) != 1)
		return res;
	memset(r, 0, sizeof(*r));
	r->msg = sqlite3_column_int64(st, 0);
	r->idx = (uint32_t)sqlite3_column_int64(st, 1);
	queue_db_col_text(st, 2, r->address, sizeof(r->address));
	r->transport = queue_db_word((const char *const[]){ NULL, "relay", "local" }, 3,
	    sqlite3_column_text(st, 3)) == QTRANSPORT_LOCAL ? QTRANSPORT_LOCAL : QTRANSPORT_RELAY;
	queue_db_col_text(st, 4, r->nexthop, sizeof(r->nexthop));
	s = queue_db_word(rcpt_state_names, 5, sqlite3_column_text(st, 5));
	r->state = s < 0 ? QRCPT_QUEUED : (enum queue_rcpt_state)s;
	r->attempts = (uint32_t)sqlite3_column_int64(st, 6);
	r->next_attempt = sqlite3_column_int64(st, 7);
	queue_db_col_text(st, 8, r->last_reply, sizeof(r->last_reply));
	queue_db_col_text(st, 9, r->last_relay, sizeof(r->last_relay));
	sqlite3_reset(st);
	return 1;
}

int
queue_db_rcpt_get(struct queue_db *db, int64_t msg, uint32_t idx, struct queue_rcpt *r)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_RCPT_GET);

	sqlite3_bind_int64(st, 1, msg);
	sqlite3_bind_int64(st, 2, idx);
	return queue_db_rcpt_read(db, st, r);
}

int
queue_db_rcpt_next(struct queue_db *db, int64_t msg, int64_t after, struct queue_rcpt *r)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_RCPT_NEXT);

	sqlite3_bind_int64(st, 1, msg);
	sqlite3_bind_int64(st, 2, after);
	return queue_db_rcpt_read(db, st, r);
}

int
queue_db_rcpt_set_state(struct queue_db *db, int64_t msg, uint32_t idx,
    enum queue_rcpt_state s)
{
	sqlite3_stmt *st;

	if (queue_db_write_begin(db) == -1)
		return -1;
	st = queue_db_stmt(db, ST_RCPT_SET_STATE);
	sqlite3_bind_int64(st, 1, msg);
	sqlite3_bind_int64(st, 2, idx);
	sqlite3_bind_text(st, 3, queue_rcpt_state_name(s), -1, SQLITE_STATIC);
	return queue_db_run(db, st, "recipient state");
}

int
queue_db_rcpt_update(struct queue_db *db, const struct queue_rcpt *r)
{
	sqlite3_stmt *st;

	if (queue_db_write_begin(db) == -1)
		return -1;
	st = queue_db_stmt(db, ST_RCPT_UPDATE);
	sqlite3_bind_int64(st, 1, r->msg);
	sqlite3_bind_int64(st, 2, r->idx);
	sqlite3_bind_text(st, 3, queue_rcpt_state_name(r->state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, r->attempts);
	sqlite3_bind_int64(st, 5, r->next_attempt);
	sqlite3_bind_text(st, 6, r->last_reply, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, r->last_relay, -1, SQLITE_STATIC);
	return queue_db_run(db, st, "update recipient");
}

int
queue_db_rcpt_set_nexthop(struct queue_db *db, int64_t msg, uint32_t idx,
    const char *nexthop)
{
	sqlite3_stmt *st;

	if (queue_db_write_begin(db) == -1)
		return -1;
	st = queue_db_stmt(db, ST_RCPT_SET_NEXTHOP);
	sqlite3_bind_int64(st, 1, msg);
	sqlite3_bind_int64(st, 2, idx);
	sqlite3_bind_text(st, 3, nexthop, -1, SQLITE_STATIC);
	return queue_db_run(db, st, "recipient next hop");
}

/* The earliest due recipient of one transport in one waiting state. */
static int
queue_db_due_one(struct queue_db *db, enum queue_transport t, enum queue_rcpt_state rs,
    int64_t now, int64_t *msg, int64_t *when)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_DUE_MSG);
	int r;

	sqlite3_bind_text(st, 1, queue_transport_name(t), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, queue_rcpt_state_name(rs), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	if ((r = queue_db_row(db, st, "due message")) == 1) {
		*msg = sqlite3_column_int64(st, 0);
		*when = sqlite3_column_int64(st, 1);
		sqlite3_reset(st);
	}
	return r;
}

int
queue_db_due_msg(struct queue_db *db, enum queue_transport t, int64_t now, int64_t *msg)
{
	int64_t mq = 0, md = 0, wq = 0, wd = 0;
	int rq, rd;

	if ((rq = queue_db_due_one(db, t, QRCPT_QUEUED, now, &mq, &wq)) == -1 ||
	    (rd = queue_db_due_one(db, t, QRCPT_DEFERRED, now, &md, &wd)) == -1)
		return -1;
	if (rq == 0 && rd == 0)
		return 0;
	*msg = (rd == 0 || (rq == 1 && wq <= wd)) ? mq : md;
	return 1;
}

int
queue_db_due_rcpt(struct queue_db *db, int64_t msg, enum queue_transport t,
    int64_t now, int64_t after, struct queue_rcpt *r)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_DUE_RCPT);

	sqlite3_bind_int64(st, 1, msg);
	sqlite3_bind_text(st, 2, queue_transport_name(t), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, after);
	return queue_db_rcpt_read(db, st, r);
}

int
queue_db_next_due(struct queue_db *db, int64_t after, int64_t *when)
{
	static const enum queue_transport ts[] = { QTRANSPORT_RELAY, QTRANSPORT_LOCAL };
	static const enum queue_rcpt_state ss[] = { QRCPT_QUEUED, QRCPT_DEFERRED };
	sqlite3_stmt *st;
	int found = 0, r;
	size_t i, j;

	for (i = 0; i < 2; i++) {
		for (j = 0; j < 2; j++) {
			st = queue_db_stmt(db, ST_NEXT_DUE);
			sqlite3_bind_text(st, 1, queue_transport_name(ts[i]), -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, queue_rcpt_state_name(ss[j]), -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 3, after);
			if ((r = queue_db_row(db, st, "next due")) != 1)
				return -1;	/* min() always returns a row */
			if (sqlite3_column_type(st, 0) != SQLITE_NULL &&
			    (!found || sqlite3_column_int64(st, 0) < *when)) {
				*when = sqlite3_column_int64(st, 0);
				found = 1;
			}
			sqlite3_reset(st);
		}
	}
	return found;
}

int
queue_db_chunk_add(struct queue_db *db, int64_t msg, uint32_t seq, const void *p, size_t n)
{
	sqlite3_stmt *st;

	if (n > INT32_MAX || queue_db_write_begin(db) == -1)
		return -1;
	st = queue_db_stmt(db, ST_CHUNK_INSERT);
	sqlite3_bind_int64(st, 1, msg);
	sqlite3_bind_int64(st, 2, seq);
	sqlite3_bind_blob(st, 3, n > 0 ? p : "", (int)n, SQLITE_STATIC);
	return queue_db_run(db, st, "insert chunk");
}

int
queue_db_chunk_get(struct queue_db *db, int64_t msg, uint32_t seq, struct buf *out)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_CHUNK_GET);
	const void *p;
	int n, r;

	sqlite3_bind_int64(st, 1, msg);
	sqlite3_bind_int64(st, 2, seq);
	if ((r = queue_db_row(db, st, "read chunk")) != 1)
		return r;
	p = sqlite3_column_blob(st, 0);
	n = sqlite3_column_bytes(st, 0);
	buf_reset(out);
	if (n > 0 && buf_append(out, p, (size_t)n) == -1) {
		snprintf(db->err, sizeof(db->err), "chunk larger than the buffer");
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 1;
}

int
queue_db_chunk_count(struct queue_db *db, int64_t msg, uint32_t *n)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_CHUNK_COUNT);

	sqlite3_bind_int64(st, 1, msg);
	if (queue_db_row(db, st, "count chunks") != 1)
		return -1;
	*n = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

/* The next queued message after rowid "after", with its recipient counts. */
int
queue_db_summary_next(struct queue_db *db, int64_t after, struct queue_summary *s)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_SUMMARY_MSG);
	int r;

	sqlite3_bind_int64(st, 1, after);
	if ((r = queue_db_msg_read(db, st, &s->msg)) != 1)
		return r;
	st = queue_db_stmt(db, ST_SUMMARY_COUNTS);
	sqlite3_bind_int64(st, 1, s->msg.rowid);
	if (queue_db_row(db, st, "summary") != 1)
		return -1;
	s->pending = (uint32_t)sqlite3_column_int64(st, 0);
	s->active = (uint32_t)sqlite3_column_int64(st, 1);
	s->deferred = (uint32_t)sqlite3_column_int64(st, 2);
	sqlite3_reset(st);
	return 1;
}
