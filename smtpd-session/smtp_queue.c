/*
 * smtp_queue.c: the session's side of the queue-manager channel.
 *
 * One message at a time walks IPC_S2Q_BEGIN -> IPC_S2Q_DATA* ->
 * IPC_S2Q_COMMIT (or IPC_S2Q_ABORT).  The queue-manager answers BEGIN and
 * COMMIT, and may send IPC_Q2S_FAIL at any time to say the open message
 * is gone.  Everything it sends is checked here before the session uses
 * it: the type must be one expected now, every field within its cap, the
 * payload consumed exactly, queue ids made of upper-case hex digits and
 * reply texts of printable ASCII, since they go to the client verbatim.
 * Anything else marks the channel broken; the session then answers 451
 * and closes.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "smtp_session.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define SMTP_QUEUE_ENH_MAX	16	/* "5.123.456" with room to spare */

/* Give up on the channel: log why, once. */
__attribute__((format(printf, 2, 3))) static enum smtp_queue_answer
smtp_queue_broken(struct smtp_session *s, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (s->qstate != SMTP_QUEUE_BROKEN) {
		if (s->qid[0] != '\0')
			log_warn("id=%s client=%s queue-manager channel broken: %s",
			    s->qid, s->client_addr, why);
		else
			log_warn("client=%s queue-manager channel broken: %s",
			    s->client_addr, why);
	}
	s->qstate = SMTP_QUEUE_BROKEN;
	return SMTP_QUEUE_ANSWER_BROKEN;
}

/* Send a finished message and free it. */
static int
smtp_queue_send(struct smtp_session *s, struct ipc_wr *w, int put_failed)
{
	int r = -1;

	if (put_failed)
		smtp_queue_broken(s, "%s does not fit in one message",
		    ipc_type_name(w->type));
	else if (ipc_send(s->queue_fd, w, -1) == -1)
		smtp_queue_broken(s, "send %s: %s", ipc_type_name(w->type),
		    errno == EAGAIN ? "timed out" : strerror(errno));
	else
		r = 0;
	ipc_wr_free(w);
	return r;
}

/* 16 upper-case hex digits today; any length up to the cap is accepted. */
static int
smtp_queue_valid_qid(const char *q)
{
	size_t i;

	for (i = 0; q[i] != '\0'; i++)
		if (!((q[i] >= '0' && q[i] <= '9') || (q[i] >= 'A' && q[i] <= 'F')))
			return 0;
	return i > 0;
}

/* "4.3.0": class digit matching the code, then two numbers of 1-3 digits. */
static int
smtp_queue_valid_enh(const char *e, unsigned int code)
{
	size_t i = 0;
	int part, digits;

	if (e[0] != (char)('0' + code / 100) || e[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; e[i] >= '0' && e[i] <= '9'; i++)
			digits++;
		if (digits < 1 || digits > 3)
			return 0;
		if (part == 0 && e[i++] != '.')
			return 0;
	}
	return e[i] == '\0';
}

static int
smtp_queue_printable(const char *t)
{
	for (; *t != '\0'; t++)
		if ((unsigned char)*t < 0x20 || (unsigned char)*t > 0x7e)
			return 0;
	return 1;
}

/* IPC_Q2S_FAIL: keep its reply for the client, once it has been checked. */
static enum smtp_queue_answer
smtp_queue_fail(struct smtp_session *s, struct ipc_rd *rd)
{
	char enh[SMTP_QUEUE_ENH_MAX + 1], text[MOAT_TEXT_MAX + 1];
	uint32_t code;

	code = ipc_get_u32(rd);
	ipc_get_str(rd, enh, sizeof(enh));
	ipc_get_str(rd, text, sizeof(text));
	if (ipc_rd_end(rd) == -1)
		return smtp_queue_broken(s, "malformed IPC_Q2S_FAIL");
	if (code < 400 || code > 599 || !smtp_queue_valid_enh(enh, code) ||
	    !smtp_queue_printable(text))
		return smtp_queue_broken(s, "IPC_Q2S_FAIL with an invalid reply");
	snprintf(s->qfail, sizeof(s->qfail), "%u %s %s", code, enh, text);
	s->qstate = SMTP_QUEUE_FAILED;
	return SMTP_QUEUE_ANSWER_FAIL;
}

