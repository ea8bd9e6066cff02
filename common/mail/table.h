/*
 * table.h: lookup tables keyed by domain (transport_maps,
 * relay_tls_policy_maps).
 *
 * A table file holds one "key value" per line.  Lines starting with '#'
 * are comments, blank lines are ignored, and a line that starts with
 * white space continues the previous value (as in moat.conf).  Keys:
 *   example.com     that domain exactly
 *   .example.com    any subdomain of example.com (not example.com itself)
 *   *               any domain (the default)
 * Keys are lower-cased; each key may appear once.  Caps: a physical line
 * 4096 bytes, a file 1 MiB, 100000 entries.
 */
#ifndef MOAT_TABLE_H
#define MOAT_TABLE_H

#include <stddef.h>
#include <stdio.h>

#define TABLE_LINE_MAX		4096
#define TABLE_FILE_MAX		(1024 * 1024)
#define TABLE_ENTRIES_MAX	100000

struct table;

/*
 * Parse; errors go to errout one per line "source:line: message"; returns
 * the number of errors (0: *tp valid, else *tp NULL).  check, if not
 * NULL, validates each value: returns 0, or -1 with a message in err.
 */
int	table_parse(const char *source, const char *text, size_t len,
	    int (*check)(const char *value, char *err, size_t errlen),
	    struct table **tp, FILE *errout);

/*
 * The value for domain (case-insensitive, trailing dot ignored): exact
 * key, then ".parent" keys from the most specific parent up, then "*";
 * NULL when nothing matches.  *matched (if not NULL) gets the key that
 * matched.
 */
const char *table_lookup(const struct table *t, const char *domain,
	    const char **matched);

size_t	table_count(const struct table *t);
void	table_free(struct table *t);

#endif
