/*
 * queue_db.c: the queue's SQLite schema, its migrations and every
 * statement the queue-manager runs, each prepared once at open.
 *
 * States and transports are stored as words ("queued", "relay") so that
 * an operator reading the file with sqlite3(1) sees what moatctl shows.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "util/xmalloc.h"
#include "queue_db.h"

#define QUEUE_APPLICATION_ID	0x6d6f6174	/* "moat" */
#define QUEUE_ID_TRIES		64
/*
 * Page size of a new queue file.  A 64 KB body chunk is a chain of
 * overflow pages and every page a commit changes is one WAL frame (two
 * writes) and later one write of the checkpoint: 8 KB pages make that
 * 9 frames per chunk instead of 17.  Larger pages cost more for the
 * small rows (a recipient's state change rewrites a whole page): 16 KB
 * saved a little more CPU with 100 KB bodies but cost CPU and bytes
 * with 1 KB ones (docs/queue.md).
 */
#define QUEUE_PAGE_SIZE		"8192"
/*
 * SQLite's page cache (KiB).  Its default, 2 MB, holds the bodies of about
 * twenty 100 KB messages: the pages a commit wrote were gone again when an
 * agent fetched the body a few milliseconds later, and when the delivered
 * message was deleted (its overflow chain is walked to free it), so each
 * was read back from the WAL.  8 MB holds the bodies in flight with
 * delivery_agents and the sessions at their defaults (about 40 messages
 * of 100 KB); 32 MB saved no more CPU and, filled, added 24 MB to the
 * queue-manager's memory.
 */
#define QUEUE_CACHE_KIB		"8192"
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
	/* 1 -> 2: what operators change and watch (moatctl): held messages,
	 * paused destination domains, the audit trail of changes, and traffic
	 * counters kept by triggers in the same transaction as the change they
	 * count (per-minute buckets for two hours, and totals since creation). */
	"ALTER TABLE messages ADD COLUMN held INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE paused ("
	"  domain TEXT PRIMARY KEY,"
	"  since  INTEGER NOT NULL,"
	"  uid    INTEGER NOT NULL"
	");"
	"CREATE TABLE audit ("
	"  id      INTEGER PRIMARY KEY,"
	"  time    INTEGER NOT NULL,"
	"  uid     INTEGER NOT NULL,"
	"  command TEXT NOT NULL,"
	"  ids     TEXT NOT NULL,"
	"  result  TEXT NOT NULL"
	");"
	"CREATE TABLE stats_minute ("
	"  minute    INTEGER PRIMARY KEY,"
	"  msgs_in   INTEGER NOT NULL DEFAULT 0,"
	"  bytes_in  INTEGER NOT NULL DEFAULT 0,"
	"  msgs_out  INTEGER NOT NULL DEFAULT 0,"
	"  bytes_out INTEGER NOT NULL DEFAULT 0,"
	"  sent      INTEGER NOT NULL DEFAULT 0,"
	"  deferred  INTEGER NOT NULL DEFAULT 0,"
	"  bounced   INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE TABLE stats_total ("
	"  id        INTEGER PRIMARY KEY CHECK (id = 1),"
	"  msgs_in   INTEGER NOT NULL DEFAULT 0,"
	"  bytes_in  INTEGER NOT NULL DEFAULT 0,"
	"  msgs_out  INTEGER NOT NULL DEFAULT 0,"
	"  bytes_out INTEGER NOT NULL DEFAULT 0,"
	"  sent      INTEGER NOT NULL DEFAULT 0,"
	"  deferred  INTEGER NOT NULL DEFAULT 0,"
	"  bounced   INTEGER NOT NULL DEFAULT 0"
	");"
	"INSERT INTO stats_total (id) VALUES (1);"
	"CREATE TRIGGER stats_in AFTER UPDATE OF state ON messages"
	"  WHEN OLD.state = 'incoming' AND NEW.state = 'queued' BEGIN"
	"  DELETE FROM stats_minute WHERE minute < unixepoch() / 60 - 120;"
	"  INSERT OR IGNORE INTO stats_minute (minute) VALUES (unixepoch() / 60);"
	"  UPDATE stats_minute SET msgs_in = msgs_in + 1, bytes_in = bytes_in + NEW.size"
	"    WHERE minute = unixepoch() / 60;"
	"  UPDATE stats_total SET msgs_in = msgs_in + 1, bytes_in = bytes_in + NEW.size;"
	"END;"
	"CREATE TRIGGER stats_out AFTER DELETE ON messages WHEN OLD.state = 'queued' BEGIN"
	"  INSERT OR IGNORE INTO stats_minute (minute) VALUES (unixepoch() / 60);"
	"  UPDATE stats_minute SET msgs_out = msgs_out + 1, bytes_out = bytes_out + OLD.size"
	"    WHERE minute = unixepoch() / 60;"
	"  UPDATE stats_total SET msgs_out = msgs_out + 1, bytes_out = bytes_out + OLD.size;"
	"END;"
	"CREATE TRIGGER stats_sent AFTER UPDATE OF state ON recipients"
	"  WHEN NEW.state = 'sent' AND OLD.state != 'sent' BEGIN"
	"  INSERT OR IGNORE INTO stats_minute (minute) VALUES (unixepoch() / 60);"
	"  UPDATE stats_minute SET sent = sent + 1 WHERE minute = unixepoch() / 60;"
	"  UPDATE stats_total SET sent = sent + 1;"
	"END;"
	"CREATE TRIGGER stats_bounced AFTER UPDATE OF state ON recipients"
	"  WHEN NEW.state = 'bounced' AND OLD.state != 'bounced' BEGIN"
	"  INSERT OR IGNORE INTO stats_minute (minute) VALUES (unixepoch() / 60);"
	"  UPDATE stats_minute SET bounced = bounced + 1 WHERE minute = unixepoch() / 60;"
	"  UPDATE stats_total SET bounced = bounced + 1;"
	"END;"
	"CREATE TRIGGER stats_deferred AFTER UPDATE OF state, attempts ON recipients"
	"  WHEN NEW.state = 'deferred' AND NEW.attempts > OLD.attempts BEGIN"
	"  INSERT OR IGNORE INTO stats_minute (minute) VALUES (unixepoch() / 60);"
	"  UPDATE stats_minute SET deferred = deferred + 1 WHERE minute = unixepoch() / 60;"
	"  UPDATE stats_total SET deferred = deferred + 1;"
	"END;",
	/* 2 -> 3: DSN (RFC 3461).  The client's RET and ENVID per message,
	 * NOTIFY and ORCPT per recipient, and whether the delay warning went
	 * out; messages_warn finds the unwarned messages past the warning
	 * age without a scan (null-sender mail is created warned). */
	"ALTER TABLE messages ADD COLUMN dsn_ret INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE messages ADD COLUMN dsn_envid TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE messages ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;"
	"UPDATE messages SET warned = 1 WHERE sender = '';"
	"ALTER TABLE recipients ADD COLUMN dsn_notify INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE recipients ADD COLUMN dsn_orcpt TEXT NOT NULL DEFAULT '';"
	"CREATE INDEX messages_warn ON messages (warned, arrival_us);"
	/* Due work by next hop (qmgr_sched.c): the oldest due recipient of
	 * one next hop, and the distinct next hops, each one seek. */
	"CREATE INDEX recipients_hop ON recipients (transport, state, nexthop,"
	"  next_attempt);",
	/* 3 -> 4: the recipient counters (sent, bounced, deferred) are kept
	 * by queue_db.c in the same transaction (queue_db_count): under an
	 * AFTER UPDATE OF state trigger, SQLite updates a WITHOUT ROWID
	 * table in two passes, with a temporary table and three trigger
	 * programs for every recipient row it touches. */
	"DROP TRIGGER IF EXISTS stats_sent;"
	"DROP TRIGGER IF EXISTS stats_bounced;"
	"DROP TRIGGER IF EXISTS stats_deferred;",
	/* 4 -> 5: recipients rebuilt with the same columns.  The state check
	 * is a chain of comparisons: SQLite 3.40 codes "state IN (five
	 * strings)" in a CHECK as a temporary B-tree built for every row
	 * written.  Both indexes hold only the recipients that wait (queued,
	 * deferred), the only ones the scheduler looks for: a recipient
	 * handed to an agent leaves them, and a delivered one is deleted
	 * without touching them. */
	"CREATE TABLE recipients_v5 ("
	"  msg          INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
	"  idx          INTEGER NOT NULL,"
	"  address      TEXT NOT NULL,"
	"  transport    TEXT NOT NULL CHECK (transport IN ('relay', 'local')),"
	"  nexthop      TEXT NOT NULL,"
	"  state        TEXT NOT NULL CHECK (state = 'queued' OR state = 'deferred'"
	"                 OR state = 'active' OR state = 'sent' OR state = 'bounced'),"
	"  attempts     INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt INTEGER NOT NULL DEFAULT 0,"
	"  last_reply   TEXT NOT NULL DEFAULT '',"
	"  last_relay   TEXT NOT NULL DEFAULT '',"
	"  dsn_notify   INTEGER NOT NULL DEFAULT 0,"
	"  dsn_orcpt    TEXT NOT NULL DEFAULT '',"
	"  PRIMARY KEY (msg, idx)"
	") WITHOUT ROWID;"
	"INSERT INTO recipients_v5 (msg, idx, address, transport, nexthop, state,"
	"  attempts, next_attempt, last_reply, last_relay, dsn_notify, dsn_orcpt)"
	"  SELECT msg, idx, address, transport, nexthop, state, attempts,"
	"  next_attempt, last_reply, last_relay, dsn_notify, dsn_orcpt FROM recipients;"
	"DROP TABLE recipients;"
	"ALTER TABLE recipients_v5 RENAME TO recipients;"
	"CREATE INDEX recipients_due ON recipients (transport, state, next_attempt)"
	"  WHERE state IN ('queued', 'deferred');"
	"CREATE INDEX recipients_hop ON recipients (transport, state, nexthop,"
	"  next_attempt) WHERE state IN ('queued', 'deferred');",
};
#define QUEUE_DB_NMIGRATIONS \
	(sizeof(queue_db_migrations) / sizeof(queue_db_migrations[0]))
