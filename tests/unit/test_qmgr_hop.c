/*
 * test_qmgr_hop.c: the per-next-hop connection count and the choice of
 * an idle relay agent's next job (queue-manager/qmgr_hop.c), with the
 * agents, their cached connections and the due work given as data; and
 * a simulated run of many agents against one crowded next hop, checking
 * that no next hop ever has more than the limit.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "queue-manager/qmgr_hop.h"

/* Due work as the scheduler would find it, oldest first. */
struct feed {
	const struct qmgr_hop_cand *c;
	size_t n, i;
	int fail_at;		/* -1: never; else the call that errs */
	int calls;
};

static int
feed_next(void *arg, struct qmgr_hop_cand *c)
{
	struct feed *f = arg;

	if (f->fail_at >= 0 && f->calls++ == f->fail_at)
		return -1;
	if (f->i == f->n)
		return 0;
	*c = f->c[f->i++];
	return 1;
}

static void
test_counter(void)
{
	struct qmgr_hops h;
	char name[64];
	unsigned int sum;
	int i, ok;

	qmgr_hops_init(&h);
	T_OK(qmgr_hops_count(&h, "smtp:a.example:25") == 0, "unknown next hop counts 0");
	qmgr_hops_take(&h, "");
	T_OK(h.n == 0 && qmgr_hops_count(&h, "") == 0, "\"\" is never counted");
	T_OK(qmgr_hops_release(&h, "") == 0, "releasing \"\" is a no-op");
	for (i = 0; i < 3; i++)
		qmgr_hops_take(&h, "smtp:a.example:25");
	qmgr_hops_take(&h, "smtp:[192.0.2.1]:25");
	T_OK(qmgr_hops_count(&h, "smtp:a.example:25") == 3, "three takes count 3");
	T_OK(qmgr_hops_count(&h, "smtp:a.example:2") == 0, "prefix is another next hop");
	T_OK(qmgr_hops_count(&h, "SMTP:a.example:25") == 0, "keys are exact");
	T_OK(h.n == 2, "two entries");
	T_OK(qmgr_hops_release(&h, "smtp:a.example:25") == 0 &&
	    qmgr_hops_count(&h, "smtp:a.example:25") == 2, "release counts down");
	qmgr_hops_release(&h, "smtp:a.example:25");
	qmgr_hops_release(&h, "smtp:a.example:25");
	T_OK(qmgr_hops_count(&h, "smtp:a.example:25") == 0 && h.n == 1,
	    "an entry at zero is dropped");
	T_OK(qmgr_hops_release(&h, "smtp:a.example:25") == -1,
	    "release below zero is reported");
	T_OK(qmgr_hops_release(&h, "lmtp:unix:/nowhere") == -1,
	    "release of an unknown next hop is reported");
	qmgr_hops_clear(&h);
	T_OK(h.n == 0 && qmgr_hops_count(&h, "smtp:[192.0.2.1]:25") == 0, "clear empties");

	/* Far more next hops than buckets: chains must keep them apart. */
	for (i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "smtp:d%d.example:25", i);
		qmgr_hops_take(&h, name);
		if (i % 3 == 0)
			qmgr_hops_take(&h, name);
	}
	ok = h.n == 500;
	sum = 0;
	for (i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "smtp:d%d.example:25", i);
		ok &= qmgr_hops_count(&h, name) == (i % 3 == 0 ? 2u : 1u);
		sum += qmgr_hops_count(&h, name);
	}
	T_OK(ok, "500 next hops over %d buckets keep their counts", QMGR_HOP_BUCKETS);
	T_OK(sum == 500 + 167, "the counts add up (%u)", sum);
	for (i = 0; i < 500; i += 2) {
		snprintf(name, sizeof(name), "smtp:d%d.example:25", i);
		while (qmgr_hops_count(&h, name) > 0)
			qmgr_hops_release(&h, name);
	}
	ok = h.n == 250;
	for (i = 1; i < 500; i += 2) {
		snprintf(name, sizeof(name), "smtp:d%d.example:25", i);
		ok &= qmgr_hops_count(&h, name) == (i % 3 == 0 ? 2u : 1u);
	}
	T_OK(ok, "removing every other entry leaves the rest intact");
	qmgr_hops_clear(&h);
}

static void
walk_sum(const char *hop, unsigned int conns, void *arg)
{
	(void)hop;
	*(unsigned int *)arg += conns;
}

static void
test_walk(void)
{
	struct qmgr_hops h;
	unsigned int sum = 0;

	qmgr_hops_init(&h);
	qmgr_hops_take(&h, "smtp:a.example:25");
	qmgr_hops_take(&h, "smtp:a.example:25");
	qmgr_hops_take(&h, "lmtp:[::1]:24");
	qmgr_hops_walk(&h, walk_sum, &sum);
	T_OK(sum == 3, "walk visits every connection once");
	qmgr_hops_clear(&h);
}

