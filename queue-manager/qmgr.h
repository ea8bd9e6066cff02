/*
 * qmgr.h: the queue-manager's state, shared by its files.
 *
 * qmgr.c          start-up, the event loop and the group commit
 * qmgr_listener.c the channel from moatd: new sessions and agents
 * qmgr_session.c  smtpd-session channels: BEGIN, DATA, COMMIT, ABORT
 * qmgr_sched.c    routing, scheduling and the jobs of delivery agents
 * qmgr_hop.c      connections per next hop and the choice of a job (pure)
 * qmgr_agent.c    delivery-agent channels: JOB, FETCH, RESULT, DONE
 * qmgr_proto.c    pure decoders of what sessions and agents send (fuzzed)
 * qmgr_bounce.c   final recipients: bounces and removal of messages
 * qmgr_control.c  the control socket (moatctl)
 * sandbox.c       the seccomp allow-list
 * queue_db.c, queue_dsn.c, queue_retry.c: the database, the bounce text
 *                 and the retry rules (libqmgr.a, unit-tested)
 */
#ifndef MOAT_QMGR_H
#define MOAT_QMGR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "ipc_types.h"
#include "util/buf.h"
#include "util/conf.h"
#include "util/ipc.h"
#include "util/sandbox.h"
#include "qmgr_hop.h"
#include "queue_db.h"
#include "queue_retry.h"

/* Bytes a session may add to message_size_limit: its Received: header. */
#define QMGR_RECEIVED_ALLOWANCE	8192
/* Longest wait before chunks and state changes nobody waits for reach
 * the disk. */
#define QMGR_FLUSH_MSEC		1000
/* Checkpoint the WAL (qmgr.c) once a commit has left this many bytes of
 * pages in it. */
#define QMGR_CHECKPOINT_BYTES	(16 * 1024 * 1024)
/* Recipients of a job whose agent went away are tried again after this. */
#define QMGR_REQUEUE_DELAY	30
/* After the database failed, retry recovering it this often. */
#define QMGR_RECOVER_DELAY	5
#define QMGR_JOB_MAX_RCPTS	1000
#define QMGR_CONTROL_MAX	16
/* Rows a control client is sent before others get a turn. */
#define QMGR_CONTROL_BATCH	64
#define QMGR_ENH_MAX		15	/* "5.1.1" with room to spare */
/* A reply as logged and stored: code, enhanced code, text, a prefix. */
#define QMGR_REPLY_MAX		(MOAT_TEXT_MAX + 64)

struct event;
struct event_base;
struct wal_sync;

enum qmgr_session_state {
	QS_IDLE,
	QS_RECEIVING,		/* BEGIN answered, DATA arriving */
	QS_WAITING,		/* COMMIT seen; the group commit will answer */
	QS_SYNCING,		/* committed; answered once the WAL is on disk */
};

struct qmgr_session {
	TAILQ_ENTRY(qmgr_session) entry;
	int			 fd;
	struct event		*ev;
	pid_t			 pid;
	char			 client[QUEUE_CLIENT_MAX + 1];	/* from accept() */
	unsigned int		 client_port;
	char			 local[QUEUE_CLIENT_MAX + 1];
	unsigned int		 local_port;
	enum qmgr_session_state	 state;
	struct queue_msg	 msg;		/* the message in progress */
	uint32_t		 nrcpt;
	uint64_t		 bytes;		/* DATA bytes received */
	uint32_t		 nchunks;	/* chunks stored */
	struct buf		 pend;		/* bytes not yet a whole chunk */
	int			 failed;	/* a write failed: FAIL at COMMIT */
	uint32_t		 reqid;		/* of the COMMIT being answered */
	uint64_t		 commit_gen;	/* QS_SYNCING: its group commit */
};

/* One recipient of a job, with its result once the agent sent it. */
struct qmgr_job_rcpt {
	uint32_t		 idx;
	char			 address[QUEUE_SENDER_MAX + 1];
	uint32_t		 attempts;	/* before this job */
	uint32_t		 dsn_notify;	/* as stored, sent in the job */
	char			 dsn_orcpt[MOAT_ORCPT_MAX + 1];
	int			 nexthop_stale;	/* stored route differs */
	int			 done;
	uint32_t		 code;
	char			 enh[QMGR_ENH_MAX + 1];
	char			 reply[QMGR_REPLY_MAX + 1];	/* "550 5.1.1 ..." */
	char			 relay[MOAT_NEXTHOP_MAX + 1];
	int64_t			 when_us;	/* result time, for delay= */
	uint32_t		 result_flags;	/* MOAT_RESULT_* of IPC_D2Q_RESULT */
	char			 tls[128];	/* TLS of the delivery, "" clear */
	/* Set while the job is applied: */
	enum queue_rcpt_state	 final;
	int			 expired;
};

