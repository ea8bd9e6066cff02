/*
 * queue_dsn.c: build the text of a delivery status notification
 * (RFC 3464), a failure, delay or success notice (see queue_dsn.h).
 *
 * Everything that came from a peer (replies, addresses, ENVID, ORCPT)
 * is put on one printable ASCII line, so it cannot add header fields or
 * MIME parts to the report.
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
queue_dsn_status_class(const char *enh, char cls, char *dst, size_t dstsz)
{
	size_t a, b;

	if (enh != NULL && enh[0] == cls && enh[1] == '.' &&
	    (a = queue_dsn_digits(enh + 2)) != 0 && enh[2 + a] == '.' &&
	    (b = queue_dsn_digits(enh + 3 + a)) != 0 && enh[3 + a + b] == '\0') {
		snprintf(dst, dstsz, "%s", enh);
		return;
	}
	snprintf(dst, dstsz, "%c.0.0", cls);
}

void
queue_dsn_status(const char *enh, char *dst, size_t dstsz)
{
	queue_dsn_status_class(enh, '5', dst, dstsz);
}

const char *
queue_dsn_smtp_reply(const char *d)
{
	static const char expired[] = "message expired: ";

	if (d == NULL)
		return NULL;
	if (strncmp(d, expired, sizeof(expired) - 1) == 0)
		d += sizeof(expired) - 1;
	if ((d[0] == '2' || d[0] == '4' || d[0] == '5') &&
	    isdigit((unsigned char)d[1]) && isdigit((unsigned char)d[2]) &&
	    (d[3] == '\0' || d[3] == ' ' || d[3] == '-'))
		return d;
	return NULL;
}

void
queue_dsn_reply_enh(const char *reply, char *dst, size_t dstsz)
{
	const char *r = queue_dsn_smtp_reply(reply), *e;
	size_t n;

	dst[0] = '\0';
	if (r == NULL || r[3] != ' ')
		return;
	e = r + 4;
	n = strcspn(e, " ");
	if (n == 0 || n >= dstsz)
		return;
	memcpy(dst, e, n);
	dst[n] = '\0';
}

void
queue_dsn_remote_mta(const char *relay, char *dst, size_t dstsz)
{
	size_t n;

	dst[0] = '\0';
	if (relay == NULL || strcmp(relay, "maildir") == 0 || strcmp(relay, "none") == 0)
		return;
	n = strcspn(relay, "[ ");
	if (n == 0 || n >= dstsz)
		return;
	memcpy(dst, relay, n);
	dst[n] = '\0';
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
queue_dsn_str_has(const char *s, const char *needle)
{
	return s != NULL && strstr(s, needle) != NULL;
}

static int
queue_dsn_boundary_ok(const struct queue_dsn *d)
{
	const struct queue_dsn_rcpt *r;
	size_t i;

	if (d->boundary[0] == '\0' || strlen(d->boundary) > 70 ||
	    queue_dsn_contains(d->original, d->original_len, d->boundary) ||
	    queue_dsn_str_has(d->envid, d->boundary))
		return 0;
	for (i = 0; i < d->nrcpts; i++) {
		r = &d->rcpts[i];
		if (queue_dsn_str_has(r->diagnostic, d->boundary) ||
		    queue_dsn_str_has(r->address, d->boundary) ||
		    queue_dsn_str_has(r->orcpt, d->boundary) ||
		    queue_dsn_str_has(r->remote_mta, d->boundary))
			return 0;
	}
	return 1;
}

static const char *
queue_dsn_subject(enum queue_dsn_kind k)
{
	switch (k) {
	case QUEUE_DSN_DELAY:
		return "Delayed Mail (still being retried)";
	case QUEUE_DSN_SUCCESS:
		return "Successful Mail Delivery Report";
	default:
		return "Undelivered Mail Returned to Sender";
	}
}

static int
queue_dsn_top(const struct queue_dsn *d, struct buf *out, int eightbit)
{
	char date[64];

	mail_date((time_t)d->now, date, sizeof(date));
	return buf_printf(out,
	    "From: MAILER-DAEMON@%s (Mail Delivery System)\r\n"
	    "To: <%s>\r\n"
	    "Subject: %s\r\n"
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
	    d->reporting_mta, d->orig_sender, queue_dsn_subject(d->kind), date,
	    d->message_id, d->boundary, eightbit ? "8bit" : "7bit");
}

/* Part 1's words for each kind, after "This is the mail system at host X." */
static int
queue_dsn_words(const struct queue_dsn *d, struct buf *out)
{
	char date[64];

	switch (d->kind) {
	case QUEUE_DSN_DELAY:
		mail_date((time_t)d->retry_until, date, sizeof(date));
		return buf_printf(out,
		    "####################################################################\r\n"
		    "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
		    "####################################################################\r\n"
		    "\r\n"
		    "Your message could not be delivered for %lld minute(s) to the\r\n"
		    "recipients below. It will be retried until %s.\r\n"
		    "\r\n", (long long)((d->now - d->arrival) / 60), date);
	case QUEUE_DSN_SUCCESS:
		return buf_append_str(out,
		    "Your message was successfully delivered to the destination(s)\r\n"
		    "listed below. If the message was delivered to a mailbox you will\r\n"
		    "receive no further notifications. Otherwise you may still receive\r\n"
		    "notifications of mail delivery errors from other systems.\r\n"
		    "\r\n");
	default:
		return buf_append_str(out,
		    "I'm sorry to have to inform you that your message could not\r\n"
		    "be delivered to one or more recipients. The headers of your\r\n"
		    "message are attached below.\r\n"
		    "\r\n"
		    "For further assistance, please send mail to postmaster.\r\n"
		    "\r\n"
		    "If you do so, please include this problem report.\r\n"
		    "\r\n");
	}
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
	    "\r\n", d->boundary, d->reporting_mta) == -1 ||
	    queue_dsn_words(d, out) == -1 ||
	    buf_append_str(out, "                   The mail system\r\n\r\n") == -1)
		return -1;
	for (i = 0; i < d->nrcpts; i++) {
		if (buf_append_str(out, "<") == -1 ||
		    queue_dsn_put_line(out, d->rcpts[i].address, QUEUE_DSN_DIAG_MAX) == -1 ||
		    buf_append_str(out, ">: ") == -1 ||
		    queue_dsn_put_line(out, d->rcpts[i].diagnostic != NULL ?
		    d->rcpts[i].diagnostic : "", QUEUE_DSN_DIAG_MAX) == -1 ||
		    buf_append_str(out, "\r\n\r\n") == -1)
			return -1;
	}
	return 0;
}