/* Receive one message; the channel is known to be readable. */
static enum smtp_queue_answer
smtp_queue_recv(struct smtp_session *s, uint32_t ok_type)
{
	char qid[MOAT_QID_MAX + 1];
	struct ipc_frame f;
	struct ipc_rd rd;
	const char *why = "";
	int r;

	r = ipc_recv(s->queue_fd, s->ipcbuf, &f, &why);
	if (r == 0)
		return smtp_queue_broken(s, "closed by the queue-manager");
	if (r == -1)
		return smtp_queue_broken(s, "receive: %s",
		    errno == EPROTO ? why : strerror(errno));
	if (f.fd != -1) {
		close(f.fd);
		return smtp_queue_broken(s, "unexpected descriptor with %s",
		    ipc_type_name(f.hdr.type));
	}
	ipc_rd_init(&rd, &f);
	if (f.hdr.type == IPC_Q2S_FAIL)
		return smtp_queue_fail(s, &rd);
	if (ok_type == IPC_NONE || f.hdr.type != ok_type)
		return smtp_queue_broken(s, "unexpected %s (type %u)",
		    ipc_type_name(f.hdr.type), f.hdr.type);
	ipc_get_str(&rd, qid, sizeof(qid));
	if (ipc_rd_end(&rd) == -1 || !smtp_queue_valid_qid(qid))
		return smtp_queue_broken(s, "malformed %s", ipc_type_name(ok_type));
	if (ok_type == IPC_Q2S_BEGIN_OK)
		strlcpy_m(s->qid, qid, sizeof(s->qid));
	else if (strcmp(qid, s->qid) != 0)
		return smtp_queue_broken(s, "%s for another message (%s)",
		    ipc_type_name(ok_type), qid);
	return SMTP_QUEUE_ANSWER_OK;
}

/* Wait, at most smtpd_timeout, for the answer to BEGIN or COMMIT. */
static enum smtp_queue_answer
smtp_queue_wait(struct smtp_session *s, uint32_t ok_type)
{
	struct pollfd pfd;
	int r;

	pfd.fd = s->queue_fd;
	pfd.events = POLLIN;
	do {
		r = poll(&pfd, 1, s->timeout_ms);
	} while (r == -1 && errno == EINTR);
	if (r == -1)
		return smtp_queue_broken(s, "poll: %s", strerror(errno));
	if (r == 0)
		return smtp_queue_broken(s, "no answer to %s within %d s",
		    ok_type == IPC_Q2S_BEGIN_OK ? "IPC_S2Q_BEGIN" : "IPC_S2Q_COMMIT",
		    s->timeout_ms / 1000);
	return smtp_queue_recv(s, ok_type);
}

/* IPC_S2Q_BEGIN with the envelope and its DSN parameters; the answer
 * brings the queue id. */
enum smtp_queue_answer
smtp_queue_begin(struct smtp_session *s)
{
	enum smtp_queue_answer a;
	const char *orcpt;
	uint32_t notify;
	struct ipc_wr w;
	int bad = 0;
	size_t i;

	s->qid[0] = '\0';
	s->qfail[0] = '\0';
	ipc_wr_init(&w, IPC_S2Q_BEGIN, ++s->reqid);
	bad |= ipc_put_str(&w, s->helo);
	bad |= ipc_put_str(&w, s->sender);
	bad |= ipc_put_u32(&w, (uint32_t)s->body);
	bad |= ipc_put_u64(&w, s->size_declared);
	bad |= ipc_put_u32(&w, s->dsn_ret);
	bad |= ipc_put_str(&w, s->dsn_envid);
	bad |= ipc_put_u32(&w, (uint32_t)s->nrcpt);
	for (i = 0; i < s->nrcpt; i++) {
		smtp_session_rcpt_dsn(s, i, &notify, &orcpt);
		bad |= ipc_put_str(&w, s->rcpts[i]);
		bad |= ipc_put_u32(&w, notify);
		bad |= ipc_put_str(&w, orcpt);
	}
	if (smtp_queue_send(s, &w, bad != 0) == -1)
		return SMTP_QUEUE_ANSWER_BROKEN;
	a = smtp_queue_wait(s, IPC_Q2S_BEGIN_OK);
	if (a == SMTP_QUEUE_ANSWER_OK) {
		s->qstate = SMTP_QUEUE_OPEN;
		s->chunklen = 0;
		s->qbytes = 0;
	}
	return a;
}

