/*
 * lines.h: the line structure shared by moat.conf and lookup tables.
 *
 * Text is split at LF (a CR before it is dropped).  A physical line
 * that is blank or whose first non-blank character is '#' is ignored.
 * A line that starts with a space or a tab continues the logical line
 * above it: its leading blanks become one space.  Each logical line is
 * handed over with its trailing blanks removed, NUL-terminated, with the
 * number of the physical line it started on.  Caps: a physical line over
 * line_max bytes, or one holding a NUL byte, is an error that drops the
 * whole logical line it belongs to; so is a logical line over
 * logical_max bytes, and a continuation with nothing before it.
 */
#ifndef MOAT_LINES_H
#define MOAT_LINES_H

#include <stddef.h>

struct lines_reader {
	size_t	 line_max;	/* one physical line, line end excluded */
	size_t	 logical_max;	/* one logical line with its continuations */
	const char *noun;	/* "setting", "entry": for the messages */
	const char *article;	/* "a", "an" */
	void	*arg;
	/* One logical line: s[0..n) is NUL-terminated and may be changed. */
	void	(*line)(void *arg, char *s, size_t n, int lineno);
	/* One error, without "source:line: ". */
	void	(*error)(void *arg, int lineno, const char *msg);
};

/* Hand every logical line of text[0..len) to r->line, errors to r->error. */
void	lines_split(const struct lines_reader *r, const char *text, size_t len);

#endif
