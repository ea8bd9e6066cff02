/*
 * test_queue_dsn.c: the delivery status notification (RFC 3464) text
 * builder and its helpers: failure, delay and success notices, the DSN
 * fields of RFC 3461 (ORCPT, ENVID), RET=FULL, hostile peer text.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "t.h"
#include "mail/date.h"
#include "ipc_types.h"
#include "util/buf.h"
#include "queue-manager/queue_dsn.h"

static const char headers[] =
    "Received: from client.example (client.example [192.0.2.7])\r\n"
    "\tby mx.example.net (moat) with ESMTP id 0123456789ABCDEF\r\n"
    "From: Alice <alice@example.com>\r\n"
    "Subject: quarterly report\r\n"
    "Message-ID: <x1@example.com>\r\n";

#define R(a, st, diag) { .address = a, .action = QUEUE_DSN_ACT_FAILED, \
	.status = st, .diagnostic = diag }

static const struct queue_dsn_rcpt rcpts[] = {
	R("bob@example.org", "5.1.1", "550 5.1.1 <bob@example.org>: user unknown"),
	R("carol@example.org", "", "554 transaction failed"),
	R("dave@example.org", "5.4.7", "message expired: 451 4.4.1 timeout"),
	R("erin@example.org", "5.4.4", "connect to mx.example.org[192.0.2.9]:25: refused"),
};

static void
dsn_defaults(struct queue_dsn *d)
{
	memset(d, 0, sizeof(*d));
	d->reporting_mta = "mx.example.net";
	d->orig_qid = "0123456789ABCDEF";
	d->orig_sender = "alice@example.com";
	d->arrival = 1700000000;
	d->now = 1700003600;
	d->message_id = "FEDCBA9876543210.bounce@mx.example.net";
	d->boundary = "=_moat_FEDCBA9876543210_0badcafe";
	d->rcpts = rcpts;
	d->nrcpts = 4;
	d->original = (const uint8_t *)headers;
	d->original_len = strlen(headers);
}

/* Every line ends in CRLF, none is longer than 998, no bare CR or LF. */
static int
lines_ok(const char *s, size_t n)
{
	size_t i, col = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r') {
			if (i + 1 >= n || s[i + 1] != '\n')
				return 0;
			i++;
			col = 0;
			continue;
		}
		if (s[i] == '\n' || ++col > 998)
			return 0;
	}
	return n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n';
}

static size_t
count(const char *hay, const char *needle)
{
	size_t k = 0;
	const char *p = hay;

	while ((p = strstr(p, needle)) != NULL) {
		k++;
		p += strlen(needle);
	}
	return k;
}