/* Send what the chunk holds as one IPC_S2Q_DATA, built in place. */
static void
smtp_queue_flush(struct smtp_session *s)
{
	size_t len;

	if (s->chunklen == 0 || s->qstate != SMTP_QUEUE_OPEN)
		return;
	if ((len = ipc_blob_finish(s->chunk, IPC_S2Q_DATA, s->reqid,
	    s->chunklen)) == 0)
		smtp_queue_broken(s, "%s does not fit in one message",
		    ipc_type_name(IPC_S2Q_DATA));
	else if (ipc_send_raw(s->queue_fd, s->chunk, len, -1) == -1)
		smtp_queue_broken(s, "send %s: %s", ipc_type_name(IPC_S2Q_DATA),
		    errno == EAGAIN ? "timed out" : strerror(errno));
	else
		s->qbytes += s->chunklen;
	s->chunklen = 0;
}

void
smtp_queue_data(struct smtp_session *s, const uint8_t *p, size_t n)
{
	size_t k;

	while (n > 0 && s->qstate == SMTP_QUEUE_OPEN) {
		k = IPC_DATA_CHUNK - s->chunklen;
		if (k > n)
			k = n;
		memcpy(s->chunk + IPC_BLOB_HDR_LEN + s->chunklen, p, k);
		s->chunklen += k;
		p += k;
		n -= k;
		if (s->chunklen == IPC_DATA_CHUNK)
			smtp_queue_flush(s);
	}
}

/* The rest of the data, then IPC_S2Q_COMMIT; 250 may follow only an OK. */
enum smtp_queue_answer
smtp_queue_commit(struct smtp_session *s)
{
	enum smtp_queue_answer a;
	struct ipc_wr w;
	int bad;

	smtp_queue_flush(s);
	if (s->qstate == SMTP_QUEUE_FAILED)
		return SMTP_QUEUE_ANSWER_FAIL;
	if (s->qstate != SMTP_QUEUE_OPEN)
		return SMTP_QUEUE_ANSWER_BROKEN;
	ipc_wr_init(&w, IPC_S2Q_COMMIT, s->reqid);
	bad = ipc_put_u64(&w, s->qbytes);
	if (smtp_queue_send(s, &w, bad != 0) == -1)
		return SMTP_QUEUE_ANSWER_BROKEN;
	a = smtp_queue_wait(s, IPC_Q2S_COMMIT_OK);
	if (a != SMTP_QUEUE_ANSWER_BROKEN)
		s->qstate = SMTP_QUEUE_IDLE;
	return a;
}

/* Tell the queue-manager to forget the open message, if there is one. */
void
smtp_queue_abort(struct smtp_session *s)
{
	struct ipc_wr w;

	if (s->qstate == SMTP_QUEUE_OPEN) {
		ipc_wr_init(&w, IPC_S2Q_ABORT, s->reqid);
		if (smtp_queue_send(s, &w, 0) == -1)
			return;
	}
	if (s->qstate != SMTP_QUEUE_BROKEN)
		s->qstate = SMTP_QUEUE_IDLE;
	s->chunklen = 0;
}

void
smtp_queue_unsolicited(struct smtp_session *s)
{
	/* Only a FAIL may come unasked; smtp_queue_recv refuses the rest. */
	(void)smtp_queue_recv(s, IPC_NONE);
}
