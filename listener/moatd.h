/*
 * moatd.h: the listener's state, shared by its files.
 *
 * moatd.c     command line, start-up order, the event loop and signals
 * rundir.c    run_directory and its subdirectories
 * sockets.c   listening sockets, control socket, configuration memfd
 * caps.c      capability bounding set and capability sets (libcap)
 * spawn.c     fork + exec of every child, driven by common/proc.h
 * accept.c    a new client: limits, the session, the 421 refusal
 * supervise.c child table: sessions, queue-manager, agents, back-off
 * violation.c client addresses whose sessions die of seccomp violations
 * qchan.c     the channel to the queue-manager and its send queue
 * keys.c      the TLS key files, the keyholder's channel, session channels
 * reload.c    SIGHUP: the new configuration, rolling agent restart; moatd.pid
 * status.c    run_directory/status for moatctl status
 * sandbox.c   the listener's seccomp table
 */
#ifndef MOAT_MOATD_H
#define MOAT_MOATD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "proc.h"
#include "util/conf.h"
#include "util/sandbox.h"

#define MOATD_ADDR_MAX	64	/* a numeric IPv4 or IPv6 address */
#define VIOLATION_MAX_ADDRS	4096	/* client addresses tracked at most */

/* One client address whose sessions died of seccomp violations. */
struct violation_entry {
	char		 addr[MOATD_ADDR_MAX];
	unsigned int	 count;		/* violations since first */
	int64_t		 first;		/* monotonic ms: the window opened */
	int64_t		 last;		/* monotonic ms: the latest violation */
};

/* smtpd_violation_limit deaths in smtpd_violation_window: see violation.c. */
struct violation_table {
	struct violation_entry *v;
	size_t		 n, alloc, cap;
	unsigned int	 limit;
	int64_t		 window_ms;
	unsigned long	 evicted;	/* entries pushed out by a full table */
};

/* Ids and directory of one role. */
struct moatd_role {
	uid_t		 uid;		/* (uid_t)-1 when unprivileged */
	gid_t		 gid;
	const char	*user;		/* from the role's user setting */
	char		*chroot_dir;	/* absolute path under run_directory */
};

struct moatd {
	struct conf	*cfg;
	const char	*cfg_path;
	const char	*libexecdir;
	int		 debug;
	int		 privileged;	/* started as root */

	struct moatd_role role[PROC_NROLES];
	gid_t		 admin_gid;	/* (gid_t)-1: group missing or unprivileged */
	const char	*rundir;
	char		*control_path;

	int		 cfg_fd;	/* sealed memfd: the configuration and its
					   lookup tables (conf_bundle) */
	int		 session_cfg_fd;	/* sealed memfd: the configuration
					   text alone, for sessions, which route
					   nothing and are exec'd per connection */
	int		 session_filter_fd;	/* sealed memfd: the session's
					   seccomp program, or -1 (built by
					   each session) */
	int		 devnull;
	int		*listen_fd;
	size_t		 nlisten;
	int		 control_fd;
	int		 qmgr_chan;	/* our end of the queue-manager channel, or -1 */
	int		 keys_fd;	/* sealed memfd with the PEM keys of
					   smtpd_tls_key_files, or -1 (keys.c) */
	const char	*hostname;	/* myhostname, resolved at start-up
					   and at each reload */
	char		*pid_path;	/* run_directory/moatd.pid */
	int64_t		 accept_paused_until;	/* out of descriptors: wait */
	struct violation_table violations;	/* per client address */
};

/* rundir.c */
int	rundir_setup(struct moatd *m, char *err, size_t errlen);

/* sockets.c */
int	sockets_listen(struct moatd *m, char *err, size_t errlen);
int	sockets_control(struct moatd *m, char *err, size_t errlen);
int	sockets_sealed_memfd(const char *name, const char *text, size_t len,
	    char *err, size_t errlen);
int	sockets_config_memfd(const char *text, size_t len, char *err, size_t errlen);
/*
 * The two configuration memfds of cfg (parsed from text by
 * conf_parse_file): the bundle with its lookup tables (returned) and the
 * plain text for sessions (*session_fd).  -1 with err on failure.
 */
int	moatd_config_fds(const struct conf *cfg, const char *text, size_t len,
	    int *session_fd, char *err, size_t errlen);