static void
test_structure(void)
{
	static const char *const want[] = {
		"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n",
		"To: <alice@example.com>\r\n",
		"Subject: Undelivered Mail Returned to Sender\r\n",
		"Date: Tue, 14 Nov 2023 23:13:20 +0000\r\n",
		"Message-ID: <FEDCBA9876543210.bounce@mx.example.net>\r\n",
		"Auto-Submitted: auto-replied\r\n",
		"MIME-Version: 1.0\r\n",
		"Content-Type: multipart/report; report-type=delivery-status;\r\n"
		    "\tboundary=\"=_moat_FEDCBA9876543210_0badcafe\"\r\n",
		"Content-Type: text/plain; charset=us-ascii\r\n",
		"<bob@example.org>: 550 5.1.1 <bob@example.org>: user unknown\r\n",
		"Content-Type: message/delivery-status\r\n\r\n"
		    "Reporting-MTA: dns; mx.example.net\r\n",
		"Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n",
		"\r\nFinal-Recipient: rfc822; bob@example.org\r\nAction: failed\r\n"
		    "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <bob@example.org>: user unknown\r\n",
		"Final-Recipient: rfc822; carol@example.org\r\nAction: failed\r\nStatus: 5.0.0\r\n",
		"Final-Recipient: rfc822; dave@example.org\r\nAction: failed\r\nStatus: 5.4.7\r\n"
		    "Diagnostic-Code: smtp; 451 4.4.1 timeout\r\n",
		"<dave@example.org>: message expired: 451 4.4.1 timeout\r\n",
		/* No server answered: no Diagnostic-Code, the reason in part 1. */
		"Final-Recipient: rfc822; erin@example.org\r\nAction: failed\r\n"
		    "Status: 5.4.4\r\n\r\n--",
		"<erin@example.org>: connect to mx.example.org[192.0.2.9]:25: refused\r\n",
		"Content-Type: text/rfc822-headers\r\n\r\nReceived: from client.example",
		"Subject: quarterly report\r\nMessage-ID: <x1@example.com>\r\n\r\n"
		    "--=_moat_FEDCBA9876543210_0badcafe--\r\n",
	};
	struct queue_dsn d;
	struct buf out;
	const char *s;
	size_t i;
	int bt = -1;

	dsn_defaults(&d);
	buf_init(&out, 1 << 20);
	T_OK(queue_dsn_build(&d, &out, &bt) == 0, "build a bounce");
	s = (const char *)out.data;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		T_OK(strstr(s, want[i]) != NULL, "bounce contains part %zu", i);
	T_OK(count(s, "--=_moat_FEDCBA9876543210_0badcafe\r\n") == 3, "three body parts");
	T_OK(count(s, "Final-Recipient: ") == 4 && count(s, "Action: failed\r\n") == 4,
	    "one block per recipient");
	T_OK(strstr(s, "Original-Envelope-Id") == NULL && strstr(s, "Original-Recipient") == NULL &&
	    strstr(s, "Remote-MTA") == NULL && strstr(s, "Will-Retry-Until") == NULL,
	    "no ENVID, ORCPT, Remote-MTA or Will-Retry-Until when none was given");
	T_OK(strstr(s, headers) != NULL, "original headers included verbatim");
	T_OK(lines_ok(s, out.len), "CRLF line ends only, no line over 998");
	T_OK(bt == MOAT_BODY_7BIT && strstr(s, "Content-Transfer-Encoding: 7bit\r\n") != NULL,
	    "ASCII headers: 7bit");
	buf_free(&out);
}

