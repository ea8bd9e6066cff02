/*
 * date.h: dates in mail headers.
 */
#ifndef MOAT_DATE_H
#define MOAT_DATE_H

#include <stddef.h>
#include <time.h>

/*
 * An RFC 5322 date-time in UTC, "Sun, 22 Nov 2026 13:20:01 +0000", for
 * Received:, Date: and Arrival-Date: fields.  Day and month names come from
 * tables, not strftime(): no locale and no time zone files are needed,
 * so it works inside every sandbox.
 */
void	mail_date(time_t t, char *dst, size_t dstsz);

#endif