static const char *
queue_dsn_action_name(enum queue_dsn_action a)
{
	switch (a) {
	case QUEUE_DSN_ACT_DELAYED:
		return "delayed";
	case QUEUE_DSN_ACT_DELIVERED:
		return "delivered";
	case QUEUE_DSN_ACT_RELAYED:
		return "relayed";
	default:
		return "failed";
	}
}

/* "Field: " then peer text on one line, then CRLF. */
static int
queue_dsn_field(struct buf *out, const char *name, const char *value)
{
	if (buf_append_str(out, name) == -1 ||
	    queue_dsn_put_line(out, value, QUEUE_DSN_DIAG_MAX) == -1)
		return -1;
	return buf_append_str(out, "\r\n");
}

/* Original-Recipient: "rfc822;addr" as "rfc822; addr" (RFC 3464 2.3.1). */
static int
queue_dsn_orcpt(struct buf *out, const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');
	char type[16];
	size_t n;

	if (semi == NULL || (n = (size_t)(semi - orcpt)) == 0 || n >= sizeof(type))
		return 0;
	memcpy(type, orcpt, n);
	type[n] = '\0';
	if (buf_append_str(out, "Original-Recipient: ") == -1 ||
	    queue_dsn_put_line(out, type, sizeof(type)) == -1 ||
	    buf_append_str(out, "; ") == -1 ||
	    queue_dsn_put_line(out, semi + 1, QUEUE_DSN_DIAG_MAX) == -1)
		return -1;
	return buf_append_str(out, "\r\n");
}

/* The status of a recipient, in the class its action implies. */
static void
queue_dsn_rcpt_status(const struct queue_dsn_rcpt *r, char *dst, size_t dstsz)
{
	char cls = '5';

	if (r->action == QUEUE_DSN_ACT_DELAYED)
		cls = '4';
	else if (r->action == QUEUE_DSN_ACT_DELIVERED || r->action == QUEUE_DSN_ACT_RELAYED)
		cls = '2';
	queue_dsn_status_class(r->status, cls, dst, dstsz);
}

/* The per-recipient fields of the report (RFC 3464 2.3). */
static int
queue_dsn_report_rcpt(const struct queue_dsn *d, const struct queue_dsn_rcpt *r,
    struct buf *out)
{
	char status[16], date[64];
	const char *smtp = queue_dsn_smtp_reply(r->diagnostic);

