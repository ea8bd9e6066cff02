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
 *
 * Writes are batched: smtp_conn_write() queues, and the queue goes out
 * in one send when it is full, on smtp_conn_flush(), and before every
 * wait for a reply.  With TCP_NODELAY on the socket as well, a command
 * never waits for the ACK of the one before it (Nagle's algorithm
 * against the server's delayed ACK: a 40 ms stall per turn).
 *
 * After smtp_conn_tls() the same calls go through TLS, with the same
 * deadlines.
 */
#ifndef MOAT_SMTP_CONN_H
#define MOAT_SMTP_CONN_H

#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "smtp_reply.h"
#include "util/buf.h"

/* Most bytes kept from the server while we are still writing. */
#define SMTP_CONN_IN_MAX	(1024 * 1024)
/* Queued writes go out once they reach this many bytes. */
#define SMTP_CONN_OUT_BATCH	(64 * 1024)
/* Most bytes queued; a write that would go past it is sent at once. */
#define SMTP_CONN_OUT_MAX	(3 * SMTP_CONN_OUT_BATCH)

enum smtp_conn_fail {
	SMTP_CONN_OK,
	SMTP_CONN_TIMEOUT,	/* a deadline passed */
	SMTP_CONN_LOST,		/* end of file, reset, write error, TLS error */
	SMTP_CONN_PROTO,	/* the server's reply was malformed */
};

struct smtp_conn {
	int			 fd;
	int			 timeout_ms;	/* each write, each reply */
	int			 eof;		/* the server closed its side */
	int			 broken;	/* a send failed: send no more */
	struct buf		 in;		/* read, not yet parsed */
	struct buf		 out;		/* queued, not yet sent */
	struct smtp_reply_parser rp;
	SSL			*ssl;		/* NULL in clear */
	int			 ssl_dead;	/* a fatal TLS error: no more TLS I/O */
	/* "" in clear, else "TLSv1.3 TLS_AES_256_GCM_SHA384 verified=yes" */
	char			 tls[128];
	enum smtp_conn_fail	 fail;
	char			 err[160];	/* what failed ("" for a plain close) */
};

/*
 * Connect to sa.  On failure returns -1 with c->err holding the reason
 * ("Connection refused", "Connection timed out").
 */
int	smtp_conn_open(struct smtp_conn *c, const struct sockaddr *sa,
	    socklen_t salen, int connect_timeout_ms, int timeout_ms);
/*
 * Queue p for sending; it may go out now (a full queue, a large p).
 * -1 with c->fail and c->err set when a send failed, now or before.
 */
int	smtp_conn_write(struct smtp_conn *c, const void *p, size_t n);
/* Send everything queued; -1 with c->fail and c->err set. */
int	smtp_conn_flush(struct smtp_conn *c);
/*
 * Flush, then the next complete reply, or NULL with c->fail and c->err
 * set.  When the flush fails, a reply the server sent before it went
 * away (say 421 or 552 and a close) is returned if one is complete, as
 * smtp_conn_reply_buffered() does; the failure stays in c->fail/c->err.
 */
const struct smtp_reply *smtp_conn_reply(struct smtp_conn *c);
/*
 * After a failed write: a reply the server sent before it went away
 * (say 552 and a close), if one is already complete; else NULL.
 */
const struct smtp_reply *smtp_conn_reply_buffered(struct smtp_conn *c);
/* Has the server used bare LF line ends on this connection? */
int	smtp_conn_bare_lf(const struct smtp_conn *c);
/*
 * After the 220 reply to STARTTLS: the TLS handshake, as a client, on
 * ssl (set up by the caller: SNI, verification), within c->timeout_ms.
 * The connection owns ssl from now on, even on failure.  Bytes the
 * server sent after its 220 are a protocol error: RFC 3207 does not let
 * a server pipeline past STARTTLS, and taking them would let a man in
 * the middle inject replies (the client side of CVE-2011-0411).
 * Returns 0, or -1 with c->fail and c->err set.  c->tls is left to the
 * caller, which knows what was verified.
 */
int	smtp_conn_tls(struct smtp_conn *c, SSL *ssl);
/* Send close_notify (best effort, no wait), free the TLS state, close. */
void	smtp_conn_close(struct smtp_conn *c);

#endif
