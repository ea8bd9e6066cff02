/*
 * test_queue_db.c: the queue database against a temporary file.
 *
 * Covers the schema and its version checks, a message's round trip
 * through commit, close and reopen, body chunks byte for byte, queue id
 * uniqueness, the scheduling queries, savepoints, and crash recovery: a
 * child process writes and dies without committing (as kill -9 would
 * leave it), and the parent checks what survives.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "t.h"
#include "t_queue.h"
#include "util/buf.h"
#include "queue-manager/queue_db.h"

static char dir[64];
static char path[128];

static void
setup(void)
{
	t_qfile_make("qdb", dir, sizeof(dir), path, sizeof(path));
}

static void
cleanup(void)
{
	t_qfile_remove(dir, path);
}

static struct queue_db *
reopen(struct queue_db *db)
{
	char err[256];

	queue_db_close(db);
	db = queue_db_open(path, err, sizeof(err));
	if (db == NULL)
		printf("# reopen: %s\n", err);
	return db;
}

/* A message with n recipients and body, left incoming (not yet queued). */
static int64_t
add_message(struct queue_db *db, const char *sender, uint32_t n, const void *body,
    size_t len, char *qid)
{
	struct queue_msg m;
	struct queue_rcpt r;
	uint32_t i;
	size_t off, k;
	uint32_t seq = 0;

	memset(&m, 0, sizeof(m));
	m.arrival_us = 1700000000123456LL;
	snprintf(m.sender, sizeof(m.sender), "%s", sender);
	snprintf(m.client, sizeof(m.client), "192.0.2.7");
	snprintf(m.helo, sizeof(m.helo), "client.example");
	m.body_type = 1;
	if (queue_db_msg_create(db, &m) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		memset(&r, 0, sizeof(r));
		r.msg = m.rowid;
		r.idx = i;
		snprintf(r.address, sizeof(r.address), "user%u@example.org", i);
		r.transport = i % 2 ? QTRANSPORT_LOCAL : QTRANSPORT_RELAY;
		snprintf(r.nexthop, sizeof(r.nexthop), "%s", i % 2 ? "" : "[127.0.0.1]:25");
		r.state = QRCPT_QUEUED;
		r.next_attempt = 1000 + i;
		if (queue_db_rcpt_add(db, &r) == -1)
			return -1;
	}
	for (off = 0; off < len; off += k) {
		k = len - off > 65536 ? 65536 : len - off;
		if (queue_db_chunk_add(db, m.rowid, seq++, (const char *)body + off, k) == -1)
			return -1;
	}
	if (qid != NULL)
		snprintf(qid, QUEUE_ID_LEN + 1, "%s", m.qid);
	return m.rowid;
}

static void
test_ids(void)
{
	static const struct {
		const char *s;
		int ok;
	} cases[] = {
		{ "0123456789ABCDEF", 1 }, { "FFFFFFFFFFFFFFFF", 1 },
		{ "0123456789abcdef", 0 }, { "0123456789ABCDE", 0 },
		{ "0123456789ABCDEF0", 0 }, { "0123456789ABCDEG", 0 },
		{ "", 0 }, { "../../etc/passwd", 0 }, { "0123456789ABCDE ", 0 },
	};
	char out[QUEUE_ID_LEN + 1];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		T_OK(queue_id_valid(cases[i].s) == cases[i].ok, "queue_id_valid(\"%s\")",
		    cases[i].s);
	queue_id_format(0, 0, out);
	T_OK(strcmp(out, "0000000000000000") == 0, "id of time 0 is all zeros");
	queue_id_format(1, 0xabc, out);
	T_OK(strcmp(out, "0000000000001ABC") == 0, "low 12 bits hold the counter: %s", out);
	queue_id_format(1, 0x1abc, out);
	T_OK(strcmp(out, "0000000000001ABC") == 0, "counter is cut to 12 bits");
	queue_id_format(1700000000123456ULL, 7, out);
	T_OK(queue_id_valid(out) && strlen(out) == 16, "id of a real time is valid: %s", out);
}