_Static_assert(QUEUE_DB_NMIGRATIONS == QUEUE_DB_SCHEMA_VERSION,
    "one migration per schema version");

#define MSG_COLS "id, qid, arrival_us, sender, client, helo, size, body_type, state, held, " \
	"dsn_ret, dsn_envid, warned"
#define RCPT_COLS "msg, idx, address, transport, nexthop, state, attempts, " \
	"next_attempt, last_reply, last_relay, dsn_notify, dsn_orcpt"
/* WAITING is also the condition of both recipient indexes: a query that
 * uses one names it.  No IN list of more than two strings: SQLite builds
 * a temporary B-tree for one each time the statement runs. */
#define WAITING "state IN ('queued', 'deferred')"
#define PENDING "state NOT IN ('sent', 'bounced')"
/* Recipients to a paused destination wait; moat_domain() is ours. */
#define NOT_PAUSED(addr) "moat_domain(" addr ") NOT IN (SELECT domain FROM paused)"
/* The state an operator sees for message m (docs/moatctl.md). */
#define VIEW_STATE "CASE WHEN m.held THEN 'held'" \
	" WHEN EXISTS (SELECT 1 FROM recipients a WHERE a.msg = m.id AND a.state = 'active')" \
	" THEN 'active'" \
	" WHEN EXISTS (SELECT 1 FROM recipients d WHERE d.msg = m.id AND d.state = 'deferred')" \
	" THEN 'deferred' ELSE 'queued' END"

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
	ST_FILTER_MSG, ST_MSG_SET_HELD, ST_MSG_RETRY,
	ST_PAUSE, ST_RESUME, ST_PAUSED_NEXT, ST_PAUSED_GET,
	ST_AUDIT_INSERT, ST_AUDIT_NEXT,
	ST_STATS_STATES, ST_STATS_WINDOW, ST_STATS_TOTAL, ST_TOP_DEST, ST_TOP_REASON,
	ST_SHAPE,
	ST_SCAN_QUEUED, ST_SCAN_DEFERRED, ST_DUE_HOP, ST_HOP_NEXT, ST_DUE_RCPT_HOP,
	ST_WARN_NEXT, ST_MSG_SET_WARNED, ST_WARN_FIRST,
	ST_RCPT_OLD, ST_COUNT_MINUTE, ST_COUNT_TOTAL,
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
	    " helo, size, body_type, state, dsn_ret, dsn_envid, warned)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, 'incoming', ?7, ?8, ?9)",
	[ST_MSG_SET_QUEUED] = "UPDATE messages SET state = 'queued', size = ?2"
	    " WHERE id = ?1 AND state = 'incoming'",
	[ST_MSG_DELETE] = "DELETE FROM messages WHERE id = ?1",
	[ST_MSG_GET] = "SELECT " MSG_COLS " FROM messages WHERE id = ?1",
	[ST_MSG_FIND] = "SELECT " MSG_COLS " FROM messages WHERE qid = ?1",
	[ST_MSG_PENDING] = "SELECT count(*) FROM recipients WHERE msg = ?1"
	    " AND " PENDING,
	[ST_RCPT_INSERT] = "INSERT INTO recipients (" RCPT_COLS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
	[ST_RCPT_GET] = "SELECT " RCPT_COLS " FROM recipients WHERE msg = ?1 AND idx = ?2",
	[ST_RCPT_NEXT] = "SELECT " RCPT_COLS " FROM recipients WHERE msg = ?1"
	    " AND idx > ?2 ORDER BY idx LIMIT 1",
	[ST_RCPT_SET_STATE] = "UPDATE recipients SET state = ?3 WHERE msg = ?1 AND idx = ?2",
	[ST_RCPT_UPDATE] = "UPDATE recipients SET state = ?3, attempts = ?4,"
	    " next_attempt = ?5, last_reply = ?6, last_relay = ?7"
	    " WHERE msg = ?1 AND idx = ?2",
	[ST_RCPT_SET_NEXTHOP] = "UPDATE recipients SET nexthop = ?3 WHERE msg = ?1 AND idx = ?2",
	/* One state at a time, so the index hands rows over in due order. */
	/* Held messages and paused destinations are never due. */
	[ST_DUE_MSG] = "SELECT r.msg, r.next_attempt FROM recipients r"
	    " JOIN messages m ON m.id = r.msg WHERE r.transport = ?1 AND r.state = ?2"
	    " AND r." WAITING " AND r.next_attempt <= ?3 AND m.state = 'queued'"
	    " AND m.held = 0 AND " NOT_PAUSED("r.address") " ORDER BY r.next_attempt LIMIT 1",
	[ST_DUE_RCPT] = "SELECT " RCPT_COLS " FROM recipients WHERE msg = ?1"
	    " AND transport = ?2 AND " WAITING " AND next_attempt <= ?3 AND idx > ?4"
	    " AND " NOT_PAUSED("address") " ORDER BY idx LIMIT 1",
	[ST_NEXT_DUE] = "SELECT min(next_attempt) FROM recipients"
	    " WHERE transport = ?1 AND state = ?2 AND " WAITING " AND next_attempt > ?3",
	[ST_CHUNK_INSERT] = "INSERT INTO chunks (msg, seq, data) VALUES (?1, ?2, ?3)",
	[ST_CHUNK_GET] = "SELECT data FROM chunks WHERE msg = ?1 AND seq = ?2",
	[ST_CHUNK_COUNT] = "SELECT count(*) FROM chunks WHERE msg = ?1",
	[ST_SUMMARY_MSG] = "SELECT " MSG_COLS " FROM messages WHERE state = 'queued'"
	    " AND id > ?1 ORDER BY id LIMIT 1",
	[ST_SUMMARY_COUNTS] = "SELECT"
	    " coalesce(sum(" PENDING "), 0),"
	    " coalesce(sum(state = 'active'), 0), coalesce(sum(state = 'deferred'), 0),"
	    " coalesce(sum(" WAITING " AND NOT (" NOT_PAUSED("address") ")), 0)"
	    " FROM recipients WHERE msg = ?1",
	[ST_REC_INCOMING] = "DELETE FROM messages WHERE state = 'incoming'",
	[ST_REC_ACTIVE] = "UPDATE recipients SET state = 'queued' WHERE state = 'active'",
	[ST_REC_FINISHED] = "DELETE FROM messages WHERE state = 'queued' AND NOT EXISTS"
	    " (SELECT 1 FROM recipients r WHERE r.msg = messages.id"
	    " AND r." PENDING ")",
	/* ?2 sender, ?3 recipient, ?4 domain, ?5 arrived before (us),
	 * ?6 reply text, ?7 state; NULL: no condition. */
	[ST_FILTER_MSG] = "SELECT " MSG_COLS " FROM messages m WHERE state = 'queued'"
	    " AND id > ?1"
	    " AND (?2 IS NULL OR sender = ?2 COLLATE NOCASE)"
	    " AND (?3 IS NULL OR EXISTS (SELECT 1 FROM recipients r WHERE r.msg = m.id"
	    "  AND r.address = ?3 COLLATE NOCASE))"
	    " AND (?4 IS NULL OR EXISTS (SELECT 1 FROM recipients r WHERE r.msg = m.id"
	    "  AND r." PENDING " AND moat_domain(r.address) = ?4))"
	    " AND (?5 IS NULL OR arrival_us <= ?5)"
	    " AND (?6 IS NULL OR EXISTS (SELECT 1 FROM recipients r WHERE r.msg = m.id"
	    "  AND r." PENDING " AND instr(lower(r.last_reply), lower(?6)) > 0))"
	    " AND (?7 IS NULL OR (?7 = 'bounce' AND sender = '') OR ?7 = " VIEW_STATE ")"
	    " ORDER BY id LIMIT 1",
	[ST_MSG_SET_HELD] = "UPDATE messages SET held = ?2 WHERE id = ?1 AND held != ?2",
	[ST_MSG_RETRY] = "UPDATE recipients SET next_attempt = ?2 WHERE msg = ?1 AND "
	    WAITING,
	[ST_PAUSE] = "INSERT OR IGNORE INTO paused (domain, since, uid) VALUES (?1, ?2, ?3)",
	[ST_RESUME] = "DELETE FROM paused WHERE domain = ?1",
	[ST_PAUSED_NEXT] = "SELECT domain, since, uid FROM paused WHERE domain > ?1"
	    " ORDER BY domain LIMIT 1",
	[ST_PAUSED_GET] = "SELECT 1 FROM paused WHERE domain = ?1",
	[ST_AUDIT_INSERT] = "INSERT INTO audit (time, uid, command, ids, result)"
	    " VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_AUDIT_NEXT] = "SELECT id, time, uid, command, ids, result FROM audit"
	    " WHERE id > ?1 ORDER BY id LIMIT 1",
	[ST_STATS_STATES] = "SELECT st, count(*), min(arrival_us) FROM"
	    " (SELECT m.arrival_us, " VIEW_STATE " AS st FROM messages m"
	    " WHERE m.state = 'queued') GROUP BY st",
	[ST_STATS_WINDOW] = "SELECT coalesce(sum(msgs_in), 0), coalesce(sum(bytes_in), 0),"
	    " coalesce(sum(msgs_out), 0), coalesce(sum(bytes_out), 0),"
	    " coalesce(sum(sent), 0), coalesce(sum(deferred), 0), coalesce(sum(bounced), 0)"
	    " FROM stats_minute WHERE minute > ?1",
	[ST_STATS_TOTAL] = "SELECT msgs_in, bytes_in, msgs_out, bytes_out, sent, deferred,"
	    " bounced FROM stats_total WHERE id = 1",
	[ST_TOP_DEST] = "SELECT moat_domain(r.address) AS d, count(*) AS n FROM recipients r"
	    " JOIN messages m ON m.id = r.msg WHERE m.state = 'queued' AND r." PENDING
	    " GROUP BY d ORDER BY n DESC, d LIMIT ?1",
	[ST_TOP_REASON] = "SELECT last_reply, count(*) AS n FROM recipients"
	    " WHERE state = 'deferred' GROUP BY last_reply ORDER BY n DESC, last_reply"
	    " LIMIT ?1",
	/* Each message once per destination domain it still has to reach. */
	[ST_SHAPE] = "SELECT DISTINCT r.msg, moat_domain(r.address), m.arrival_us"
	    " FROM recipients r JOIN messages m ON m.id = r.msg"
	    " WHERE m.state = 'queued' AND r." PENDING,
	/* Due work per next hop (docs/queue.md, "Next hops and concurrency").
	 * The scans step through one state each (two cursors merged by
	 * queue_db_scan_next), in due order from recipients_due. */