static void
test_hostile(void)
{
	static const struct queue_dsn_rcpt evil[] = {
		R("bob@example.org", "5.1.1",
		  "550 bad\r\nX-Injected: yes\r\n\r\n--=_moat_FEDCBA9876543210_0badcafe--"),
	};
	static const struct queue_dsn_rcpt evil2[] = {
		R("bob@example.org", "5.1.1", "550 bad\r\nX-Injected: yes\x01\xff"),
	};
	static const struct queue_dsn_rcpt evil3[] = {
		{ .address = "bob@example.org", .action = QUEUE_DSN_ACT_FAILED,
		  .orcpt = "rfc822;x@y\r\nX-Injected: orcpt", .diagnostic = "550 no",
		  .remote_mta = "mx\r\nX-Injected: mta" },
	};
	static const struct queue_dsn_rcpt evil4[] = {
		{ .address = "bob@example.org", .action = QUEUE_DSN_ACT_FAILED,
		  .orcpt = "rfc822;--=_moat_FEDCBA9876543210_0badcafe", .diagnostic = "550 no" },
	};
	static const char eight[] = "Subject: caf\xc3\xa9\r\n";
	static const char clash[] = "X-Trap: --=_moat_FEDCBA9876543210_0badcafe\r\n";
	char longdiag[3000];
	struct queue_dsn_rcpt longr = R("bob@example.org", "5.1.1", longdiag);
	struct queue_dsn d;
	struct buf out;
	int bt;

	buf_init(&out, 1 << 20);
	dsn_defaults(&d);
	d.rcpts = evil;
	d.nrcpts = 1;
	T_OK(queue_dsn_build(&d, &out, &bt) == -1, "boundary in a diagnostic: refused");
	buf_reset(&out);
	dsn_defaults(&d);
	d.original = (const uint8_t *)clash;
	d.original_len = strlen(clash);
	T_OK(queue_dsn_build(&d, &out, &bt) == -1, "boundary in the original headers: refused");
	buf_reset(&out);
	dsn_defaults(&d);
	d.rcpts = evil4;
	d.nrcpts = 1;
	T_OK(queue_dsn_build(&d, &out, &bt) == -1, "boundary in an ORCPT: refused");
	buf_reset(&out);
	dsn_defaults(&d);
	d.envid = "x--=_moat_FEDCBA9876543210_0badcafe";
	T_OK(queue_dsn_build(&d, &out, &bt) == -1, "boundary in the ENVID: refused");
	buf_reset(&out);
	dsn_defaults(&d);
	d.rcpts = evil3;
	d.nrcpts = 1;
	d.envid = "e1\r\nX-Injected: envid";
	T_OK(queue_dsn_build(&d, &out, &bt) == 0 &&
	    strstr((const char *)out.data, "\r\nX-Injected") == NULL &&
	    strstr((const char *)out.data, "Original-Envelope-Id: e1??X-Injected: envid\r\n") != NULL &&
	    strstr((const char *)out.data, "Original-Recipient: rfc822; x@y??X-Injected") != NULL &&
	    strstr((const char *)out.data, "Remote-MTA: dns; mx??X-Injected: mta\r\n") != NULL,
	    "CR LF in ENVID, ORCPT and Remote-MTA cannot start a line");
	buf_reset(&out);
	dsn_defaults(&d);
	d.nrcpts = 0;
	T_OK(queue_dsn_build(&d, &out, &bt) == -1, "a notice about no recipient: refused");
	buf_reset(&out);
	dsn_defaults(&d);
	d.rcpts = evil2;
	d.nrcpts = 1;
	T_OK(queue_dsn_build(&d, &out, &bt) == 0 &&
	    strstr((const char *)out.data, "\r\nX-Injected") == NULL &&
	    strstr((const char *)out.data, "550 bad??X-Injected: yes??") != NULL,
	    "CR, LF and other bytes in a reply cannot start a line");
	buf_reset(&out);
	memset(longdiag, 'x', sizeof(longdiag) - 1);
	longdiag[sizeof(longdiag) - 1] = '\0';
	dsn_defaults(&d);
	d.rcpts = &longr;
	d.nrcpts = 1;
	T_OK(queue_dsn_build(&d, &out, &bt) == 0 && lines_ok((const char *)out.data, out.len),
	    "a 3000-byte diagnostic is cut to a legal line");
	buf_reset(&out);
	dsn_defaults(&d);
	d.original = (const uint8_t *)eight;
	d.original_len = strlen(eight);
	T_OK(queue_dsn_build(&d, &out, &bt) == 0 && bt == MOAT_BODY_8BITMIME &&
	    strstr((const char *)out.data, "Content-Transfer-Encoding: 8bit\r\n") != NULL,
	    "8-bit original headers: 8BITMIME and 8bit");
	buf_reset(&out);
	dsn_defaults(&d);
	d.original = (const uint8_t *)"Subject: cut";
	d.original_len = 12;
	T_OK(queue_dsn_build(&d, &out, &bt) == 0 &&
	    strstr((const char *)out.data, "Subject: cut\r\n\r\n--=_moat") != NULL,
	    "headers without a final CRLF still end before the boundary");
	buf_reset(&out);
	dsn_defaults(&d);
	d.original_len = 0;
	T_OK(queue_dsn_build(&d, &out, &bt) == 0, "no original headers at all");
	buf_free(&out);
	buf_init(&out, 512);
	dsn_defaults(&d);
	T_OK(queue_dsn_build(&d, &out, &bt) == -1, "a buffer cap too small is an error");
	buf_free(&out);
}

