/*
 * test_queue_nexthop.c: the queue database's due work by next hop
 * (queue-manager/queue_db.c), against a temporary file: the merged scan
 * in due order, the oldest due recipient of one next hop, the distinct
 * next hops, a message's recipients of one next hop; held messages,
 * paused domains, incoming messages and future attempts left out; and
 * the query plans of every scheduling statement being index searches,
 * with 2000 messages queued.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t.h"
#include "t_queue.h"
#include "util/buf.h"
#include "queue-manager/queue_db.h"

#define HOP_A	"smtp:a.example:25"
#define HOP_B	"smtp:[192.0.2.1]:25"
#define HOP_C	"lmtp:unix:/run/lmtp"

static char dir[64];
static char path[128];

static void
cleanup(void)
{
	t_qfile_remove(dir, path);
}

/* One recipient: index, address, next hop, state, next attempt. */
struct rc {
	const char		*address;
	const char		*hop;
	enum queue_rcpt_state	 state;
	int64_t			 next;
};

/* A queued message with the given recipients; returns its row id. */
static int64_t
add(struct queue_db *db, const struct rc *r, size_t n, int queued)
{
	struct queue_msg m;
	struct queue_rcpt q;
	size_t i;

	memset(&m, 0, sizeof(m));
	m.arrival_us = 1700000000000000LL;
	snprintf(m.sender, sizeof(m.sender), "s@sender.example");
	snprintf(m.client, sizeof(m.client), "192.0.2.7");
	snprintf(m.helo, sizeof(m.helo), "client.example");
	if (queue_db_msg_create(db, &m) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		memset(&q, 0, sizeof(q));
		q.msg = m.rowid;
		q.idx = (uint32_t)i;
		snprintf(q.address, sizeof(q.address), "%s", r[i].address);
		q.transport = QTRANSPORT_RELAY;
		snprintf(q.nexthop, sizeof(q.nexthop), "%s", r[i].hop);
		q.state = r[i].state;
		q.next_attempt = r[i].next;
		if (queue_db_rcpt_add(db, &q) == -1)
			return -1;
	}
	if (queued && queue_db_msg_set_queued(db, m.rowid, 10) == -1)
		return -1;
	return m.rowid;
}

/* Every (message, next hop) the scan yields, as "msg:hop;" text. */
static void
scan_all(struct queue_db *db, int64_t now, char *out, size_t outsz)
{
	struct queue_scan sc;
	char hop[QUEUE_NEXTHOP_MAX + 1];
	int64_t msg;
	size_t len;

	out[0] = '\0';
	if (queue_db_scan_begin(db, &sc, QTRANSPORT_RELAY, now) == -1) {
		snprintf(out, outsz, "error");
		return;
	}
	while (queue_db_scan_next(db, &sc, &msg, hop, sizeof(hop)) == 1) {
		len = strlen(out);
		snprintf(out + len, outsz - len, "%lld:%s;", (long long)msg, hop);
	}
	queue_db_scan_end(db, &sc);
}

