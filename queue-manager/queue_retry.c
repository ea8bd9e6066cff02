/*
 * queue_retry.c: reply classes, back-off and queue lifetime.
 */
#include "config.h"

#include "queue_retry.h"

enum queue_outcome
queue_outcome_of(uint32_t code)
{
	if (code == 0)
		return QOUT_DEFER;
	if (code >= 200 && code <= 299)
		return QOUT_SENT;
	if (code >= 400 && code <= 499)
		return QOUT_DEFER;
	if (code >= 500 && code <= 599)
		return QOUT_BOUNCE;
	return QOUT_INVALID;
}

long long
queue_backoff(unsigned int attempts, long long min, long long max)
{
	long long b = min;
	unsigned int i;

	if (min < 1)
		b = 1;
	if (max < b)
		return b;
	/* Doubling stops at the cap, so no overflow however many attempts. */
	for (i = 1; i < attempts && b < max; i++)
		b = b > max / 2 ? max : b * 2;
	return b > max ? max : b;
}

int
queue_retry_next(const struct queue_retry_limits *l, int is_bounce,
    int64_t arrival, int64_t now, unsigned int attempts, int64_t *next)
{
	long long lifetime = is_bounce ? l->bounce_lifetime : l->lifetime;

	if (now - arrival >= lifetime)
		return 1;
	*next = now + queue_backoff(attempts, l->min_backoff, l->max_backoff);
	return 0;
}
