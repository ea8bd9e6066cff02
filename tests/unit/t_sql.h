/*
 * t_sql.h: plain SQLite on a queue file the queue is not holding open, for
 * the queue tests: making an old or odd file, and reading back what the
 * queue wrote, as another program would.
 */
#ifndef MOAT_T_SQL_H
#define MOAT_T_SQL_H

#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

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
