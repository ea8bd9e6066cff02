/*
 * test_queue_retry.c: reply classes, exponential back-off and the queue
 * lifetime.
 */
#include "config.h"

#include <stdint.h>

#include "t.h"
#include "queue-manager/queue_retry.h"

static void
test_outcome(void)
{
	static const struct {
		uint32_t code;
		enum queue_outcome want;
	} cases[] = {
		{ 0, QOUT_DEFER }, { 1, QOUT_INVALID }, { 199, QOUT_INVALID },
		{ 200, QOUT_SENT }, { 250, QOUT_SENT }, { 299, QOUT_SENT },
		{ 300, QOUT_INVALID }, { 354, QOUT_INVALID }, { 399, QOUT_INVALID },
		{ 400, QOUT_DEFER }, { 421, QOUT_DEFER }, { 499, QOUT_DEFER },
		{ 500, QOUT_BOUNCE }, { 550, QOUT_BOUNCE }, { 599, QOUT_BOUNCE },
		{ 600, QOUT_INVALID }, { 0xffffffffu, QOUT_INVALID },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		T_OK(queue_outcome_of(cases[i].code) == cases[i].want, "reply code %u",
		    cases[i].code);
}

static void
test_backoff(void)
{
	static const struct {
		unsigned int attempts;
		long long min, max, want;
	} cases[] = {
		{ 0, 300, 4000, 300 },		/* before any attempt: the minimum */
		{ 1, 300, 4000, 300 },
		{ 2, 300, 4000, 600 },
		{ 3, 300, 4000, 1200 },
		{ 4, 300, 4000, 2400 },
		{ 5, 300, 4000, 4000 },		/* 4800 capped */
		{ 6, 300, 4000, 4000 },
		{ 1000, 300, 4000, 4000 },
		{ 4000000000u, 300, 4000, 4000 },	/* no overflow, no long loop */
		{ 70, 1, 604800, 604800 },	/* 2^69 would overflow */
		{ 3, 5000, 4000, 5000 },	/* max below min: the minimum wins */
		{ 3, 0, 100, 4 },		/* a zero minimum counts as 1 */
		{ 2, 2, 8, 4 },
	};
	size_t i;
	long long got;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		got = queue_backoff(cases[i].attempts, cases[i].min, cases[i].max);
		T_OK(got == cases[i].want, "backoff(%u, %lld, %lld) = %lld", cases[i].attempts,
		    cases[i].min, cases[i].max, got);
	}
}

static void
test_lifetime(void)
{
	struct queue_retry_limits l = { 300, 4000, 5 * 86400, 86400 };
	int64_t next = -1;
	const int64_t arrival = 1000000;

	T_OK(queue_retry_next(&l, 0, arrival, arrival + 10, 1, &next) == 0 &&
	    next == arrival + 10 + 300, "young message: retry after the minimum");
	T_OK(queue_retry_next(&l, 0, arrival, arrival + 3600, 3, &next) == 0 &&
	    next == arrival + 3600 + 1200, "third failure: 4x the minimum");
	T_OK(queue_retry_next(&l, 0, arrival, arrival + 5 * 86400 - 1, 30, &next) == 0,
	    "one second before the lifetime: retried");
	T_OK(queue_retry_next(&l, 0, arrival, arrival + 5 * 86400, 30, &next) == 1,
	    "at the lifetime: expired");
	T_OK(queue_retry_next(&l, 1, arrival, arrival + 86400, 3, &next) == 1,
	    "a bounce expires after bounce_queue_lifetime");
	T_OK(queue_retry_next(&l, 1, arrival, arrival + 86399, 3, &next) == 0,
	    "a bounce younger than bounce_queue_lifetime: retried");
	T_OK(queue_retry_next(&l, 0, arrival, arrival - 100, 1, &next) == 0,
	    "clock stepped back: retried, not expired");
}

int
main(void)
{
	test_outcome();
	test_backoff();
	test_lifetime();
	return t_done();
}
