/*
 * test_queue_ops.c: what moatctl's commands rest on in the queue
 * database: the pure parsers (durations, filters, domains, qshape
 * buckets) and, against a temporary file, the 1 -> 2 migration of an
 * existing queue, hold and pause keeping recipients from the scheduler,
 * the filters, the audit table and the traffic counters (counted by
 * queue_db.c since version 4: savepoints, rollbacks and commits).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "t.h"
#include "t_queue.h"
#include "queue-manager/queue_db.h"

static char dir[64];
static char path[128];

static void
test_duration(void)
{
	static const struct {
		const char *s;
		int ok;
		int64_t secs;
	} cases[] = {
		{ "0", 1, 0 }, { "90", 1, 90 }, { "45s", 1, 45 }, { "10m", 1, 600 },
		{ "2h", 1, 7200 }, { "3d", 1, 259200 }, { "1w", 1, 604800 },
		{ "3650d", 1, 3650LL * 86400 },
		{ "", 0, 0 }, { "h", 0, 0 }, { "-2h", 0, 0 }, { "2 h", 0, 0 }, { "2hh", 0, 0 },
		{ "2x", 0, 0 }, { "1.5h", 0, 0 }, { " 2h", 0, 0 }, { "99999999999999999999", 0, 0 },
		{ "9223372036854775807s", 0, 0 }, { "4000d", 0, 0 }, { "2H", 0, 0 },
	};
	size_t i;
	int64_t v;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = -1;
		int r = queue_duration_parse(cases[i].s, &v);

		T_OK((r == 0) == cases[i].ok && (!cases[i].ok || v == cases[i].secs),
		    "duration \"%s\" -> %s %lld", cases[i].s, r == 0 ? "ok" : "refused",
		    (long long)v);
	}
	T_OK(queue_duration_parse(NULL, &v) == -1, "duration NULL refused");
}

static void
test_filter(void)
{
	static const struct {
		const char *key, *val;
		int ok;
	} cases[] = {
		{ "state", "held", 1 }, { "state", "bounce", 1 }, { "state", "active", 1 },
		{ "state", "queued", 1 }, { "state", "deferred", 1 }, { "state", "any", 0 },
		{ "state", "HELD", 0 }, { "state", "", 0 },
		{ "from", "a@b.example", 1 }, { "from", "<a@b.example>", 1 }, { "from", "<>", 1 },
		{ "from", "", 1 }, { "from", "a<b", 0 }, { "from", "<<a>>", 0 },
		{ "to", "c@d.example", 1 }, { "to", "", 0 }, { "to", "<>", 0 },
		{ "domain", "Example.ORG", 1 }, { "domain", "[192.0.2.1]", 1 },
		{ "domain", "a@b", 0 }, { "domain", "", 0 }, { "domain", ".x", 0 },
		{ "domain", "a b", 0 }, { "domain", "x%y", 0 }, { "domain", "x_y", 0 },
		{ "older_than", "2h", 1 }, { "older_than", "2hours", 0 },
		{ "reason", "4.3.0", 1 }, { "reason", "", 0 },
		{ "colour", "red", 0 }, { "", "", 0 }, { "id", "0123456789ABCDEF", 0 },
	};
	struct queue_filter f;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		queue_filter_init(&f);
		T_OK((queue_filter_set(&f, cases[i].key, cases[i].val) == 0) == cases[i].ok,
		    "filter %s=\"%s\" %s", cases[i].key, cases[i].val,
		    cases[i].ok ? "accepted" : "refused");
	}
	queue_filter_init(&f);
	T_OK(queue_filter_empty(&f), "a fresh filter selects everything");
	queue_filter_set(&f, "from", "<bob@x.example>");
	T_OK(f.has_from && strcmp(f.from, "bob@x.example") == 0, "brackets stripped: %s", f.from);
	queue_filter_set(&f, "domain", "Mixed.Example");
	T_OK(strcmp(f.domain, "mixed.example") == 0, "domain lower-cased: %s", f.domain);
	queue_filter_set(&f, "older_than", "10m");
	T_OK(f.older_than == 600 && !queue_filter_empty(&f), "older_than 10m");
	queue_filter_init(&f);
	queue_filter_set(&f, "from", "<>");
	T_OK(f.has_from && f.from[0] == '\0', "<> is the null sender");
	{
		char big[QUEUE_TEXT_MAX + 2];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		T_OK(queue_filter_set(&f, "reason", big) == -1, "over-long reason refused");
		T_OK(queue_filter_set(&f, "from", big) == -1, "over-long sender refused");
	}
}

static void
test_domain_of(void)
{
	static const struct {
		const char *addr, *dom;
	} cases[] = {
		{ "a@Example.ORG", "example.org" }, { "\"x@y\"@z.example", "z.example" },
		{ "nobody", "" }, { "a@", "" }, { "a@[192.0.2.1]", "[192.0.2.1]" },
	};
	char d[QUEUE_SENDER_MAX + 1];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		queue_domain_of(cases[i].addr, d, sizeof(d));
		T_OK(strcmp(d, cases[i].dom) == 0, "domain of %s is \"%s\" (got \"%s\")",
		    cases[i].addr, cases[i].dom, d);
	}
}

static void
test_shape_bucket(void)
{
	static const struct {
		int64_t age;
		int bucket;
	} cases[] = {
		{ -5, 0 }, { 0, 0 }, { 299, 0 }, { 300, 1 }, { 599, 1 }, { 600, 2 },
		{ 1199, 2 }, { 1200, 3 }, { 2400, 4 }, { 4800, 5 }, { 9600, 6 },
		{ 19200, 7 }, { 38400, 8 }, { 76799, 8 }, { 76800, 9 }, { INT64_MAX, 9 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		T_OK(queue_shape_bucket(cases[i].age) == cases[i].bucket,
		    "age %llds in column %s", (long long)cases[i].age,
		    queue_shape_labels[cases[i].bucket]);
	T_OK(strcmp(queue_shape_labels[QUEUE_SHAPE_BUCKETS - 1], "1280m+") == 0,
	    "last column is 1280m+");
}

/* A version-1 database, as the previous release left it. */
static void
make_v1(void)
{
	static const char *sql =
	    "CREATE TABLE messages (id INTEGER PRIMARY KEY, qid TEXT NOT NULL UNIQUE,"
	    " arrival_us INTEGER NOT NULL, sender TEXT NOT NULL, client TEXT NOT NULL,"
	    " helo TEXT NOT NULL, size INTEGER NOT NULL DEFAULT 0,"
	    " body_type INTEGER NOT NULL, state TEXT NOT NULL CHECK (state IN"
	    " ('incoming', 'queued')));"
	    "CREATE TABLE recipients (msg INTEGER NOT NULL REFERENCES messages(id)"
	    " ON DELETE CASCADE, idx INTEGER NOT NULL, address TEXT NOT NULL,"
	    " transport TEXT NOT NULL CHECK (transport IN ('relay', 'local')),"
	    " nexthop TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN"
	    " ('queued', 'deferred', 'active', 'sent', 'bounced')),"
	    " attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL DEFAULT 0,"
	    " last_reply TEXT NOT NULL DEFAULT '', last_relay TEXT NOT NULL DEFAULT '',"
	    " PRIMARY KEY (msg, idx)) WITHOUT ROWID;"
	    "CREATE INDEX recipients_due ON recipients (transport, state, next_attempt);"
	    "CREATE TABLE chunks (msg INTEGER NOT NULL REFERENCES messages(id)"
	    " ON DELETE CASCADE, seq INTEGER NOT NULL, data BLOB NOT NULL,"
	    " PRIMARY KEY (msg, seq));"
	    "PRAGMA application_id = 1836015988; PRAGMA user_version = 1;"
	    "INSERT INTO messages VALUES (1, '0000000000000001', 1000000, 'old@x.example',"
	    " '192.0.2.1', 'h', 5, 0, 'queued');"
	    "INSERT INTO recipients VALUES (1, 0, 'r@far.example', 'relay', '[127.0.0.1]:25',"
	    " 'deferred', 2, 50, '451 4.3.0 later', 'relay');"
	    "INSERT INTO chunks VALUES (1, 0, X'6869');";

	T_OK(t_sql_exec(path, sql) == 0, "version-1 database made");
}

