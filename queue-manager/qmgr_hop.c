/*
 * qmgr_hop.c: the per-next-hop connection count (a small chained hash
 * keyed by the next hop string) and the choice of an idle relay agent's
 * next job (see qmgr_hop.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"
#include "qmgr_hop.h"

/* FNV-1a: next hops are short strings, a handful at a time. */
static size_t
qmgr_hops_bucket(const char *hop)
{
	uint32_t x = 2166136261u;

	for (; *hop != '\0'; hop++)
		x = (x ^ (unsigned char)*hop) * 16777619u;
	return x % QMGR_HOP_BUCKETS;
}

void
qmgr_hops_init(struct qmgr_hops *h)
{
	memset(h, 0, sizeof(*h));
}

void
qmgr_hops_clear(struct qmgr_hops *h)
{
	struct qmgr_hop *e, *next;
	size_t i;

	for (i = 0; i < QMGR_HOP_BUCKETS; i++)
		for (e = h->b[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	qmgr_hops_init(h);
}

static struct qmgr_hop *
qmgr_hops_find(const struct qmgr_hops *h, const char *hop)
{
	struct qmgr_hop *e;

	for (e = h->b[qmgr_hops_bucket(hop)]; e != NULL; e = e->next)
		if (strcmp(e->name, hop) == 0)
			return e;
	return NULL;
}

unsigned int
qmgr_hops_count(const struct qmgr_hops *h, const char *hop)
{
	const struct qmgr_hop *e;

	if (hop[0] == '\0' || (e = qmgr_hops_find(h, hop)) == NULL)
		return 0;
	return e->conns;
}

void
qmgr_hops_take(struct qmgr_hops *h, const char *hop)
{
	struct qmgr_hop *e;
	size_t len, b;

	if (hop[0] == '\0')
		return;
	if ((e = qmgr_hops_find(h, hop)) != NULL) {
		e->conns++;
		return;
	}
	len = strlen(hop);
	e = xmalloc(sizeof(*e) + len + 1);
	memcpy(e->name, hop, len + 1);
	e->conns = 1;
	b = qmgr_hops_bucket(hop);
	e->next = h->b[b];
	h->b[b] = e;
	h->n++;
}

int
qmgr_hops_release(struct qmgr_hops *h, const char *hop)
{
	struct qmgr_hop **pp, *e;

	if (hop[0] == '\0')
		return 0;
	for (pp = &h->b[qmgr_hops_bucket(hop)]; (e = *pp) != NULL; pp = &e->next) {
		if (strcmp(e->name, hop) != 0)
			continue;
		/* An entry at zero would only cost memory: drop it. */
		if (--e->conns == 0) {
			*pp = e->next;
			free(e);
			h->n--;
		}
		return 0;
	}
	return -1;
}

void
qmgr_hops_walk(const struct qmgr_hops *h,
    void (*fn)(const char *hop, unsigned int conns, void *arg), void *arg)
{
	const struct qmgr_hop *e;
	size_t i;

	for (i = 0; i < QMGR_HOP_BUCKETS; i++)
		for (e = h->b[i]; e != NULL; e = e->next)
			fn(e->name, e->conns, arg);
}

int
qmgr_hop_room(const struct qmgr_hops *h, unsigned int limit, const char *cached,
    const char *hop)
{
	/* No next hop yet (its route failed at acceptance): routing it again
	 * opens no connection. */
	if (hop[0] == '\0')
		return 1;
	if (strcmp(hop, cached) == 0)
		return 1;
	return qmgr_hops_count(h, hop) < limit;
}

enum qmgr_hop_choice
qmgr_hop_choose(const struct qmgr_hops *h, unsigned int limit, const char *cached,
    int cached_due, qmgr_hop_next_fn next, void *arg, struct qmgr_hop_cand *out)
{
	struct qmgr_hop_cand c;
	int r;

	/* Reuse first: the connection is open, and keeping work on it keeps
	 * other agents free for other next hops. */
	if (cached[0] != '\0' && cached_due)
		return QH_REUSE;
	while ((r = next(arg, &c)) == 1) {
		if (qmgr_hop_room(h, limit, cached, c.hop)) {
			*out = c;
			return QH_NEW;
		}
	}
	return r == 0 ? QH_NONE : QH_ERROR;
}