/* RFC 3461 fields, RET=FULL, and the delay and success kinds. */
static void
test_kinds(void)
{
	static const char full[] = "Subject: hello\r\nFrom: <a@example.com>\r\n\r\n"
	    "the body line\r\n";
	static const struct queue_dsn_rcpt delayed[] = {
		{ .address = "bob@example.org", .orcpt = "rfc822;Bob.Original@example.net",
		  .action = QUEUE_DSN_ACT_DELAYED, .status = "4.2.0",
		  .diagnostic = "450 4.2.0 <bob@example.org>: mailbox busy",
		  .remote_mta = "mx.example.org", .last_attempt = 1700003000 },
		{ .address = "carol@example.org", .action = QUEUE_DSN_ACT_DELAYED,
		  .status = "5.1.1", .diagnostic = "delivery not yet attempted" },
	};
	static const struct queue_dsn_rcpt success[] = {
		{ .address = "bob@example.org", .action = QUEUE_DSN_ACT_DELIVERED,
		  .status = "", .diagnostic = "250 2.0.0 delivered to maildir" },
		{ .address = "carol@example.org", .action = QUEUE_DSN_ACT_RELAYED,
		  .status = "2.6.0", .diagnostic = "250 2.6.0 queued as X",
		  .remote_mta = "relay.example.org" },
	};
	struct queue_dsn d;
	struct buf out;
	const char *s;
	int bt;

	buf_init(&out, 1 << 20);
	dsn_defaults(&d);
	d.kind = QUEUE_DSN_DELAY;
	d.envid = "QQ314159";
	d.retry_until = 1700432000;
	d.rcpts = delayed;
	d.nrcpts = 2;
	T_OK(queue_dsn_build(&d, &out, &bt) == 0, "build a delay warning");
	s = (const char *)out.data;
	T_OK(strstr(s, "Subject: Delayed Mail (still being retried)\r\n") != NULL &&
	    strstr(s, "THIS IS A WARNING ONLY") != NULL, "delay: subject and notice");
	T_OK(strstr(s, "Original-Envelope-Id: QQ314159\r\nArrival-Date: ") != NULL,
	    "delay: Original-Envelope-Id before Arrival-Date");
	T_OK(strstr(s, "\r\nOriginal-Recipient: rfc822; Bob.Original@example.net\r\n"
	    "Final-Recipient: rfc822; bob@example.org\r\nAction: delayed\r\n"
	    "Status: 4.2.0\r\nRemote-MTA: dns; mx.example.org\r\n"
	    "Diagnostic-Code: smtp; 450 4.2.0 <bob@example.org>: mailbox busy\r\n"
	    "Last-Attempt-Date: Tue, 14 Nov 2023 23:03:20 +0000\r\n"
	    "Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000\r\n") != NULL,
	    "delay: every field of a recipient, in order");
	T_OK(strstr(s, "Final-Recipient: rfc822; carol@example.org\r\nAction: delayed\r\n"
	    "Status: 4.0.0\r\nWill-Retry-Until: ") != NULL,
	    "delay: a 5.x.x status becomes 4.0.0, no server, no Diagnostic-Code");
	T_OK(strstr(s, "Content-Description: Delayed Message Headers\r\n"
	    "Content-Type: text/rfc822-headers\r\n") != NULL, "delay: original headers");
	buf_reset(&out);

	dsn_defaults(&d);
	d.kind = QUEUE_DSN_SUCCESS;
	d.rcpts = success;
	d.nrcpts = 2;
	T_OK(queue_dsn_build(&d, &out, &bt) == 0, "build a success notice");
	s = (const char *)out.data;
	T_OK(strstr(s, "Subject: Successful Mail Delivery Report\r\n") != NULL,
	    "success: subject");
	T_OK(strstr(s, "Final-Recipient: rfc822; bob@example.org\r\nAction: delivered\r\n"
	    "Status: 2.0.0\r\nDiagnostic-Code: smtp; 250 2.0.0") != NULL,
	    "success: delivered, status 2.0.0");
	T_OK(strstr(s, "Final-Recipient: rfc822; carol@example.org\r\nAction: relayed\r\n"
	    "Status: 2.6.0\r\nRemote-MTA: dns; relay.example.org\r\n") != NULL,
	    "success: relayed with its Remote-MTA");
	T_OK(strstr(s, "Will-Retry-Until") == NULL, "success: no Will-Retry-Until");
	buf_reset(&out);

	dsn_defaults(&d);
	d.original = (const uint8_t *)full;
	d.original_len = strlen(full);
	d.original_full = 1;
	T_OK(queue_dsn_build(&d, &out, &bt) == 0, "build a bounce with RET=FULL");
	s = (const char *)out.data;
	T_OK(strstr(s, "Content-Description: Undelivered Message\r\n"
	    "Content-Type: message/rfc822\r\n\r\nSubject: hello\r\n") != NULL &&
	    strstr(s, "\r\n\r\nthe body line\r\n\r\n--=_moat_FEDCBA9876543210_0badcafe--\r\n")
	    != NULL, "RET=FULL: the whole message as message/rfc822");
	T_OK(strstr(s, "text/rfc822-headers") == NULL, "RET=FULL: no headers part");
	T_OK(lines_ok(s, out.len), "RET=FULL: CRLF lines");
	buf_free(&out);
}