/* A queued message from sender to one relay recipient, due at time 100. */
static int64_t
add_queued(struct queue_db *db, const char *sender, const char *rcpt, uint64_t size,
    char *qid)
{
	struct queue_msg m;

	if (t_qmsg_one(db, sender, rcpt, 100, &m) == -1 ||
	    queue_db_msg_set_queued(db, m.rowid, size) == -1)
		return -1;
	if (qid != NULL)
		snprintf(qid, QUEUE_ID_LEN + 1, "%s", m.qid);
	return m.rowid;
}

/* How many messages f selects. */
static int
count_filter(struct queue_db *db, const char *key, const char *val)
{
	struct queue_filter f;
	struct queue_summary s;
	int64_t after = 0;
	int n = 0;

	queue_filter_init(&f);
	if (key != NULL && queue_filter_set(&f, key, val) == -1)
		return -1;
	while (queue_db_filter_next(db, after, &f, 2000, &s) == 1) {
		after = s.msg.rowid;
		n++;
	}
	return n;
}

static void
test_db(void)
{
	struct queue_db *db;
	struct queue_msg m;
	struct queue_rcpt r;
	struct queue_stats qs;
	struct queue_audit a;
	struct queue_paused p;
	struct queue_top top[5];
	struct buf ids;
	char err[256], q1[QUEUE_ID_LEN + 1], q2[QUEUE_ID_LEN + 1];
	int64_t m1, m2, msg;
	int n;

	make_v1();
	db = queue_db_open(path, err, sizeof(err));
	T_OK(db != NULL, "version-1 database migrates: %s", db ? "" : err);
	if (db == NULL)
		return;
	T_OK(queue_db_msg_find(db, "0000000000000001", &m) == 1 && !m.held &&
	    strcmp(m.sender, "old@x.example") == 0, "old message kept, not held");
	T_OK(queue_db_rcpt_get(db, m.rowid, 0, &r) == 1 && r.state == QRCPT_DEFERRED &&
	    r.attempts == 2, "old recipient kept");
	T_OK(queue_db_msg_delete(db, m.rowid) == 0 && queue_db_commit(db) == 0,
	    "old message removed");

	m1 = add_queued(db, "bob@a.example", "x@Paused.Example", 100, q1);
	m2 = add_queued(db, "", "y@other.example", 50, q2);
	T_OK(m1 > 0 && m2 > 0 && queue_db_commit(db) == 0, "two messages queued");

	/* hold */
	T_OK(queue_db_msg_set_held(db, m2, 1) == 1, "hold changes");
	T_OK(queue_db_msg_set_held(db, m2, 1) == 0, "second hold changes nothing");
	T_OK(queue_db_due_msg(db, QTRANSPORT_RELAY, 2000, &msg) == 1 && msg == m1,
	    "only the unheld message is due");
	/* pause */
	T_OK(queue_db_pause(db, "paused.example", 1, 1500, 0) == 1, "pause");
	T_OK(queue_db_pause(db, "paused.example", 1, 1500, 0) == 0, "pause again: no change");
	T_OK(queue_db_paused(db, "paused.example") == 1, "paused.example is paused");
	T_OK(queue_db_due_msg(db, QTRANSPORT_RELAY, 2000, &msg) == 0,
	    "held and paused: nothing due");
	T_OK(queue_db_due_rcpt(db, m1, QTRANSPORT_RELAY, 2000, -1, &r) == 0,
	    "a paused recipient is not due");
	T_OK(queue_db_paused_next(db, "", &p) == 1 && strcmp(p.domain, "paused.example") == 0 &&
	    p.since == 1500, "paused domains listed");
	T_OK(count_filter(db, NULL, NULL) == 2, "empty filter: both");
	T_OK(count_filter(db, "state", "held") == 1, "state held: one");
	T_OK(count_filter(db, "state", "bounce") == 1, "state bounce: the null sender");
	T_OK(count_filter(db, "state", "queued") == 1, "state queued: the unheld one");
	T_OK(count_filter(db, "state", "deferred") == 0, "state deferred: none");
	T_OK(count_filter(db, "domain", "PAUSED.example") == 1, "domain filter");
	T_OK(count_filter(db, "to", "X@paused.example") == 1, "to filter, any case");
	T_OK(count_filter(db, "from", "<>") == 1, "from <>");
	T_OK(count_filter(db, "older_than", "17m") == 0, "nothing older than 17 min at t=2000");
	T_OK(count_filter(db, "older_than", "1h") == 0, "nothing older than an hour at t=2000");
	T_OK(count_filter(db, "older_than", "10m") == 2, "both older than 10 min at t=2000");
	T_OK(queue_db_pause(db, "paused.example", 0, 1600, 0) == 1, "resume");
	T_OK(queue_db_due_msg(db, QTRANSPORT_RELAY, 2000, &msg) == 1 && msg == m1,
	    "resumed domain is due again");
	T_OK(queue_db_msg_set_held(db, m2, 0) == 1, "release");
	T_OK(queue_db_msg_retry(db, m2, 1) == 1, "retry makes one recipient due");

	/* audit */
	memset(&a, 0, sizeof(a));
	a.time = 1234;
	a.uid = 65534;
	snprintf(a.command, sizeof(a.command), "delete");
	snprintf(a.result, sizeof(a.result), "refused");
	T_OK(queue_db_audit_add(db, &a, "A,B") == 0, "audit entry added");
	buf_init(&ids, 1024);
	memset(&a, 0, sizeof(a));
	T_OK(queue_db_audit_next(db, 0, &a, &ids) == 1 && a.uid == 65534 && a.time == 1234 &&
	    strcmp(a.command, "delete") == 0 && ids.len == 3 &&
	    memcmp(ids.data, "A,B", 3) == 0, "audit entry read back");
	T_OK(queue_db_audit_next(db, a.id, &a, &ids) == 0, "one audit entry");
	buf_free(&ids);

	/* counters, kept by triggers */
	T_OK(queue_db_rcpt_get(db, m1, 0, &r) == 1, "recipient read");
	r.state = QRCPT_DEFERRED;
	r.attempts = 1;
	snprintf(r.last_reply, sizeof(r.last_reply), "451 4.3.0 try later");
	T_OK(queue_db_rcpt_update(db, &r) == 0, "deferred once");
	T_OK(queue_db_rcpt_update(db, &r) == 0, "same attempt stored again");
	T_OK(queue_db_top(db, 1, 5, top, &n) == 0 && n == 1 && top[0].count == 1 &&
	    strcmp(top[0].key, "451 4.3.0 try later") == 0, "top deferral reason");
	T_OK(queue_db_top(db, 0, 5, top, &n) == 0 && n == 2, "two destinations");
	r.state = QRCPT_SENT;
	r.attempts = 2;
	T_OK(queue_db_rcpt_update(db, &r) == 0 && queue_db_msg_delete(db, m1) == 0 &&
	    queue_db_commit(db) == 0, "sent and removed");
	T_OK(queue_db_stats(db, (int64_t)time(NULL), &qs) == 0, "stats read");
	T_OK(qs.total.msgs_in == 2 && qs.total.bytes_in == 150, "in: 2 messages, 150 bytes "
	    "(%lld, %lld)", (long long)qs.total.msgs_in, (long long)qs.total.bytes_in);
	T_OK(qs.total.msgs_out == 2 && qs.total.bytes_out == 105,
	    "out: the old message and m1, 105 bytes (%lld, %lld)",
	    (long long)qs.total.msgs_out, (long long)qs.total.bytes_out);
	T_OK(qs.total.sent == 1 && qs.total.deferred == 1 && qs.total.bounced == 0,
	    "results: 1 sent, 1 deferred (not 2), 0 bounced");
	T_OK(qs.hour.msgs_in == 2 && qs.minute.msgs_in <= 2, "last hour counts the same");
	T_OK(qs.state[QVIEW_QUEUED] == 1 && qs.state[QVIEW_HELD] == 0, "one queued message");
	T_OK(qs.oldest_age > 0, "oldest age known");
	queue_db_close(db);
	db = queue_db_open(path, err, sizeof(err));
	T_OK(db != NULL && queue_db_stats(db, (int64_t)time(NULL), &qs) == 0 &&
	    qs.total.msgs_in == 2, "counters survive a reopen");
	queue_db_close(db);
}