struct qmgr_agent;

struct qmgr_job {
	TAILQ_ENTRY(qmgr_job)	 entry;		/* on the unapplied list */
	uint64_t		 id;
	struct qmgr_agent	*agent;		/* NULL once it went away */
	struct queue_msg	 msg;
	enum queue_transport	 transport;
	char			 nexthop[MOAT_NEXTHOP_MAX + 1];
	uint32_t		 nchunks;
	uint32_t		 n;
	uint32_t		 ndone;
	struct qmgr_job_rcpt	*r;		/* sorted by idx */
	pid_t			 agent_pid;	/* for logs once the agent is gone */
};

struct qmgr_agent {
	TAILQ_ENTRY(qmgr_agent)	 entry;
	int			 fd;
	struct event		*ev;
	pid_t			 pid;
	enum queue_transport	 transport;
	struct qmgr_job		*job;		/* NULL: idle */
	struct ipc_wr		 out;		/* a message the socket had no room for */
	int			 out_pending;
	struct buf		 chunk;
	int			 stopping;	/* sent IPC_D2Q_STOP: no new job */
	char			 cached[MOAT_NEXTHOP_MAX + 1];	/* idle connection
					   held open to this next hop, "" none */
	char			 counted[MOAT_NEXTHOP_MAX + 1];	/* the next hop
					   this agent counts against in
					   qmgr->hops (its job's, else
					   cached), "" none */
};

enum qmgr_control_req {
	QC_NONE,
	QC_LIST,		/* IPC_C2Q_LIST, or "list" with a filter */
	QC_SHOW,
	QC_ROWS,		/* rows built in advance (changes, stats, shape) */
	QC_AUDIT,		/* the audit table, by cursor */
	QC_DATA,		/* a stored message's headers or body */
};

/* Who is asking: decided once, from the peer's credentials. */
enum qmgr_control_role { QC_ROLE_NONE, QC_ROLE_READONLY, QC_ROLE_ADMIN };

struct qmgr_control {
	TAILQ_ENTRY(qmgr_control) entry;
	int			 fd;
	struct event		*ev;
	uid_t			 uid;
	enum qmgr_control_role	 role;
	enum qmgr_control_req	 req;
	uint32_t		 reqid;
	int64_t			 cursor;	/* last rowid or index sent */
	int64_t			 msg;		/* SHOW, DATA: the message */
	int			 header_sent;	/* SHOW: message row sent */
	uint32_t		 rows;
	struct queue_filter	*filter;	/* LIST: NULL for everything */
	struct ipc_wr		*pre;		/* ROWS: the rows, then END */
	size_t			 npre, ipre;
	int			 body;		/* DATA: body (1) or headers (0) */
	int			 crlf;		/* DATA: bytes of CRLFCRLF matched */
	int			 past_header;	/* DATA: the blank line was seen */
	struct ipc_wr		 out;
	int			 out_pending;
};

TAILQ_HEAD(qmgr_sessions, qmgr_session);
TAILQ_HEAD(qmgr_agents, qmgr_agent);
TAILQ_HEAD(qmgr_controls, qmgr_control);
TAILQ_HEAD(qmgr_jobs, qmgr_job);

struct qmgr {
	struct conf		*cfg;
	struct queue_db		*db;
	struct event_base	*base;
	int			 dirfd;		/* the queue directory (fstatvfs) */
	uid_t			 uid;		/* our own, after the drop */
	gid_t			 admin_gid;
	int			 have_admin_gid;
	const char		*hostname;
	const char		*relay_host;	/* "" when unset */
	struct queue_retry_limits limits;
	uint64_t		 size_limit;	/* with the Received: allowance */
	uint64_t		 declared_limit;/* message_size_limit */
	uint64_t		 min_free;
	uint32_t		 rcpt_limit;

	struct event		*parent_ev, *control_ev;
	struct event		*flush_ev, *sched_ev, *recover_ev;
	struct event		*sig_ev[3];

	struct qmgr_sessions	 sessions;
	struct qmgr_agents	 agents;
	struct qmgr_controls	 controls;
	struct qmgr_jobs	 unapplied;	/* finished jobs waiting for the db */
	size_t			 ncontrols;