/* The helpers that read stored replies and relays. */
static void
test_helpers(void)
{
	static const struct {
		const char *in, *want;
	} replies[] = {
		{ "550 5.1.1 no", "550 5.1.1 no" }, { "451-4.3.0 wait", "451-4.3.0 wait" },
		{ "250", "250" }, { "message expired: 450 4.2.0 busy", "450 4.2.0 busy" },
		{ "connect to x[1.2.3.4]:25: refused", NULL }, { "no relay_host configured", NULL },
		{ "5500 x", NULL }, { "550x", NULL }, { "350 go on", NULL }, { "55", NULL },
		{ "", NULL }, { "message expired: timeout", NULL },
	}, enh[] = {
		{ "450 4.2.0 busy", "4.2.0" }, { "550 5.1.1", "5.1.1" }, { "550 no-code here", "no-code" },
		{ "550", "" }, { "timeout", "" }, { "message expired: 451 4.4.1 x", "4.4.1" },
	}, mta[] = {
		{ "mx.example.org[192.0.2.1]:25", "mx.example.org" },
		{ "127.0.0.1[127.0.0.1]:2525", "127.0.0.1" }, { "maildir", "" }, { "none", "" },
		{ "", "" }, { "[192.0.2.1]:25", "" },
	}, cls[] = {
		{ "2.0.0", "2.0.0" }, { "2.6.1", "2.6.1" }, { "4.2.0", "2.0.0" }, { "", "2.0.0" },
	};
	char buf[300];
	const char *r;
	size_t i;

	for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		r = queue_dsn_smtp_reply(replies[i].in);
		T_OK(replies[i].want == NULL ? r == NULL : r != NULL && strcmp(r, replies[i].want) == 0,
		    "smtp_reply \"%s\"", replies[i].in);
	}
	T_OK(queue_dsn_smtp_reply(NULL) == NULL, "smtp_reply NULL");
	for (i = 0; i < sizeof(enh) / sizeof(enh[0]); i++) {
		queue_dsn_reply_enh(enh[i].in, buf, sizeof(buf));
		T_OK(strcmp(buf, enh[i].want) == 0, "reply_enh \"%s\" -> \"%s\"", enh[i].in, buf);
	}
	for (i = 0; i < sizeof(mta) / sizeof(mta[0]); i++) {
		queue_dsn_remote_mta(mta[i].in, buf, sizeof(buf));
		T_OK(strcmp(buf, mta[i].want) == 0, "remote_mta \"%s\" -> \"%s\"", mta[i].in, buf);
	}
	{
		static const struct {
			uint32_t notify;
			int fail, delay, success;
		} nt[] = {
			{ 0, 1, 1, 0 },
			{ MOAT_NOTIFY_NEVER, 0, 0, 0 },
			{ MOAT_NOTIFY_SUCCESS, 0, 0, 1 },
			{ MOAT_NOTIFY_FAILURE, 1, 0, 0 },
			{ MOAT_NOTIFY_DELAY, 0, 1, 0 },
			{ MOAT_NOTIFY_SUCCESS | MOAT_NOTIFY_FAILURE | MOAT_NOTIFY_DELAY, 1, 1, 1 },
			{ MOAT_NOTIFY_FAILURE | MOAT_NOTIFY_DELAY, 1, 1, 0 },
			/* Never decoded (NEVER is alone), but NEVER wins. */
			{ MOAT_NOTIFY_NEVER | MOAT_NOTIFY_FAILURE, 0, 0, 0 },
		};

		for (i = 0; i < sizeof(nt) / sizeof(nt[0]); i++)
			T_OK(queue_dsn_notify_wants(nt[i].notify, QUEUE_DSN_FAILURE) == nt[i].fail &&
			    queue_dsn_notify_wants(nt[i].notify, QUEUE_DSN_DELAY) == nt[i].delay &&
			    queue_dsn_notify_wants(nt[i].notify, QUEUE_DSN_SUCCESS) == nt[i].success,
			    "notify_wants 0x%x", nt[i].notify);
	}
	queue_dsn_remote_mta("averyveryverylonghostname[1.2.3.4]:25", buf, 8);
	T_OK(buf[0] == '\0', "remote_mta: a host longer than the buffer gives none");
	for (i = 0; i < sizeof(cls) / sizeof(cls[0]); i++) {
		queue_dsn_status_class(cls[i].in, '2', buf, sizeof(buf));
		T_OK(strcmp(buf, cls[i].want) == 0, "status class 2 \"%s\" -> %s", cls[i].in, buf);
	}
}