#define DUE_SCAN "SELECT r.msg, r.nexthop, r.next_attempt FROM recipients r" \
	" JOIN messages m ON m.id = r.msg WHERE r.transport = ?1 AND r.state = ?2" \
	" AND r." WAITING " AND r.next_attempt <= ?3 AND m.state = 'queued' AND m.held = 0" \
	" AND " NOT_PAUSED("r.address") " ORDER BY r.next_attempt"
	[ST_SCAN_QUEUED] = DUE_SCAN,
	[ST_SCAN_DEFERRED] = DUE_SCAN,
	/* The oldest due recipient of one next hop (recipients_hop). */
	[ST_DUE_HOP] = "SELECT r.msg, r.next_attempt FROM recipients r"
	    " JOIN messages m ON m.id = r.msg WHERE r.transport = ?1 AND r.state = ?2"
	    " AND r." WAITING " AND r.nexthop = ?3 AND r.next_attempt <= ?4"
	    " AND m.state = 'queued'"
	    " AND m.held = 0 AND " NOT_PAUSED("r.address") " ORDER BY r.next_attempt LIMIT 1",
	/* The next distinct next hop: one seek in recipients_hop each. */
	[ST_HOP_NEXT] = "SELECT nexthop FROM recipients WHERE transport = ?1"
	    " AND state = ?2 AND " WAITING " AND nexthop > ?3 ORDER BY nexthop LIMIT 1",
	[ST_DUE_RCPT_HOP] = "SELECT " RCPT_COLS " FROM recipients WHERE msg = ?1"
	    " AND transport = ?2 AND nexthop = ?3 AND " WAITING " AND next_attempt <= ?4"
	    " AND idx > ?5 AND " NOT_PAUSED("address") " ORDER BY idx LIMIT 1",
	/* Delay warnings: the next unwarned queued message that arrived
	 * before ?2 (µs), in arrival order (messages_warn). */
	[ST_WARN_NEXT] = "SELECT " MSG_COLS " FROM messages WHERE warned = 0"
	    " AND arrival_us <= ?2 AND (arrival_us > ?3 OR (arrival_us = ?3 AND id > ?1))"
	    " AND state = 'queued' ORDER BY arrival_us, id LIMIT 1",
	[ST_MSG_SET_WARNED] = "UPDATE messages SET warned = 1 WHERE id = ?1",
	/* The oldest unwarned arrival after ?1: one seek in messages_warn. */
	[ST_WARN_FIRST] = "SELECT min(arrival_us) FROM messages WHERE warned = 0"
	    " AND arrival_us > ?1",
	/* The recipient counters (queue_db_count): the state before a
	 * change, and the counts of one transaction added at its commit. */
	[ST_RCPT_OLD] = "SELECT state, attempts FROM recipients WHERE msg = ?1 AND idx = ?2",
	[ST_COUNT_MINUTE] = "INSERT INTO stats_minute (minute, sent, deferred, bounced)"
	    " VALUES (unixepoch() / 60, ?1, ?2, ?3) ON CONFLICT (minute) DO UPDATE SET"
	    " sent = sent + excluded.sent, deferred = deferred + excluded.deferred,"
	    " bounced = bounced + excluded.bounced",
	[ST_COUNT_TOTAL] = "UPDATE stats_total SET sent = sent + ?1,"
	    " deferred = deferred + ?2, bounced = bounced + ?3",
};