void	sockets_addr(const struct sockaddr *sa, char *addr, size_t addrsz,
	    unsigned int *port);

/* caps.c */
int	caps_drop(char *err, size_t errlen);
const char *caps_kept_names(void);

/* spawn.c */
pid_t	spawn_child(const struct moatd *m, enum proc_role role, int fd4, int fd5);
int	spawn_check_binaries(const char *libexecdir, char *err, size_t errlen);

/* accept.c */
void	accept_ready(struct moatd *m, int lfd, int64_t now);

/* qchan.c */
int	qchan_open(struct moatd *m, int *child_end);
void	qchan_close(struct moatd *m);
void	qchan_queue(struct moatd *m, const uint8_t *msg, size_t len, int fd);
void	qchan_flush(struct moatd *m);
int	qchan_pending(void);
int	qchan_session(struct moatd *m, pid_t pid, int qfd, const char *caddr,
	    unsigned int cport, const char *laddr, unsigned int lport);
int	qchan_agent(struct moatd *m, pid_t pid, enum proc_role role, int qfd);
int	qchan_reload(struct moatd *m, int cfg_fd);

/* keys.c */
/* tlscheck.c: each certificate with its key; the number of problems,
 * printed to out as "file:line: message". */
int	tlscheck_pairs(const struct conf *cfg, FILE *out);
int	keys_enabled(const struct moatd *m);
int	keys_setup(struct moatd *m, char *err, size_t errlen);
int	keys_open(const struct moatd *m, int *child_end);
void	keys_started(const struct moatd *m);
void	keys_close(void);
int	keys_session_pair(const struct moatd *m, int *session_end,
	    int *keyholder_end);
void	keys_session(pid_t pid, int keyholder_end);
int	keys_reload(struct moatd *m);

/* reload.c */
#define RELOAD_CONFIG_MAX	(1024 * 1024)	/* largest moat.conf read */
void	reload_config(struct moatd *m);
void	reload_tick(int stopping);
int	reload_pidfile_write(struct moatd *m, char *err, size_t errlen);
void	reload_pidfile_remove(struct moatd *m);

/* One supervised child as the status file shows it (supervise_info). */
struct supervise_info {
	enum proc_role	 role;
	int		 running;
	pid_t		 pid;
	time_t		 started;	/* wall clock, while running */
	unsigned int	 restarts;	/* starts since moatd started, minus one */
	const char	*state;		/* running, waiting, stopped */
};

/* supervise.c */
void	supervise_init(struct moatd *m);
void	supervise_start_all(struct moatd *m, int64_t now);
void	supervise_reap(struct moatd *m, int64_t now);
void	supervise_timers(struct moatd *m, int64_t now);
int64_t	supervise_next_deadline(int64_t now);
int	supervise_qmgr_running(void);
void	supervise_qmgr_lost(struct moatd *m, int64_t now);
void	supervise_keys_enable(void);
void	supervise_add_session(pid_t pid, const char *addr);
size_t	supervise_sessions(void);
size_t	supervise_sessions_from(const char *addr);
void	supervise_stop_all(int sig);
size_t	supervise_children(void);
void	supervise_stop_stage(enum proc_role which, int sig);
size_t	supervise_running(enum proc_role which);
size_t	supervise_nagents(void);
pid_t	supervise_agent_pid(size_t i);
int	supervise_agent_recycle(size_t i);
const char *supervise_describe_status(int status, char *buf, size_t bufsz);
int	supervise_info(size_t i, struct supervise_info *si);

/* status.c */
void	status_init(struct moatd *m);
void	status_config_loaded(void);
void	status_changed(int urgent);
void	status_tick(struct moatd *m, int64_t now);
int64_t	status_next_deadline(void);
void	status_remove(void);

/* violation.c */
void	violation_init(struct violation_table *vt, size_t cap, unsigned int limit,
	    int64_t window_ms);
void	violation_free(struct violation_table *vt);
unsigned int violation_add(struct violation_table *vt, const char *addr,
	    int64_t now);
int	violation_blocked(struct violation_table *vt, const char *addr,
	    int64_t now, unsigned int *count);
size_t	violation_tracked(const struct violation_table *vt);

/* sandbox.c */
extern const struct sandbox_rule listener_sandbox[];
extern const size_t listener_sandbox_len;

/* moatd.c */
int64_t	moatd_now_ms(void);

#endif