static void
test_create_and_reopen(void)
{
	static uint8_t body[200000];
	struct queue_db *db;
	struct queue_msg m;
	struct queue_rcpt r;
	struct buf chunk;
	char err[256], qid[QUEUE_ID_LEN + 1];
	int64_t rowid, msg;
	uint32_t n, i, seq;
	size_t off;
	int ok;

	for (i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(i * 7 + (i >> 8));	/* NULs and 8-bit bytes too */
	db = queue_db_open(path, err, sizeof(err));
	T_OK(db != NULL, "open creates the database (%s)", db ? "" : err);
	if (db == NULL)
		return;
	rowid = add_message(db, "sender@example.com", 3, body, sizeof(body), qid);
	T_OK(rowid > 0 && queue_id_valid(qid), "message created with id %s", qid);
	T_OK(queue_db_in_txn(db) && queue_db_dirty(db), "writes opened the group transaction");
	T_OK(queue_db_due_msg(db, QTRANSPORT_RELAY, 5000, &msg) == 0,
	    "an incoming message is not due");
	T_OK(queue_db_msg_set_queued(db, rowid, sizeof(body)) == 0, "incoming -> queued");
	T_OK(queue_db_msg_set_queued(db, rowid, sizeof(body)) == -1,
	    "queued -> queued again is refused");
	T_OK(queue_db_commit(db) == 0 && !queue_db_in_txn(db), "commit");

	db = reopen(db);
	T_OK(db != NULL, "reopen");
	if (db == NULL)
		return;
	T_OK(queue_db_msg_find(db, qid, &m) == 1, "message found by id after reopen");
	T_OK(m.rowid == rowid && m.state == QMSG_QUEUED && m.size == sizeof(body) &&
	    m.arrival_us == 1700000000123456LL && strcmp(m.sender, "sender@example.com") == 0 &&
	    strcmp(m.client, "192.0.2.7") == 0 && strcmp(m.helo, "client.example") == 0 &&
	    m.body_type == 1, "envelope fields survive");
	T_OK(queue_db_msg_find(db, "0000000000000000", &m) == 0, "unknown id not found");
	T_OK(queue_db_rcpt_get(db, rowid, 1, &r) == 1 && strcmp(r.address, "user1@example.org") == 0 &&
	    r.transport == QTRANSPORT_LOCAL && r.state == QRCPT_QUEUED && r.next_attempt == 1001,
	    "recipient 1 survives with its route");
	T_OK(queue_db_rcpt_get(db, rowid, 0, &r) == 1 && r.transport == QTRANSPORT_RELAY &&
	    strcmp(r.nexthop, "[127.0.0.1]:25") == 0, "recipient 0 keeps its next hop");
	T_OK(queue_db_msg_pending(db, rowid, &n) == 0 && n == 3, "3 recipients pending");

	/* Chunks, byte for byte. */
	buf_init(&chunk, 65536);
	T_OK(queue_db_chunk_count(db, rowid, &n) == 0 && n == 4, "200000 bytes are 4 chunks");
	ok = 1;
	for (seq = 0, off = 0; seq < n; seq++) {
		if (queue_db_chunk_get(db, rowid, seq, &chunk) != 1 ||
		    memcmp(chunk.data, body + off, chunk.len) != 0)
			ok = 0;
		off += chunk.len;
	}
	T_OK(ok && off == sizeof(body), "chunk round trip is exact");
	T_OK(queue_db_chunk_get(db, rowid, 4, &chunk) == 0, "chunk past the end: not found");
	buf_free(&chunk);

	/* Scheduling queries. */
	T_OK(queue_db_due_msg(db, QTRANSPORT_RELAY, 999, &msg) == 0, "nothing due before its time");
	T_OK(queue_db_due_msg(db, QTRANSPORT_RELAY, 1000, &msg) == 1 && msg == rowid,
	    "relay recipient due at its time");
	T_OK(queue_db_due_rcpt(db, rowid, QTRANSPORT_RELAY, 5000, -1, &r) == 1 && r.idx == 0,
	    "first due relay recipient is 0");
	T_OK(queue_db_due_rcpt(db, rowid, QTRANSPORT_RELAY, 5000, 0, &r) == 1 && r.idx == 2,
	    "next due relay recipient is 2");
	T_OK(queue_db_rcpt_set_state(db, rowid, 0, QRCPT_ACTIVE) == 0 &&
	    queue_db_due_rcpt(db, rowid, QTRANSPORT_RELAY, 5000, -1, &r) == 1 && r.idx == 2,
	    "an active recipient is not due");
	T_OK(queue_db_next_due(db, 0, &msg) == 1 && msg == 1001, "next due time");
	T_OK(queue_db_next_due(db, 1002, &msg) == 0, "nothing due later");
	r.state = QRCPT_DEFERRED;
	r.attempts = 2;
	r.next_attempt = 7000;
	snprintf(r.last_reply, sizeof(r.last_reply), "451 4.7.1 later");
	snprintf(r.last_relay, sizeof(r.last_relay), "mx[192.0.2.1]:25");
	T_OK(queue_db_rcpt_update(db, &r) == 0, "update a recipient");
	T_OK(queue_db_commit(db) == 0, "commit updates");
	db = reopen(db);
	if (db == NULL)
		return;
	T_OK(queue_db_rcpt_get(db, rowid, 2, &r) == 1 && r.state == QRCPT_DEFERRED &&
	    r.attempts == 2 && r.next_attempt == 7000 &&
	    strcmp(r.last_reply, "451 4.7.1 later") == 0 &&
	    strcmp(r.last_relay, "mx[192.0.2.1]:25") == 0, "update survives reopen");
	/* A clean reopen is not a crash: an active recipient is only
	 * requeued by recovery, which moatd's restart runs. */
	T_OK(queue_db_rcpt_get(db, rowid, 0, &r) == 1 && r.state == QRCPT_ACTIVE,
	    "active state stored as written");

	/* Delete cascades to recipients and chunks. */
	T_OK(queue_db_msg_delete(db, rowid) == 0 && queue_db_commit(db) == 0, "delete");
	T_OK(queue_db_rcpt_get(db, rowid, 0, &r) == 0, "recipients deleted with the message");
	T_OK(queue_db_chunk_count(db, rowid, &n) == 0 && n == 0, "chunks deleted with the message");
	queue_db_close(db);
}

static void
test_summary(void)
{
	struct queue_db *db;
	struct queue_summary s;
	char err[256];
	int64_t a, b, c;

	db = queue_db_open(path, err, sizeof(err));
	if (db == NULL)
		return;
	a = add_message(db, "a@example.com", 3, "x", 1, NULL);
	b = add_message(db, "", 2, "y", 1, NULL);
	c = add_message(db, "c@example.com", 1, "z", 1, NULL);
	queue_db_msg_set_queued(db, a, 1);
	queue_db_msg_set_queued(db, b, 1);	/* c stays incoming */
	queue_db_rcpt_set_state(db, a, 0, QRCPT_SENT);
	queue_db_rcpt_set_state(db, a, 1, QRCPT_DEFERRED);
	queue_db_rcpt_set_state(db, b, 0, QRCPT_ACTIVE);
	T_OK(queue_db_summary_next(db, 0, &s) == 1 && s.msg.rowid == a && s.pending == 2 &&
	    s.deferred == 1 && s.active == 0, "summary of a: 2 pending, 1 deferred");
	T_OK(queue_db_summary_next(db, a, &s) == 1 && s.msg.rowid == b && s.pending == 2 &&
	    s.active == 1 && s.msg.sender[0] == '\0', "summary of b: null sender, 1 active");
	T_OK(queue_db_summary_next(db, b, &s) == 0, "an incoming message is not listed");
	(void)c;
	/* Savepoints: a unit is undone as a whole, the rest stays. */
	T_OK(queue_db_sp_begin(db) == 0, "savepoint");
	queue_db_rcpt_set_state(db, a, 2, QRCPT_BOUNCED);
	queue_db_sp_rollback(db);
	{
		struct queue_rcpt r;

		T_OK(queue_db_rcpt_get(db, a, 2, &r) == 1 && r.state == QRCPT_QUEUED,
		    "savepoint rollback undid the unit");
		T_OK(queue_db_rcpt_get(db, a, 0, &r) == 1 && r.state == QRCPT_SENT,
		    "savepoint rollback kept earlier writes");
	}
	T_OK(queue_db_rollback(db) == 0 && !queue_db_in_txn(db), "rollback");
	T_OK(queue_db_summary_next(db, 0, &s) == 0, "rolled back messages are gone");
	queue_db_close(db);
}

/*
 * What kill -9 leaves: in a child, commit one queued message with an
 * active recipient and one incoming message, then write a third message
 * and die without committing.
 */
static void
crash_child(void)
{
	struct queue_db *db;
	char err[256];
	int64_t a, b, c;

	if ((db = queue_db_open(path, err, sizeof(err))) == NULL)
		_exit(3);
	a = add_message(db, "a@example.com", 2, "body-a", 6, NULL);
	b = add_message(db, "b@example.com", 1, "body-b", 6, NULL);
	if (a < 0 || b < 0 || queue_db_msg_set_queued(db, a, 6) == -1 ||
	    queue_db_rcpt_set_state(db, a, 1, QRCPT_ACTIVE) == -1 ||
	    queue_db_commit(db) == -1)
		_exit(4);
	c = add_message(db, "c@example.com", 1, "body-c", 6, NULL);
	if (c < 0 || queue_db_msg_set_queued(db, c, 6) == -1)
		_exit(5);
	_exit(0);	/* no commit, no close */
}

static void
test_crash_recovery(void)
{
	struct queue_recovery st;
	struct queue_summary s;
	struct queue_rcpt r;
	struct queue_db *db;
	char err[256];
	pid_t pid;
	int status = -1;

	cleanup();
	setup();
	if ((pid = fork()) == 0)
		crash_child();
	waitpid(pid, &status, 0);
	T_OK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "crash child ran (%d)", status);
	db = queue_db_open(path, err, sizeof(err));
	T_OK(db != NULL, "open after the crash");
	if (db == NULL)
		return;
	T_OK(queue_db_recover(db, &st) == 0, "recovery");
	T_OK(st.incoming_deleted == 1, "the committed incoming message is deleted (%lld)",
	    st.incoming_deleted);
	T_OK(st.active_requeued == 1, "the active recipient is requeued (%lld)",
	    st.active_requeued);
	T_OK(queue_db_summary_next(db, 0, &s) == 1 && strcmp(s.msg.sender, "a@example.com") == 0 &&
	    s.pending == 2 && s.active == 0, "the committed message is back, nothing active");
	T_OK(queue_db_summary_next(db, s.msg.rowid, &s) == 0,
	    "the uncommitted message never existed");
	T_OK(queue_db_rcpt_next(db, s.msg.rowid, 0, &r) == 1 && r.idx == 1 &&
	    r.state == QRCPT_QUEUED, "requeued recipient is queued");
	/* Recovery also removes a message with nothing left to deliver. */
	queue_db_rcpt_set_state(db, s.msg.rowid, 0, QRCPT_SENT);
	queue_db_rcpt_set_state(db, s.msg.rowid, 1, QRCPT_BOUNCED);
	queue_db_commit(db);
	T_OK(queue_db_recover(db, &st) == 0 && st.finished_deleted == 1,
	    "a finished message is removed by recovery");
	queue_db_close(db);
}