/* The recipient counters a transaction has yet to add (queue_db_count). */
enum queue_count { QCOUNT_SENT, QCOUNT_DEFERRED, QCOUNT_BOUNCED, QCOUNT_N };

struct queue_db {
	sqlite3		*h;
	sqlite3_stmt	*st[ST_COUNT];
	int		 in_txn;	/* we issued BEGIN and no COMMIT/ROLLBACK yet */
	int		 dirty;
	int		 in_sp;
	int64_t		 count[QCOUNT_N];	/* not yet in stats_minute/_total */
	int64_t		 sp_count[QCOUNT_N];	/* count[] when the savepoint began */
	uint32_t	 id_counter;
	int		 wal_frames;	/* frames in the WAL after the last commit */
	int		 wal_fd;	/* queue_db_defer_sync(): the WAL, or -1 */
	long long	 page_size;
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

/* Add the transaction's recipient counts to the counters, inside it. */
static int
queue_db_count_flush(struct queue_db *db)
{
	static const enum queue_stmt ids[] = { ST_COUNT_MINUTE, ST_COUNT_TOTAL };
	sqlite3_stmt *st;
	size_t i;
	int k;

	if (db->count[QCOUNT_SENT] == 0 && db->count[QCOUNT_DEFERRED] == 0 &&
	    db->count[QCOUNT_BOUNCED] == 0)
		return 0;
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		st = queue_db_stmt(db, ids[i]);
		for (k = 0; k < QCOUNT_N; k++)
			sqlite3_bind_int64(st, k + 1, db->count[k]);
		if (queue_db_run(db, st, "counters") == -1)
			return -1;
	}
	memset(db->count, 0, sizeof(db->count));
	return 0;
}