/* The recipient counters (sent, deferred, bounced) of the whole queue. */
static int
counters(struct queue_db *db, int64_t *sent, int64_t *deferred, int64_t *bounced)
{
	struct queue_stats qs;

	if (queue_db_stats(db, (int64_t)time(NULL), &qs) == -1)
		return -1;
	if (qs.total.sent != qs.minute.sent || qs.total.sent != qs.hour.sent ||
	    qs.total.bounced != qs.hour.bounced || qs.total.deferred != qs.hour.deferred)
		return -1;	/* all of it happened in this minute */
	*sent = qs.total.sent;
	*deferred = qs.total.deferred;
	*bounced = qs.total.bounced;
	return 0;
}

/*
 * Each step changes one recipient of one message (idx 9: none such),
 * inside a savepoint that is kept or rolled back, or commits; then the
 * counters must have moved by what is given since the first commit
 * (the file carries test_db's counts), before and after a commit alike.
 */
static void
test_counters(void)
{
	enum op { SET, UPD, UPD_SP_ROLLBACK, SET_SP_KEEP, COMMIT, ROLLBACK, REOPEN };
	static const struct {
		const char	*label;
		enum op		 op;
		uint32_t	 idx;
		enum queue_rcpt_state state;
		uint32_t	 attempts;
		int64_t		 sent, deferred, bounced;
	} steps[] = {
		{ "active is not counted", SET, 0, QRCPT_ACTIVE, 0, 0, 0, 0 },
		{ "sent counts before the commit", UPD, 0, QRCPT_SENT, 1, 1, 0, 0 },
		{ "sent again does not count", SET, 0, QRCPT_SENT, 0, 1, 0, 0 },
		{ "committed", COMMIT, 0, 0, 0, 1, 0, 0 },
		{ "bounce in a savepoint rolled back", UPD_SP_ROLLBACK, 1, QRCPT_BOUNCED, 1,
		    1, 0, 0 },
		{ "bounce in a savepoint kept", SET_SP_KEEP, 1, QRCPT_BOUNCED, 0, 1, 0, 1 },
		{ "deferral with more attempts", UPD, 2, QRCPT_DEFERRED, 1, 1, 1, 1 },
		{ "deferral, same attempts", UPD, 2, QRCPT_DEFERRED, 1, 1, 1, 1 },
		{ "deferred by set_state: attempts unchanged", SET, 2, QRCPT_DEFERRED, 0,
		    1, 1, 1 },
		{ "no such recipient", UPD, 9, QRCPT_SENT, 1, 1, 1, 1 },
		{ "rolled back: back to the commit", ROLLBACK, 0, 0, 0, 1, 0, 0 },
		{ "sent once more after the rollback", UPD, 2, QRCPT_SENT, 2, 2, 0, 0 },
		{ "committed again", COMMIT, 0, 0, 0, 2, 0, 0 },
		{ "the counters are stored", REOPEN, 0, 0, 0, 2, 0, 0 },
	};
	struct queue_db *db;
	struct queue_rcpt r;
	char err[256];
	int64_t msg, sent, deferred, bounced, base[3] = { 0, 0, 0 };
	uint32_t i;
	size_t k;
	int ok;

	db = queue_db_open(path, err, sizeof(err));
	T_OK(db != NULL, "counters: open %s", db ? "" : err);
	if (db == NULL)
		return;
	msg = add_queued(db, "s@x.example", "r0@y.example", 10, NULL);
	memset(&r, 0, sizeof(r));
	r.msg = msg;
	r.transport = QTRANSPORT_RELAY;
	r.state = QRCPT_QUEUED;
	for (i = 1; i < 3 && msg > 0; i++) {
		r.idx = i;
		snprintf(r.address, sizeof(r.address), "r%u@y.example", i);
		if (queue_db_rcpt_add(db, &r) == -1)
			msg = -1;
	}
	T_OK(msg > 0 && queue_db_commit(db) == 0 && counters(db, &base[0], &base[1],
	    &base[2]) == 0, "counters: a message with 3 recipients");
	if (msg < 0) {
		queue_db_close(db);
		return;
	}
	for (k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		memset(&r, 0, sizeof(r));
		r.msg = msg;
		r.idx = steps[k].idx;
		r.state = steps[k].state;
		r.attempts = steps[k].attempts;
		switch (steps[k].op) {
		case SET:
			ok = queue_db_rcpt_set_state(db, msg, r.idx, r.state) == 0;
			break;
		case UPD:
			ok = queue_db_rcpt_update(db, &r) == 0;
			break;
		case UPD_SP_ROLLBACK:
			ok = queue_db_sp_begin(db) == 0 && queue_db_rcpt_update(db, &r) == 0;
			queue_db_sp_rollback(db);
			break;
		case SET_SP_KEEP:
			ok = queue_db_sp_begin(db) == 0 &&
			    queue_db_rcpt_set_state(db, msg, r.idx, r.state) == 0 &&
			    queue_db_sp_release(db) == 0;
			break;
		case COMMIT:
			ok = queue_db_commit(db) == 0;
			break;
		case ROLLBACK:
			ok = queue_db_rollback(db) == 0;
			break;
		default:
			queue_db_close(db);
			ok = (db = queue_db_open(path, err, sizeof(err))) != NULL;
			break;
		}
		if (db == NULL)
			break;
		ok = ok && counters(db, &sent, &deferred, &bounced) == 0;
		sent -= base[0];
		deferred -= base[1];
		bounced -= base[2];
		T_OK(ok && sent == steps[k].sent && deferred == steps[k].deferred &&
		    bounced == steps[k].bounced, "counters: %s (sent %lld, deferred %lld, "
		    "bounced %lld)", steps[k].label, (long long)sent, (long long)deferred,
		    (long long)bounced);
	}
	queue_db_close(db);
}

int
main(void)
{
	test_duration();
	test_filter();
	test_domain_of();
	test_shape_bucket();
	t_qfile_make("qops", dir, sizeof(dir), path, sizeof(path));
	test_db();
	test_counters();
	t_qfile_remove(dir, path);
	return t_done();
}
