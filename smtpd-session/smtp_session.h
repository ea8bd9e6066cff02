/*
 * smtp_session.h: one SMTP session, from greeting to close.
 *
 * smtpd_session.c (main) fills in the parts that need privileges or
 * files (configuration, peer addresses, host name), drops privileges,
 * installs the sandbox and calls smtp_session_run().  smtp_session.c
 * speaks SMTP with the client; smtp_queue.c walks a message through the
 * queue-manager (BEGIN, DATA..., COMMIT or ABORT); smtp_received.c
 * writes the Received: header.  Nothing here opens a file or a socket.
 *
 * TLS is reached only through struct smtp_tls_ops, so that this code
 * needs no TLS library: smtpd-session sets the calls up (smtp_tls.c);
 * smtpd-session-plain, the same program built without TLS, which moatd
 * starts when no certificate is configured, has none and answers
 * STARTTLS with 502.
 */
#ifndef MOAT_SMTP_SESSION_H
#define MOAT_SMTP_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "ipc_types.h"
#include "mail/addr.h"
#include "tls_listen.h"
#include "util/buf.h"
#include "util/conf.h"

#define SMTP_ADDR_STR_MAX	64	/* numeric IPv6 address and scope */
#define SMTP_TLS_DESC_MAX	160	/* "TLSv1.3 with cipher ... (256/256 bits)" */

struct smtp_session;
struct ssl_st;
struct tls_server;

/*
 * The TLS calls of smtp_tls.c.  prepare makes TLS ready to start, at the
 * first call (-1, logged: it cannot be, and s->tls_ready is cleared);
 * start does the same, then runs the handshake on the client
 * socket and logs its outcome (-1: failed, s->ssl stays NULL); read and
 * write move bytes through s->ssl as tls_server.h says; pending tells
 * whether SSL holds bytes that poll() would not see; shutdown sends
 * close_notify.
 */
struct smtp_tls_ops {
	int	(*prepare)(struct smtp_session *s);
	int	(*start)(struct smtp_session *s, const char *how);
	ssize_t	(*read)(struct smtp_session *s, void *p, size_t n, short *wait,
		    char *err, size_t errlen);
	ssize_t	(*write)(struct smtp_session *s, const void *p, size_t n,
		    short *wait, char *err, size_t errlen);
	int	(*pending)(const struct smtp_session *s);
	void	(*shutdown)(struct smtp_session *s);
};

enum smtp_state {
	SMTP_STATE_GREETED,	/* waiting for HELO/EHLO */
	SMTP_STATE_READY,	/* HELO/EHLO done, no transaction */
	SMTP_STATE_MAIL,	/* MAIL accepted, no recipient accepted yet */
	SMTP_STATE_RCPT,	/* at least one recipient accepted */
	SMTP_STATE_DATA,	/* reading the message content */
	SMTP_STATE_CLOSED,	/* QUIT, error limit, timeout or lost client */
};

/* Where the queue-manager stands on the message in progress. */
enum smtp_queue_state {
	SMTP_QUEUE_IDLE,	/* no message open */
	SMTP_QUEUE_OPEN,	/* BEGIN_OK received, sending data */
	SMTP_QUEUE_FAILED,	/* it answered FAIL; the message is gone */
	SMTP_QUEUE_BROKEN,	/* channel lost or peer misbehaved */
};

/* The client's input, read in large slices and parsed in place. */
struct smtp_inbuf {
	uint8_t		*data;
	size_t		 cap;
	size_t		 start;		/* first unparsed byte */
	size_t		 end;		/* one past the last byte read */
};

struct smtp_session {
	const struct conf	*cfg;
	int			 client_fd;
	int			 queue_fd;
	char			 client_addr[SMTP_ADDR_STR_MAX];	/* numeric */
	unsigned int		 client_port;
	char			 client_desc[SMTP_ADDR_STR_MAX + 16];	/* [addr]:port */
	char			 local_desc[SMTP_ADDR_STR_MAX + 16];	/* where it came in */
	char			*myhostname;
	const char		*banner_name;
	int			 bare_lf;	/* client is in bare_lf_networks */

	/* TLS (tls_listen.h; smtp_tls.c with tls_server.h). */
	enum tls_listen_mode	 tls_mode;	/* of the listener it came in on */
	const struct smtp_tls_ops *tls_ops;	/* NULL: no TLS on this listener */
	struct tls_server	*tls;		/* its certificates (smtp_tls.c) */
	int			 tls_ready;	/* TLS can be offered (its chains
						   were read, the keyholder is
						   there) */
	struct ssl_st		*ssl;		/* set once TLS is active */
	char			 tls_desc[SMTP_TLS_DESC_MAX];	/* for Received: */

	/* Limits from the configuration. */
	size_t			 line_limit;
	size_t			 rcpt_limit;
	uint64_t		 size_limit;
	unsigned int		 error_limit;
	int			 timeout_ms;

