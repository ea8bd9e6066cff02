/*
 * queue_dsn.h: the text of a delivery status notification (RFC 3464),
 * built from plain values with no I/O so it can be tested.
 *
 * Three kinds, one notice per message and kind covering any number of
 * its recipients: a failure (bounce), a delay warning, and a success
 * notice (RFC 3461 NOTIFY=SUCCESS).  Each is multipart/report;
 * report-type=delivery-status with three parts: a notice a person reads,
 * the message/delivery-status report (Reporting-MTA, Original-Envelope-
 * Id, Arrival-Date, then per recipient Original-Recipient, Final-
 * Recipient, Action, Status, Remote-MTA, Diagnostic-Code, Last-Attempt-
 * Date and, for delays, Will-Retry-Until), and the original message:
 * the whole of it as message/rfc822 (a failure with RET=FULL, small
 * enough), otherwise its header section as text/rfc822-headers
 * (RFC 6522).  Which recipients get which notice (NOTIFY) is the
 * caller's business; see qmgr_bounce.c and qmgr_warn.c.
 */
#ifndef MOAT_QUEUE_DSN_H
#define MOAT_QUEUE_DSN_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Most of the original header section a notice carries. */
#define QUEUE_DSN_HEADERS_MAX	(64 * 1024)
/* Largest original returned whole (RET=FULL); larger ones: headers only,
 * as Postfix does past bounce_size_limit. */
#define QUEUE_DSN_FULL_MAX	(256 * 1024)
/* Longest diagnostic kept on one line of the report. */
#define QUEUE_DSN_DIAG_MAX	900
/* Longest host name of a Remote-MTA field. */
#define QUEUE_DSN_MTA_MAX	255

enum queue_dsn_kind {
	QUEUE_DSN_FAILURE,	/* Action: failed */
	QUEUE_DSN_DELAY,	/* Action: delayed */
	QUEUE_DSN_SUCCESS,	/* Action: delivered or relayed */
};

enum queue_dsn_action {
	QUEUE_DSN_ACT_FAILED,
	QUEUE_DSN_ACT_DELAYED,
	QUEUE_DSN_ACT_DELIVERED,	/* into a mailbox (maildir, LMTP) */
	QUEUE_DSN_ACT_RELAYED,		/* to a next hop that does not do DSN */
};

struct queue_dsn_rcpt {
	const char	*address;	/* local@domain: Final-Recipient */
	const char	*orcpt;		/* "rfc822;addr" from ORCPT, "" or NULL none */
	enum queue_dsn_action action;
	const char	*status;	/* enhanced status, "5.1.1" (checked) */
	const char	*diagnostic;	/* the reply or reason, "550 5.1.1 No such user" */
	const char	*remote_mta;	/* host that answered, "" or NULL none */
	int64_t		 last_attempt;	/* unix seconds, 0 none */
};

struct queue_dsn {
	enum queue_dsn_kind kind;
	const char	*reporting_mta;	/* myhostname */
	const char	*orig_qid;	/* the message reported on */
	const char	*orig_sender;	/* who gets the notice */
	const char	*envid;		/* ENVID of the original, "" or NULL none */
	int64_t		 arrival;	/* of the original, unix seconds */
	int64_t		 now;
	int64_t		 retry_until;	/* delays: when the message expires */
	const char	*message_id;	/* "id@host", no angle brackets */
	const char	*boundary;	/* must not occur in the content */
	const struct queue_dsn_rcpt *rcpts;
	size_t		 nrcpts;
	const uint8_t	*original;	/* header section, or the whole message */
	size_t		 original_len;
	int		 original_full;	/* original is the whole message */
};

/*
 * Does a recipient with these NOTIFY bits (MOAT_NOTIFY_*, 0: none given)
 * want a notice of this kind?  Failures and delays: when NOTIFY was not
 * given or names them (delays by default as Postfix does when
 * delay_warning_time is set); success only when asked for; NEVER: none.
 */
int	queue_dsn_notify_wants(uint32_t notify, enum queue_dsn_kind kind);

/* Does this envelope sender get notices?  Never the null sender "": that
 * would be a bounce of a bounce. */
int	queue_dsn_wanted(const char *orig_sender);

/*
 * Append the notice to out (CRLF line ends).  *body_type is set to
 * MOAT_BODY_8BITMIME when the original carries 8-bit bytes, else
 * MOAT_BODY_7BIT.  Returns -1 when the boundary occurs in the content
 * (the caller picks another), when out's cap is reached, when there is
 * no recipient, or when the original sender is the null sender.
 */
int	queue_dsn_build(const struct queue_dsn *d, struct buf *out, int *body_type);

/*
 * Length of the header section at the start of a message (p, n): up to
 * and including the CRLF that ends the last header line.  *complete is 1
 * when the empty line that ends the section was seen, 0 when the section
 * was cut at the last whole line within n bytes.
 */
size_t	queue_dsn_header_len(const uint8_t *p, size_t n, int *complete);

/* The enhanced status to report: enh when it is a 5.x.x code, else 5.0.0. */
void	queue_dsn_status(const char *enh, char *dst, size_t dstsz);
/* The same for any class ('2', '4', '5'): enh if of that class, else c.0.0. */
void	queue_dsn_status_class(const char *enh, char cls, char *dst, size_t dstsz);

/*
 * The SMTP reply inside a stored diagnostic ("550 5.1.1 ...", also after
 * "message expired: "), or NULL when no server answered ("connect to
 * ...: Connection refused", "no relay_host configured").
 */
const char *queue_dsn_smtp_reply(const char *diagnostic);

/* The enhanced status code of an SMTP reply ("450 4.2.0 Busy" gives
 * "4.2.0"), or "" when it has none. */
void	queue_dsn_reply_enh(const char *reply, char *dst, size_t dstsz);

/* The host of a relay as logged ("mx.example[192.0.2.1]:25"); "" for
 * local deliveries ("maildir") and when none answered ("none", ""). */
void	queue_dsn_remote_mta(const char *relay, char *dst, size_t dstsz);

#endif
