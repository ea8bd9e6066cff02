/*
 * t_queue.h: what the queue tests share.  A queue file in a directory of
 * its own and its removal; a message with one relay recipient; and plain
 * SQLite on a queue file the queue is not holding open (making an old or
 * odd file, reading back what the queue wrote, as another program would).
 */
#ifndef MOAT_T_QUEUE_H
#define MOAT_T_QUEUE_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "queue-manager/queue_db.h"

/* A new directory /tmp/moat-TAG-XXXXXX and the queue file's path in it;
 * the test exits 2 when it cannot be made. */
static inline void
t_qfile_make(const char *tag, char *dir, size_t dirsz, char *path, size_t pathsz)
{
	snprintf(dir, dirsz, "/tmp/moat-%s-XXXXXX", tag);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	snprintf(path, pathsz, "%s/queue.db", dir);
}

/* The queue file with its -wal and -shm. */
static inline void
t_qfile_unlink(const char *path)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	unlink(path);
}

/* The queue file and its directory. */
static inline void
t_qfile_remove(const char *dir, const char *path)
{
	t_qfile_unlink(path);
	rmdir(dir);
}

/*
 * A message from sender, arrived at 1000 s, with one relay recipient rcpt
 * due at next_attempt; left incoming.  Its row id, or -1; *m is the
 * message as stored.
 */
static inline int64_t
t_qmsg_one(struct queue_db *db, const char *sender, const char *rcpt,
    int64_t next_attempt, struct queue_msg *m)
{
	struct queue_rcpt r;

	memset(m, 0, sizeof(*m));
	m->arrival_us = 1000 * 1000000LL;
	snprintf(m->sender, sizeof(m->sender), "%s", sender);
	snprintf(m->client, sizeof(m->client), "192.0.2.7");
	snprintf(m->helo, sizeof(m->helo), "h");
	if (queue_db_msg_create(db, m) == -1)
		return -1;
	memset(&r, 0, sizeof(r));
	r.msg = m->rowid;
	snprintf(r.address, sizeof(r.address), "%s", rcpt);
	r.transport = QTRANSPORT_RELAY;
	r.state = QRCPT_QUEUED;
	r.next_attempt = next_attempt;
	if (queue_db_rcpt_add(db, &r) == -1)
		return -1;
	return m->rowid;
}

/* Run sql (several statements may follow each other); the file is created
 * if missing.  0, or -1. */
static inline int
t_sql_exec(const char *path, const char *sql)
{
	sqlite3 *h;
	int rc;

	rc = sqlite3_open(path, &h);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
	sqlite3_close(h);
	return rc == SQLITE_OK ? 0 : -1;
}

/* The first column of the first row of sql as an integer; -1 when the file
 * does not exist, the query fails or returns no row. */
static inline long long
t_sql_int(const char *path, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	return v;
}

/* The same as text, in a string to free(); NULL for none. */
static inline char *
t_sql_text(const char *path, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	char *v = NULL;

	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
			v = strdup((const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	return v;
}

#endif
