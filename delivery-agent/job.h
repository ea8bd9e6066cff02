/*
 * job.h: the delivery agent's side of its channel to the queue-manager.
 *
 * One job at a time (common/ipc_types.h has the payloads):
 *
 *   queue-manager                      delivery agent
 *   IPC_Q2D_JOB        ------------->
 *                      <-------------  IPC_D2Q_FETCH seq 0
 *   IPC_Q2D_CHUNK 0    ------------->
 *                      ...             (until a chunk with last = 1)
 *                      <-------------  IPC_D2Q_RESULT, once per recipient
 *                      <-------------  IPC_D2Q_DONE (cached next hop or "")
 *                      ...
 *                      <-------------  IPC_D2Q_UNCACHED (the idle
 *                                      connection of the last DONE is gone)
 *
 * The agent asks for the body only when it needs it (a relay whose server
 * refuses MAIL FROM never fetches a byte).  Everything the queue-manager
 * sends is checked: message type, job id, sequence number, string limits,
 * recipient count and indices, body size, and that the payload ends
 * exactly where decoding ends.  A violation is returned as an error; the
 * agent then logs it and exits, and moatd restarts it.
 */
#ifndef MOAT_DELIVERY_JOB_H
#define MOAT_DELIVERY_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "ipc_types.h"
#include "mail/addr.h"
#include "util/ipc.h"

#define JOB_RCPT_MAX	1000
#define JOB_ENH_MAX	16
/* "host[address]:port" or "maildir"; the queue-manager takes as much */
#define JOB_RELAY_MAX	(MOAT_NEXTHOP_MAX + 1)
#define JOB_ERR_MAX	160
#define JOB_TLS_MAX	128	/* "TLSv1.3 TLS_AES_256_GCM_SHA384 verified=no" */

struct job_rcpt {
	uint32_t	 idx;				/* as in the job */
	char		 mailbox[ADDR_MAILBOX_MAX + 1];	/* local@domain */
	struct mailaddr	 addr;				/* the same, parsed */
	uint32_t	 notify;	/* DSN NOTIFY bits, MOAT_NOTIFY_*; 0 none */
	char		 orcpt[MOAT_ORCPT_MAX + 1];	/* "rfc822;addr", decoded */
	/* The result, once known. */
	int		 done;
	unsigned int	 code;		/* 0: no server answered */
	char		 enh[JOB_ENH_MAX];
	char		 text[MOAT_TEXT_MAX + 1];
	const char	*stage;		/* "in reply to RCPT TO command": logs */
	uint32_t	 flags;		/* MOAT_RESULT_*, set by the transport */
};

struct job {
	int		 fd;		/* channel to the queue-manager */
	uint8_t		*buf;		/* receive buffer: IPC_MAX_MSG bytes */
	char		 err[JOB_ERR_MAX];	/* why the channel failed */

	uint64_t	 id;
	char		 qid[MOAT_QID_MAX + 1];
	char		 sender[ADDR_MAILBOX_MAX + 1];	/* "" for <> */
	uint64_t	 size;		/* body bytes, as stored */
	uint32_t	 body_type;	/* MOAT_BODY_* */
	char		 nexthop[MOAT_NEXTHOP_MAX + 1];
	uint32_t	 dsn_ret;	/* MOAT_RET_* */
	char		 envid[MOAT_ENVID_MAX + 1];	/* decoded, "" none */
	size_t		 nrcpt;
	struct job_rcpt	*rcpt;

	/* Body fetching. */
	uint32_t	 seq;		/* next chunk wanted */
	uint64_t	 got;		/* bytes received so far */
	int		 eof;		/* the last chunk has arrived */

	/* Where the results came from, for the queue-manager and logs. */
	char		 relay[JOB_RELAY_MAX];
	char		 tls[JOB_TLS_MAX];	/* "" in clear text */
};

/* Set up j for the channel fd; j->buf is allocated here. */
void	job_init(struct job *j, int fd);
/* Forget the current job (recipients and body state). */
void	job_clear(struct job *j);

/*
 * Wait for the next IPC_Q2D_JOB.  Returns 1 with the job in *j, 0 when
 * the queue-manager closed the channel, -1 on an error or a malformed
 * message (reason in j->err).
 */
int	job_recv(struct job *j);

/*
 * The next piece of the body.  Returns 1 with *p and *n set (valid until the
 * next call; n may be 0 only for an empty final chunk), 0 once the whole
 * body has been read, -1 on an error (reason in j->err).
 */
int	job_body_next(struct job *j, const uint8_t **p, size_t *n);

/*
 * Record recipient i's result unless it already has one.  text may come
 * from a peer: bytes outside printable ASCII become '?' and it is cut at
 * MOAT_TEXT_MAX.  stage, a static string or NULL, says which step of a
 * conversation the reply answered; it only goes into the log.
 */
void	job_result(struct job *j, size_t i, unsigned int code, const char *enh,
	    const char *text, const char *stage);
/* The same result for every recipient that has none yet. */
void	job_result_rest(struct job *j, unsigned int code, const char *enh,
	    const char *text, const char *stage);
/* Does any recipient lack a result? */
int	job_pending(const struct job *j);

/*
 * Log every result, send one IPC_D2Q_RESULT per recipient and then
 * IPC_D2Q_DONE naming cached, the next hop the agent keeps an idle
 * connection to (NULL or "" for none).  Returns 0, or -1 when the
 * channel failed (j->err).
 */
int	job_finish(struct job *j, const char *cached);
/* IPC_D2Q_UNCACHED: the idle connection is closed.  0, or -1 (j->err). */
int	job_uncached(struct job *j);

/* Decoders, separate from the I/O so they can be tested alone. */
int	job_decode(struct job *j, const struct ipc_frame *f, char *err, size_t errlen);
int	job_chunk_decode(struct job *j, const struct ipc_frame *f,
	    const uint8_t **p, size_t *n, char *err, size_t errlen);

#endif