int
queue_db_commit(struct queue_db *db)
{
	if (!db->in_txn)
		return 0;
	if (db->in_sp)
		queue_db_sp_release(db);
	if (queue_db_count_flush(db) == -1 ||
	    queue_db_run(db, queue_db_stmt(db, ST_COMMIT), "commit") == -1) {
		/* A failed COMMIT may leave the transaction open (busy) or
		 * gone (I/O error); either way its contents are not durable. */
		if (!sqlite3_get_autocommit(db->h))
			(void)queue_db_run(db, queue_db_stmt(db, ST_ROLLBACK), "rollback");
		db->in_txn = db->dirty = 0;
		memset(db->count, 0, sizeof(db->count));
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
	memset(db->count, 0, sizeof(db->count));
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
	memcpy(db->sp_count, db->count, sizeof(db->count));
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
	memcpy(db->count, db->sp_count, sizeof(db->count));
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
 * file), the page size of a new file (before WAL mode writes its
 * header; an existing file keeps its own), WAL, one fsync per commit,
 * and a WAL that shrinks back after a burst of large messages.
 * secure_delete = FAST: Debian's SQLite zeroes every freed page by
 * default, which for a delivered message means writing its whole body
 * again (as zeros, into the WAL and then the file); FAST still clears
 * deleted rows inside the b-tree pages it writes anyway, and leaves
 * freed body pages as they are until they are reused.
 */
static int
queue_db_pragmas(struct queue_db *db)
{
	if (queue_db_exec(db, "PRAGMA locking_mode = EXCLUSIVE", "locking_mode") == -1 ||
	    queue_db_exec(db, "PRAGMA page_size = " QUEUE_PAGE_SIZE, "page_size") == -1 ||
	    queue_db_exec(db, "PRAGMA secure_delete = FAST", "secure_delete") == -1 ||
	    queue_db_set_wal(db) == -1 ||
	    queue_db_exec(db, "PRAGMA synchronous = FULL", "synchronous") == -1 ||
	    queue_db_exec(db, "PRAGMA temp_store = MEMORY", "temp_store") == -1 ||
	    queue_db_exec(db, "PRAGMA cache_size = -" QUEUE_CACHE_KIB, "cache_size") == -1 ||
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

/* moat_domain(address): the lower-cased part after the last '@'. */
static void
queue_db_fn_domain(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const unsigned char *a;
	char d[QUEUE_SENDER_MAX + 1];

	(void)argc;
	if ((a = sqlite3_value_text(argv[0])) == NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	queue_domain_of((const char *)a, d, sizeof(d));
	sqlite3_result_text(ctx, d, -1, SQLITE_TRANSIENT);
}

static int
queue_db_prepare_all(struct queue_db *db)
{
	int i;

	if (sqlite3_create_function(db->h, "moat_domain", 1,
	    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, queue_db_fn_domain,
	    NULL, NULL) != SQLITE_OK)
		return queue_db_fail(db, "moat_domain");

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

/*
 * SQLite calls this after every commit with the WAL's length in frames.
 * Having a hook replaces SQLite's own checkpoint inside COMMIT (the
 * wal_autocheckpoint of 1000 frames), which would run before the
 * waiting sessions are answered: the queue-manager checkpoints itself,
 * after the answers went out (queue_db_checkpoint).
 */
static int
queue_db_wal_hook(void *arg, sqlite3 *h, const char *name, int frames)
{
	struct queue_db *db = arg;

	(void)h; (void)name;
	db->wal_frames = frames;
	return SQLITE_OK;
}

int64_t
queue_db_wal_bytes(const struct queue_db *db)
{
	return (int64_t)db->wal_frames * db->page_size;
}

/*
 * Copy the WAL into the database file and fsync it.  Only between
 * transactions; nobody else reads the file (exclusive locking), so a
 * PASSIVE checkpoint copies every frame, and the next commit starts
 * writing the WAL from its beginning again.
 */
int
queue_db_checkpoint(struct queue_db *db, int *frames)
{
	int nlog = 0, ncopied = 0;

	*frames = 0;
	if (db->in_txn || db->wal_frames == 0)
		return 0;
	if (sqlite3_wal_checkpoint_v2(db->h, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    &nlog, &ncopied) != SQLITE_OK) {
		/* Tried again after the next commit, not at every turn. */
		db->wal_frames = 0;
		return queue_db_fail(db, "checkpoint");
	}
	*frames = ncopied;
	if (ncopied >= nlog)
		db->wal_frames = 0;
	return 0;
}

int
queue_db_defer_sync(struct queue_db *db)
{
	const char *name = sqlite3_db_filename(db->h, "main");
	char path[4096];
	struct stat st;
	int fd;

	if (db->wal_fd != -1)
		return db->wal_fd;
	if (name == NULL || name[0] == '\0' ||
	    (size_t)snprintf(path, sizeof(path), "%s-wal", name) >= sizeof(path)) {
		snprintf(db->err, sizeof(db->err), "no path for the WAL");
		return -1;
	}
	/* SQLite opened (or created) the WAL with the database; in exclusive
	 * locking mode it keeps that file, truncating it at most, until the
	 * connection closes. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(db->err, sizeof(db->err), "opening the WAL: %s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(db->err, sizeof(db->err), "the WAL is not a regular file");
		close(fd);
		return -1;
	}
	if (queue_db_exec(db, "PRAGMA synchronous = NORMAL", "synchronous") == -1) {
		close(fd);
		return -1;
	}
	db->wal_fd = fd;
	return fd;
}

/* Open, set the PRAGMAs, migrate, prepare every statement. */
struct queue_db *
queue_db_open(const char *path, char *err, size_t errlen)
{
	struct queue_db *db = xcalloc(1, sizeof(*db));
	int rc;

	db->wal_fd = -1;
	rc = sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, db->h != NULL ?
		    sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(db->h, 1);
	if (queue_db_pragmas(db) == -1 || queue_db_migrate(db) == -1 ||
	    queue_db_exec_int(db, "PRAGMA page_size", &db->page_size) == -1 ||
	    queue_db_prepare_all(db) == -1) {
		snprintf(err, errlen, "%s: %s", path, db->err);
		goto fail;
	}
	db->id_counter = queue_db_seed();
	sqlite3_wal_hook(db->h, queue_db_wal_hook, db);
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
	/* The last commit waits for the disk again, and so does the close's
	 * checkpoint, whatever queue_db_defer_sync() changed. */
	if (db->wal_fd != -1) {
		(void)sqlite3_exec(db->h, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
		close(db->wal_fd);
	}
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
	sqlite3_bind_int64(st, 7, m->dsn_ret);
	sqlite3_bind_text(st, 8, m->dsn_envid, -1, SQLITE_STATIC);
	/* Mail from <> gets no warning: created as warned. */
	sqlite3_bind_int(st, 9, m->warned || m->sender[0] == '\0');
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
	m->held = sqlite3_column_int(st, 9) != 0;
	m->dsn_ret = (uint32_t)sqlite3_column_int64(st, 10);
	queue_db_col_text(st, 11, m->dsn_envid, sizeof(m->dsn_envid));
	m->warned = sqlite3_column_int(st, 12) != 0;
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
queue_db_warn_next(struct queue_db *db, int64_t before_us, int64_t after_us,
    int64_t after_id, struct queue_msg *m)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_WARN_NEXT);

	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int64(st, 2, before_us);
	sqlite3_bind_int64(st, 3, after_us);
	return queue_db_msg_read(db, st, m);
}

int
queue_db_warn_first(struct queue_db *db, int64_t after_us, int64_t *first_us)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_WARN_FIRST);
	int r;

	sqlite3_bind_int64(st, 1, after_us);
	if ((r = queue_db_row(db, st, "first unwarned")) != 1)
		return r;
	r = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : 1;
	*first_us = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return r;
}

int
queue_db_msg_set_warned(struct queue_db *db, int64_t rowid)
{
	sqlite3_stmt *st;

	if (queue_db_write_begin(db) == -1)
		return -1;
	st = queue_db_stmt(db, ST_MSG_SET_WARNED);
	sqlite3_bind_int64(st, 1, rowid);
	return queue_db_run(db, st, "message warned");
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
	sqlite3_bind_int64(st, 11, r->dsn_notify);
	sqlite3_bind_text(st, 12, r->dsn_orcpt, -1, SQLITE_STATIC);
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
	r->dsn_notify = (uint32_t)sqlite3_column_int64(st, 10);
	queue_db_col_text(st, 11, r->dsn_orcpt, sizeof(r->dsn_orcpt));
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

/*
 * A recipient's state before a change: -1 when there is no such row
 * (then nothing changes and nothing is counted), -2 on an error.
 */
static int
queue_db_rcpt_old(struct queue_db *db, int64_t msg, uint32_t idx, int64_t *attempts)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_RCPT_OLD);
	int r, s;

	sqlite3_bind_int64(st, 1, msg);
	sqlite3_bind_int64(st, 2, idx);
	if ((r = queue_db_row(db, st, "recipient state")) != 1)
		return r == 0 ? -1 : -2;
	s = queue_db_word(rcpt_state_names, 5, sqlite3_column_text(st, 0));
	*attempts = sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	return s < 0 ? QRCPT_QUEUED : s;
}

/*
 * Count a change that was just stored, as the version 3 triggers did:
 * a recipient that became sent or bounced, and a deferred one whose
 * attempts went up.  The counts reach the tables at commit, in the same
 * transaction; a savepoint rolled back takes its counts with it.
 */
static void
queue_db_count(struct queue_db *db, int old, int64_t old_attempts,
    enum queue_rcpt_state s, int64_t attempts)
{
	if (old < 0)
		return;
	if (s == QRCPT_SENT && old != QRCPT_SENT)
		db->count[QCOUNT_SENT]++;
	else if (s == QRCPT_BOUNCED && old != QRCPT_BOUNCED)
		db->count[QCOUNT_BOUNCED]++;
	else if (s == QRCPT_DEFERRED && attempts > old_attempts)
		db->count[QCOUNT_DEFERRED]++;
}

/* Count a change the caller made without writing the row, because the
 * row is deleted in the same transaction (see qmgr_sched.c). */
void
queue_db_rcpt_counted(struct queue_db *db, enum queue_rcpt_state old_state,
    int64_t old_attempts, enum queue_rcpt_state s, int64_t attempts)
{
	queue_db_count(db, (int)old_state, old_attempts, s, attempts);
}

/* Whether a change to state s can move a counter (queue_db_count). */
static int
queue_db_counted(enum queue_rcpt_state s)
{
	return s == QRCPT_SENT || s == QRCPT_BOUNCED || s == QRCPT_DEFERRED;
}

int
queue_db_rcpt_set_state(struct queue_db *db, int64_t msg, uint32_t idx,
    enum queue_rcpt_state s)
{
	sqlite3_stmt *st;
	int64_t attempts = 0;
	int old = -1;

	if (queue_db_write_begin(db) == -1)
		return -1;
	if (queue_db_counted(s) &&
	    (old = queue_db_rcpt_old(db, msg, idx, &attempts)) == -2)
		return -1;
	st = queue_db_stmt(db, ST_RCPT_SET_STATE);
	sqlite3_bind_int64(st, 1, msg);
	sqlite3_bind_int64(st, 2, idx);
	sqlite3_bind_text(st, 3, queue_rcpt_state_name(s), -1, SQLITE_STATIC);
	if (queue_db_run(db, st, "recipient state") == -1)
		return -1;
	/* The attempts are not changed here, so a deferral is not counted. */
	queue_db_count(db, old, attempts, s, attempts);
	return 0;
}

/* Write a recipient's state, attempts and last reply, and count the
 * change against the state it had before (old, -1 when unknown). */
static int
queue_db_rcpt_store(struct queue_db *db, const struct queue_rcpt *r, int old,
    int64_t attempts)
{
	sqlite3_stmt *st;

	st = queue_db_stmt(db, ST_RCPT_UPDATE);
	sqlite3_bind_int64(st, 1, r->msg);
	sqlite3_bind_int64(st, 2, r->idx);
	sqlite3_bind_text(st, 3, queue_rcpt_state_name(r->state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, r->attempts);
	sqlite3_bind_int64(st, 5, r->next_attempt);
	sqlite3_bind_text(st, 6, r->last_reply, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, r->last_relay, -1, SQLITE_STATIC);
	if (queue_db_run(db, st, "update recipient") == -1)
		return -1;
	queue_db_count(db, old, attempts, r->state, r->attempts);
	return 0;
}

int
queue_db_rcpt_update(struct queue_db *db, const struct queue_rcpt *r)
{
	int64_t attempts = 0;
	int old = -1;

	if (queue_db_write_begin(db) == -1)
		return -1;
	if (queue_db_counted(r->state) &&
	    (old = queue_db_rcpt_old(db, r->msg, r->idx, &attempts)) == -2)
		return -1;
	return queue_db_rcpt_store(db, r, old, attempts);
}

/* The same, when the caller has just read the row (queue_db_rcpt_get)
 * and says what its state and attempts were: one statement less. */
int
queue_db_rcpt_update_from(struct queue_db *db, const struct queue_rcpt *r,
    enum queue_rcpt_state old_state, int64_t old_attempts)
{
	if (queue_db_write_begin(db) == -1)
		return -1;
	return queue_db_rcpt_store(db, r, (int)old_state, old_attempts);
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

/* Position one scan cursor on its next row. */
static int
queue_db_scan_step(struct queue_db *db, struct queue_scan *sc, int i)
{
	sqlite3_stmt *st = db->st[i == 0 ? ST_SCAN_QUEUED : ST_SCAN_DEFERRED];
	int r;

	if ((r = queue_db_row(db, st, "due scan")) == 1)
		sc->when[i] = sqlite3_column_int64(st, 2);
	sc->have[i] = r == 1;
	return r;
}

int
queue_db_scan_begin(struct queue_db *db, struct queue_scan *sc,
    enum queue_transport t, int64_t now)
{
	static const enum queue_rcpt_state ss[2] = { QRCPT_QUEUED, QRCPT_DEFERRED };
	sqlite3_stmt *st;
	int i;

	memset(sc, 0, sizeof(*sc));
	for (i = 0; i < 2; i++) {
		st = queue_db_stmt(db, i == 0 ? ST_SCAN_QUEUED : ST_SCAN_DEFERRED);
		sqlite3_bind_text(st, 1, queue_transport_name(t), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, queue_rcpt_state_name(ss[i]), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, now);
		if (queue_db_scan_step(db, sc, i) == -1) {
			queue_db_scan_end(db, sc);
			return -1;
		}
	}
	return 0;
}

int
queue_db_scan_next(struct queue_db *db, struct queue_scan *sc, int64_t *msg,
    char *hop, size_t hopsz)
{
	sqlite3_stmt *st;
	int i;

	if (!sc->have[0] && !sc->have[1])
		return 0;
	i = !sc->have[0] || (sc->have[1] && sc->when[1] < sc->when[0]);
	st = db->st[i == 0 ? ST_SCAN_QUEUED : ST_SCAN_DEFERRED];
	*msg = sqlite3_column_int64(st, 0);
	queue_db_col_text(st, 1, hop, hopsz);
	return queue_db_scan_step(db, sc, i) == -1 ? -1 : 1;
}

void
queue_db_scan_end(struct queue_db *db, struct queue_scan *sc)
{
	sqlite3_reset(db->st[ST_SCAN_QUEUED]);
	sqlite3_reset(db->st[ST_SCAN_DEFERRED]);
	sc->have[0] = sc->have[1] = 0;
}

int
queue_db_due_hop(struct queue_db *db, enum queue_transport t, const char *hop,
    int64_t now, int64_t *msg, int64_t *when)
{
	static const enum queue_rcpt_state ss[2] = { QRCPT_QUEUED, QRCPT_DEFERRED };
	sqlite3_stmt *st;
	int found = 0, r, i;

	for (i = 0; i < 2; i++) {
		st = queue_db_stmt(db, ST_DUE_HOP);
		sqlite3_bind_text(st, 1, queue_transport_name(t), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, queue_rcpt_state_name(ss[i]), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, hop, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, now);
		if ((r = queue_db_row(db, st, "due next hop")) == -1)
			return -1;
		if (r == 1 && (!found || sqlite3_column_int64(st, 1) < *when)) {
			*msg = sqlite3_column_int64(st, 0);
			*when = sqlite3_column_int64(st, 1);
			found = 1;
		}
		sqlite3_reset(st);
	}
	return found;
}

int
queue_db_hop_next(struct queue_db *db, enum queue_transport t, const char *after,
    char *hop, size_t hopsz)
{
	static const enum queue_rcpt_state ss[2] = { QRCPT_QUEUED, QRCPT_DEFERRED };
	char got[QUEUE_NEXTHOP_MAX + 1];
	sqlite3_stmt *st;
	int found = 0, r, i;

	for (i = 0; i < 2; i++) {
		st = queue_db_stmt(db, ST_HOP_NEXT);
		sqlite3_bind_text(st, 1, queue_transport_name(t), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, queue_rcpt_state_name(ss[i]), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, after, -1, SQLITE_STATIC);
		if ((r = queue_db_row(db, st, "next hop")) == -1)
			return -1;
		if (r == 1) {
			queue_db_col_text(st, 0, got, sizeof(got));
			if (!found || strcmp(got, hop) < 0)
				strlcpy_m(hop, got, hopsz);
			found = 1;
		}
		sqlite3_reset(st);
	}
	return found;
}

int
queue_db_due_rcpt_hop(struct queue_db *db, int64_t msg, enum queue_transport t,
    const char *hop, int64_t now, int64_t after, struct queue_rcpt *r)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_DUE_RCPT_HOP);

	sqlite3_bind_int64(st, 1, msg);
	sqlite3_bind_text(st, 2, queue_transport_name(t), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, hop, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, after);
	return queue_db_rcpt_read(db, st, r);
}

/*
 * The query plans of the scheduler's statements, one "name: detail" line
 * each, for the unit test that keeps them index searches (no SCAN of a
 * table, no temporary B-tree for a sort).
 */
int
queue_db_sched_plan(struct queue_db *db, struct buf *out)
{
	static const struct { enum queue_stmt id; const char *name; } st[] = {
		{ ST_DUE_MSG, "due_msg" }, { ST_DUE_RCPT, "due_rcpt" },
		{ ST_NEXT_DUE, "next_due" }, { ST_SCAN_QUEUED, "scan" },
		{ ST_DUE_HOP, "due_hop" }, { ST_HOP_NEXT, "hop_next" },
		{ ST_DUE_RCPT_HOP, "due_rcpt_hop" },
	};
	sqlite3_stmt *ex;
	const unsigned char *d;
	char *sql;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		sql = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sqlite3_sql(db->st[st[i].id]));
		if (sql == NULL)
			return -1;
		rc = sqlite3_prepare_v2(db->h, sql, -1, &ex, NULL);
		sqlite3_free(sql);
		if (rc != SQLITE_OK)
			return queue_db_fail(db, "explain");
		while ((rc = sqlite3_step(ex)) == SQLITE_ROW) {
			d = sqlite3_column_text(ex, 3);
			if (buf_printf(out, "%s: %s\n", st[i].name,
			    d != NULL ? (const char *)d : "") == -1) {
				sqlite3_finalize(ex);
				return -1;
			}
		}
		sqlite3_finalize(ex);
		if (rc != SQLITE_DONE)
			return queue_db_fail(db, "explain");
	}
	return 0;
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

/* The recipient counts of the summary whose message is already read. */
static int
queue_db_summary_counts(struct queue_db *db, struct queue_summary *s)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_SUMMARY_COUNTS);

	sqlite3_bind_int64(st, 1, s->msg.rowid);
	if (queue_db_row(db, st, "summary") != 1)
		return -1;
	s->pending = (uint32_t)sqlite3_column_int64(st, 0);
	s->active = (uint32_t)sqlite3_column_int64(st, 1);
	s->deferred = (uint32_t)sqlite3_column_int64(st, 2);
	s->paused = (uint32_t)sqlite3_column_int64(st, 3);
	sqlite3_reset(st);
	return 1;
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
	return queue_db_summary_counts(db, s);
}

