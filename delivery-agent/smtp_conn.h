/*
 * smtp_conn.h: one TCP connection to an SMTP server, with time limits.
 *
 * The socket is non-blocking and every wait is a poll() against a
 * deadline: connecting is bounded by relay_connect_timeout, each write
 * and each reply by relay_timeout (for the whole reply, so a server that
 * drips one byte at a time cannot hold the agent forever).  While a long
 * write is under way (a pipelined envelope, the message body) whatever
 * the server sends is read and kept, so neither side can block the other
 * (RFC 2920 3.5).
 */
#ifndef MOAT_SMTP_CONN_H
#define MOAT_SMTP_CONN_H

#include <stddef.h>
#include <sys/socket.h>

#include "smtp_reply.h"
#include "util/buf.h"

/* Most bytes kept from the server while we are still writing. */
#define SMTP_CONN_IN_MAX	(1024 * 1024)

enum smtp_conn_fail {
	SMTP_CONN_OK,
	SMTP_CONN_TIMEOUT,	/* a deadline passed */
	SMTP_CONN_LOST,		/* end of file, reset, write error */
	SMTP_CONN_PROTO,	/* the server's reply was malformed */
};

struct smtp_conn {
	int			 fd;
	int			 timeout_ms;	/* each write, each reply */
	int			 eof;		/* the server closed its side */
	struct buf		 in;		/* read, not yet parsed */
	struct smtp_reply_parser rp;
	enum smtp_conn_fail	 fail;
	char			 err[160];	/* what failed ("" for a plain close) */
};

/*
 * Connect to sa.  On failure returns -1 with c->err holding the reason
 * ("Connection refused", "Connection timed out").
 */
int	smtp_conn_open(struct smtp_conn *c, const struct sockaddr *sa,
	    socklen_t salen, int connect_timeout_ms, int timeout_ms);
/* Write all of p; -1 with c->fail and c->err set. */
int	smtp_conn_write(struct smtp_conn *c, const void *p, size_t n);
/* The next complete reply, or NULL with c->fail and c->err set. */
const struct smtp_reply *smtp_conn_reply(struct smtp_conn *c);
/*
 * After a failed write: a reply the server sent before it went away
 * (say 552 and a close), if one is already complete; else NULL.
 */
const struct smtp_reply *smtp_conn_reply_buffered(struct smtp_conn *c);
/* Has the server used bare LF line ends on this connection? */
int	smtp_conn_bare_lf(const struct smtp_conn *c);
void	smtp_conn_close(struct smtp_conn *c);

#endif
