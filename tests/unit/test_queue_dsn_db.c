/*
 * test_queue_dsn_db.c: the DSN side of the queue database (schema 3).
 *
 * RET and ENVID of a message, NOTIFY and ORCPT of its recipients, stored
 * and read back by every function that fills struct queue_msg and
 * struct queue_rcpt; the delay-warning queries (queue_db_warn_next,
 * queue_db_warn_first, queue_db_msg_set_warned); mail from <> stored
 * warned; and a version 2 file migrated in place with its messages.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "t.h"
#include "t_queue.h"
#include "ipc_types.h"
#include "queue-manager/queue_db.h"

#define SEC	1000000LL	/* microseconds */

static char dir[64];
static char path[128];

static void
setup(void)
{
	t_qfile_make("qdsn", dir, sizeof(dir), path, sizeof(path));
}

static void
cleanup(void)
{
	t_qfile_remove(dir, path);
}

static struct queue_db *
open_db(void)
{
	char err[256];
	struct queue_db *db = queue_db_open(path, err, sizeof(err));

	if (db == NULL)
		printf("# open: %s\n", err);
	return db;
}

/* A queued message arrived at arrival seconds with one recipient. */
static int64_t
add(struct queue_db *db, const char *sender, int64_t arrival, uint32_t ret,
    const char *envid, uint32_t notify, const char *orcpt, int queued)
{
	struct queue_msg m;
	struct queue_rcpt r;

	memset(&m, 0, sizeof(m));
	m.arrival_us = arrival * SEC;
	snprintf(m.sender, sizeof(m.sender), "%s", sender);
	snprintf(m.client, sizeof(m.client), "192.0.2.7");
	snprintf(m.helo, sizeof(m.helo), "client.example");
	m.dsn_ret = ret;
	snprintf(m.dsn_envid, sizeof(m.dsn_envid), "%s", envid);
	if (queue_db_msg_create(db, &m) == -1)
		return -1;
	memset(&r, 0, sizeof(r));
	r.msg = m.rowid;
	snprintf(r.address, sizeof(r.address), "bob@example.org");
	r.transport = QTRANSPORT_RELAY;
	r.state = QRCPT_DEFERRED;
	r.dsn_notify = notify;
	snprintf(r.dsn_orcpt, sizeof(r.dsn_orcpt), "%s", orcpt);
	if (queue_db_rcpt_add(db, &r) == -1)
		return -1;
	if (queued && queue_db_msg_set_queued(db, m.rowid, 10) == -1)
		return -1;
	return m.rowid;
}

static void
test_roundtrip(void)
{
	struct queue_db *db;
	struct queue_msg m;
	struct queue_rcpt r;
	struct queue_summary sum;
	char orcpt500[MOAT_ORCPT_MAX + 1], envid100[MOAT_ENVID_MAX + 1];
	int64_t a, b, c;

	memset(envid100, 'e', MOAT_ENVID_MAX);
	envid100[MOAT_ENVID_MAX] = '\0';
	memcpy(orcpt500, "rfc822;", 7);
	memset(orcpt500 + 7, 'o', MOAT_ORCPT_MAX - 7);
	orcpt500[MOAT_ORCPT_MAX] = '\0';
	setup();
	T_OK((db = open_db()) != NULL, "roundtrip: open");
	a = add(db, "alice@example.com", 1000, MOAT_RET_HDRS, "env+1=x", MOAT_NOTIFY_SUCCESS |
	    MOAT_NOTIFY_FAILURE, "rfc822;orig@example.net", 1);
	b = add(db, "", 1001, MOAT_RET_NONE, "", 0, "", 1);
	c = add(db, "carol@example.com", 1002, MOAT_RET_FULL, envid100, MOAT_NOTIFY_NEVER,
	    orcpt500, 1);
	T_OK(a > 0 && b > 0 && c > 0 && queue_db_commit(db) == 0, "roundtrip: stored");
	queue_db_close(db);
	T_OK((db = open_db()) != NULL, "roundtrip: reopen");
	T_OK(queue_db_msg_get(db, a, &m) == 1 && m.dsn_ret == MOAT_RET_HDRS &&
	    strcmp(m.dsn_envid, "env+1=x") == 0 && m.warned == 0,
	    "roundtrip: msg_get reads RET, ENVID, warned");
	T_OK(queue_db_rcpt_get(db, a, 0, &r) == 1 &&
	    r.dsn_notify == (MOAT_NOTIFY_SUCCESS | MOAT_NOTIFY_FAILURE) &&
	    strcmp(r.dsn_orcpt, "rfc822;orig@example.net") == 0,
	    "roundtrip: rcpt_get reads NOTIFY, ORCPT");
	T_OK(queue_db_rcpt_next(db, c, -1, &r) == 1 && r.dsn_notify == MOAT_NOTIFY_NEVER &&
	    strcmp(r.dsn_orcpt, orcpt500) == 0, "roundtrip: rcpt_next, ORCPT of 500 bytes");
	T_OK(queue_db_msg_find(db, m.qid, &m) == 1 && m.rowid == a &&
	    m.dsn_ret == MOAT_RET_HDRS, "roundtrip: msg_find reads RET");
	T_OK(queue_db_msg_get(db, c, &m) == 1 && strcmp(m.dsn_envid, envid100) == 0 &&
	    m.dsn_ret == MOAT_RET_FULL, "roundtrip: ENVID of 100 bytes");
	T_OK(queue_db_msg_get(db, b, &m) == 1 && m.warned == 1 && m.dsn_envid[0] == '\0',
	    "roundtrip: mail from <> is stored warned");
	T_OK(queue_db_summary_next(db, b, &sum) == 1 && sum.msg.rowid == c &&
	    sum.msg.dsn_ret == MOAT_RET_FULL, "roundtrip: the listing reads the DSN columns");
	queue_db_close(db);
	cleanup();
}

