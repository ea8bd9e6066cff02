/*
 * smtp_received.c: the Received: header the session puts on every message.
 *
 * RFC 5321 4.4 trace information, folded over three lines:
 *
 *   Received: from <helo> ([<client address>])
 *   	(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))
 *   	by <myhostname> (moat) with ESMTPS id <queue id>
 *   	for <rcpt>; Sun, 22 Nov 2026 13:20:01 +0000
 *
 * The "using" comment, as Postfix writes it, only when the message came
 * over TLS; "ESMTPS" is RFC 3848's name for ESMTP under STARTTLS or
 * implicit TLS.  HELO under TLS stays "SMTP": RFC 3848 registers no
 * name for it, and the comment tells the rest.
 * "for" only when the message has exactly one recipient: with several,
 * every copy would tell its reader who else (Bcc included) got it.  The
 * HELO name is the one thing here a client chose, so it is reduced to
 * characters that cannot end a clause or open a comment.
 */
#include "config.h"
#include "mail/date.h"

#include <stdio.h>
#include <time.h>

#include "smtp_session.h"

/* Keep host-name and address-literal characters; anything else becomes '_'. */
static void
smtp_received_clean_helo(const char *helo, char *dst, size_t dstsz)
{
	size_t i;

	for (i = 0; helo[i] != '\0' && i + 1 < dstsz; i++) {
		char c = helo[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
		    c == ':' || c == '[' || c == ']';
		dst[i] = ok ? c : '_';
	}
	dst[i] = '\0';
}

int
smtp_received_format(struct buf *b, const char *helo, int esmtp,
    const char *client_addr, const char *tls, const char *myhostname,
    const char *qid, const char *rcpt, time_t now)
{
	char name[MOAT_HELO_MAX + 1], date[64];
	int r;

	smtp_received_clean_helo(helo, name, sizeof(name));
	mail_date(now, date, sizeof(date));
	if (buf_printf(b, "Received: from %s ([%s])\r\n", name, client_addr) == -1)
		return -1;
	if (tls != NULL && buf_printf(b, "\t(using %s)\r\n", tls) == -1)
		return -1;
	r = buf_printf(b, "\tby %s (moat) with %s id %s", myhostname,
	    !esmtp ? "SMTP" : tls != NULL ? "ESMTPS" : "ESMTP", qid);
	if (r == -1)
		return -1;
	if (rcpt != NULL)
		return buf_printf(b, "\r\n\tfor <%s>; %s\r\n", rcpt, date);
	return buf_printf(b, ";\r\n\t%s\r\n", date);
}
