/*
 * moatctl_status.h: `moatctl status`, from run_directory/status that
 * moatd rewrites (listener/status.c); the parser is pure and unit-tested.
 */
#ifndef MOAT_MOATCTL_STATUS_H
#define MOAT_MOATCTL_STATUS_H

#include <stddef.h>

#define STATUS_FILE_MAX		(256 * 1024)	/* larger is not moatd's */
#define STATUS_PROCS_MAX	1024
#define STATUS_WORD_MAX		32

/* One process line: proc=ROLE pid=N started=T restarts=N state=WORD */
struct status_proc {
	char		 role[STATUS_WORD_MAX];
	long		 pid;		/* 0: not running */
	long long	 started;	/* Unix seconds, 0: not running */
	unsigned long	 restarts;
	char		 state[STATUS_WORD_MAX];
};

struct status_info {
	long long	 version;
	long long	 updated;
	long		 moatd_pid;
	long long	 moatd_started;
	char		*config;
	long long	 config_loaded;
	unsigned long	 config_reloads;
	unsigned long	 sessions;
	struct status_proc *proc;
	size_t		 nproc;
};

/*
 * Parse the file's text (len bytes, need not be NUL-terminated).  0 and
 * *si filled (free with status_free), or -1 and err says why.  Unknown
 * keys are skipped, so a newer moatd can add some.
 */
int	status_parse(const char *text, size_t len, struct status_info *si,
	    char *err, size_t errlen);
void	status_free(struct status_info *si);

/* moatctl status [--json]: the exit status. */
int	ctl_status(const char *cfgpath, int json);

#endif
