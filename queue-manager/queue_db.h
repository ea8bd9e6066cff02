/*
 * queue_db.h: the queue database (SQLite), as the queue-manager sees it.
 *
 * One file, queue.db, in the queue-manager's working directory, opened by
 * this process alone (locking_mode=EXCLUSIVE), in WAL mode with
 * synchronous=FULL, or NORMAL once queue_db_defer_sync() hands the WAL's
 * fdatasync to the caller.  The schema is versioned with PRAGMA user_version and
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

#include "ipc_types.h"
#include "util/buf.h"

#define QUEUE_DB_SCHEMA_VERSION	5
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
	int			 held;		/* never scheduled (moatctl hold) */
	/* DSN (RFC 3461) of the message, as the client gave it. */
	uint32_t		 dsn_ret;	/* MOAT_RET_* */
	char			 dsn_envid[MOAT_ENVID_MAX + 1];	/* "" = none */
	int			 warned;	/* delay warning sent */
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
	/* DSN (RFC 3461) of the recipient, as the client gave it. */
	uint32_t		 dsn_notify;	/* MOAT_NOTIFY_* bits, 0 = none */
	char			 dsn_orcpt[MOAT_ORCPT_MAX + 1];	/* "" = none */
};

/* What the queue listing needs of one message. */
struct queue_summary {
	struct queue_msg	 msg;
	uint32_t		 pending;	/* recipients not yet final */
	uint32_t		 active;
	uint32_t		 deferred;
	uint32_t		 paused;	/* waiting for a paused domain */
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
/*
 * From now on a COMMIT writes the WAL without waiting for the disk
 * (synchronous=NORMAL): the caller makes it durable by an fdatasync of
 * the returned descriptor (the WAL, opened a second time) and treats no
 * commit as on disk before such a sync, begun after the commit returned,
 * has succeeded.  Checkpoints and the close still sync as with FULL.
 * -1 (and synchronous stays FULL) if the WAL cannot be opened.
 */
int	queue_db_defer_sync(struct queue_db *db);
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
/* Bytes of pages in the WAL after the last commit; SQLite checkpoints
 * only when asked to, with queue_db_checkpoint() (never inside a
 * transaction: with one open, it does nothing).  *frames says how many
 * frames it copied. */
int64_t	queue_db_wal_bytes(const struct queue_db *db);
int	queue_db_checkpoint(struct queue_db *db, int *frames);
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
/*
 * Delay warnings: the first queued message not yet warned that arrived
 * at or before before_us and after (after_us, after_id) in (arrival, id)
 * order; 1, 0 none, -1 error.  Null-sender mail is stored warned.
 */
int	queue_db_warn_next(struct queue_db *db, int64_t before_us, int64_t after_us,
	    int64_t after_id, struct queue_msg *m);
int	queue_db_msg_set_warned(struct queue_db *db, int64_t rowid);
/* The earliest arrival after after_us of an unwarned message; 1, 0, -1. */
int	queue_db_warn_first(struct queue_db *db, int64_t after_us, int64_t *first_us);

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
/* As queue_db_rcpt_update, for a row the caller has just read: old_state
 * and old_attempts are what it read, so the counters need no second look. */
int	queue_db_rcpt_update_from(struct queue_db *db, const struct queue_rcpt *r,
	    enum queue_rcpt_state old_state, int64_t old_attempts);
/* Count a change of state (sent, bounced, a deferral with more attempts)
 * that is not written because the recipient's row is deleted in the same
 * transaction; the counters then say what they would have said. */
void	queue_db_rcpt_counted(struct queue_db *db, enum queue_rcpt_state old_state,
	    int64_t old_attempts, enum queue_rcpt_state s, int64_t attempts);
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

/*
 * Due work by next hop (relay).  A scan hands over the due recipients of
 * transport t as (message, stored next hop) pairs, oldest first; end it
 * before any other use of the database.  queue_db_due_hop() is the
 * oldest due recipient of one next hop; queue_db_hop_next() the first
 * next hop after "after" ("" for the first) among waiting recipients
 * (due or not); queue_db_due_rcpt_hop() the next due recipient of msg
 * stored with next hop hop, after index "after".  1, 0 none, -1 error.
 */
struct queue_scan {
	int		 have[2];	/* queued, deferred: a row is ready */
	int64_t		 when[2];
};
int	queue_db_scan_begin(struct queue_db *db, struct queue_scan *sc,
	    enum queue_transport t, int64_t now);
int	queue_db_scan_next(struct queue_db *db, struct queue_scan *sc, int64_t *msg,
	    char *hop, size_t hopsz);
void	queue_db_scan_end(struct queue_db *db, struct queue_scan *sc);
int	queue_db_due_hop(struct queue_db *db, enum queue_transport t, const char *hop,
	    int64_t now, int64_t *msg, int64_t *when);
int	queue_db_hop_next(struct queue_db *db, enum queue_transport t, const char *after,
	    char *hop, size_t hopsz);
int	queue_db_due_rcpt_hop(struct queue_db *db, int64_t msg, enum queue_transport t,
	    const char *hop, int64_t now, int64_t after, struct queue_rcpt *r);
/* The query plans of the scheduling statements, "name: detail" lines
 * appended to out (for tests: every one must be an index search). */
int	queue_db_sched_plan(struct queue_db *db, struct buf *out);

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

/*
 * The operator's view (moatctl, docs/moatctl.md).  A message's state is
 * held if it is held, else active if a recipient is with an agent, else
 * deferred if one failed temporarily, else queued; "bounce" selects the
 * notifications moat generated (null sender) whatever their state.
 */
enum queue_view_state {
	QVIEW_ANY, QVIEW_QUEUED, QVIEW_ACTIVE, QVIEW_DEFERRED, QVIEW_HELD,
	QVIEW_BOUNCE, QVIEW_COUNT
};

#define QUEUE_DOMAIN_MAX	253
#define QUEUE_DURATION_MAX	(10LL * 366 * 86400)
#define QUEUE_SHAPE_BUCKETS	10	/* 5m .. 1280m, 1280m+ */
#define QUEUE_AUDIT_CMD_MAX	15
#define QUEUE_AUDIT_RESULT_MAX	63

/* A selection of messages; empty strings and -1 select everything. */
struct queue_filter {
	int		 state;			/* QVIEW_* */
	int		 has_from;		/* from is set ("" = <>) */
	char		 from[QUEUE_SENDER_MAX + 1];
	char		 to[QUEUE_SENDER_MAX + 1];
	char		 domain[QUEUE_SENDER_MAX + 1];	/* lower case */
	int64_t		 older_than;		/* seconds, -1 none */
	char		 reason[QUEUE_TEXT_MAX + 1];	/* in the last reply */
};

struct queue_paused {
	char		 domain[QUEUE_SENDER_MAX + 1];
	int64_t		 since;
	long long	 uid;
};

struct queue_audit {
	int64_t		 id;
	int64_t		 time;
	long long	 uid;
	char		 command[QUEUE_AUDIT_CMD_MAX + 1];
	char		 result[QUEUE_AUDIT_RESULT_MAX + 1];
};

/* Traffic counted by the database's triggers (docs/moatctl.md, stats). */
struct queue_traffic {
	int64_t		 msgs_in, bytes_in, msgs_out, bytes_out;
	int64_t		 sent, deferred, bounced;	/* recipient results */
};

struct queue_stats {
	int64_t			 state[QVIEW_COUNT];	/* messages per state */
	int64_t			 oldest_age;		/* seconds, 0: empty */
	struct queue_traffic	 minute, hour, total;
};

struct queue_top {
	char		 key[QUEUE_TEXT_MAX + 1];
	int64_t		 count;
};

int	queue_db_filter_next(struct queue_db *db, int64_t after,
	    const struct queue_filter *f, int64_t now, struct queue_summary *s);
/* 1 changed, 0 unchanged, -1 error. */
int	queue_db_msg_set_held(struct queue_db *db, int64_t rowid, int held);
/* Waiting recipients become due at now; how many, or -1. */
int	queue_db_msg_retry(struct queue_db *db, int64_t rowid, int64_t now);
/* 1 changed, 0 unchanged, -1 error. */
int	queue_db_pause(struct queue_db *db, const char *domain, int pause,
	    int64_t now, long long uid);
int	queue_db_paused(struct queue_db *db, const char *domain);
int	queue_db_paused_next(struct queue_db *db, const char *after,
	    struct queue_paused *p);
int	queue_db_audit_add(struct queue_db *db, const struct queue_audit *a,
	    const char *ids);
int	queue_db_audit_next(struct queue_db *db, int64_t after, struct queue_audit *a,
	    struct buf *ids);
int	queue_db_stats(struct queue_db *db, int64_t now, struct queue_stats *qs);
/* which: 0 destinations with pending recipients, 1 deferral replies. */
int	queue_db_top(struct queue_db *db, int which, int n, struct queue_top *top,
	    int *got);
int	queue_db_shape(struct queue_db *db, int64_t now,
	    void (*fn)(const char *domain, int64_t age, void *arg), void *arg);

/* Pure helpers (no database). */
const char *queue_view_state_name(int v);
int	queue_view_state_parse(const char *s);
int	queue_duration_parse(const char *s, int64_t *secs);
int	queue_domain_valid(const char *s);
void	queue_domain_of(const char *addr, char *dst, size_t dstsz);
void	queue_domain_lower(const char *domain, char *dst, size_t dstsz);
void	queue_filter_init(struct queue_filter *f);
int	queue_filter_set(struct queue_filter *f, const char *key, const char *value);
int	queue_filter_empty(const struct queue_filter *f);
extern const char *const queue_shape_labels[QUEUE_SHAPE_BUCKETS];
int	queue_shape_bucket(int64_t age);

/* Names of states and transports, as stored and shown. */
const char *queue_msg_state_name(enum queue_msg_state s);
const char *queue_rcpt_state_name(enum queue_rcpt_state s);
const char *queue_transport_name(enum queue_transport t);

#endif
