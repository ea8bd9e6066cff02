/*
 * queue_retry.h: what a delivery reply means for a recipient, and when it
 * is tried again.  Pure functions, so the rules are tested on their own.
 *
 * After the n-th failed attempt (n >= 1) a recipient waits
 * minimal_backoff_time * 2^(n-1), never more than maximal_backoff_time.
 * A temporary failure of a message older than maximal_queue_lifetime
 * (bounce_queue_lifetime for a bounce, whose sender is <>) ends its
 * retries: the recipient is bounced as expired (a bounce is dropped).
 */
#ifndef MOAT_QUEUE_RETRY_H
#define MOAT_QUEUE_RETRY_H

#include <stdint.h>

struct queue_retry_limits {
	long long	min_backoff;		/* seconds */
	long long	max_backoff;
	long long	lifetime;		/* since arrival */
	long long	bounce_lifetime;	/* the same, for null-sender mail */
};

enum queue_outcome {
	QOUT_SENT,		/* 2xx */
	QOUT_DEFER,		/* 4xx, or 0: no server answered */
	QOUT_BOUNCE,		/* 5xx */
	QOUT_INVALID,		/* anything else: the agent broke the protocol */
};

enum queue_outcome queue_outcome_of(uint32_t code);

/* Seconds to wait after the attempts-th failed attempt. */
long long queue_backoff(unsigned int attempts, long long min, long long max);

/*
 * After a temporary failure at now (unix seconds) of a recipient that has
 * now failed "attempts" times: returns 1 when the message has outlived
 * its lifetime (arrival in unix seconds), else 0 with *next set to the
 * time of the next attempt.
 */
int	queue_retry_next(const struct queue_retry_limits *l, int is_bounce,
	    int64_t arrival, int64_t now, unsigned int attempts, int64_t *next);

#endif