	enum smtp_state		 state;
	const char		*close_reason;	/* for the disconnect line */
	int			 esmtp;		/* EHLO rather than HELO */
	char			 helo[MOAT_HELO_MAX + 1];
	const char		*verb;		/* command being answered, for logs */

	/* The mail transaction. */
	char			 sender[ADDR_MAILBOX_MAX + 1];
	int			 body;		/* MOAT_BODY_* */
	uint64_t		 size_declared;
	uint32_t		 dsn_ret;	/* MAIL RET= (MOAT_RET_*) */
	char			 dsn_envid[MOAT_ENVID_MAX + 1];	/* MAIL ENVID=, "" none */
	/* local@domain, no duplicates.  Each is one allocation holding the
	 * mailbox, its NUL, then the recipient's DSN: one byte of NOTIFY
	 * bits and the ORCPT string ("" none) with its NUL; see
	 * smtp_session_rcpt_dsn(). */
	char			**rcpts;
	size_t			 nrcpt;
	size_t			 nrcpt_refused;
	size_t			 rcpt_bytes;	/* their share of IPC_S2Q_BEGIN */

	/* The queue-manager's side of the transaction. */
	enum smtp_queue_state	 qstate;
	char			 qid[MOAT_QID_MAX + 1];
	char			 qfail[MOAT_TEXT_MAX + 32];	/* its FAIL reply */
	uint32_t		 reqid;
	uint8_t			*ipcbuf;	/* IPC_MAX_MSG bytes */
	uint8_t			*chunk;		/* an IPC_S2Q_DATA being built:
						   IPC_BLOB_HDR_LEN, then up to
						   IPC_DATA_CHUNK bytes */
	size_t			 chunklen;	/* bytes after the header */
	uint64_t		 qbytes;	/* sent in IPC_S2Q_DATA */

	/* Client I/O. */
	struct smtp_inbuf	 in;
	struct buf		 out;		/* replies not yet written */
	int			 discard;	/* skipping an over-long line */
	int			 out_broken;	/* a write failed: say nothing more */

	/* Counters for the disconnect line. */
	unsigned int		 ncommands;
	unsigned int		 nerrors;
	unsigned int		 nmessages;
	unsigned int		 nrcpt_total;
};

/* smtp_session.c */
void	smtp_session_init(struct smtp_session *s, const struct conf *cfg,
	    int client_fd, int queue_fd);
void	smtp_session_run(struct smtp_session *s);
int	smtp_session_signals(void);
/* Queue a reply line (without CR LF); 4xx/5xx ones are counted and logged. */
void	smtp_session_reply(struct smtp_session *s, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* The NOTIFY bits and ORCPT stored after recipient i's mailbox. */
void	smtp_session_rcpt_dsn(const struct smtp_session *s, size_t i,
	    uint32_t *notify, const char **orcpt);

/* smtp_queue.c: the queue-manager channel. */
enum smtp_queue_answer {
	SMTP_QUEUE_ANSWER_OK,		/* the expected answer */
	SMTP_QUEUE_ANSWER_FAIL,		/* IPC_Q2S_FAIL, reply in s->qfail */
	SMTP_QUEUE_ANSWER_BROKEN,	/* no usable answer; logged */
};
enum smtp_queue_answer smtp_queue_begin(struct smtp_session *s);
/* Message bytes for IPC_S2Q_DATA, sent in chunks of IPC_DATA_CHUNK. */
void	smtp_queue_data(struct smtp_session *s, const uint8_t *p, size_t n);
enum smtp_queue_answer smtp_queue_commit(struct smtp_session *s);
void	smtp_queue_abort(struct smtp_session *s);
/* The queue channel became readable while no answer was due. */
void	smtp_queue_unsolicited(struct smtp_session *s);

/* smtp_tls.c (smtpd-session only): load the certificate chains of
 * smtpd_tls_cert_files and the keyholder's keys (on keys_fd) while files
 * can still be read, and set s->tls_ops.  Without TLS on this listener it
 * closes keys_fd and leaves s->tls_ops NULL. */
void	smtp_tls_setup(struct smtp_session *s, int keys_fd);

/* smtp_received.c */
/*
 * Append the Received: header (RFC 5321 4.4) for a message to b: from
 * helo ([client]), "(using <tls>)" when tls is not NULL, by myhostname
 * (moat) with SMTP, ESMTP or (EHLO under TLS, RFC 3848) ESMTPS, id qid,
 * "for <rcpt>" when rcpt is not NULL, and the date of now in UTC.
 */
int	smtp_received_format(struct buf *b, const char *helo, int esmtp,
	    const char *client_addr, const char *tls, const char *myhostname,
	    const char *qid, const char *rcpt, time_t now);


#endif
