/*
 * qmgr_hop.h: connections per next hop, and which work an idle relay
 * agent is given next.
 *
 * A next hop (the canonical form of common/mail/nexthop.h, such as
 * "smtp:example.com:25" or "smtp:[192.0.2.1]:25") is one destination.
 * Each relay agent holds at most one connection, so it counts against at
 * most one next hop: the one of the job it is doing, or else the one it
 * keeps an idle connection open to (IPC_D2Q_DONE's cached next hop).
 * relay_destination_concurrency_limit caps that count per next hop; the
 * number of relay agents is the global cap.
 *
 * The choice is pure (no database, no clock, no event loop) so that it is
 * unit-tested alone: the scheduler hands it the agent's cached next hop,
 * whether work for it is due, and the due work oldest first through a
 * callback.
 */
#ifndef MOAT_QMGR_HOP_H
#define MOAT_QMGR_HOP_H

#include <stddef.h>
#include <stdint.h>

#define QMGR_HOP_BUCKETS	64	/* entries: at most one per relay agent */

struct qmgr_hop {
	struct qmgr_hop	*next;
	unsigned int	 conns;		/* agents counted against it, > 0 */
	char		 name[];
};

/* The next hops that have at least one connection; absent means 0. */
struct qmgr_hops {
	struct qmgr_hop	*b[QMGR_HOP_BUCKETS];
	size_t		 n;		/* entries */
};

void	qmgr_hops_init(struct qmgr_hops *h);
void	qmgr_hops_clear(struct qmgr_hops *h);
/* Connections counted against hop (0 for "" and unknown hops). */
unsigned int qmgr_hops_count(const struct qmgr_hops *h, const char *hop);
/* One more connection to hop ("" counts nothing). */
void	qmgr_hops_take(struct qmgr_hops *h, const char *hop);
/* One fewer; -1 if hop had none (the caller's bookkeeping is broken). */
int	qmgr_hops_release(struct qmgr_hops *h, const char *hop);
/* Call fn for every next hop with connections, in no particular order. */
void	qmgr_hops_walk(const struct qmgr_hops *h,
	    void (*fn)(const char *hop, unsigned int conns, void *arg), void *arg);

/* Due work of one next hop, as the scheduler found it. */
struct qmgr_hop_cand {
	const char	*hop;
	int64_t		 msg;
};

/* The due work oldest first: 1 with *c filled, 0 at the end, -1 an error. */
typedef int (*qmgr_hop_next_fn)(void *arg, struct qmgr_hop_cand *c);

enum qmgr_hop_choice {
	QH_ERROR = -1,
	QH_NONE,	/* nothing due that may have another connection */
	QH_REUSE,	/* work for the agent's cached next hop is due */
	QH_NEW,		/* *out: the oldest due work under its limit */
};

/*
 * May an agent that caches "cached" ("" none) take a job for hop?  Its
 * own connection already counts against cached, so the same next hop is
 * always allowed; another must have fewer than limit connections.  Work
 * without a next hop ("": to be routed again) needs no connection.
 */
int	qmgr_hop_room(const struct qmgr_hops *h, unsigned int limit,
	    const char *cached, const char *hop);

/*
 * The work an idle relay agent gets: its cached next hop's when some is
 * due (reuse), else the oldest due work whose next hop has room, else
 * nothing (the agent waits until a job finishes or work arrives).
 */
enum qmgr_hop_choice qmgr_hop_choose(const struct qmgr_hops *h, unsigned int limit,
	    const char *cached, int cached_due, qmgr_hop_next_fn next, void *arg,
	    struct qmgr_hop_cand *out);

#endif
