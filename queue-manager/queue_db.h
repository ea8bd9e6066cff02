/*
 * queue_db.h: the queue database (SQLite), as the queue-manager sees it.
 *
 * One file, queue.db, in the queue-manager's working directory, opened by
 * this process alone (locking_mode=EXCLUSIVE), in WAL mode with
 * synchronous=FULL.  The schema is versioned with PRAGMA user_version and
 * migrates itself on open.  Every statement is prepared once, at open.
 *
 * Writes go into one long transaction that the caller opens lazily (any
 * write function starts it) and closes with queue_db_commit(): that is the
 * group commit of docs/queue.md.  A failed write returns -1; the caller
 * then asks queue_db_txn_lost() whether SQLite threw the whole transaction
 * away (disk full, I/O error) or only the one statement.
 *
 * Nothing here logs; errors are returned with a message in
 * queue_db_errmsg().
 */
#ifndef MOAT_QUEUE_DB_H
#define MOAT_QUEUE_DB_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define QUEUE_DB_SCHEMA_VERSION	1
#define QUEUE_ID_LEN		16	/* upper-case hex digits */

enum queue_msg_state {
	QMSG_INCOMING,		/* BEGIN seen, COMMIT not yet */
	QMSG_QUEUED,		/* accepted: COMMIT_OK was (or will be) sent */
};

enum queue_rcpt_state {
	QRCPT_QUEUED,		/* waiting for its first or next attempt */
	QRCPT_DEFERRED,		/* failed temporarily; see next_attempt */
	QRCPT_ACTIVE,		/* handed to a delivery agent */
	QRCPT_SENT,		/* final: delivered */
	QRCPT_BOUNCED,		/* final: failed, bounce queued (or dropped) */
};

enum queue_transport {
	QTRANSPORT_RELAY = 1,	/* = MOAT_TRANSPORT_RELAY */
	QTRANSPORT_LOCAL = 2,	/* = MOAT_TRANSPORT_LOCAL */
};

#define QUEUE_SENDER_MAX	254	/* ADDR_MAILBOX_MAX */
#define QUEUE_CLIENT_MAX	63
#define QUEUE_HELO_MAX		255	/* MOAT_HELO_MAX */
#define QUEUE_NEXTHOP_MAX	300	/* MOAT_NEXTHOP_MAX */
#define QUEUE_TEXT_MAX		1024	/* MOAT_TEXT_MAX */

struct queue_db;

/* A message's envelope, as stored. */
struct queue_msg {
	int64_t			 rowid;
	char			 qid[QUEUE_ID_LEN + 1];
	int64_t			 arrival_us;	/* microseconds since the epoch */
	char			 sender[QUEUE_SENDER_MAX + 1];	/* "" = <> */
	char			 client[QUEUE_CLIENT_MAX + 1];
	char			 helo[QUEUE_HELO_MAX + 1];
	uint64_t		 size;
	int			 body_type;
	enum queue_msg_state	 state;
};

/* One recipient of a message, as stored. */
struct queue_rcpt {
	int64_t			 msg;
	uint32_t		 idx;
	char			 address[QUEUE_SENDER_MAX + 1];
	enum queue_transport	 transport;
	char			 nexthop[QUEUE_NEXTHOP_MAX + 1];
	enum queue_rcpt_state	 state;
	uint32_t		 attempts;
	int64_t			 next_attempt;	/* unix seconds */
	char			 last_reply[QUEUE_TEXT_MAX + 1];
	char			 last_relay[QUEUE_NEXTHOP_MAX + 1];
};

/* What the queue listing needs of one message. */
struct queue_summary {
	struct queue_msg	 msg;
	uint32_t		 pending;	/* recipients not yet final */
	uint32_t		 active;
	uint32_t		 deferred;
};

/* What start-up recovery did. */
struct queue_recovery {
	long long		 incoming_deleted;
	long long		 active_requeued;
	long long		 finished_deleted;
};

/* Open (creating and migrating as needed) the database at path. */
struct queue_db *queue_db_open(const char *path, char *err, size_t errlen);
/* Commit what is pending, then close. */
void	queue_db_close(struct queue_db *db);
const char *queue_db_errmsg(const struct queue_db *db);

/*
 * Start-up recovery, in its own committed transaction: incoming messages
 * (never acknowledged) are deleted, active recipients (in flight when the
 * process died) go back to queued, and messages with no recipient left to
 * deliver are removed.
 */
int	queue_db_recover(struct queue_db *db, struct queue_recovery *st);

