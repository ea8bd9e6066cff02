/*
 * smtp_conn.c: a non-blocking TCP connection to an SMTP server with a
 * deadline on every wait, in clear or through TLS (see smtp_conn.h).
 *
 * Reads and writes are single non-blocking attempts that either make
 * progress or say which way to wait (POLLIN or POLLOUT): in clear that
 * is always the obvious one, but a TLS read may have to write and a TLS
 * write may have to read, so the loops poll for whatever the last
 * attempt asked for.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "smtp_conn.h"
#include "util/buf.h"
#include "util/tls.h"

#define SMTP_CONN_READ	16384

static long long
smtp_conn_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds until the deadline, for poll(). */
static int
smtp_conn_left(long long deadline)
{
	long long left = deadline - smtp_conn_now_ms();

	if (left < 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* Record why the connection failed; always -1. */
static int
smtp_conn_fail(struct smtp_conn *c, enum smtp_conn_fail why, const char *text)
{
	c->fail = why;
	snprintf(c->err, sizeof(c->err), "%s", text);
	return -1;
}

/*
 * Wait up to the deadline for the socket to be ready for events;
 * *revents gets what happened.  0 ready, -1 timed out or failed.
 */
static int
smtp_conn_wait(struct smtp_conn *c, short events, long long deadline,
    short *revents)
{
	struct pollfd pfd;
	int r;

	pfd.fd = c->fd;
	pfd.events = events;
	pfd.revents = 0;
	do {
		r = poll(&pfd, 1, smtp_conn_left(deadline));
	} while (r == -1 && errno == EINTR);
	if (r == -1)
		return smtp_conn_fail(c, SMTP_CONN_LOST, strerror(errno));
	if (r == 0)
		return smtp_conn_fail(c, SMTP_CONN_TIMEOUT, "timed out");
	*revents = pfd.revents;
	return 0;
}

int
smtp_conn_open(struct smtp_conn *c, const struct sockaddr *sa, socklen_t salen,
    int connect_timeout_ms, int timeout_ms)
{
	struct pollfd pfd;
	socklen_t len;
	int one = 1, r, soerr;

	memset(c, 0, sizeof(*c));
	c->timeout_ms = timeout_ms;
	buf_init(&c->in, SMTP_CONN_IN_MAX);
	buf_init(&c->out, SMTP_CONN_OUT_MAX);
	smtp_reply_init(&c->rp);
	c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		return smtp_conn_fail(c, SMTP_CONN_LOST, strerror(errno));
	/*
	 * Writes are batched already; NODELAY makes sure that a write that
	 * does follow another (the end of the body after its last chunk)
	 * is not held back until the server's delayed ACK.  Without it the
	 * mail still goes, only slower: a failure is not worth a deferral.
	 */
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, sa, salen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		goto fail;
	pfd.fd = c->fd;
	pfd.events = POLLOUT;
	do {
		r = poll(&pfd, 1, connect_timeout_ms);
	} while (r == -1 && errno == EINTR);
	if (r == 0)
		errno = ETIMEDOUT;
	if (r <= 0)
		goto fail;
	len = sizeof(soerr);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
		goto fail;
	if (soerr == 0)
		return 0;
	errno = soerr;
fail:
	smtp_conn_fail(c, errno == ETIMEDOUT ? SMTP_CONN_TIMEOUT : SMTP_CONN_LOST,
	    strerror(errno));
	close(c->fd);
	c->fd = -1;
	return -1;
}

/*
 * After a TLS call returned r: 0 with *want set to wait and try again,
 * 1 at the server's end of data, -1 failed (c->fail, c->err).  errnum is
 * errno as the call left it.
 */
static int
smtp_conn_ssl_status(struct smtp_conn *c, int r, int errnum, short *want,
    const char *doing)
{
	char text[sizeof(c->err)], ossl[128];

	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		*want = POLLIN;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		*want = POLLOUT;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return 1;	/* close_notify */
	case SSL_ERROR_SYSCALL:
		c->ssl_dead = 1;
		if (errnum == 0 && ERR_peek_error() == 0)
			return 1;
		snprintf(text, sizeof(text), "%s: %s", doing,
		    errnum != 0 ? strerror(errnum) : tls_errstr(ossl, sizeof(ossl)));
		return smtp_conn_fail(c, SMTP_CONN_LOST, text);
	default:
		c->ssl_dead = 1;
		/* A close without close_notify: SMTP replies delimit
		 * themselves, so this is an ordinary end of file here. */
		if (ERR_GET_REASON(ERR_peek_error()) ==
		    SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			return 1;
		}
		snprintf(text, sizeof(text), "%s: %s", doing,
		    tls_errstr(ossl, sizeof(ossl)));
		return smtp_conn_fail(c, SMTP_CONN_LOST, text);
	}
}

/* One read into tmp: bytes, 0 at end of file, -1 and *want or failure. */
static ssize_t
smtp_conn_read_some(struct smtp_conn *c, uint8_t *tmp, size_t want_n,
    short *want, int *failed)
{
	ssize_t n;
	int r;

	*failed = 0;
	*want = POLLIN;
	if (c->ssl == NULL) {
		n = read(c->fd, tmp, want_n);
		if (n == -1 && errno != EAGAIN && errno != EINTR) {
			*failed = 1;
			smtp_conn_fail(c, SMTP_CONN_LOST, strerror(errno));
		}
		return n;
	}
	if (c->ssl_dead) {
		*failed = 1;
		return -1;	/* c->err already says why */
	}
	ERR_clear_error();
	errno = 0;
	if ((r = SSL_read(c->ssl, tmp, (int)want_n)) > 0)
		return r;
	switch (smtp_conn_ssl_status(c, r, errno, want, "TLS read failed")) {
	case 1:
		return 0;
	case -1:
		*failed = 1;
		break;
	}
	return -1;
}

/*
 * Read what the server has sent into c->in: 1 progress (bytes, or the
 * end of file: c->eof), 0 nothing yet (*want says how to wait), -1
 * failed.
 */
static int
smtp_conn_fill(struct smtp_conn *c, short *want)
{
	uint8_t tmp[SMTP_CONN_READ];
	size_t room = buf_room(&c->in);
	ssize_t n;
	int failed;

	if (room == 0)
		return smtp_conn_fail(c, SMTP_CONN_PROTO, "server sent too much");
	if (room > sizeof(tmp))
		room = sizeof(tmp);
	n = smtp_conn_read_some(c, tmp, room, want, &failed);
	if (failed)
		return -1;
	if (n == -1)
		return 0;
	if (n == 0) {
		c->eof = 1;
		return 1;
	}
	if (buf_append(&c->in, tmp, (size_t)n) == -1)
		return smtp_conn_fail(c, SMTP_CONN_PROTO, "server sent too much");
	return 1;
}

/* One write of p: bytes taken, 0 to wait (*want), -1 failed. */
static ssize_t
smtp_conn_send_some(struct smtp_conn *c, const uint8_t *p, size_t n,
    short *want)
{
	ssize_t w;
	int r;

	*want = POLLOUT;
	if (c->ssl == NULL) {
		w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w >= 0)
			return w;
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		return smtp_conn_fail(c, SMTP_CONN_LOST, strerror(errno));
	}
	if (c->ssl_dead)
		return -1;
	ERR_clear_error();
	errno = 0;
	if ((r = SSL_write(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n)) > 0)
		return r;
	r = smtp_conn_ssl_status(c, r, errno, want, "TLS write failed");
	if (r == 1)
		return smtp_conn_fail(c, SMTP_CONN_LOST, "TLS write failed: "
		    "the server closed the TLS session");
	return r == 0 ? 0 : -1;
}

