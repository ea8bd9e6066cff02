/*
 * smtp_conn.c: a non-blocking TCP connection to an SMTP server with a
 * deadline on every wait (see smtp_conn.h).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "smtp_conn.h"
#include "util/buf.h"

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

int
smtp_conn_open(struct smtp_conn *c, const struct sockaddr *sa, socklen_t salen,
    int connect_timeout_ms, int timeout_ms)
{
	struct pollfd pfd;
	socklen_t len;
	int r, soerr;

	memset(c, 0, sizeof(*c));
	c->timeout_ms = timeout_ms;
	buf_init(&c->in, SMTP_CONN_IN_MAX);
	smtp_reply_init(&c->rp);
	c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		return smtp_conn_fail(c, SMTP_CONN_LOST, strerror(errno));
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

/* Read what the server has sent into c->in; -1 on a read error. */
static int
smtp_conn_fill(struct smtp_conn *c)
{
	uint8_t tmp[SMTP_CONN_READ];
	size_t want = buf_room(&c->in);
	ssize_t n;

	if (want == 0)
		return smtp_conn_fail(c, SMTP_CONN_PROTO, "server sent too much");
	if (want > sizeof(tmp))
		want = sizeof(tmp);
	n = read(c->fd, tmp, want);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		return smtp_conn_fail(c, SMTP_CONN_LOST, strerror(errno));
	}
	if (n == 0) {
		c->eof = 1;
		return 0;
	}
	return buf_append(&c->in, tmp, (size_t)n);
}

int
smtp_conn_write(struct smtp_conn *c, const void *p, size_t n)
{
	long long deadline = smtp_conn_now_ms() + c->timeout_ms;
	const uint8_t *b = p;
	struct pollfd pfd;
	size_t off = 0;
	ssize_t w;
	int r;

	while (off < n) {
		pfd.fd = c->fd;
		pfd.events = POLLOUT;
		if (!c->eof && buf_room(&c->in) > 0)
			pfd.events |= POLLIN;
		r = poll(&pfd, 1, smtp_conn_left(deadline));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return smtp_conn_fail(c, SMTP_CONN_LOST, strerror(errno));
		if (r == 0)
			return smtp_conn_fail(c, SMTP_CONN_TIMEOUT, "timed out");
		if ((pfd.revents & POLLIN) && smtp_conn_fill(c) == -1)
			return -1;
		if (!(pfd.revents & (POLLOUT | POLLERR | POLLHUP)))
			continue;
		w = send(c->fd, b + off, n - off, MSG_NOSIGNAL);
		if (w == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w == -1)
			return smtp_conn_fail(c, SMTP_CONN_LOST, strerror(errno));
		off += (size_t)w;
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
	long long deadline = smtp_conn_now_ms() + c->timeout_ms;
	struct pollfd pfd;
	int r;

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
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		r = poll(&pfd, 1, smtp_conn_left(deadline));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			smtp_conn_fail(c, SMTP_CONN_LOST, strerror(errno));
			return NULL;
		}
		if (r == 0) {
			smtp_conn_fail(c, SMTP_CONN_TIMEOUT, "timed out");
			return NULL;
		}
		if (smtp_conn_fill(c) == -1)
			return NULL;
	}
}

const struct smtp_reply *
smtp_conn_reply_buffered(struct smtp_conn *c)
{
	enum smtp_conn_fail fail = c->fail;
	char err[sizeof(c->err)];
	const struct smtp_reply *r = NULL;

	/* Keep the original failure: it explains the lost connection. */
	memcpy(err, c->err, sizeof(err));
	while (!c->eof && buf_room(&c->in) > 0) {
		size_t before = c->in.len;

		if (smtp_conn_fill(c) == -1 || c->in.len == before)
			break;
	}
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

void
smtp_conn_close(struct smtp_conn *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	buf_free(&c->in);
}
