/*
 * moatctl_status_parse.c: the parser of run_directory/status (format in
 * docs/moatctl.md, "status").  The file is written by moatd as root but
 * read by any user, so it is checked like any input: bounded lines,
 * numbers in range, every key moatctl needs present exactly once.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moatctl_status.h"
#include "util/xmalloc.h"

#define STATUS_LINE_MAX	4096

enum {
	ST_VERSION = 1 << 0, ST_MOATD_PID = 1 << 1, ST_MOATD_STARTED = 1 << 2,
	ST_CONFIG = 1 << 3, ST_CONFIG_LOADED = 1 << 4, ST_SESSIONS = 1 << 5,
	ST_UPDATED = 1 << 6, ST_RELOADS = 1 << 7
};
#define ST_NEEDED	(ST_VERSION | ST_MOATD_PID | ST_MOATD_STARTED | ST_CONFIG | \
			 ST_CONFIG_LOADED | ST_SESSIONS | ST_UPDATED | ST_RELOADS)

/* A decimal number in [min, max]; -1 if it is anything else. */
static int
status_num(const char *s, long long min, long long max, long long *v)
{
	char *end;

	if (*s == '\0' || *s == '+' || *s == ' ' || (*s == '-' && min >= 0))
		return -1;
	errno = 0;
	*v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || *v < min || *v > max)
		return -1;
	return 0;
}

/* A word for a role or state: lower-case letters and '-', not empty. */
static int
status_word(const char *s, char *dst, size_t dstsz)
{
	const char *p;

	if (*s == '\0' || strlen(s) >= dstsz)
		return -1;
	for (p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || *p == '-'))
			return -1;
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

/* proc=ROLE pid=N started=T restarts=N state=WORD (fields in any order). */
static int
status_proc_line(char *line, struct status_proc *p)
{
	char *save = NULL, *f, *eq;
	unsigned int seen = 0;
	long long v;

	memset(p, 0, sizeof(*p));
	for (f = strtok_r(line, " ", &save); f != NULL; f = strtok_r(NULL, " ", &save)) {
		if ((eq = strchr(f, '=')) == NULL)
			return -1;
		*eq++ = '\0';
		if (strcmp(f, "proc") == 0) {
			if (status_word(eq, p->role, sizeof(p->role)) == -1)
				return -1;
			seen |= 1;
		} else if (strcmp(f, "pid") == 0) {
			if (status_num(eq, 0, INT_MAX, &v) == -1)
				return -1;
			p->pid = (long)v;
			seen |= 2;
		} else if (strcmp(f, "started") == 0) {
			if (status_num(eq, 0, LLONG_MAX, &v) == -1)
				return -1;
			p->started = v;
			seen |= 4;
		} else if (strcmp(f, "restarts") == 0) {
			if (status_num(eq, 0, UINT_MAX, &v) == -1)
				return -1;
			p->restarts = (unsigned long)v;
			seen |= 8;
		} else if (strcmp(f, "state") == 0) {
			if (status_word(eq, p->state, sizeof(p->state)) == -1)
				return -1;
			seen |= 16;
		}
	}
	return seen == 31 ? 0 : -1;
}

/* One key=value line into si; *seen collects the keys met. */
static int
status_line(char *line, struct status_info *si, unsigned int *seen,
    char *err, size_t errlen, size_t lineno)
{
	static const struct {
		const char	*key;
		unsigned int	 bit;
		long long	 min, max;
	} nums[] = {
		{ "version", ST_VERSION, 1, 1 },
		{ "updated", ST_UPDATED, 0, LLONG_MAX },
		{ "moatd_pid", ST_MOATD_PID, 2, INT_MAX },
		{ "moatd_started", ST_MOATD_STARTED, 0, LLONG_MAX },
		{ "config_loaded", ST_CONFIG_LOADED, 0, LLONG_MAX },
		{ "config_reloads", ST_RELOADS, 0, UINT_MAX },
		{ "sessions", ST_SESSIONS, 0, UINT_MAX },
	};
	char *eq = strchr(line, '=');
	long long v;
	size_t i;

	if (eq == NULL || eq == line) {
		snprintf(err, errlen, "line %zu: not key=value", lineno);
		return -1;
	}
	*eq++ = '\0';
	if (strcmp(line, "proc") == 0) {
		if (si->nproc == STATUS_PROCS_MAX) {
			snprintf(err, errlen, "line %zu: more than %d processes", lineno,
			    STATUS_PROCS_MAX);
			return -1;
		}
		eq[-1] = '=';
		if (status_proc_line(line, &si->proc[si->nproc]) == -1) {
			snprintf(err, errlen, "line %zu: bad process line", lineno);
			return -1;
		}
		si->nproc++;
		return 0;
	}
	if (strcmp(line, "config") == 0) {
		if ((*seen & ST_CONFIG) || *eq == '\0') {
			snprintf(err, errlen, "line %zu: bad or repeated config", lineno);
			return -1;
		}
		si->config = xstrdup(eq);
		*seen |= ST_CONFIG;
		return 0;
	}
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if (strcmp(line, nums[i].key) != 0)
			continue;
		if ((*seen & nums[i].bit) ||
		    status_num(eq, nums[i].min, nums[i].max, &v) == -1) {
			snprintf(err, errlen, "line %zu: bad or repeated %s", lineno,
			    nums[i].key);
			return -1;
		}
		*seen |= nums[i].bit;
		switch (nums[i].bit) {
		case ST_VERSION: si->version = v; break;
		case ST_UPDATED: si->updated = v; break;
		case ST_MOATD_PID: si->moatd_pid = (long)v; break;
		case ST_MOATD_STARTED: si->moatd_started = v; break;
		case ST_CONFIG_LOADED: si->config_loaded = v; break;
		case ST_RELOADS: si->config_reloads = (unsigned long)v; break;
		default: si->sessions = (unsigned long)v; break;
		}
		return 0;
	}
	return 0;	/* a key of a newer moatd */
}

int
status_parse(const char *text, size_t len, struct status_info *si,
    char *err, size_t errlen)
{
	char line[STATUS_LINE_MAX];
	unsigned int seen = 0;
	size_t off = 0, lineno = 0;

	memset(si, 0, sizeof(*si));
	if (len > STATUS_FILE_MAX) {
		snprintf(err, errlen, "larger than %d bytes", STATUS_FILE_MAX);
		return -1;
	}
	if (len == 0 || text[len - 1] != '\n') {
		snprintf(err, errlen, "empty or cut short");
		return -1;
	}
	si->proc = xcalloc(STATUS_PROCS_MAX, sizeof(*si->proc));
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = (size_t)(nl - (text + off));

		lineno++;
		if (n >= sizeof(line) || memchr(text + off, '\0', n) != NULL) {
			snprintf(err, errlen, "line %zu: too long or has a NUL", lineno);
			goto fail;
		}
		memcpy(line, text + off, n);
		line[n] = '\0';
		off += n + 1;
		if (status_line(line, si, &seen, err, errlen, lineno) == -1)
			goto fail;
	}
	if ((seen & ST_NEEDED) != ST_NEEDED) {
		snprintf(err, errlen, "a needed key is missing");
		goto fail;
	}
	if (si->nproc == 0 || strcmp(si->proc[0].role, "listener") != 0) {
		snprintf(err, errlen, "no listener process line");
		goto fail;
	}
	return 0;
fail:
	status_free(si);
	return -1;
}

void
status_free(struct status_info *si)
{
	free(si->config);
	free(si->proc);
	memset(si, 0, sizeof(*si));
}