static void
test_unique_ids(void)
{
	struct queue_db *db;
	struct queue_msg m;
	char err[256], (*ids)[QUEUE_ID_LEN + 1];
	int i, j, dup = 0, bad = 0;
	const int n = 3000;

	db = queue_db_open(path, err, sizeof(err));
	if (db == NULL)
		return;
	ids = calloc((size_t)n, sizeof(*ids));
	for (i = 0; i < n; i++) {
		memset(&m, 0, sizeof(m));
		m.arrival_us = 1700000000000000LL;	/* all in the same microsecond */
		if (queue_db_msg_create(db, &m) == -1 || !queue_id_valid(m.qid))
			bad++;
		snprintf(ids[i], sizeof(ids[i]), "%s", m.qid);
	}
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (strcmp(ids[i], ids[j]) == 0)
				dup++;
	T_OK(bad == 0, "%d ids in one microsecond all created", n);
	T_OK(dup == 0, "no duplicate among them (%d)", dup);
	free(ids);
	queue_db_rollback(db);
	queue_db_close(db);
}

/* Change the file behind the queue's back, as a different program would. */
static void
poke(const char *sql)
{
	(void)t_sql_exec(path, sql);
}

static void
test_schema(void)
{
	struct queue_db *db;
	char err[256], *mode;
	long long version;

	cleanup();
	setup();
	db = queue_db_open(path, err, sizeof(err));
	T_OK(db != NULL, "fresh database");
	queue_db_close(db);
	version = t_sql_int(path, "PRAGMA user_version");
	mode = t_sql_text(path, "PRAGMA journal_mode");
	T_OK(version == QUEUE_DB_SCHEMA_VERSION, "user_version is %lld", version);
	T_OK(mode != NULL && strcmp(mode, "wal") == 0, "journal mode is persistent WAL (%s)",
	    mode != NULL ? mode : "none");
	free(mode);

	poke("PRAGMA user_version = 99");
	db = queue_db_open(path, err, sizeof(err));
	T_OK(db == NULL && strstr(err, "newer") != NULL, "a newer schema is refused: %s", err);
	queue_db_close(db);
	poke("PRAGMA user_version = 1; PRAGMA application_id = 42");
	db = queue_db_open(path, err, sizeof(err));
	T_OK(db == NULL && strstr(err, "not a moat queue") != NULL,
	    "a foreign database is refused: %s", err);
	queue_db_close(db);
	cleanup();
	setup();
	poke("CREATE TABLE messages (x)");
	poke("PRAGMA application_id = 0");
	db = queue_db_open(path, err, sizeof(err));
	T_OK(db == NULL, "a version-0 file with a clashing table fails to migrate");
	queue_db_close(db);
	T_OK(queue_db_open("/nonexistent-dir/queue.db", err, sizeof(err)) == NULL,
	    "an unopenable path is an error, not a crash");
	cleanup();
	setup();
}