static void
queue_db_bind_opt(sqlite3_stmt *st, int col, const char *v, int set)
{
	if (set)
		sqlite3_bind_text(st, col, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, col);
}

/* The next queued message after "after" that f selects. */
int
queue_db_filter_next(struct queue_db *db, int64_t after, const struct queue_filter *f,
    int64_t now, struct queue_summary *s)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_FILTER_MSG);
	int r;

	sqlite3_bind_int64(st, 1, after);
	queue_db_bind_opt(st, 2, f->from, f->has_from);
	queue_db_bind_opt(st, 3, f->to, f->to[0] != '\0');
	queue_db_bind_opt(st, 4, f->domain, f->domain[0] != '\0');
	if (f->older_than >= 0)
		sqlite3_bind_int64(st, 5, (now - f->older_than) * 1000000);
	queue_db_bind_opt(st, 6, f->reason, f->reason[0] != '\0');
	queue_db_bind_opt(st, 7, queue_view_state_name(f->state), f->state != QVIEW_ANY);
	if ((r = queue_db_msg_read(db, st, &s->msg)) != 1)
		return r;
	return queue_db_summary_counts(db, s);
}

/* Set or clear the hold of a message; 1 changed, 0 it already was. */
int
queue_db_msg_set_held(struct queue_db *db, int64_t rowid, int held)
{
	sqlite3_stmt *st;

	if (queue_db_write_begin(db) == -1)
		return -1;
	st = queue_db_stmt(db, ST_MSG_SET_HELD);
	sqlite3_bind_int64(st, 1, rowid);
	sqlite3_bind_int(st, 2, held ? 1 : 0);
	if (queue_db_run(db, st, "hold message") == -1)
		return -1;
	return sqlite3_changes(db->h) > 0;
}

