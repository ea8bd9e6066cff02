/*
 * table.c: lookup tables keyed by domain, parsed once and looked up per
 * recipient.
 *
 * Entries live in an array in file order; an open-addressing hash of
 * their keys makes a lookup a handful of probes (the exact domain, then
 * one per parent, then "*"), so a table of 100000 routes costs the
 * queue-manager no more per recipient than a table of ten.  The file
 * syntax is moat.conf's (comments, continuation lines), so an operator
 * learns one format.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"
#include "mail/table.h"
#include "util/buf.h"
#include "util/lines.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define TABLE_LOGICAL_MAX	(64 * 1024)	/* an entry with its continuations */
#define TABLE_ERR_MAX		512

struct table_entry {
	char		*key;
	char		*value;
	int		 line;
};

struct table {
	struct table_entry *v;
	size_t		 n, alloc;
	uint32_t	*slots;		/* entry index + 1; 0 = free */
	size_t		 nslots;	/* a power of two, > 2 * n */
};

/* State of one parse. */
struct table_parser {
	const char	*source;
	FILE		*errout;
	int		 nerr;
	int		 full;		/* TABLE_ENTRIES_MAX reached */
	int		(*check)(const char *, char *, size_t);
	struct table	*t;
};

/* Report one error as "source:line: message" and count it. */
__attribute__((format(printf, 3, 4))) static void
table_error(struct table_parser *p, int line, const char *fmt, ...)
{
	va_list ap;

	p->nerr++;
	if (p->errout == NULL)
		return;
	fprintf(p->errout, "%s:%d: ", p->source, line);
	va_start(ap, fmt);
	vfprintf(p->errout, fmt, ap);
	va_end(ap);
	fputc('\n', p->errout);
}

/* FNV-1a over s[0..n): keys are the operator's, so no flooding concern. */
static uint64_t
table_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* The entry whose key is s[0..n), or NULL. */
static const struct table_entry *
table_find(const struct table *t, const char *s, size_t n)
{
	size_t mask, i;

	if (t->nslots == 0)
		return NULL;
	mask = t->nslots - 1;
	for (i = (size_t)table_hash(s, n) & mask; t->slots[i] != 0;
	    i = (i + 1) & mask) {
		const struct table_entry *e = &t->v[t->slots[i] - 1];

		if (strncmp(e->key, s, n) == 0 && e->key[n] == '\0')
			return e;
	}
	return NULL;
}

/* Put entry index idx into the hash (its key is known to be new). */
static void
table_slot_put(struct table *t, size_t idx)
{
	const char *key = t->v[idx].key;
	size_t mask = t->nslots - 1, i;

	for (i = (size_t)table_hash(key, strlen(key)) & mask; t->slots[i] != 0;
	    i = (i + 1) & mask)
		;
	t->slots[i] = (uint32_t)(idx + 1);
}

/* Keep the hash at most half full. */
static void
table_grow(struct table *t)
{
	size_t i;

	if (t->nslots > 2 * (t->n + 1))
		return;
	free(t->slots);
	t->nslots = t->nslots == 0 ? 64 : t->nslots * 2;
	t->slots = xcalloc(t->nslots, sizeof(*t->slots));
	for (i = 0; i < t->n; i++)
		table_slot_put(t, i);
}

/* Add key (fresh, lower-case) with value; -1 and *first if the key exists. */
static int
table_add(struct table *t, char *key, char *value, int line, int *first)
{
	const struct table_entry *e;

	if ((e = table_find(t, key, strlen(key))) != NULL) {
		*first = e->line;
		return -1;
	}
	table_grow(t);
	if (t->n == t->alloc) {
		t->alloc = t->alloc == 0 ? 16 : t->alloc * 2;
		t->v = xreallocarray(t->v, t->alloc, sizeof(*t->v));
	}
	t->v[t->n].key = key;
	t->v[t->n].value = value;
	t->v[t->n].line = line;
	table_slot_put(t, t->n);
	t->n++;
	return 0;
}

/* Is key (lower-cased) a domain, ".domain" or "*"? */
static int
table_key_valid(const char *key)
{
	if (strcmp(key, "*") == 0)
		return 1;
	if (key[0] == '.')
		key++;
	return addr_domain_valid(key, strlen(key));
}

/* Check the value's bytes and the caller's rule; 0 or -1 with err. */
static int
table_value_valid(struct table_parser *p, const char *value, char *err,
    size_t errsz)
{
	const unsigned char *s;

	if (value[0] == '\0') {
		snprintf(err, errsz, "no value");
		return -1;
	}
	for (s = (const unsigned char *)value; *s != '\0'; s++)
		if ((*s < 0x20 && *s != '\t') || *s >= 0x7f) {
			snprintf(err, errsz, "control or non-ASCII byte in value");
			return -1;
		}
	if (p->check != NULL && p->check(value, err, errsz) == -1)
		return -1;
	return 0;
}