	int			 nwaiting;	/* sessions in QS_WAITING */
	/* Group commits so far, those known to be on disk, and those the
	 * sync in flight covers (0: none in flight). */
	uint64_t		 commit_gen, synced_gen, sync_gen;
	struct wal_sync		*ws;		/* NULL: every COMMIT syncs */
	int			 wal_fd;
	struct event		*sync_ev;
	int			 urgent;	/* commit at the end of this batch */
	int			 sched_dirty;	/* run the scheduler at batch end */
	int			 db_broken;	/* writes refused until recovered */
	int			 quit;
	uint64_t		 next_job_id;
	struct qmgr_hops	 hops;		/* connections per next hop */
	uint64_t		 jobs_relay;	/* relay jobs given out */
	uint64_t		 jobs_reused;	/* of those, to an agent's
						   cached connection */
	uint8_t			 rbuf[IPC_MAX_MSG];
};

extern struct qmgr *qmgr;

/* qmgr.c */
int64_t	qmgr_now_us(void);
int64_t	qmgr_now(void);
void	qmgr_db_trouble(const char *what, int force_lost);
void	qmgr_touch(void);
void	qmgr_sync_wait(void);
int	qmgr_set_nonblock(int fd);
void	qmgr_reply_text(uint32_t code, const char *enh, const char *text,
	    char *dst, size_t dstsz);
int	qmgr_send(int fd, struct ipc_wr *w);
void	qmgr_reload(int fd);

/* qmgr_listener.c */
void	qmgr_listener_read(int fd, short ev, void *arg);

/* qmgr_session.c */
void	qmgr_session_new(int fd, pid_t pid, const char *client, unsigned int cport,
	    const char *local, unsigned int lport);
void	qmgr_session_commit_failed(void);
void	qmgr_session_committed(uint64_t gen);
void	qmgr_session_synced(uint64_t gen, int ok);
void	qmgr_session_db_lost(void);
void	qmgr_session_close_all(void);

/* qmgr_sched.c */
void	qmgr_sched_run(void);
void	qmgr_sched_timer(int fd, short ev, void *arg);
int	qmgr_route(const struct conf *cfg, const char *client, const char *address,
	    enum queue_transport *t, char *nexthop, size_t nhsz);
int	qmgr_route_relay(const struct conf *cfg, const char *address, char *nexthop,
	    size_t nhsz, char *err, size_t errlen);
void	qmgr_sched_agent_hop(struct qmgr_agent *a, const char *hop);
int	qmgr_job_replay(void);
void	qmgr_job_finish(struct qmgr_job *job);
void	qmgr_job_free(struct qmgr_job *job);
struct qmgr_job_rcpt *qmgr_job_rcpt_find(struct qmgr_job *job, uint32_t idx);

/* qmgr_agent.c */
void	qmgr_agent_new(int fd, pid_t pid, enum queue_transport t);
int	qmgr_agent_send_job(struct qmgr_agent *a, struct qmgr_job *job);
void	qmgr_agent_close(struct qmgr_agent *a, const char *why);
void	qmgr_agent_close_all(void);

/* qmgr_bounce.c */
struct qmgr_bounced {
	const char	*address;
	const char	*status;	/* enhanced status for the report */
	const char	*diagnostic;	/* the reply, "550 5.1.1 ..." */
};
int	qmgr_bounce_create(const struct queue_msg *orig, const struct qmgr_bounced *b,
	    size_t n, char bounce_qid[QUEUE_ID_LEN + 1], uint64_t *size);
int	qmgr_msg_remove_if_done(const struct queue_msg *m, int *removed);
/* DSN (RFC 3461/3464): success notices of a job being applied; any
 * notice (kind: enum queue_dsn_kind of queue_dsn.h). */
struct queue_dsn_rcpt;
int	qmgr_bounce_success(const struct qmgr_job *job);
int	qmgr_notice_create(const struct queue_msg *orig, int kind,
	    const struct queue_dsn_rcpt *dr, size_t n, char nqid[QUEUE_ID_LEN + 1],
	    uint64_t *size);

/* qmgr_warn.c: delay warnings, from the end of each scheduler run. */
void	qmgr_warn_run(int64_t now);

/* qmgr_control.c */
void	qmgr_control_accept(int fd, short ev, void *arg);
void	qmgr_control_close_all(void);
void	qmgr_control_settings(const struct conf *cfg);

/* sandbox.c */
extern const struct sandbox_rule qmgr_sandbox[];
extern const size_t qmgr_sandbox_len;

#endif