/* One case of the choice: the state as data, the expected answer. */
struct choose_case {
	const char *label;
	const char *full[3];		/* next hops at the limit */
	unsigned int limit;
	const char *cached;
	int cached_due;
	struct qmgr_hop_cand due[4];	/* oldest first; hop NULL ends */
	int fail_at;
	enum qmgr_hop_choice want;
	const char *want_hop;
	int64_t want_msg;
	int max_calls;			/* feed calls allowed, -1 any */
};

#define A "smtp:a.example:25"
#define B "smtp:[192.0.2.1]:25"
#define C "lmtp:unix:/run/lmtp"

static const struct choose_case choose_cases[] = {
	{ "reuse: cached next hop has due work", { A }, 3, A, 1,
	  { { B, 1 } }, -1, QH_REUSE, NULL, 0, 0 },
	{ "reuse even above a lowered limit", { A }, 1, A, 1,
	  { { A, 1 } }, -1, QH_REUSE, NULL, 0, 0 },
	{ "cached but nothing due for it: oldest with room", { A }, 3, A, 0,
	  { { B, 7 }, { C, 8 } }, -1, QH_NEW, B, 7, -1 },
	{ "oldest work's next hop is full: the next one", { A }, 3, "", 0,
	  { { A, 1 }, { A, 2 }, { B, 3 } }, -1, QH_NEW, B, 3, -1 },
	{ "full next hop is fine for the agent caching it", { A }, 3, A, 0,
	  { { A, 4 } }, -1, QH_NEW, A, 4, -1 },
	{ "everything due is at its limit: wait", { A, B }, 3, "", 0,
	  { { A, 1 }, { B, 2 }, { A, 3 } }, -1, QH_NONE, NULL, 0, -1 },
	{ "an agent caching A may not add to full B", { B }, 2, A, 0,
	  { { B, 1 } }, -1, QH_NONE, NULL, 0, -1 },
	{ "nothing due at all", { NULL }, 3, "", 0,
	  { { NULL, 0 } }, -1, QH_NONE, NULL, 0, -1 },
	{ "cached_due without a cached hop is ignored", { NULL }, 3, "", 1,
	  { { C, 9 } }, -1, QH_NEW, C, 9, -1 },
	{ "work without a next hop needs no connection", { A, B, C }, 1, "", 0,
	  { { A, 1 }, { "", 5 } }, -1, QH_NEW, "", 5, -1 },
	{ "limit 1, one connection open elsewhere", { A }, 1, "", 0,
	  { { A, 1 }, { B, 2 } }, -1, QH_NEW, B, 2, -1 },
	{ "database error in the middle of the search", { A }, 3, "", 0,
	  { { A, 1 }, { B, 2 } }, 1, QH_ERROR, NULL, 0, -1 },
	{ "database error at once", { NULL }, 3, "", 0,
	  { { B, 2 } }, 0, QH_ERROR, NULL, 0, -1 },
	{ "the search stops at the first with room", { NULL }, 3, "", 0,
	  { { A, 1 }, { B, 2 } }, -1, QH_NEW, A, 1, 1 },
};

static void
test_choose(void)
{
	const struct choose_case *tc;
	struct qmgr_hop_cand out;
	struct qmgr_hops h;
	enum qmgr_hop_choice got;
	struct feed f;
	size_t i, j;
	unsigned int k;
	int ok;

	for (i = 0; i < sizeof(choose_cases) / sizeof(choose_cases[0]); i++) {
		tc = &choose_cases[i];
		qmgr_hops_init(&h);
		for (j = 0; j < 3 && tc->full[j] != NULL; j++)
			for (k = 0; k < tc->limit; k++)
				qmgr_hops_take(&h, tc->full[j]);
		memset(&f, 0, sizeof(f));
		f.c = tc->due;
		for (f.n = 0; f.n < 4 && tc->due[f.n].hop != NULL; f.n++)
			;
		f.fail_at = tc->fail_at;
		memset(&out, 0, sizeof(out));
		got = qmgr_hop_choose(&h, tc->limit, tc->cached, tc->cached_due,
		    feed_next, &f, &out);
		ok = got == tc->want;
		if (ok && got == QH_NEW)
			ok = out.hop != NULL && strcmp(out.hop, tc->want_hop) == 0 &&
			    out.msg == tc->want_msg;
		if (ok && tc->max_calls >= 0)
			ok = (int)f.i <= tc->max_calls;
		T_OK(ok, "choose: %s (got %d)", tc->label, (int)got);
		qmgr_hops_clear(&h);
	}
}

/*
 * A simulated queue: 8 agents, limit 3, 300 messages to one next hop
 * and 30 to each of two others, jobs finishing in a pseudo-random
 * order, idle connections kept or dropped at random.  At every step no
 * next hop may have more than 3 connections, the count must equal what
 * the agents say, and everything must be delivered.
 */
