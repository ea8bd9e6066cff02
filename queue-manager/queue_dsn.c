/*
 * queue_dsn.c: build the text of a delivery status notification.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ipc_types.h"
#include "mail/date.h"
#include "queue_dsn.h"

/* 1..3 digits then end or '.'; returns the digits' length or 0. */
static size_t
queue_dsn_digits(const char *s)
{
	size_t n = 0;

	while (n < 4 && isdigit((unsigned char)s[n]))
		n++;
	return (n >= 1 && n <= 3) ? n : 0;
}

void
queue_dsn_status(const char *enh, char *dst, size_t dstsz)
{
	size_t a, b;

	if (enh != NULL && enh[0] == '5' && enh[1] == '.' &&
	    (a = queue_dsn_digits(enh + 2)) != 0 && enh[2 + a] == '.' &&
	    (b = queue_dsn_digits(enh + 3 + a)) != 0 && enh[3 + a + b] == '\0') {
		snprintf(dst, dstsz, "%s", enh);
		return;
	}
	snprintf(dst, dstsz, "5.0.0");
}

size_t
queue_dsn_header_len(const uint8_t *p, size_t n, int *complete)
{
	size_t i, last = 0;

	*complete = 0;
	if (n >= 2 && p[0] == '\r' && p[1] == '\n') {
		*complete = 1;
		return 0;
	}
	for (i = 0; i + 1 < n; i++) {
		if (p[i] != '\r' || p[i + 1] != '\n')
			continue;
		last = i + 2;
		if (i + 3 < n && p[i + 2] == '\r' && p[i + 3] == '\n') {
			*complete = 1;
			return last;
		}
	}
	return last;
}

/* Peer text on one ASCII line: control and 8-bit bytes become '?'. */
static int
queue_dsn_put_line(struct buf *out, const char *s, size_t max)
{
	size_t i;
	char c;

	for (i = 0; s[i] != '\0' && i < max; i++) {
		c = s[i];
		if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
			c = '?';
		if (buf_append(out, &c, 1) == -1)
			return -1;
	}
	return 0;
}

/* Does needle occur in (p, n)? */
static int
queue_dsn_contains(const uint8_t *p, size_t n, const char *needle)
{
	size_t k = strlen(needle), i;

	if (k == 0 || k > n)
		return 0;
	for (i = 0; i + k <= n; i++)
		if (p[i] == (uint8_t)needle[0] && memcmp(p + i, needle, k) == 0)
			return 1;
	return 0;
}

static int
queue_dsn_boundary_ok(const struct queue_dsn *d)
{
	size_t i;

	if (d->boundary[0] == '\0' || strlen(d->boundary) > 70 ||
	    queue_dsn_contains(d->headers, d->headers_len, d->boundary))
		return 0;
	for (i = 0; i < d->nrcpts; i++)
		if (strstr(d->rcpts[i].diagnostic, d->boundary) != NULL ||
		    strstr(d->rcpts[i].address, d->boundary) != NULL)
			return 0;
	return 1;
}

static int
queue_dsn_top(const struct queue_dsn *d, struct buf *out, int eightbit)
{
	char date[64];

	mail_date((time_t)d->now, date, sizeof(date));
	return buf_printf(out,
	    "From: MAILER-DAEMON@%s (Mail Delivery System)\r\n"
	    "To: <%s>\r\n"
	    "Subject: Undelivered Mail Returned to Sender\r\n"
	    "Date: %s\r\n"
	    "Message-ID: <%s>\r\n"
	    "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n"
	    "Content-Transfer-Encoding: %s\r\n"
	    "\r\n"
	    "This is a MIME-encapsulated message.\r\n"
	    "\r\n",
	    d->reporting_mta, d->orig_sender, date, d->message_id, d->boundary,
	    eightbit ? "8bit" : "7bit");
}