static void
test_null_sender(void)
{
	struct queue_dsn d;
	struct buf out;
	int bt;

	T_OK(!queue_dsn_wanted(""), "null sender never gets a bounce");
	T_OK(!queue_dsn_wanted(NULL), "no sender never gets a bounce");
	T_OK(queue_dsn_wanted("alice@example.com"), "a real sender gets one");
	buf_init(&out, 1 << 20);
	dsn_defaults(&d);
	d.orig_sender = "";
	T_OK(queue_dsn_build(&d, &out, &bt) == -1 && out.len == 0,
	    "the builder refuses a bounce to <>");
	buf_free(&out);
}

static void
test_header_len(void)
{
	static const struct {
		const char *in;
		size_t want;
		int complete;
		const char *label;
	} cases[] = {
		{ "A: 1\r\nB: 2\r\n\r\nbody\r\n", 12, 1, "headers then body" },
		{ "A: 1\r\n\tcont\r\n\r\n", 13, 1, "folded header" },
		{ "\r\nbody\r\n", 0, 1, "no headers at all" },
		{ "A: 1\r\nB: 2\r\n", 12, 0, "no empty line: whole lines only" },
		{ "A: 1\r\nB: partial", 6, 0, "cut mid-line: up to the last CRLF" },
		{ "A: 1\r\n\r", 6, 0, "CR of the empty line alone" },
		{ "no line end at all", 0, 0, "one unterminated line" },
		{ "A: 1\nB: 2\n\n", 0, 0, "bare LF is not a line end" },
		{ "", 0, 0, "empty" },
	};
	size_t i, n;
	int complete;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = queue_dsn_header_len((const uint8_t *)cases[i].in, strlen(cases[i].in),
		    &complete);
		T_OK(n == cases[i].want && complete == cases[i].complete,
		    "header_len: %s (%zu, %d)", cases[i].label, n, complete);
	}
}

static void
test_status_and_date(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "5.1.1", "5.1.1" }, { "5.7.26", "5.7.26" }, { "5.123.456", "5.123.456" },
		{ "4.4.1", "5.0.0" }, { "2.0.0", "5.0.0" }, { "", "5.0.0" },
		{ "5.1", "5.0.0" }, { "5.1.1.1", "5.0.0" }, { "5.1234.1", "5.0.0" },
		{ "5.1.1 extra", "5.0.0" }, { "5..1", "5.0.0" }, { "x.1.1", "5.0.0" },
	};
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		queue_dsn_status(cases[i].in, buf, sizeof(buf));
		T_OK(strcmp(buf, cases[i].want) == 0, "status \"%s\" -> %s", cases[i].in, buf);
	}
	queue_dsn_status(NULL, buf, sizeof(buf));
	T_OK(strcmp(buf, "5.0.0") == 0, "status NULL -> 5.0.0");
	mail_date(0, buf, sizeof(buf));
	T_OK(strcmp(buf, "Thu, 1 Jan 1970 00:00:00 +0000") == 0, "date of 0: %s", buf);
	mail_date(951782400, buf, sizeof(buf));
	T_OK(strcmp(buf, "Tue, 29 Feb 2000 00:00:00 +0000") == 0, "leap day: %s", buf);
}

int
main(void)
{
	test_structure();
	test_hostile();
	test_kinds();
	test_helpers();
	test_null_sender();
	test_header_len();
	test_status_and_date();
	return t_done();
}