static void
test_queries(struct queue_db *db)
{
	static const struct rc m1[] = {
		{ "u1@a.example", HOP_A, QRCPT_QUEUED, 100 },
		{ "u2@b.example", HOP_B, QRCPT_QUEUED, 100 },
		{ "u3@a.example", HOP_A, QRCPT_DEFERRED, 50 },
		{ "u4@c.example", HOP_C, QRCPT_SENT, 10 },
	};
	static const struct rc m2[] = {
		{ "v1@b.example", HOP_B, QRCPT_DEFERRED, 70 },
		{ "v2@a.example", HOP_A, QRCPT_DEFERRED, 5000 },	/* not due */
	};
	static const struct rc m3[] = {	/* held */
		{ "w1@c.example", HOP_C, QRCPT_QUEUED, 1 },
	};
	static const struct rc m4[] = {	/* incoming */
		{ "x1@c.example", HOP_C, QRCPT_QUEUED, 1 },
	};
	static const struct rc m5[] = {	/* paused domain */
		{ "y1@paused.example", HOP_C, QRCPT_QUEUED, 2 },
		{ "y2@a.example", HOP_A, QRCPT_ACTIVE, 2 },
	};
	struct queue_rcpt r;
	char got[512], want[512], hop[QUEUE_NEXTHOP_MAX + 1];
	int64_t i1, i2, i3, i4, i5, msg = 0, when = 0;
	int n;

	i1 = add(db, m1, 4, 1);
	i2 = add(db, m2, 2, 1);
	i3 = add(db, m3, 1, 1);
	i4 = add(db, m4, 1, 0);
	i5 = add(db, m5, 2, 1);
	T_OK(i1 > 0 && i2 > 0 && i3 > 0 && i4 > 0 && i5 > 0, "messages stored");
	T_OK(queue_db_msg_set_held(db, i3, 1) == 1, "message 3 held");
	T_OK(queue_db_pause(db, "paused.example", 1, 0, 0) == 1, "domain paused");

	/* Deferred at 50 and 70 interleave with queued at 100. */
	scan_all(db, 1000, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld:%s;%lld:%s;%lld:%s;%lld:%s;",
	    (long long)i1, HOP_A, (long long)i2, HOP_B, (long long)i1, HOP_A,
	    (long long)i1, HOP_B);
	T_OK(strcmp(got, want) == 0, "scan: due order across states, only due work (%s)", got);
	scan_all(db, 60, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld:%s;", (long long)i1, HOP_A);
	T_OK(strcmp(got, want) == 0, "scan: nothing later than now (%s)", got);
	scan_all(db, 0, got, sizeof(got));
	T_OK(got[0] == '\0', "scan: nothing due at time 0");

	T_OK(queue_db_due_hop(db, QTRANSPORT_RELAY, HOP_A, 1000, &msg, &when) == 1 &&
	    msg == i1 && when == 50, "due_hop: oldest of A is message 1's deferred one");
	T_OK(queue_db_due_hop(db, QTRANSPORT_RELAY, HOP_B, 1000, &msg, &when) == 1 &&
	    msg == i2 && when == 70, "due_hop: oldest of B is message 2");
	T_OK(queue_db_due_hop(db, QTRANSPORT_RELAY, HOP_B, 69, &msg, &when) == 0,
	    "due_hop: not yet due");
	T_OK(queue_db_due_hop(db, QTRANSPORT_RELAY, HOP_C, 1000, &msg, &when) == 0,
	    "due_hop: C has only sent, held, incoming and paused work");
	T_OK(queue_db_due_hop(db, QTRANSPORT_LOCAL, HOP_A, 1000, &msg, &when) == 0,
	    "due_hop: another transport");
	T_OK(queue_db_due_hop(db, QTRANSPORT_RELAY, "smtp:a.example:2", 1000, &msg,
	    &when) == 0, "due_hop: next hops match exactly");

	/* Distinct next hops of waiting recipients, due or not, in order. */
	got[0] = '\0';
	hop[0] = '\0';
	{
		char prev[QUEUE_NEXTHOP_MAX + 1] = "";
		size_t len;

		while ((n = queue_db_hop_next(db, QTRANSPORT_RELAY, prev, hop,
		    sizeof(hop))) == 1) {
			len = strlen(got);
			snprintf(got + len, sizeof(got) - len, "%s;", hop);
			snprintf(prev, sizeof(prev), "%s", hop);
		}
		T_OK(n == 0, "hop_next: ends without an error");
	}
	snprintf(want, sizeof(want), "%s;%s;%s;", HOP_C, HOP_B, HOP_A);
	T_OK(strcmp(got, want) == 0, "hop_next: each waiting next hop once, sorted (%s)", got);

	/* A message's due recipients of one next hop, by index. */
	T_OK(queue_db_due_rcpt_hop(db, i1, QTRANSPORT_RELAY, HOP_A, 1000, -1, &r) == 1 &&
	    r.idx == 0, "due_rcpt_hop: first of A in message 1");
	T_OK(queue_db_due_rcpt_hop(db, i1, QTRANSPORT_RELAY, HOP_A, 1000, 0, &r) == 1 &&
	    r.idx == 2 && strcmp(r.nexthop, HOP_A) == 0, "due_rcpt_hop: then index 2");
	T_OK(queue_db_due_rcpt_hop(db, i1, QTRANSPORT_RELAY, HOP_A, 1000, 2, &r) == 0,
	    "due_rcpt_hop: no third");
	T_OK(queue_db_due_rcpt_hop(db, i1, QTRANSPORT_RELAY, HOP_A, 60, -1, &r) == 1 &&
	    r.idx == 2, "due_rcpt_hop: only what is due");
	T_OK(queue_db_due_rcpt_hop(db, i2, QTRANSPORT_RELAY, HOP_A, 1000, -1, &r) == 0,
	    "due_rcpt_hop: a future attempt is not due");
	T_OK(queue_db_due_rcpt_hop(db, i5, QTRANSPORT_RELAY, HOP_C, 1000, -1, &r) == 0,
	    "due_rcpt_hop: a paused domain is not due");

	/* Rerouting moves a recipient between next hops. */
	T_OK(queue_db_rcpt_set_nexthop(db, i1, 2, HOP_C) == 0, "reroute one recipient");
	T_OK(queue_db_due_hop(db, QTRANSPORT_RELAY, HOP_C, 1000, &msg, &when) == 1 &&
	    msg == i1 && when == 50, "due_hop: the rerouted recipient is C's now");
	T_OK(queue_db_due_hop(db, QTRANSPORT_RELAY, HOP_A, 1000, &msg, &when) == 1 &&
	    when == 100, "due_hop: A's oldest is the next one");

	/* A row of the scan can be held over while other statements run. */
	{
		struct queue_scan sc;
		int64_t m1r = 0, m2r = 0;

		n = queue_db_scan_begin(db, &sc, QTRANSPORT_RELAY, 1000);
		n += queue_db_scan_next(db, &sc, &m1r, hop, sizeof(hop)) == 1 ? 0 : 1;
		n += queue_db_due_hop(db, QTRANSPORT_RELAY, HOP_B, 1000, &msg, &when) == 1 ?
		    0 : 1;
		n += queue_db_scan_next(db, &sc, &m2r, hop, sizeof(hop)) == 1 ? 0 : 1;
		queue_db_scan_end(db, &sc);
		T_OK(n == 0 && m1r == i1 && m2r == i2, "scan: other lookups in between");
	}
}

/* 2000 messages to few next hops, then every plan must be a search. */
static void
test_plans(struct queue_db *db)
{
	struct rc r[2];
	struct buf plan;
	char addr[2][64];
	const char *line, *end;
	int i, bad = 0, ok = 1;

	for (i = 0; i < 2000 && ok; i++) {
		snprintf(addr[0], sizeof(addr[0]), "r%d@d%d.example", i, i % 7);
		snprintf(addr[1], sizeof(addr[1]), "s%d@b.example", i);
		r[0] = (struct rc){ addr[0], i % 3 == 0 ? HOP_A : HOP_B,
		    i % 2 ? QRCPT_DEFERRED : QRCPT_QUEUED, i };
		r[1] = (struct rc){ addr[1], HOP_B, QRCPT_SENT, i };
		ok = add(db, r, 2, 1) > 0;
	}
	T_OK(ok && queue_db_commit(db) == 0, "2000 messages stored");
	buf_init(&plan, 1 << 16);
	T_OK(queue_db_sched_plan(db, &plan) == 0, "plans explained");
	T_OK(buf_append(&plan, "", 1) == 0, "plan text terminated");
	for (line = (const char *)plan.data; *line != '\0'; line = end + 1) {
		if ((end = strchr(line, '\n')) == NULL)
			break;
		/* "SCAN r" would read the whole table; a temporary B-tree sorts. */
		if ((strstr(line, "SCAN ") != NULL && strstr(line, "SEARCH") == NULL) ||
		    strstr(line, "TEMP B-TREE") != NULL) {
			printf("# %.*s\n", (int)(end - line), line);
			bad++;
		}
	}
	T_OK(bad == 0, "every scheduling statement is an index search (%d not)", bad);
	T_OK(strstr((const char *)plan.data, "due_hop: SEARCH r USING INDEX recipients_hop") !=
	    NULL, "due_hop uses recipients_hop");
	T_OK(strstr((const char *)plan.data, "hop_next: SEARCH recipients USING COVERING "
	    "INDEX recipients_hop") != NULL, "hop_next is a covering seek");
	T_OK(strstr((const char *)plan.data, "scan: SEARCH r USING INDEX recipients_due") !=
	    NULL, "the scan reads recipients_due in due order");
	buf_free(&plan);
}

int
main(void)
{
	struct queue_db *db;
	char err[256];

	t_qfile_make("qhop", dir, sizeof(dir), path, sizeof(path));
	if ((db = queue_db_open(path, err, sizeof(err))) == NULL) {
		printf("# open: %s\n", err);
		T_OK(0, "open a new queue database");
		cleanup();
		return t_done();
	}
	test_queries(db);
	test_plans(db);
	queue_db_close(db);
	cleanup();
	return t_done();
}
