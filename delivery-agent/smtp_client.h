/*
 * smtp_client.h: the relay transport, an RFC 5321 SMTP client.
 *
 * One job is one connection to the job's next hop ("[address]:port"):
 * greeting, EHLO (HELO when EHLO is refused with 5xx), MAIL FROM with
 * SIZE= and BODY=8BITMIME where the server offers them, RCPT TO for each
 * recipient, DATA with the body streamed chunk by chunk from the
 * queue-manager, QUIT.  With PIPELINING the envelope and DATA go in one
 * write (RFC 2920).  Every recipient ends with a result in the job: the
 * server's reply, or code 0 and a diagnostic when no usable reply came.
 */
#ifndef MOAT_SMTP_CLIENT_H
#define MOAT_SMTP_CLIENT_H

#include "job.h"

struct smtp_client_opts {
	const char	*helo_name;		/* myhostname */
	int		 connect_timeout_ms;	/* relay_connect_timeout */
	int		 timeout_ms;		/* relay_timeout */
};

/*
 * Deliver job j.  Returns 0 when every recipient has a result (whatever
 * it is), -1 when the channel to the queue-manager failed (j->err).
 */
int	smtp_client_deliver(struct job *j, const struct smtp_client_opts *o);

#endif
