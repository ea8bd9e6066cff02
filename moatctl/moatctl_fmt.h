/*
 * moatctl_fmt.h: moatctl's pure formatting, unit-tested: JSON strings,
 * ages, and the Prometheus text exposition of stats.
 */
#ifndef MOAT_MOATCTL_FMT_H
#define MOAT_MOATCTL_FMT_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Append s as a JSON string literal: quotes, escapes, and bytes outside
 * printable ASCII as \u00XX (queue data is not promised to be UTF-8). */
int	fmt_json_str(struct buf *b, const char *s);

/* "45s", "3m", "2h", "4d" (negative ages count as 0). */
void	fmt_age(long long secs, char *dst, size_t dstsz);

/* One sample of the Prometheus output. */
struct fmt_sample {
	const char	*metric;	/* moat_..., as exposed */
	const char	*label;		/* label name, or NULL */
	const char	*value_of_label;
	long long	 value;
};

/* A metric family: its HELP text and TYPE ("counter" or "gauge"). */
struct fmt_family {
	const char	*metric;
	const char	*type;
	const char	*help;
};

/*
 * Append the text exposition of the samples: each family's # HELP and
 * # TYPE lines, then its samples in the order given.  Label values are
 * escaped (backslash, double quote, newline).  -1 if the buffer is full
 * or a sample names a family not listed.
 */
int	fmt_prometheus(struct buf *b, const struct fmt_family *fam, size_t nfam,
	    const struct fmt_sample *s, size_t ns);

#endif