/* Read whatever has arrived while writing; -1 failed. */
static int
smtp_conn_drain(struct smtp_conn *c, short *want)
{
	int r;

	while (!c->eof && buf_room(&c->in) > 0)
		if ((r = smtp_conn_fill(c, want)) != 1)
			return r;
	return 0;
}

/*
 * Send all of p within one relay_timeout, reading the server's replies
 * meanwhile so that neither side blocks on a full window.
 */
static int
smtp_conn_send(struct smtp_conn *c, const uint8_t *p, size_t n)
{
	long long deadline = smtp_conn_now_ms() + c->timeout_ms;
	short wwant = POLLOUT, rwant = POLLIN, events, revents;
	size_t off = 0;
	ssize_t w;
	int reading;

	while (off < n) {
		if ((w = smtp_conn_send_some(c, p + off, n - off, &wwant)) == -1)
			return -1;
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		reading = !c->eof && buf_room(&c->in) > 0;
		events = wwant | (reading ? rwant : 0);
		if (smtp_conn_wait(c, events, deadline, &revents) == -1)
			return -1;
		if (reading && (revents & (rwant | POLLERR | POLLHUP)) &&
		    smtp_conn_drain(c, &rwant) == -1)
			return -1;
	}
	return 0;
}

int
smtp_conn_flush(struct smtp_conn *c)
{
	int r;

	if (c->broken)
		return -1;
	if (c->out.len == 0)
		return 0;
	r = smtp_conn_send(c, c->out.data, c->out.len);
	buf_reset(&c->out);
	if (r == -1)
		c->broken = 1;
	return r;
}

