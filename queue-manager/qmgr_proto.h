/*
 * qmgr_proto.h: decoding what the queue-manager's untrusted peers send.
 *
 * Sessions (IPC_S2Q_*) and delivery agents (IPC_D2Q_*) are decoded here,
 * payload to struct, with every check the bytes alone can answer: string
 * caps, NUL refusal, the HELO charset, the body type, the recipient count
 * against a cap the caller passes, every address parsing as an RFC 5321
 * mailbox, one-line texts, the reply code class, and that the payload
 * ends exactly where decoding ends.  Nothing here touches the database,
 * the event loop, the configuration or a clock, so it needs only common/
 * code (and queue_retry.c's table of reply classes) and is unit-tested
 * and fuzzed alone.
 *
 * What needs state stays with the callers.  qmgr_session.c: which
 * message the session may send in its state, the relay policy for each
 * recipient, the declared SIZE, free disk space, the running byte total
 * and COMMIT's count.  qmgr_agent.c: the job id, that the recipient
 * index belongs to the job, one result per recipient, DONE after every
 * result, chunk numbers within the body.
 *
 * Two results leave the struct filled so a caller can keep the order in
 * which the queue-manager has always reported violations: QP_BAD_CODE
 * (every RESULT field was read; the job checks come first), and the
 * BEGIN errors met among the recipients (those before the broken one are
 * in rcpt[0 .. nrcpt), for the relay policy to judge first).
 */
#ifndef MOAT_QMGR_PROTO_H
#define MOAT_QMGR_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "ipc_types.h"
#include "mail/addr.h"
#include "util/ipc.h"

#define QMGR_PROTO_ENH_MAX	15	/* "5.1.1" with room to spare */
#define QMGR_PROTO_TLS_MAX	127	/* "TLSv1.3 TLS_AES_256_GCM_SHA384 verified=yes" */

enum qmgr_proto_err {
	QP_OK = 0,
	QP_MALFORMED,		/* short, over a cap, a NUL, a bad field, trailing bytes */
	QP_RCPT_COUNT,		/* BEGIN: 0 recipients, or more than the cap */
	QP_BAD_SENDER,		/* BEGIN: the sender is neither "" nor a mailbox */
	QP_BAD_RCPT,		/* BEGIN: a recipient is not a mailbox (in bad) */
	QP_BAD_CODE,		/* RESULT: a reply code that is not 0, 2xx, 4xx, 5xx */
};

struct qmgr_proto_rcpt {
	char	mailbox[ADDR_MAILBOX_MAX + 1];	/* as the session sent it */
	char	canon[ADDR_MAILBOX_MAX + 1];	/* as stored: domain lower-cased */
	uint32_t notify;			/* DSN NOTIFY bits, 0: none */
	char	orcpt[MOAT_ORCPT_MAX + 1];	/* DSN ORCPT "type;addr", "": none */
};

/* IPC_S2Q_BEGIN. */
struct qmgr_proto_begin {
	char			 helo[MOAT_HELO_MAX + 1];
	char			 sender[ADDR_MAILBOX_MAX + 1];	/* canonical; "" = <> */
	uint32_t		 body_type;			/* MOAT_BODY_* */
	uint64_t		 declared;			/* SIZE=, 0: none */
	uint32_t		 dsn_ret;			/* MOAT_RET_* */
	char			 dsn_envid[MOAT_ENVID_MAX + 1];	/* "": none */
	uint32_t		 count;				/* as the session said */
	uint32_t		 nrcpt;				/* decoded, in rcpt */
	struct qmgr_proto_rcpt	*rcpt;				/* owned by the struct */
	char			 bad[ADDR_MAILBOX_MAX + 1];	/* QP_BAD_RCPT's recipient */
};

/* IPC_D2Q_FETCH. */
struct qmgr_proto_fetch {
	uint64_t	 job;
	uint32_t	 seq;
};

/* IPC_D2Q_RESULT. */
struct qmgr_proto_result {
	uint64_t	 job;
	uint32_t	 idx;		/* the caller checks it belongs to the job */
	uint32_t	 code;
	char		 enh[QMGR_PROTO_ENH_MAX + 1];
	char		 text[MOAT_TEXT_MAX + 1];
	char		 relay[MOAT_NEXTHOP_MAX + 1];
	uint32_t	 flags;		/* MOAT_RESULT_* */
	char		 tls[QMGR_PROTO_TLS_MAX + 1];	/* "" in clear text */
};

/*
 * IPC_S2Q_BEGIN with at most max_rcpt recipients.  The checks run in the
 * order the fields come: HELO, sender, body type and the DSN RET and
 * ENVID (RET a MOAT_RET_* value, ENVID printable ASCII) (QP_MALFORMED), the
 * count (QP_RCPT_COUNT), the sender's syntax (QP_BAD_SENDER), then each
 * recipient with its NOTIFY (known bits, NEVER alone) and ORCPT (empty,
 * or "rfc822;" or "utf-8;" and printable ASCII) (QP_MALFORMED or
 * QP_BAD_RCPT, with the recipients before it
 * in rcpt[0 .. nrcpt)), then the end of the payload (QP_MALFORMED, all
 * recipients decoded).  rcpt never holds more entries than max_rcpt, nor
 * more than the payload has room for.  Call qmgr_proto_begin_free()
 * afterwards whatever the result.
 */
enum qmgr_proto_err qmgr_proto_begin(const struct ipc_frame *f, uint32_t max_rcpt,
	    struct qmgr_proto_begin *b);
void	qmgr_proto_begin_free(struct qmgr_proto_begin *b);

/* IPC_S2Q_DATA: 1 .. IPC_DATA_CHUNK bytes; *p points into the frame. */
enum qmgr_proto_err qmgr_proto_data(const struct ipc_frame *f, const uint8_t **p,
	    size_t *n);
/* IPC_S2Q_COMMIT: the total of DATA bytes the session says it sent. */
enum qmgr_proto_err qmgr_proto_commit(const struct ipc_frame *f, uint64_t *total);
/* IPC_S2Q_ABORT: an empty payload. */
enum qmgr_proto_err qmgr_proto_abort(const struct ipc_frame *f);

/* IPC_D2Q_FETCH. */
enum qmgr_proto_err qmgr_proto_fetch(const struct ipc_frame *f,
	    struct qmgr_proto_fetch *out);
/* IPC_D2Q_RESULT: QP_MALFORMED, or QP_BAD_CODE with every field read. */
enum qmgr_proto_err qmgr_proto_result(const struct ipc_frame *f,
	    struct qmgr_proto_result *out);
/* IPC_D2Q_DONE: the job id, and the next hop the agent keeps an idle
 * connection to ("" none; at most MOAT_NEXTHOP_MAX bytes, one line; the
 * caller checks it is the job's). */
enum qmgr_proto_err qmgr_proto_done(const struct ipc_frame *f, uint64_t *job,
	    char *cached, size_t cachedsz);

#endif