#define SIM_AGENTS	8
#define SIM_LIMIT	3
#define SIM_HOPS	3

struct sim_agent {
	char	 counted[64];
	char	 cached[64];
	int	 busy;		/* hop index + 1 of the job, 0 idle */
};

static const char *const sim_hop[SIM_HOPS] = { A, B, C };

static int
sim_next(void *arg, struct qmgr_hop_cand *c)
{
	/* Oldest first: the crowded next hop's backlog came in first. */
	int *left = arg;
	static int pos;
	int i;

	if (c == NULL) {
		pos = 0;
		return 0;
	}
	for (i = pos; i < SIM_HOPS; i++)
		if (left[i] > 0) {
			c->hop = sim_hop[i];
			c->msg = i;
			pos = i + 1;
			return 1;
		}
	return 0;
}

static void
sim_count(struct qmgr_hops *h, struct sim_agent *a, const char *hop)
{
	if (strcmp(a->counted, hop) == 0)
		return;
	qmgr_hops_release(h, a->counted);
	qmgr_hops_take(h, hop);
	memmove(a->counted, hop, strlen(hop) + 1);
}

static int
sim_hop_index(const char *hop)
{
	int i;

	for (i = 0; i < SIM_HOPS; i++)
		if (strcmp(sim_hop[i], hop) == 0)
			return i;
	return -1;
}

static void
test_simulation(void)
{
	struct sim_agent ag[SIM_AGENTS];
	int left[SIM_HOPS] = { 300, 30, 30 }, sent[SIM_HOPS] = { 0 };
	struct qmgr_hops h;
	struct qmgr_hop_cand c;
	enum qmgr_hop_choice ch;
	unsigned int seed = 12345, peak = 0, n;
	int step, i, k, over = 0, mismatch = 0, reused = 0, hi;

	qmgr_hops_init(&h);
	memset(ag, 0, sizeof(ag));
	for (step = 0; step < 20000; step++) {
		/* Every idle agent gets work if it may. */
		for (i = 0; i < SIM_AGENTS; i++) {
			if (ag[i].busy)
				continue;
			hi = ag[i].cached[0] != '\0' ? sim_hop_index(ag[i].cached) : -1;
			sim_next(left, NULL);
			ch = qmgr_hop_choose(&h, SIM_LIMIT, ag[i].cached,
			    hi >= 0 && left[hi] > 0, sim_next, left, &c);
			if (ch == QH_NONE)
				continue;
			k = ch == QH_REUSE ? hi : sim_hop_index(c.hop);
			reused += ch == QH_REUSE;
			left[k]--;
			ag[i].busy = k + 1;
			ag[i].cached[0] = '\0';
			sim_count(&h, &ag[i], sim_hop[k]);
		}
		for (k = 0; k < SIM_HOPS; k++) {
			n = qmgr_hops_count(&h, sim_hop[k]);
			over |= n > SIM_LIMIT;
			peak = n > peak ? n : peak;
			for (i = 0, n = 0; i < SIM_AGENTS; i++)
				n += strcmp(ag[i].counted, sim_hop[k]) == 0;
			mismatch |= n != qmgr_hops_count(&h, sim_hop[k]);
		}
		/* One agent finishes, or an idle connection times out. */
		seed = seed * 1103515245u + 12345u;
		i = (int)((seed >> 16) % SIM_AGENTS);
		if (ag[i].busy) {
			k = ag[i].busy - 1;
			sent[k]++;
			ag[i].busy = 0;
			if ((seed >> 8) % 4 != 0)	/* keeps the connection */
				snprintf(ag[i].cached, sizeof(ag[i].cached), "%s", sim_hop[k]);
			sim_count(&h, &ag[i], ag[i].cached);
		} else if (ag[i].cached[0] != '\0' && (seed >> 4) % 3 == 0) {
			ag[i].cached[0] = '\0';
			sim_count(&h, &ag[i], "");
		}
		if (left[0] + left[1] + left[2] == 0) {
			for (i = 0; i < SIM_AGENTS && !ag[i].busy; i++)
				;
			if (i == SIM_AGENTS)
				break;
		}
	}
	T_OK(!over, "simulation: no next hop above the limit (peak %u)", peak);
	T_OK(peak == SIM_LIMIT, "simulation: the crowded next hop reached the limit");
	T_OK(!mismatch, "simulation: counts equal what the agents hold");
	T_OK(sent[0] == 300 && sent[1] == 30 && sent[2] == 30,
	    "simulation: everything delivered (%d %d %d)", sent[0], sent[1], sent[2]);
	T_OK(reused > 0, "simulation: cached connections were reused (%d)", reused);
	qmgr_hops_clear(&h);
}

int
main(void)
{
	test_counter();
	test_walk();
	test_choose();
	test_simulation();
	return t_done();
}