/* Waiting recipients of a message become due at "now"; how many. */
int
queue_db_msg_retry(struct queue_db *db, int64_t rowid, int64_t now)
{
	sqlite3_stmt *st;

	if (queue_db_write_begin(db) == -1)
		return -1;
	st = queue_db_stmt(db, ST_MSG_RETRY);
	sqlite3_bind_int64(st, 1, rowid);
	sqlite3_bind_int64(st, 2, now);
	if (queue_db_run(db, st, "retry message") == -1)
		return -1;
	return sqlite3_changes(db->h);
}

/* Pause (or resume) a destination domain; 1 changed, 0 it already was. */
int
queue_db_pause(struct queue_db *db, const char *domain, int pause, int64_t now,
    long long uid)
{
	sqlite3_stmt *st;

	if (queue_db_write_begin(db) == -1)
		return -1;
	st = queue_db_stmt(db, pause ? ST_PAUSE : ST_RESUME);
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	if (pause) {
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_int64(st, 3, uid);
	}
	if (queue_db_run(db, st, pause ? "pause" : "resume") == -1)
		return -1;
	return sqlite3_changes(db->h) > 0;
}

/* Is the domain paused?  1, 0, -1. */
int
queue_db_paused(struct queue_db *db, const char *domain)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_PAUSED_GET);
	int r;

	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	if ((r = queue_db_row(db, st, "paused")) == 1)
		sqlite3_reset(st);
	return r;
}

/* The paused domain after "after" ("" for the first); 1, 0, -1. */
int
queue_db_paused_next(struct queue_db *db, const char *after, struct queue_paused *p)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_PAUSED_NEXT);
	int r;

	sqlite3_bind_text(st, 1, after, -1, SQLITE_TRANSIENT);
	if ((r = queue_db_row(db, st, "paused")) != 1)
		return r;
	queue_db_col_text(st, 0, p->domain, sizeof(p->domain));
	p->since = sqlite3_column_int64(st, 1);
	p->uid = sqlite3_column_int64(st, 2);
	sqlite3_reset(st);
	return 1;
}

int
queue_db_audit_add(struct queue_db *db, const struct queue_audit *a, const char *ids)
{
	sqlite3_stmt *st;

	if (queue_db_write_begin(db) == -1)
		return -1;
	st = queue_db_stmt(db, ST_AUDIT_INSERT);
	sqlite3_bind_int64(st, 1, a->time);
	sqlite3_bind_int64(st, 2, a->uid);
	sqlite3_bind_text(st, 3, a->command, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, ids, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, a->result, -1, SQLITE_STATIC);
	return queue_db_run(db, st, "audit");
}

/* The audit entry after id "after"; ids are copied into the capped buffer. */
int
queue_db_audit_next(struct queue_db *db, int64_t after, struct queue_audit *a,
    struct buf *ids)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_AUDIT_NEXT);
	const unsigned char *t;
	int r;

	sqlite3_bind_int64(st, 1, after);
	if ((r = queue_db_row(db, st, "audit")) != 1)
		return r;
	a->id = sqlite3_column_int64(st, 0);
	a->time = sqlite3_column_int64(st, 1);
	a->uid = sqlite3_column_int64(st, 2);
	queue_db_col_text(st, 3, a->command, sizeof(a->command));
	queue_db_col_text(st, 5, a->result, sizeof(a->result));
	buf_reset(ids);
	t = sqlite3_column_text(st, 4);
	if (t != NULL && buf_append_str(ids, (const char *)t) == -1) {
		buf_reset(ids);
		(void)buf_append_str(ids, "(too many to show)");
	}
	sqlite3_reset(st);
	return 1;
}

static void
queue_db_traffic(sqlite3_stmt *st, struct queue_traffic *t)
{
	t->msgs_in = sqlite3_column_int64(st, 0);
	t->bytes_in = sqlite3_column_int64(st, 1);
	t->msgs_out = sqlite3_column_int64(st, 2);
	t->bytes_out = sqlite3_column_int64(st, 3);
	t->sent = sqlite3_column_int64(st, 4);
	t->deferred = sqlite3_column_int64(st, 5);
	t->bounced = sqlite3_column_int64(st, 6);
}

/* Counts the open transaction will add at its commit, in this minute. */
static void
queue_db_traffic_pending(const struct queue_db *db, struct queue_traffic *t)
{
	t->sent += db->count[QCOUNT_SENT];
	t->deferred += db->count[QCOUNT_DEFERRED];
	t->bounced += db->count[QCOUNT_BOUNCED];
}

/* The traffic since minute bucket "after" (exclusive). */
static int
queue_db_window(struct queue_db *db, int64_t after, struct queue_traffic *t)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_STATS_WINDOW);

	sqlite3_bind_int64(st, 1, after);
	if (queue_db_row(db, st, "stats") != 1)
		return -1;
	queue_db_traffic(st, t);
	queue_db_traffic_pending(db, t);
	sqlite3_reset(st);
	return 0;
}