	queue_dsn_rcpt_status(r, status, sizeof(status));
	if (buf_append_str(out, "\r\n") == -1 ||
	    (r->orcpt != NULL && r->orcpt[0] != '\0' && queue_dsn_orcpt(out, r->orcpt) == -1) ||
	    buf_append_str(out, "Final-Recipient: rfc822; ") == -1 ||
	    queue_dsn_put_line(out, r->address, QUEUE_DSN_DIAG_MAX) == -1 ||
	    buf_printf(out, "\r\nAction: %s\r\nStatus: %s\r\n",
	    queue_dsn_action_name(r->action), status) == -1)
		return -1;
	if (r->remote_mta != NULL && r->remote_mta[0] != '\0' &&
	    queue_dsn_field(out, "Remote-MTA: dns; ", r->remote_mta) == -1)
		return -1;
	if (smtp != NULL && queue_dsn_field(out, "Diagnostic-Code: smtp; ", smtp) == -1)
		return -1;
	if (r->last_attempt > 0) {
		mail_date((time_t)r->last_attempt, date, sizeof(date));
		if (buf_printf(out, "Last-Attempt-Date: %s\r\n", date) == -1)
			return -1;
	}
	if (r->action == QUEUE_DSN_ACT_DELAYED && d->retry_until > 0) {
		mail_date((time_t)d->retry_until, date, sizeof(date));
		if (buf_printf(out, "Will-Retry-Until: %s\r\n", date) == -1)
			return -1;
	}
	return 0;
}

/* Part 2: the machine-readable report (RFC 3464 section 2). */
static int
queue_dsn_report(const struct queue_dsn *d, struct buf *out)
{
	char date[64];
	size_t i;

	mail_date((time_t)d->arrival, date, sizeof(date));
	if (buf_printf(out,
	    "--%s\r\n"
	    "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n"
	    "\r\n"
	    "Reporting-MTA: dns; %s\r\n"
	    "X-Moat-Queue-ID: %s\r\n", d->boundary, d->reporting_mta, d->orig_qid) == -1)
		return -1;
	if (d->envid != NULL && d->envid[0] != '\0' &&
	    queue_dsn_field(out, "Original-Envelope-Id: ", d->envid) == -1)
		return -1;
	if (buf_printf(out, "Arrival-Date: %s\r\n", date) == -1)
		return -1;
	for (i = 0; i < d->nrcpts; i++)
		if (queue_dsn_report_rcpt(d, &d->rcpts[i], out) == -1)
			return -1;
	return buf_append_str(out, "\r\n");
}

/*
 * Part 3: the original, whole (message/rfc822) or its header section
 * (RFC 6522 text/rfc822-headers).
 */
static int
queue_dsn_original(const struct queue_dsn *d, struct buf *out, int eightbit)
{
	const char *desc = d->kind == QUEUE_DSN_FAILURE ? "Undelivered Message" :
	    d->kind == QUEUE_DSN_DELAY ? "Delayed Message" : "Delivered Message";

	if (buf_printf(out,
	    "--%s\r\n"
	    "Content-Description: %s%s\r\n"
	    "Content-Type: %s\r\n"
	    "%s"
	    "\r\n", d->boundary, desc, d->original_full ? "" : " Headers",
	    d->original_full ? "message/rfc822" : "text/rfc822-headers",
	    eightbit ? "Content-Transfer-Encoding: 8bit\r\n" : "") == -1)
		return -1;
	if (d->original_len > 0 && buf_append(out, d->original, d->original_len) == -1)
		return -1;
	/* The content normally ends in CRLF; make sure the boundary
	 * starts a line of its own even if it was cut short. */
	if (d->original_len < 2 || d->original[d->original_len - 2] != '\r' ||
	    d->original[d->original_len - 1] != '\n') {
		if (buf_append_str(out, "\r\n") == -1)
			return -1;
	}
	return buf_printf(out, "\r\n--%s--\r\n", d->boundary);
}

int
queue_dsn_notify_wants(uint32_t notify, enum queue_dsn_kind kind)
{
	if ((notify & MOAT_NOTIFY_NEVER) != 0)
		return 0;
	switch (kind) {
	case QUEUE_DSN_SUCCESS:
		return (notify & MOAT_NOTIFY_SUCCESS) != 0;
	case QUEUE_DSN_DELAY:
		return notify == 0 || (notify & MOAT_NOTIFY_DELAY) != 0;
	default:
		return notify == 0 || (notify & MOAT_NOTIFY_FAILURE) != 0;
	}
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

	if (!queue_dsn_wanted(d->orig_sender) || d->nrcpts == 0 ||
	    !queue_dsn_boundary_ok(d))
		return -1;
	for (i = 0; i < d->original_len; i++)
		if (d->original[i] >= 0x80)
			eightbit = 1;
	*body_type = eightbit ? MOAT_BODY_8BITMIME : MOAT_BODY_7BIT;
	if (queue_dsn_top(d, out, eightbit) == -1 ||
	    queue_dsn_notice(d, out) == -1 ||
	    queue_dsn_report(d, out) == -1 ||
	    queue_dsn_original(d, out, eightbit) == -1)
		return -1;
	return 0;
}
