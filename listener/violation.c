/*
 * violation.c: clients whose sessions keep dying of seccomp violations.
 *
 * An smtpd-session killed by SIGSYS made a system call its filter does
 * not allow: it was either broken or, more likely with a client on the
 * other end, exploited.  One such death is logged and forgotten; a
 * client address that causes smtpd_violation_limit of them within
 * smtpd_violation_window is refused at accept (421, no session) until
 * smtpd_violation_window has passed since the last one.
 *
 * The window is fixed, not sliding: it opens at the first violation
 * counted, and a violation after it has closed starts a new count at 1.
 * While an address is refused it gets no session and so can cause no
 * violation, so its block ends exactly one window after the death that
 * reached the limit.
 *
 * The table is bounded: at most VIOLATION_MAX_ADDRS addresses (the
 * listener passes its own cap), with entries whose window and block have
 * both passed dropped on the way, and the address with the oldest last
 * violation evicted when a new one finds the table full.  An attacker
 * with many addresses can push others out of the table, but never grow
 * moatd's memory.
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "moatd.h"
#include "util/xmalloc.h"

void
violation_init(struct violation_table *vt, size_t cap, unsigned int limit,
    int64_t window_ms)
{
	memset(vt, 0, sizeof(*vt));
	vt->cap = cap > 0 ? cap : 1;
	vt->limit = limit > 0 ? limit : 1;
	vt->window_ms = window_ms > 0 ? window_ms : 1;
}

void
violation_free(struct violation_table *vt)
{
	free(vt->v);
	memset(vt, 0, sizeof(*vt));
}

/* Has this entry nothing left to say: its count expired and no block holds? */
static int
violation_expired(const struct violation_table *vt,
    const struct violation_entry *e, int64_t now)
{
	/* last >= first, so a passed block also means a passed window. */
	return now - e->last >= vt->window_ms;
}

/* Remove entry i (order does not matter). */
static void
violation_remove(struct violation_table *vt, size_t i)
{
	vt->v[i] = vt->v[--vt->n];
}

/* The live entry for addr, or NULL; expired entries met on the way go. */
static struct violation_entry *
violation_find(struct violation_table *vt, const char *addr, int64_t now)
{
	size_t i = 0;

	while (i < vt->n) {
		if (violation_expired(vt, &vt->v[i], now)) {
			violation_remove(vt, i);
			continue;
		}
		if (strcmp(vt->v[i].addr, addr) == 0)
			return &vt->v[i];
		i++;
	}
	return NULL;
}

/* A slot for a new address: grow up to the cap, else evict the oldest. */
static struct violation_entry *
violation_slot(struct violation_table *vt)
{
	size_t i, oldest = 0;

	if (vt->n < vt->cap) {
		if (vt->n == vt->alloc) {
			size_t want = vt->alloc ? vt->alloc * 2 : 16;

			vt->alloc = want < vt->cap ? want : vt->cap;
			vt->v = xreallocarray(vt->v, vt->alloc, sizeof(*vt->v));
		}
		return &vt->v[vt->n++];
	}
	for (i = 1; i < vt->n; i++)
		if (vt->v[i].last < vt->v[oldest].last)
			oldest = i;
	vt->evicted++;
	return &vt->v[oldest];
}

/*
 * A session from addr died of a seccomp violation at now (monotonic ms).
 * Returns the number of violations counted for addr in its window.
 */
unsigned int
violation_add(struct violation_table *vt, const char *addr, int64_t now)
{
	struct violation_entry *e;

	if (vt->cap == 0)
		return 0;	/* never initialised: nothing to count in */
	if ((e = violation_find(vt, addr, now)) == NULL) {
		e = violation_slot(vt);
		strlcpy_m(e->addr, addr, sizeof(e->addr));
		e->count = 0;
		e->first = now;
	} else if (now - e->first >= vt->window_ms) {
		e->count = 0;
		e->first = now;
	}
	if (e->count < UINT_MAX)
		e->count++;
	e->last = now;
	return e->count;
}

/*
 * May addr have a session at now?  0 if so; 1 if it has reached the
 * limit and its block has not passed, with the count in *count.
 */
int
violation_blocked(struct violation_table *vt, const char *addr, int64_t now,
    unsigned int *count)
{
	const struct violation_entry *e;

	*count = 0;
	if ((e = violation_find(vt, addr, now)) == NULL)
		return 0;
	*count = e->count;
	return e->count >= vt->limit;
}

/* Addresses currently tracked. */
size_t
violation_tracked(const struct violation_table *vt)
{
	return vt->n;
}