/* Transactions: begin is implicit in every write. */
int	queue_db_in_txn(const struct queue_db *db);
int	queue_db_commit(struct queue_db *db);
int	queue_db_rollback(struct queue_db *db);
/* True when a transaction this layer had open is gone (SQLite rolled it
 * back after an error): everything written since the last commit is lost. */
int	queue_db_txn_lost(const struct queue_db *db);
/* Writes since the last commit? */
int	queue_db_dirty(const struct queue_db *db);
/* A nested unit inside the transaction, undone as a whole on failure. */
int	queue_db_sp_begin(struct queue_db *db);
int	queue_db_sp_release(struct queue_db *db);
void	queue_db_sp_rollback(struct queue_db *db);

/* Queue ids: 16 upper-case hex digits from a time and 12 low bits. */
void	queue_id_format(uint64_t usec, uint32_t low, char out[QUEUE_ID_LEN + 1]);
int	queue_id_valid(const char *s);

/*
 * Messages.  queue_db_msg_create() fills m->qid (unique in the table) and
 * m->rowid, and stores the message in state incoming.
 */
int	queue_db_msg_create(struct queue_db *db, struct queue_msg *m);
int	queue_db_msg_set_queued(struct queue_db *db, int64_t rowid, uint64_t size);
int	queue_db_msg_delete(struct queue_db *db, int64_t rowid);
/* 1 found, 0 not found, -1 error. */
int	queue_db_msg_get(struct queue_db *db, int64_t rowid, struct queue_msg *m);
int	queue_db_msg_find(struct queue_db *db, const char *qid, struct queue_msg *m);
/* Recipients that are neither sent nor bounced. */
int	queue_db_msg_pending(struct queue_db *db, int64_t rowid, uint32_t *n);

/* Recipients. */
int	queue_db_rcpt_add(struct queue_db *db, const struct queue_rcpt *r);
/* 1 found, 0 not found, -1 error. */
int	queue_db_rcpt_get(struct queue_db *db, int64_t msg, uint32_t idx,
	    struct queue_rcpt *r);
/* The recipient after index "after" (-1: the first); 1, 0 none, -1 error. */
int	queue_db_rcpt_next(struct queue_db *db, int64_t msg, int64_t after,
	    struct queue_rcpt *r);
int	queue_db_rcpt_set_state(struct queue_db *db, int64_t msg, uint32_t idx,
	    enum queue_rcpt_state st);
/* Store the outcome of an attempt: state, attempts, next, reply, relay. */
int	queue_db_rcpt_update(struct queue_db *db, const struct queue_rcpt *r);
/* The route of a recipient (when relay_host changed since acceptance). */
int	queue_db_rcpt_set_nexthop(struct queue_db *db, int64_t msg, uint32_t idx,
	    const char *nexthop);

/*
 * Scheduling.  A recipient is due when it is queued or deferred with
 * next_attempt <= now and its message is queued (not incoming).
 */
/* The message with the earliest due recipient for transport; 1, 0, -1. */
int	queue_db_due_msg(struct queue_db *db, enum queue_transport t, int64_t now,
	    int64_t *msg);
/* The next due recipient of msg for transport after index "after". */
int	queue_db_due_rcpt(struct queue_db *db, int64_t msg, enum queue_transport t,
	    int64_t now, int64_t after, struct queue_rcpt *r);
/* Earliest next_attempt later than "after" of any waiting recipient
 * (a recipient of a message still incoming may count: waking early is
 * harmless); 1, 0 none, -1. */
int	queue_db_next_due(struct queue_db *db, int64_t after, int64_t *when);

/* Body chunks. */
int	queue_db_chunk_add(struct queue_db *db, int64_t msg, uint32_t seq,
	    const void *p, size_t n);
/* Replace out's contents with chunk seq; 1 found, 0 not found, -1 error. */
int	queue_db_chunk_get(struct queue_db *db, int64_t msg, uint32_t seq,
	    struct buf *out);
int	queue_db_chunk_count(struct queue_db *db, int64_t msg, uint32_t *n);

/* The listing: the first queued message after rowid "after"; 1, 0, -1. */
int	queue_db_summary_next(struct queue_db *db, int64_t after,
	    struct queue_summary *s);

/* Names of states and transports, as stored and shown. */
const char *queue_msg_state_name(enum queue_msg_state s);
const char *queue_rcpt_state_name(enum queue_rcpt_state s);
const char *queue_transport_name(enum queue_transport t);

#endif