static void
test_warn_queries(void)
{
	struct queue_db *db;
	struct queue_msg m;
	int64_t first, a, b, c, d, e;

	setup();
	T_OK((db = open_db()) != NULL, "warn: open");
	a = add(db, "a@example.com", 100, 0, "", 0, "", 1);
	b = add(db, "", 150, 0, "", 0, "", 1);			/* <>: never */
	c = add(db, "c@example.com", 200, 0, "", 0, "", 1);
	d = add(db, "d@example.com", 210, 0, "", 0, "", 0);	/* incoming */
	e = add(db, "e@example.com", 300, 0, "", 0, "", 1);
	T_OK(a > 0 && b > 0 && c > 0 && d > 0 && e > 0, "warn: messages stored");
	T_OK(queue_db_warn_next(db, 250 * SEC, -1, 0, &m) == 1 && m.rowid == a,
	    "warn: the oldest unwarned message first");
	T_OK(queue_db_warn_next(db, 250 * SEC, m.arrival_us, m.rowid, &m) == 1 &&
	    m.rowid == c, "warn: then the next one, skipping <> and incoming");
	T_OK(queue_db_warn_next(db, 250 * SEC, m.arrival_us, m.rowid, &m) == 0,
	    "warn: none younger than the age");
	T_OK(queue_db_msg_set_warned(db, a) == 0, "warn: mark warned");
	T_OK(queue_db_warn_next(db, 250 * SEC, -1, 0, &m) == 1 && m.rowid == c,
	    "warn: a warned message is not offered again");
	T_OK(queue_db_warn_next(db, 99 * SEC, -1, 0, &m) == 0, "warn: nothing old enough");
	T_OK(queue_db_warn_first(db, 250 * SEC, &first) == 1 && first == 300 * SEC,
	    "warn: the next message to reach the age");
	T_OK(queue_db_warn_first(db, 300 * SEC, &first) == 0, "warn: none after the last");
	T_OK(queue_db_warn_first(db, 0, &first) == 1 && first == 200 * SEC,
	    "warn: warned and <> messages are not waited for");
	/* Same arrival: the id breaks the tie, so the cursor never loops. */
	b = add(db, "f@example.com", 200, 0, "", 0, "", 1);
	T_OK(queue_db_warn_next(db, 250 * SEC, 200 * SEC, c, &m) == 1 && m.rowid == b,
	    "warn: a message of the same microsecond after the cursor");
	T_OK(queue_db_warn_next(db, 250 * SEC, 200 * SEC, b, &m) == 0,
	    "warn: and nothing after it");
	queue_db_close(db);
	cleanup();
}

/* A version 2 file (what version 3 added taken out again) migrates in place. */
static void
test_migration(void)
{
	struct queue_db *db;
	struct queue_msg m;
	struct queue_rcpt r;
	int64_t a, b;

	setup();
	T_OK((db = open_db()) != NULL, "migrate: open");
	a = add(db, "alice@example.com", 100, 0, "", 0, "", 1);
	b = add(db, "", 101, 0, "", 0, "", 1);
	T_OK(a > 0 && b > 0 && queue_db_commit(db) == 0, "migrate: messages stored");
	queue_db_close(db);
	T_OK(t_sql_exec(path, "PRAGMA journal_mode = DELETE;"
	    "DROP INDEX messages_warn;"
	    "DROP INDEX IF EXISTS recipients_hop;"
	    "ALTER TABLE messages DROP COLUMN dsn_ret;"
	    "ALTER TABLE messages DROP COLUMN dsn_envid;"
	    "ALTER TABLE messages DROP COLUMN warned;"
	    "ALTER TABLE recipients DROP COLUMN dsn_notify;"
	    "ALTER TABLE recipients DROP COLUMN dsn_orcpt;"
	    "PRAGMA user_version = 2;") == 0, "migrate: made a version 2 file");
	T_OK(t_sql_int(path, "PRAGMA user_version") == 2, "migrate: it says version 2");
	T_OK((db = open_db()) != NULL, "migrate: opens");
	T_OK(queue_db_msg_get(db, a, &m) == 1 && m.dsn_ret == MOAT_RET_NONE &&
	    m.dsn_envid[0] == '\0' && m.warned == 0 && strcmp(m.sender, "alice@example.com") == 0,
	    "migrate: an old message has no DSN and is not warned");
	T_OK(queue_db_msg_get(db, b, &m) == 1 && m.warned == 1,
	    "migrate: an old message from <> is marked warned");
	T_OK(queue_db_rcpt_get(db, a, 0, &r) == 1 && r.dsn_notify == 0 && r.dsn_orcpt[0] == '\0' &&
	    r.state == QRCPT_DEFERRED, "migrate: an old recipient keeps its state, no DSN");
	T_OK(queue_db_warn_next(db, 1000 * SEC, -1, 0, &m) == 1 && m.rowid == a,
	    "migrate: the warning query works on the migrated file");
	queue_db_close(db);
	/* Read with a second connection once the exclusive one is closed. */
	T_OK(t_sql_int(path, "PRAGMA user_version") == QUEUE_DB_SCHEMA_VERSION,
	    "migrate: now version %d", QUEUE_DB_SCHEMA_VERSION);
	T_OK(t_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'messages_warn'") == 1,
	    "migrate: the index exists");
	cleanup();
}

int
main(void)
{
	test_roundtrip();
	test_warn_queries();
	test_migration();
	return t_done();
}
