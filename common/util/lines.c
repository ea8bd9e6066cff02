/*
 * lines.c: logical lines of moat.conf and lookup tables (see lines.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "util/buf.h"
#include "util/lines.h"
#include "util/xmalloc.h"

/* Is this physical line blank or a comment? */
static int
lines_ignored(const char *l, size_t n)
{
	size_t i = 0;

	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	return i == n || l[i] == '#';
}

/* Hand over the logical line collected so far, if any. */
static void
lines_flush(const struct lines_reader *r, struct buf *logical, int *start)
{
	char *s;
	size_t n;

	if (*start != 0 && buf_append(logical, "", 1) == 0) {
		s = (char *)logical->data;
		n = logical->len - 1;
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		s[n] = '\0';
		r->line(r->arg, s, n, *start);
	}
	buf_reset(logical);
	*start = 0;
}

void
lines_split(const struct lines_reader *r, const char *text, size_t len)
{
	struct buf logical;
	char msg[160];
	size_t off = 0;
	int lineno = 0, start = 0, discard = 0;

	/* One byte more than the cap, for the NUL lines_flush adds. */
	buf_init(&logical, r->logical_max + 1);
	while (off < len) {
		const char *l = text + off, *nl = memchr(l, '\n', len - off);
		size_t n = nl != NULL ? (size_t)(nl - l) : len - off;
		int cont, nul;

		off += n + (nl != NULL);
		lineno++;
		if (n > 0 && l[n - 1] == '\r')
			n--;
		cont = n > 0 && (l[0] == ' ' || l[0] == '\t');
		nul = memchr(l, '\0', n) != NULL;
		if (nul || n > r->line_max) {
			if (nul)
				strlcpy_m(msg, "NUL byte in line", sizeof(msg));
			else
				snprintf(msg, sizeof(msg), "line longer than %zu "
				    "bytes", r->line_max);
			r->error(r->arg, lineno, msg);
			/* Drop the whole logical line this one belongs to. */
			if (!cont)
				lines_flush(r, &logical, &start);
			buf_reset(&logical);
			start = 0;
			discard = 1;
			continue;
		}
		if (lines_ignored(l, n))
			continue;
		if (!cont) {
			lines_flush(r, &logical, &start);
			discard = 0;
			start = lineno;
			(void)buf_append(&logical, l, n);
			continue;
		}
		if (discard)
			continue;
		if (start == 0) {
			snprintf(msg, sizeof(msg), "continuation line without "
			    "%s %s before it", r->article, r->noun);
			r->error(r->arg, lineno, msg);
			discard = 1;
			continue;
		}
		while (n > 0 && (*l == ' ' || *l == '\t')) {
			l++;
			n--;
		}
		if (logical.len + 1 + n > r->logical_max ||
		    buf_append(&logical, " ", 1) == -1 ||
		    buf_append(&logical, l, n) == -1) {
			snprintf(msg, sizeof(msg), "%s longer than %zu bytes",
			    r->noun, r->logical_max);
			r->error(r->arg, start, msg);
			buf_reset(&logical);
			start = 0;
			discard = 1;
		}
	}
	lines_flush(r, &logical, &start);
	buf_free(&logical);
}
