/*
 * test_queue_dsn.c: the bounce (RFC 3464 delivery status notification)
 * text builder and its helpers.
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

static const struct queue_dsn_rcpt rcpts[] = {
	{ "bob@example.org", "5.1.1", "550 5.1.1 <bob@example.org>: user unknown" },
	{ "carol@example.org", "", "554 transaction failed" },
	{ "dave@example.org", "5.4.7", "message expired: 451 4.4.1 timeout" },
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
	d->nrcpts = 3;
	d->headers = (const uint8_t *)headers;
	d->headers_len = strlen(headers);
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
		    "Diagnostic-Code: smtp; message expired: 451 4.4.1 timeout\r\n",
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
		{ "bob@example.org", "5.1.1",
		  "550 bad\r\nX-Injected: yes\r\n\r\n--=_moat_FEDCBA9876543210_0badcafe--" },
	};
	static const struct queue_dsn_rcpt evil2[] = {
		{ "bob@example.org", "5.1.1", "550 bad\r\nX-Injected: yes\x01\xff" },
	};
	static const char eight[] = "Subject: caf\xc3\xa9\r\n";
	static const char clash[] = "X-Trap: --=_moat_FEDCBA9876543210_0badcafe\r\n";
	char longdiag[3000];
	struct queue_dsn_rcpt longr = { "bob@example.org", "5.1.1", longdiag };
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
	d.headers = (const uint8_t *)clash;
	d.headers_len = strlen(clash);
	T_OK(queue_dsn_build(&d, &out, &bt) == -1, "boundary in the original headers: refused");
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
	d.headers = (const uint8_t *)eight;
	d.headers_len = strlen(eight);
	T_OK(queue_dsn_build(&d, &out, &bt) == 0 && bt == MOAT_BODY_8BITMIME &&
	    strstr((const char *)out.data, "Content-Transfer-Encoding: 8bit\r\n") != NULL,
	    "8-bit original headers: 8BITMIME and 8bit");
	buf_reset(&out);
	dsn_defaults(&d);
	d.headers = (const uint8_t *)"Subject: cut";
	d.headers_len = 12;
	T_OK(queue_dsn_build(&d, &out, &bt) == 0 &&
	    strstr((const char *)out.data, "Subject: cut\r\n\r\n--=_moat") != NULL,
	    "headers without a final CRLF still end before the boundary");
	buf_reset(&out);
	dsn_defaults(&d);
	d.headers_len = 0;
	T_OK(queue_dsn_build(&d, &out, &bt) == 0, "no original headers at all");
	buf_free(&out);
	buf_init(&out, 512);
	dsn_defaults(&d);
	T_OK(queue_dsn_build(&d, &out, &bt) == -1, "a buffer cap too small is an error");
	buf_free(&out);
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
	test_null_sender();
	test_header_len();
	test_status_and_date();
	return t_done();
}