/* Handle one logical line "key value" (s[0..n), no NUL inside). */
static void
table_entry_line(struct table_parser *p, const char *s, size_t n, int line)
{
	char err[TABLE_ERR_MAX], safe[128], *key, *value;
	size_t klen = 0, i, vlen;
	int first;

	while (klen < n && s[klen] != ' ' && s[klen] != '\t')
		klen++;
	key = xstrndup(s, klen);
	for (i = 0; i < klen; i++)
		if (key[i] >= 'A' && key[i] <= 'Z')
			key[i] = (char)(key[i] - 'A' + 'a');
	log_sanitize(safe, sizeof(safe), key, klen);
	s += klen;
	n -= klen;
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	vlen = n;
	while (vlen > 0 && (s[vlen - 1] == ' ' || s[vlen - 1] == '\t'))
		vlen--;
	value = xstrndup(s, vlen);
	if (!table_key_valid(key)) {
		table_error(p, line, "bad key \"%s\" (want a domain, .domain or *)",
		    safe);
	} else if (table_value_valid(p, value, err, sizeof(err)) == -1) {
		table_error(p, line, "%s: %s", safe, err);
	} else if (p->t->n >= TABLE_ENTRIES_MAX) {
		if (!p->full)
			table_error(p, line, "more than %d entries",
			    TABLE_ENTRIES_MAX);
		p->full = 1;
	} else if (table_add(p->t, key, value, line, &first) == -1) {
		table_error(p, line, "duplicate key \"%s\" (first on line %d)",
		    safe, first);
	} else {
		return;
	}
	free(key);
	free(value);
}

/* lines_split: one logical line "key value". */
static void
table_lines_line(void *arg, char *s, size_t n, int line)
{
	table_entry_line(arg, s, n, line);
}

/* lines_split: one error. */
static void
table_lines_error(void *arg, int line, const char *msg)
{
	table_error(arg, line, "%s", msg);
}

/* Split the text into logical lines and handle each. */
static void
table_parse_text(struct table_parser *p, const char *text, size_t len)
{
	const struct lines_reader r = {
		TABLE_LINE_MAX, TABLE_LOGICAL_MAX, "entry", "an", p,
		table_lines_line, table_lines_error
	};

	lines_split(&r, text, len);
}

int
table_parse(const char *source, const char *text, size_t len,
    int (*check)(const char *value, char *err, size_t errlen),
    struct table **tp, FILE *errout)
{
	struct table_parser p;

	*tp = NULL;
	memset(&p, 0, sizeof(p));
	p.source = source != NULL ? source : "(table)";
	p.errout = errout;
	p.check = check;
	if (len > TABLE_FILE_MAX) {
		if (errout != NULL)
			fprintf(errout, "%s: larger than 1 MiB\n", p.source);
		return 1;
	}
	p.t = xcalloc(1, sizeof(*p.t));
	table_parse_text(&p, text, len);
	if (p.nerr != 0) {
		table_free(p.t);
		return p.nerr;
	}
	*tp = p.t;
	return 0;
}

/* The entry for s[0..n), with *matched set. */
static const char *
table_hit(const struct table *t, const char *s, size_t n, const char **matched)
{
	const struct table_entry *e;

	if ((e = table_find(t, s, n)) == NULL)
		return NULL;
	if (matched != NULL)
		*matched = e->key;
	return e->value;
}

const char *
table_lookup(const struct table *t, const char *domain, const char **matched)
{
	char d[ADDR_DOMAIN_MAX + 2];
	const char *v;
	size_t n, i;

	if (matched != NULL)
		*matched = NULL;
	if (t == NULL || domain == NULL)
		return NULL;
	n = strlen(domain);
	if (n > 0 && domain[n - 1] == '.')
		n--;
	/* A name no key can equal falls through to the default. */
	if (n > 0 && n <= ADDR_DOMAIN_MAX && domain[0] != '.') {
		for (i = 0; i < n; i++)
			d[i] = domain[i] >= 'A' && domain[i] <= 'Z' ?
			    (char)(domain[i] - 'A' + 'a') : domain[i];
		d[n] = '\0';
		if ((v = table_hit(t, d, n, matched)) != NULL)
			return v;
		for (i = 1; i < n; i++)
			if (d[i] == '.' &&
			    (v = table_hit(t, d + i, n - i, matched)) != NULL)
				return v;
	}
	return table_hit(t, "*", 1, matched);
}

size_t
table_count(const struct table *t)
{
	return t != NULL ? t->n : 0;
}

void
table_free(struct table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		free(t->v[i].key);
		free(t->v[i].value);
	}
	free(t->v);
	free(t->slots);
	free(t);
}
