/*
 * test_moatctl_status.c: the parser of run_directory/status that
 * `moatctl status` reads: a file as moatd writes it, and hostile or
 * broken ones (cut short, NULs, bad numbers, missing keys, too many
 * processes, overlong lines), which must be refused, never misread.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "util/xmalloc.h"
#include "moatctl/moatctl_status.h"

#define HEAD "version=1\nupdated=1795874500\nmoatd_pid=100\nmoatd_started=1795874400\n" \
	"config=/etc/moat conf/moat.conf\nconfig_loaded=1795874450\nconfig_reloads=2\n" \
	"sessions=3\n"
#define LISTENER "proc=listener pid=100 started=1795874400 restarts=0 state=running\n"

static void
test_good(void)
{
	const char *text = HEAD LISTENER
	    "proc=queue-manager pid=101 started=1795874401 restarts=1 state=running\n"
	    "proc=relay pid=0 started=0 restarts=4 state=waiting\n"
	    "future_key=whatever it is\n"
	    "proc=local state=running restarts=0 started=1795874402 pid=103 extra=1\n";
	struct status_info si;
	char err[128];

	T_OK(status_parse(text, strlen(text), &si, err, sizeof(err)) == 0, "good file parses");
	T_OK(si.moatd_pid == 100 && si.moatd_started == 1795874400, "moatd pid and start");
	T_OK(si.config != NULL && strcmp(si.config, "/etc/moat conf/moat.conf") == 0,
	    "config path with a space, whole");
	T_OK(si.config_loaded == 1795874450 && si.config_reloads == 2, "config load time, reloads");
	T_OK(si.sessions == 3 && si.updated == 1795874500, "sessions, updated");
	T_OK(si.nproc == 4, "four process lines");
	T_OK(strcmp(si.proc[0].role, "listener") == 0 && si.proc[0].pid == 100, "listener first");
	T_OK(strcmp(si.proc[1].role, "queue-manager") == 0 && si.proc[1].restarts == 1,
	    "queue-manager restarts");
	T_OK(si.proc[2].pid == 0 && strcmp(si.proc[2].state, "waiting") == 0,
	    "waiting relay: pid 0");
	T_OK(si.proc[3].pid == 103 && strcmp(si.proc[3].role, "local") == 0,
	    "fields in any order, unknown field skipped");
	status_free(&si);
	T_OK(si.config == NULL && si.proc == NULL, "status_free clears");
}

static void
test_bad(void)
{
	static const struct {
		const char *label, *text;
	} cases[] = {
		{ "empty", "" },
		{ "cut short (no final newline)", HEAD "proc=listener pid=100" },
		{ "no listener line", HEAD },
		{ "first process not the listener",
		  HEAD "proc=relay pid=5 started=1 restarts=0 state=running\n" LISTENER },
		{ "version 2", "version=2\n" HEAD LISTENER },
		{ "repeated key", HEAD "sessions=4\n" LISTENER },
		{ "negative sessions", "version=1\nupdated=1\nmoatd_pid=100\nmoatd_started=1\n"
		  "config=/c\nconfig_loaded=1\nconfig_reloads=0\nsessions=-1\n" LISTENER },
		{ "pid 1 for moatd", "version=1\nupdated=1\nmoatd_pid=1\nmoatd_started=1\n"
		  "config=/c\nconfig_loaded=1\nconfig_reloads=0\nsessions=0\n" LISTENER },
		{ "pid out of range", "version=1\nupdated=1\nmoatd_pid=99999999999\n"
		  "moatd_started=1\nconfig=/c\nconfig_loaded=1\nconfig_reloads=0\nsessions=0\n"
		  LISTENER },
		{ "number with trailing junk", "version=1\nupdated=1x\nmoatd_pid=100\n"
		  "moatd_started=1\nconfig=/c\nconfig_loaded=1\nconfig_reloads=0\nsessions=0\n"
		  LISTENER },
		{ "number with sign", "version=1\nupdated=+1\nmoatd_pid=100\nmoatd_started=1\n"
		  "config=/c\nconfig_loaded=1\nconfig_reloads=0\nsessions=0\n" LISTENER },
		{ "missing config", "version=1\nupdated=1\nmoatd_pid=100\nmoatd_started=1\n"
		  "config_loaded=1\nconfig_reloads=0\nsessions=0\n" LISTENER },
		{ "empty config", "version=1\nupdated=1\nmoatd_pid=100\nmoatd_started=1\n"
		  "config=\nconfig_loaded=1\nconfig_reloads=0\nsessions=0\n" LISTENER },
		{ "line without =", HEAD "garbage\n" LISTENER },
		{ "process line missing state", HEAD
		  "proc=listener pid=100 started=1 restarts=0\n" },
		{ "role with a control byte", HEAD
		  "proc=list\x1b[31mener pid=100 started=1 restarts=0 state=running\n" },
		{ "state with upper case", HEAD
		  "proc=listener pid=100 started=1 restarts=0 state=RUNNING\n" },
		{ "negative pid in process", HEAD
		  "proc=listener pid=-5 started=1 restarts=0 state=running\n" },
		{ "field without =", HEAD
		  "proc=listener pid=100 started=1 restarts=0 state=running junk\n" },
	};
	struct status_info si;
	char err[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		T_OK(status_parse(cases[i].text, strlen(cases[i].text), &si, err,
		    sizeof(err)) == -1 && err[0] != '\0', "%s (%s)", cases[i].label, err);
	}
}

static void
test_hostile_sizes(void)
{
	struct status_info si;
	char err[128], *text;
	size_t n = 0, cap = STATUS_FILE_MAX + 2, i;
	static const char nul[] = HEAD "proc=listener pid=100\0 started=1 restarts=0 "
	    "state=running\n";

	T_OK(status_parse(nul, sizeof(nul) - 1, &si, err, sizeof(err)) == -1,
	    "a NUL inside a line is refused");

	/* More process lines than the cap. */
	text = xmalloc(cap);
	n = (size_t)snprintf(text, cap, "%s%s", HEAD, LISTENER);
	for (i = 0; i < STATUS_PROCS_MAX + 1 && n + 80 < cap; i++)
		n += (size_t)snprintf(text + n, cap - n,
		    "proc=relay pid=%zu started=1 restarts=0 state=running\n", i + 200);
	T_OK(status_parse(text, n, &si, err, sizeof(err)) == -1,
	    "more than STATUS_PROCS_MAX processes refused");

	/* One line longer than a line may be. */
	n = (size_t)snprintf(text, cap, "%sconfig_x=", HEAD);
	memset(text + n, 'a', 5000);
	n += 5000;
	n += (size_t)snprintf(text + n, cap - n, "\n%s", LISTENER);
	T_OK(status_parse(text, n, &si, err, sizeof(err)) == -1, "overlong line refused");

	/* A file larger than any moatd writes. */
	memset(text + n, '\n', cap - n);
	T_OK(status_parse(text, STATUS_FILE_MAX + 1, &si, err, sizeof(err)) == -1,
	    "file over STATUS_FILE_MAX refused");
	free(text);
}

int
main(void)
{
	test_good();
	test_bad();
	test_hostile_sizes();
	return t_done();
}
