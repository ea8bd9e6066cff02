/*
 * queue_dsn.h: the text of a bounce, an RFC 3464 delivery status
 * notification, built from plain values with no I/O so it can be tested.
 *
 * The bounce is multipart/report; report-type=delivery-status with three
 * parts: a human-readable notice naming each failed recipient and the
 * remote reply, the message/delivery-status report (RFC 3464: Reporting-
 * MTA, Arrival-Date, then Final-Recipient, Action: failed, Status and
 * Diagnostic-Code per recipient), and the original message's header
 * section as text/rfc822-headers (RFC 6522).
 */
#ifndef MOAT_QUEUE_DSN_H
#define MOAT_QUEUE_DSN_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Most of the original header section a bounce carries. */
#define QUEUE_DSN_HEADERS_MAX	(64 * 1024)
/* Longest diagnostic kept on one line of the report. */
#define QUEUE_DSN_DIAG_MAX	900

struct queue_dsn_rcpt {
	const char	*address;	/* local@domain */
	const char	*status;	/* enhanced status, "5.1.1" */
	const char	*diagnostic;	/* "550 5.1.1 No such user" */
};

struct queue_dsn {
	const char	*reporting_mta;	/* myhostname */
	const char	*orig_qid;	/* the bounced message */
	const char	*orig_sender;	/* who gets the bounce */
	int64_t		 arrival;	/* of the original, unix seconds */
	int64_t		 now;
	const char	*message_id;	/* "id@host", no angle brackets */
	const char	*boundary;	/* must not occur in the content */
	const struct queue_dsn_rcpt *rcpts;
	size_t		 nrcpts;
	const uint8_t	*headers;	/* the original header section */
	size_t		 headers_len;
};

/* Does a failure of mail from this envelope sender get a bounce?  Never
 * for the null sender "": that would be a bounce of a bounce. */
int	queue_dsn_wanted(const char *orig_sender);

/*
 * Append the bounce to out (CRLF line ends).  *body_type is set to
 * MOAT_BODY_8BITMIME when the original headers carry 8-bit bytes, else
 * MOAT_BODY_7BIT.  Returns -1 when the boundary occurs in the content
 * (the caller picks another), when out's cap is reached, or when the
 * original sender is the null sender (see queue_dsn_wanted).
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

#endif