/* Part 1: what a person reads. */
static int
queue_dsn_notice(const struct queue_dsn *d, struct buf *out)
{
	size_t i;

	if (buf_printf(out,
	    "--%s\r\n"
	    "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n"
	    "\r\n"
	    "This is the mail system at host %s.\r\n"
	    "\r\n"
	    "I'm sorry to have to inform you that your message could not\r\n"
	    "be delivered to one or more recipients. The headers of your\r\n"
	    "message are attached below.\r\n"
	    "\r\n"
	    "For further assistance, please send mail to postmaster.\r\n"
	    "\r\n"
	    "If you do so, please include this problem report.\r\n"
	    "\r\n"
	    "                   The mail system\r\n"
	    "\r\n", d->boundary, d->reporting_mta) == -1)
		return -1;
	for (i = 0; i < d->nrcpts; i++) {
		if (buf_printf(out, "<%s>: ", d->rcpts[i].address) == -1 ||
		    queue_dsn_put_line(out, d->rcpts[i].diagnostic, QUEUE_DSN_DIAG_MAX) == -1 ||
		    buf_append_str(out, "\r\n\r\n") == -1)
			return -1;
	}
	return 0;
}

/* Part 2: the machine-readable report (RFC 3464 section 2). */
static int
queue_dsn_report(const struct queue_dsn *d, struct buf *out)
{
	char date[64], status[16];
	size_t i;

	mail_date((time_t)d->arrival, date, sizeof(date));
	if (buf_printf(out,
	    "--%s\r\n"
	    "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n"
	    "\r\n"
	    "Reporting-MTA: dns; %s\r\n"
	    "X-Moat-Queue-ID: %s\r\n"
	    "Arrival-Date: %s\r\n", d->boundary, d->reporting_mta,
	    d->orig_qid, date) == -1)
		return -1;
	for (i = 0; i < d->nrcpts; i++) {
		queue_dsn_status(d->rcpts[i].status, status, sizeof(status));
		if (buf_printf(out,
		    "\r\n"
		    "Final-Recipient: rfc822; %s\r\n"
		    "Action: failed\r\n"
		    "Status: %s\r\n"
		    "Diagnostic-Code: smtp; ", d->rcpts[i].address, status) == -1 ||
		    queue_dsn_put_line(out, d->rcpts[i].diagnostic, QUEUE_DSN_DIAG_MAX) == -1 ||
		    buf_append_str(out, "\r\n") == -1)
			return -1;
	}
	return buf_append_str(out, "\r\n");
}

/* Part 3: the original header section (RFC 6522 text/rfc822-headers). */
static int
queue_dsn_headers(const struct queue_dsn *d, struct buf *out, int eightbit)
{
	if (buf_printf(out,
	    "--%s\r\n"
	    "Content-Description: Undelivered Message Headers\r\n"
	    "Content-Type: text/rfc822-headers\r\n"
	    "%s"
	    "\r\n", d->boundary,
	    eightbit ? "Content-Transfer-Encoding: 8bit\r\n" : "") == -1)
		return -1;
	if (d->headers_len > 0 && buf_append(out, d->headers, d->headers_len) == -1)
		return -1;
	/* The section normally ends in CRLF; make sure the boundary
	 * starts a line of its own even if it was cut short. */
	if (d->headers_len < 2 || d->headers[d->headers_len - 2] != '\r' ||
	    d->headers[d->headers_len - 1] != '\n') {
		if (buf_append_str(out, "\r\n") == -1)
			return -1;
	}
	return buf_printf(out, "\r\n--%s--\r\n", d->boundary);
}

int
queue_dsn_wanted(const char *orig_sender)
{
	return orig_sender != NULL && orig_sender[0] != '\0';
}

int
queue_dsn_build(const struct queue_dsn *d, struct buf *out, int *body_type)
{
	int eightbit = 0;
	size_t i;

	if (!queue_dsn_wanted(d->orig_sender) || !queue_dsn_boundary_ok(d))
		return -1;
	for (i = 0; i < d->headers_len; i++)
		if (d->headers[i] >= 0x80)
			eightbit = 1;
	*body_type = eightbit ? MOAT_BODY_8BITMIME : MOAT_BODY_7BIT;
	if (queue_dsn_top(d, out, eightbit) == -1 ||
	    queue_dsn_notice(d, out) == -1 ||
	    queue_dsn_report(d, out) == -1 ||
	    queue_dsn_headers(d, out, eightbit) == -1)
		return -1;
	return 0;
}