int
smtp_conn_write(struct smtp_conn *c, const void *p, size_t n)
{
	if (c->broken)
		return -1;
	if (n == 0)
		return 0;
	if (c->out.len + n <= SMTP_CONN_OUT_MAX &&
	    buf_append(&c->out, p, n) == 0) {
		if (c->out.len >= SMTP_CONN_OUT_BATCH)
			return smtp_conn_flush(c);
		return 0;
	}
	/* Too big to queue: what is queued goes first, then p itself. */
	if (smtp_conn_flush(c) == -1)
		return -1;
	if (smtp_conn_send(c, p, n) == -1) {
		c->broken = 1;
		return -1;
	}
	return 0;
}

/* Parse buffered input: 1 a reply, 0 need more, -1 malformed. */
static int
smtp_conn_parse(struct smtp_conn *c)
{
	enum smtp_reply_status st;
	size_t used;

	if (c->in.len == 0)
		return smtp_reply_error(&c->rp) != NULL ? -1 : 0;
	st = smtp_reply_feed(&c->rp, c->in.data, c->in.len, &used);
	buf_consume(&c->in, used);
	if (st == SMTP_REPLY_DONE)
		return 1;
	if (st == SMTP_REPLY_ERROR)
		return -1;
	return 0;
}

const struct smtp_reply *
smtp_conn_reply(struct smtp_conn *c)
{
	long long deadline;
	short want = POLLIN, revents;
	int r;

	/* After a failed send, only what the server said before counts. */
	if (smtp_conn_flush(c) == -1)
		return smtp_conn_reply_buffered(c);
	deadline = smtp_conn_now_ms() + c->timeout_ms;
	for (;;) {
		if ((r = smtp_conn_parse(c)) == 1)
			return smtp_reply_get(&c->rp);
		if (r == -1) {
			smtp_conn_fail(c, SMTP_CONN_PROTO, smtp_reply_error(&c->rp));
			return NULL;
		}
		if (c->eof) {
			smtp_conn_fail(c, SMTP_CONN_LOST, "");
			return NULL;
		}
		if ((r = smtp_conn_fill(c, &want)) == -1)
			return NULL;
		if (r == 1)
			continue;
		if (smtp_conn_wait(c, want, deadline, &revents) == -1)
			return NULL;
	}
}

const struct smtp_reply *
smtp_conn_reply_buffered(struct smtp_conn *c)
{
	enum smtp_conn_fail fail = c->fail;
	char err[sizeof(c->err)];
	const struct smtp_reply *r = NULL;
	short want;

	/* Keep the original failure: it explains the lost connection. */
	memcpy(err, c->err, sizeof(err));
	while (!c->eof && buf_room(&c->in) > 0 && smtp_conn_fill(c, &want) == 1)
		;
	if (smtp_conn_parse(c) == 1)
		r = smtp_reply_get(&c->rp);
	c->fail = fail;
	memcpy(c->err, err, sizeof(err));
	return r;
}

int
smtp_conn_bare_lf(const struct smtp_conn *c)
{
	return c->rp.bare_lf_seen;
}

int
smtp_conn_tls(struct smtp_conn *c, SSL *ssl)
{
	long long deadline = smtp_conn_now_ms() + c->timeout_ms;
	short want, revents;
	int r;

	c->ssl = ssl;
	if (c->in.len > 0) {
		c->ssl_dead = 1;	/* nothing was said in TLS: no close_notify */
		return smtp_conn_fail(c, SMTP_CONN_PROTO, "the server sent "
		    "more after its reply to STARTTLS");
	}
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_set_fd(ssl, c->fd) != 1) {
		c->ssl_dead = 1;
		return smtp_conn_fail(c, SMTP_CONN_LOST, "TLS set-up failed");
	}
	SSL_set_connect_state(ssl);
	for (;;) {
		ERR_clear_error();
		errno = 0;
		if ((r = SSL_do_handshake(ssl)) == 1)
			return 0;
		r = smtp_conn_ssl_status(c, r, errno, &want, "TLS handshake failed");
		if (r == 1) {
			c->ssl_dead = 1;
			return smtp_conn_fail(c, SMTP_CONN_LOST, "TLS handshake "
			    "failed: the server closed the connection");
		}
		if (r == -1)
			return -1;
		if (smtp_conn_wait(c, want, deadline, &revents) == -1) {
			c->ssl_dead = 1;
			if (c->fail == SMTP_CONN_TIMEOUT)
				smtp_conn_fail(c, SMTP_CONN_TIMEOUT,
				    "TLS handshake timed out");
			return -1;
		}
	}
}

void
smtp_conn_close(struct smtp_conn *c)
{
	if (c->ssl != NULL) {
		/* close_notify if it can go at once; the answer is not awaited. */
		if (!c->ssl_dead && !c->broken && SSL_is_init_finished(c->ssl)) {
			ERR_clear_error();
			(void)SSL_shutdown(c->ssl);
		}
		SSL_free(c->ssl);
		ERR_clear_error();
		c->ssl = NULL;
	}
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->tls[0] = '\0';
	buf_free(&c->in);
	buf_free(&c->out);
}