/* Messages per state, the oldest, and the traffic counters. */
int
queue_db_stats(struct queue_db *db, int64_t now, struct queue_stats *qs)
{
	sqlite3_stmt *st;
	int64_t oldest = 0;
	int r, v;

	memset(qs, 0, sizeof(*qs));
	st = queue_db_stmt(db, ST_STATS_STATES);
	while ((r = queue_db_row(db, st, "stats")) == 1) {
		v = queue_view_state_parse((const char *)sqlite3_column_text(st, 0));
		if (v > QVIEW_ANY && v < QVIEW_COUNT)
			qs->state[v] = sqlite3_column_int64(st, 1);
		if (oldest == 0 || sqlite3_column_int64(st, 2) < oldest)
			oldest = sqlite3_column_int64(st, 2);
	}
	if (r == -1)
		return -1;
	qs->oldest_age = oldest == 0 ? 0 : now - oldest / 1000000;
	if (qs->oldest_age < 0)
		qs->oldest_age = 0;
	if (queue_db_window(db, now / 60 - 1, &qs->minute) == -1 ||
	    queue_db_window(db, now / 60 - 60, &qs->hour) == -1)
		return -1;
	st = queue_db_stmt(db, ST_STATS_TOTAL);
	if (queue_db_row(db, st, "stats") != 1)
		return -1;
	queue_db_traffic(st, &qs->total);
	queue_db_traffic_pending(db, &qs->total);
	sqlite3_reset(st);
	return 0;
}

/* The n biggest destinations (which = 0) or deferral reasons (1). */
int
queue_db_top(struct queue_db *db, int which, int n, struct queue_top *top, int *got)
{
	sqlite3_stmt *st = queue_db_stmt(db, which == 0 ? ST_TOP_DEST : ST_TOP_REASON);
	int r = 0;

	*got = 0;
	sqlite3_bind_int(st, 1, n);
	while (*got < n && (r = queue_db_row(db, st, "top")) == 1) {
		queue_db_col_text(st, 0, top[*got].key, sizeof(top[*got].key));
		top[*got].count = sqlite3_column_int64(st, 1);
		(*got)++;
	}
	sqlite3_reset(st);
	return r == -1 ? -1 : 0;
}

/* Each pending (message, destination) pair with its age, to fn. */
int
queue_db_shape(struct queue_db *db, int64_t now,
    void (*fn)(const char *domain, int64_t age, void *arg), void *arg)
{
	sqlite3_stmt *st = queue_db_stmt(db, ST_SHAPE);
	const unsigned char *d;
	int r;

	while ((r = queue_db_row(db, st, "shape")) == 1) {
		d = sqlite3_column_text(st, 1);
		fn(d != NULL ? (const char *)d : "", now -
		    sqlite3_column_int64(st, 2) / 1000000, arg);
	}
	return r;
}

/*
 * Pure helpers of the operator's view, unit-tested.
 */

static const char *const view_state_names[QVIEW_COUNT] = {
	[QVIEW_ANY] = "any", [QVIEW_QUEUED] = "queued", [QVIEW_ACTIVE] = "active",
	[QVIEW_DEFERRED] = "deferred", [QVIEW_HELD] = "held", [QVIEW_BOUNCE] = "bounce",
};

const char *
queue_view_state_name(int v)
{
	return v >= 0 && v < QVIEW_COUNT ? view_state_names[v] : "?";
}

/* A state word to QVIEW_*, or -1. */
int
queue_view_state_parse(const char *s)
{
	int i;

	if (s == NULL)
		return -1;
	for (i = 1; i < QVIEW_COUNT; i++)
		if (strcmp(view_state_names[i], s) == 0)
			return i;
	return -1;
}

/* "90", "45s", "10m", "2h", "3d", "1w": seconds; -1 when malformed. */
int
queue_duration_parse(const char *s, int64_t *secs)
{
	int64_t v = 0, unit = 1;
	const char *p = s;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (INT64_MAX / 10) - 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	switch (*p) {
	case '\0':
		break;
	case 's':
		unit = 1;
		p++;
		break;
	case 'm':
		unit = 60;
		p++;
		break;
	case 'h':
		unit = 3600;
		p++;
		break;
	case 'd':
		unit = 86400;
		p++;
		break;
	case 'w':
		unit = 7 * 86400;
		p++;
		break;
	default:
		return -1;
	}
	/* Ten years is past any queue lifetime; larger is a typo. */
	if (*p != '\0' || v > QUEUE_DURATION_MAX / unit)
		return -1;
	*secs = v * unit;
	return 0;
}

/* A destination as pause and --domain take it: host name or [literal]. */
int
queue_domain_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > QUEUE_DOMAIN_MAX || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '[' ||
		    c == ']' || c == ':'))
			return 0;
	}
	return 1;
}

/* A domain in lower case, as stored in paused and compared. */
void
queue_domain_lower(const char *domain, char *dst, size_t dstsz)
{
	size_t i;

	strlcpy_m(dst, domain, dstsz);
	for (i = 0; dst[i] != '\0'; i++)
		if (dst[i] >= 'A' && dst[i] <= 'Z')
			dst[i] = (char)(dst[i] - 'A' + 'a');
}

/* The domain part of a mailbox, lower-cased, as pause and filters see it. */
void
queue_domain_of(const char *addr, char *dst, size_t dstsz)
{
	const char *at = strrchr(addr, '@');

	queue_domain_lower(at != NULL ? at + 1 : "", dst, dstsz);
}

void
queue_filter_init(struct queue_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->state = QVIEW_ANY;
	f->older_than = -1;
}

/* One condition of a filter as moatctl sends it; -1 for a bad one. */
int
queue_filter_set(struct queue_filter *f, const char *key, const char *value)
{
	size_t n = strlen(value);

	if (strcmp(key, "state") == 0) {
		if ((f->state = queue_view_state_parse(value)) == -1)
			return -1;
	} else if (strcmp(key, "from") == 0) {
		/* "<>" (or "") is the null sender; brackets are optional. */
		if (n >= 2 && value[0] == '<' && value[n - 1] == '>') {
			value++;
			n -= 2;
		}
		if (n > QUEUE_SENDER_MAX || memchr(value, '<', n) || memchr(value, '>', n))
			return -1;
		memcpy(f->from, value, n);
		f->from[n] = '\0';
		f->has_from = 1;
	} else if (strcmp(key, "to") == 0) {
		if (n >= 2 && value[0] == '<' && value[n - 1] == '>') {
			value++;
			n -= 2;
		}
		if (n == 0 || n > QUEUE_SENDER_MAX || memchr(value, '<', n) ||
		    memchr(value, '>', n))
			return -1;
		memcpy(f->to, value, n);
		f->to[n] = '\0';
	} else if (strcmp(key, "domain") == 0) {
		if (!queue_domain_valid(value))
			return -1;
		queue_domain_lower(value, f->domain, sizeof(f->domain));
	} else if (strcmp(key, "older_than") == 0) {
		if (queue_duration_parse(value, &f->older_than) == -1)
			return -1;
	} else if (strcmp(key, "reason") == 0) {
		if (n == 0 || n > QUEUE_TEXT_MAX)
			return -1;
		strlcpy_m(f->reason, value, sizeof(f->reason));
	} else
		return -1;
	return 0;
}

/* Does the filter select anything narrower than the whole queue? */
int
queue_filter_empty(const struct queue_filter *f)
{
	return f->state == QVIEW_ANY && !f->has_from && f->to[0] == '\0' &&
	    f->domain[0] == '\0' && f->older_than < 0 && f->reason[0] == '\0';
}

const char *const queue_shape_labels[QUEUE_SHAPE_BUCKETS] = {
	"5m", "10m", "20m", "40m", "80m", "160m", "320m", "640m", "1280m", "1280m+",
};

/* The qshape column of an age in seconds: 0 (< 5 min) .. 9 (>= 1280 min). */
int
queue_shape_bucket(int64_t age)
{
	int64_t limit = 5 * 60;
	int b;

	for (b = 0; b < QUEUE_SHAPE_BUCKETS - 1; b++, limit *= 2)
		if (age < limit)
			return b;
	return QUEUE_SHAPE_BUCKETS - 1;
}