/* Every recipient column of every row, as one text (what a migration keeps). */
#define ALL_RCPTS "SELECT group_concat(msg || '|' || idx || '|' || address || '|' ||" \
	" transport || '|' || nexthop || '|' || state || '|' || attempts || '|' ||" \
	" next_attempt || '|' || last_reply || '|' || last_relay || '|' || dsn_notify ||" \
	" '|' || dsn_orcpt, ';') FROM (SELECT * FROM recipients ORDER BY msg, idx)"

/*
 * Schema 4 -> 5: a version 4 file (recipients with the old IN-list state
 * check and indexes over every state) holding recipients in all five
 * states migrates with every column of every row kept; afterwards both
 * indexes hold only the waiting recipients, a state outside the five is
 * still refused, and the scheduler finds the waiting ones.
 */
static void
test_migrate_v5(void)
{
	static const char *const states[] = { "queued", "deferred", "active", "sent",
	    "bounced", "queued" };
	struct queue_db *db;
	char err[256], sql[160], *before, *after;
	int64_t m1, m2, due = 0;
	size_t i;

	cleanup();
	setup();
	db = queue_db_open(path, err, sizeof(err));
	T_OK(db != NULL, "v5: fresh database");
	m1 = add_message(db, "a@example.org", 6, "x", 1, NULL);
	m2 = add_message(db, "b@example.org", 2, "y", 1, NULL);
	T_OK(m1 > 0 && m2 > 0 && queue_db_msg_set_queued(db, m1, 1) == 0 &&
	    queue_db_msg_set_queued(db, m2, 1) == 0 && queue_db_commit(db) == 0,
	    "v5: two messages stored");
	queue_db_close(db);
	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		snprintf(sql, sizeof(sql), "UPDATE recipients SET state = '%s', attempts = %zu,"
		    " last_reply = 'r%zu' WHERE msg = %lld AND idx = %zu",
		    states[i], i, i, (long long)m1, i);
		poke(sql);
	}
	poke("PRAGMA journal_mode = DELETE;"
	    "CREATE TABLE r4 ("
	    " msg INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
	    " idx INTEGER NOT NULL, address TEXT NOT NULL,"
	    " transport TEXT NOT NULL CHECK (transport IN ('relay', 'local')),"
	    " nexthop TEXT NOT NULL,"
	    " state TEXT NOT NULL CHECK (state IN"
	    "  ('queued', 'deferred', 'active', 'sent', 'bounced')),"
	    " attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL DEFAULT 0,"
	    " last_reply TEXT NOT NULL DEFAULT '', last_relay TEXT NOT NULL DEFAULT '',"
	    " dsn_notify INTEGER NOT NULL DEFAULT 0, dsn_orcpt TEXT NOT NULL DEFAULT '',"
	    " PRIMARY KEY (msg, idx)) WITHOUT ROWID;"
	    "INSERT INTO r4 SELECT * FROM recipients;"
	    "DROP TABLE recipients;"
	    "ALTER TABLE r4 RENAME TO recipients;"
	    "CREATE INDEX recipients_due ON recipients (transport, state, next_attempt);"
	    "CREATE INDEX recipients_hop ON recipients (transport, state, nexthop,"
	    " next_attempt);"
	    "PRAGMA user_version = 4;");
	T_OK(t_sql_int(path, "PRAGMA user_version") == 4 &&
	    t_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE sql LIKE '%WHERE state%'") == 0,
	    "v5: made a version 4 file");
	before = t_sql_text(path, ALL_RCPTS);
	T_OK(before != NULL && strstr(before, "|bounced|") != NULL, "v5: rows before: %s",
	    before != NULL ? before : "(none)");

	db = queue_db_open(path, err, sizeof(err));
	T_OK(db != NULL, "v5: the version 4 file opens (%s)", db != NULL ? "" : err);
	T_OK(db != NULL && queue_db_due_msg(db, QTRANSPORT_RELAY, 1000000, &due) == 1 &&
	    due == m1, "v5: the scheduler finds a waiting recipient");
	queue_db_close(db);
	after = t_sql_text(path, ALL_RCPTS);
	T_OK(before != NULL && after != NULL && strcmp(before, after) == 0,
	    "v5: every column of all %lld recipients kept",
	    t_sql_int(path, "SELECT count(*) FROM recipients"));
	T_OK(t_sql_int(path, "PRAGMA user_version") == 5, "v5: now version 5");
	T_OK(t_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN"
	    " ('recipients_due', 'recipients_hop') AND sql LIKE"
	    " '%WHERE state IN (''queued'', ''deferred'')'") == 2,
	    "v5: both indexes hold the waiting recipients only");
	T_OK(t_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'r4'"
	    " OR name = 'recipients_v5'") == 0, "v5: no table left over");
	poke("INSERT INTO recipients (msg, idx, address, transport, nexthop, state)"
	    " VALUES (1, 99, 'x@example.org', 'relay', '', 'lost')");
	T_OK(t_sql_int(path, "SELECT count(*) FROM recipients WHERE idx = 99") == 0,
	    "v5: a state outside the five is refused");
	poke("PRAGMA foreign_keys = ON; DELETE FROM messages");
	T_OK(t_sql_int(path, "SELECT count(*) FROM recipients") == 0,
	    "v5: deleting a message still deletes its recipients");
	free(before);
	free(after);
	cleanup();
	setup();
}

int
main(void)
{
	setup();
	test_ids();
	test_create_and_reopen();
	test_summary();
	test_unique_ids();
	test_crash_recovery();
	test_schema();
	test_migrate_v5();
	cleanup();
	return t_done();
}
