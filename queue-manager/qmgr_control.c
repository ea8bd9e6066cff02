/*
 * qmgr_control.c: the control socket, where moatctl asks about the queue.
 *
 * moatd binds run_directory/control.sock (mode 0660, root:admin_group)
 * and hands the listening socket over as descriptor 5.  The kernel's word
 * on who connected (SO_PEERCRED, SO_PEERGROUPS) decides: root, the queue
 * user and members of admin_group are served, anyone else gets
 * "permission denied".
 *
 * Answers are produced a few rows at a time, reading the database with a
 * cursor (the last message id or recipient index sent), so a long queue
 * never sits in memory and a slow reader only waits for socket room.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>

#include "util/log.h"
#include "util/xmalloc.h"
#include "qmgr.h"

/* The recipients column of a listing row is cut (",...") past this. */
#define QMGR_ROW_RCPTS_MAX	(64 * 1024)
#define QMGR_PEERGROUPS_MAX	65536

static void qmgr_control_io(int fd, short ev, void *arg);

static void
qmgr_control_want(struct qmgr_control *c, short what)
{
	event_del(c->ev);
	event_assign(c->ev, qmgr->base, c->fd, what | EV_PERSIST, qmgr_control_io, c);
	event_add(c->ev, NULL);
}

static void
qmgr_control_free(struct qmgr_control *c)
{
	TAILQ_REMOVE(&qmgr->controls, c, entry);
	qmgr->ncontrols--;
	event_free(c->ev);
	close(c->fd);
	if (c->out_pending)
		ipc_wr_free(&c->out);
	free(c);
}

void
qmgr_control_close_all(void)
{
	while (!TAILQ_EMPTY(&qmgr->controls))
		qmgr_control_free(TAILQ_FIRST(&qmgr->controls));
}

/* Is gid among the caller's supplementary groups? */
static int
qmgr_control_in_groups(int fd, gid_t gid)
{
	socklen_t len = 64 * sizeof(gid_t);
	gid_t *groups = NULL;
	size_t i;
	int found = 0;

	for (;;) {
		groups = xreallocarray(groups, len / sizeof(gid_t) + 1, sizeof(gid_t));
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
			break;
		if (errno != ERANGE || len / sizeof(gid_t) > QMGR_PEERGROUPS_MAX) {
			free(groups);
			return 0;
		}
	}
	for (i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == gid)
			found = 1;
	free(groups);
	return found;
}

/* Root, the queue user and admin_group may ask; *uid names the caller. */
static int
qmgr_control_allowed(int fd, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	*uid = (uid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
	    len != sizeof(cred))
		return 0;
	*uid = cred.uid;
	if (cred.uid == 0 || cred.uid == qmgr->uid)
		return 1;
	if (!qmgr->have_admin_gid)
		return 0;
	return cred.gid == qmgr->admin_gid || qmgr_control_in_groups(fd, qmgr->admin_gid);
}

/*
 * Answer a caller we will not serve, then close.  A request already
 * queued is read first: closing a socket with unread data would reset
 * the connection and the caller could lose the answer.
 */
static void
qmgr_control_refuse(int fd, const char *text)
{
	struct ipc_wr w;
	struct msghdr mh;
	struct iovec iov;
	char junk[256];
	int i;

	ipc_wr_init(&w, IPC_Q2C_ERROR, 0);
	ipc_put_str(&w, text);
	(void)qmgr_send(fd, &w);
	ipc_wr_free(&w);
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = junk;
	iov.iov_len = sizeof(junk);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	for (i = 0; i < 16 && recvmsg(fd, &mh, MSG_DONTWAIT) > 0; i++)
		;
	close(fd);
}

/* New moatctl connections: check who it is, then wait for a request. */
void
qmgr_control_accept(int lfd, short ev, void *arg)
{
	struct qmgr_control *c;
	uid_t uid;
	int fd;

	(void)ev; (void)arg;
	for (;;) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warnx("control: accept");
			return;
		}
		if (!qmgr_control_allowed(fd, &uid)) {
			log_warn("control=refused uid=%ld", uid == (uid_t)-1 ? -1L : (long)uid);
			qmgr_control_refuse(fd, "permission denied");
			continue;
		}
		if (qmgr->ncontrols >= QMGR_CONTROL_MAX) {
			log_warn("control=busy uid=%ld (%d clients already)", (long)uid,
			    QMGR_CONTROL_MAX);
			qmgr_control_refuse(fd, "too many control clients, try again");
			continue;
		}
		c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		c->uid = uid;
		if ((c->ev = event_new(qmgr->base, fd, EV_READ | EV_PERSIST,
		    qmgr_control_io, c)) == NULL || event_add(c->ev, NULL) == -1)
			log_panic("control event: out of memory");
		TAILQ_INSERT_TAIL(&qmgr->controls, c, entry);
		qmgr->ncontrols++;
		log_debug("control=accepted uid=%ld", (long)uid);
	}
}

static void
qmgr_control_kv(struct ipc_wr *w, const char *k, const char *v)
{
	ipc_put_str(w, k);
	ipc_put_str(w, v);
}

static void
qmgr_control_kv_num(struct ipc_wr *w, const char *k, long long v)
{
	char s[32];

	snprintf(s, sizeof(s), "%lld", v);
	qmgr_control_kv(w, k, s);
}

static const char *
qmgr_control_state(const struct queue_summary *s)
{
	if (s->active > 0)
		return "active";
	if (s->deferred > 0)
		return "deferred";
	return "queued";
}

/*
 * The pending recipients of a message, comma-separated and cut with
 * ",..." to fit a row, and the reply of the first deferred one.
 */
static int
qmgr_control_rcpts(int64_t msg, struct buf *list, char *err, size_t errsz)
{
	struct queue_rcpt r;
	int64_t after = -1;
	int cut = 0, res;

	err[0] = '\0';
	while ((res = queue_db_rcpt_next(qmgr->db, msg, after, &r)) == 1) {
		after = r.idx;
		if (r.state == QRCPT_SENT || r.state == QRCPT_BOUNCED)
			continue;
		if (r.state == QRCPT_DEFERRED && err[0] == '\0')
			strlcpy_m(err, r.last_reply, errsz);
		if (cut)
			continue;
		if (list->len + strlen(r.address) + 5 > QMGR_ROW_RCPTS_MAX) {
			buf_append_str(list, ",...");
			cut = 1;
			continue;
		}
		if (list->len > 0)
			buf_append_str(list, ",");
		buf_append_str(list, r.address);
	}
	return res;
}

/* One listing row; 1 built, 0 no more messages, -1 error. */
static int
qmgr_control_list_row(struct qmgr_control *c, struct ipc_wr *w)
{
	struct queue_summary s;
	char lasterr[QUEUE_TEXT_MAX + 1];
	struct buf list;
	int r;

	if ((r = queue_db_summary_next(qmgr->db, c->cursor, &s)) != 1)
		return r;
	c->cursor = s.msg.rowid;
	buf_init(&list, QMGR_ROW_RCPTS_MAX);
	if (qmgr_control_rcpts(s.msg.rowid, &list, lasterr, sizeof(lasterr)) == -1) {
		buf_free(&list);
		return -1;
	}
	ipc_wr_init(w, IPC_Q2C_ROW, c->reqid);
	ipc_put_u32(w, 8);
	qmgr_control_kv(w, "id", s.msg.qid);
	qmgr_control_kv_num(w, "arrival", s.msg.arrival_us / 1000000);
	qmgr_control_kv_num(w, "size", (long long)s.msg.size);
	qmgr_control_kv(w, "sender", s.msg.sender);
	qmgr_control_kv(w, "state", qmgr_control_state(&s));
	qmgr_control_kv_num(w, "nrcpt", s.pending);
	qmgr_control_kv(w, "recipients", list.len > 0 ? (const char *)list.data : "");
	qmgr_control_kv(w, "last_error", lasterr);
	buf_free(&list);
	return 1;
}

/* The message row of SHOW. */
static int
qmgr_control_show_msg(struct qmgr_control *c, struct ipc_wr *w)
{
	struct queue_summary s;
	int r;

	if (c->msg == 0)
		return 0;
	/* The summary of the message itself: the one after rowid - 1. */
	if ((r = queue_db_summary_next(qmgr->db, c->msg - 1, &s)) != 1 || s.msg.rowid != c->msg)
		return r == -1 ? -1 : 0;
	ipc_wr_init(w, IPC_Q2C_ROW, c->reqid);
	ipc_put_u32(w, 7);
	qmgr_control_kv(w, "id", s.msg.qid);
	qmgr_control_kv_num(w, "arrival", s.msg.arrival_us / 1000000);
	qmgr_control_kv_num(w, "size", (long long)s.msg.size);
	qmgr_control_kv(w, "sender", s.msg.sender);
	qmgr_control_kv(w, "client", s.msg.client);
	qmgr_control_kv(w, "helo", s.msg.helo);
	qmgr_control_kv(w, "state", qmgr_control_state(&s));
	c->header_sent = 1;
	return 1;
}

/* One recipient row of SHOW; 1, 0 no more, -1 error. */
static int
qmgr_control_show_rcpt(struct qmgr_control *c, struct ipc_wr *w)
{
	struct queue_rcpt r;
	int res;

	if ((res = queue_db_rcpt_next(qmgr->db, c->msg, c->cursor, &r)) != 1)
		return res;
	c->cursor = r.idx;
	ipc_wr_init(w, IPC_Q2C_ROW, c->reqid);
	ipc_put_u32(w, 6);
	qmgr_control_kv(w, "recipient", r.address);
	qmgr_control_kv(w, "state", queue_rcpt_state_name(r.state));
	qmgr_control_kv_num(w, "attempts", r.attempts);
	qmgr_control_kv_num(w, "next_attempt", r.next_attempt);
	qmgr_control_kv(w, "last_reply", r.last_reply);
	qmgr_control_kv(w, "relay", r.last_relay);
	return 1;
}

/* The next message of the answer in progress: a row, END or ERROR. */
static void
qmgr_control_next(struct qmgr_control *c, struct ipc_wr *w, int *last)
{
	int r;

	*last = 0;
	if (c->req == QC_LIST)
		r = qmgr_control_list_row(c, w);
	else if (!c->header_sent)
		r = qmgr_control_show_msg(c, w);
	else
		r = qmgr_control_show_rcpt(c, w);
	if (r == 1) {
		c->rows++;
		return;
	}
	*last = 1;
	if (r == -1) {
		log_warn("control: queue database: %s", queue_db_errmsg(qmgr->db));
		ipc_wr_init(w, IPC_Q2C_ERROR, c->reqid);
		ipc_put_str(w, "queue database error");
	} else if (c->req == QC_SHOW && !c->header_sent) {
		ipc_wr_init(w, IPC_Q2C_ERROR, c->reqid);
		ipc_put_str(w, "no such message");
	} else {
		ipc_wr_init(w, IPC_Q2C_END, c->reqid);
		ipc_put_u32(w, c->rows);
	}
}

/* Send what fits; come back when the socket has room. */
static void
qmgr_control_pump(struct qmgr_control *c)
{
	int i, last = 0;

	for (i = 0; i < QMGR_CONTROL_BATCH; i++) {
		if (!c->out_pending) {
			qmgr_control_next(c, &c->out, &last);
			c->out_pending = 1 + last;	/* 2: the final message */
		}
		if (qmgr_send(c->fd, &c->out) == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				qmgr_control_want(c, EV_WRITE);
				return;
			}
			qmgr_control_free(c);
			return;
		}
		last = c->out_pending == 2;
		ipc_wr_free(&c->out);
		c->out_pending = 0;
		if (last) {
			c->req = QC_NONE;
			qmgr_control_want(c, EV_READ);
			return;
		}
	}
	qmgr_control_want(c, EV_WRITE);	/* more rows, next turn */
}

/* One request; -1 when the client must be dropped. */
static int
qmgr_control_request(struct qmgr_control *c, const struct ipc_frame *f)
{
	char id[MOAT_QID_MAX + 1];
	struct queue_msg m;
	struct ipc_rd r;

	c->reqid = f->hdr.reqid;
	c->rows = 0;
	c->header_sent = 0;
	if (f->hdr.type == IPC_C2Q_LIST && f->len == 0) {
		c->req = QC_LIST;
		c->cursor = 0;
		return 0;
	}
	if (f->hdr.type != IPC_C2Q_SHOW)
		return -1;
	ipc_rd_init(&r, f);
	if (ipc_get_str(&r, id, sizeof(id)) == -1 || ipc_rd_end(&r) == -1)
		return -1;
	c->req = QC_SHOW;
	c->cursor = -1;
	c->msg = 0;
	if (queue_id_valid(id) && queue_db_msg_find(qmgr->db, id, &m) == 1 &&
	    m.state == QMSG_QUEUED)
		c->msg = m.rowid;
	return 0;
}

/* One request, then the answer is pumped out. */
static void
qmgr_control_read(struct qmgr_control *c)
{
	struct ipc_frame f;
	const char *why = "";
	int n;

	n = ipc_recv(c->fd, qmgr->rbuf, &f, &why);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n == 1 && f.fd >= 0)
		close(f.fd);
	if (n != 1 || f.fd >= 0 || qmgr_control_request(c, &f) == -1) {
		if (n == 1 || (n == -1 && errno == EPROTO))
			log_warn("control uid=%ld: malformed request, closed", (long)c->uid);
		qmgr_control_free(c);
		return;
	}
	qmgr_control_pump(c);
}

static void
qmgr_control_io(int fd, short ev, void *arg)
{
	struct qmgr_control *c = arg;

	(void)fd;
	if (c->req != QC_NONE && (ev & EV_WRITE))
		qmgr_control_pump(c);
	else if (c->req == QC_NONE && (ev & EV_READ))
		qmgr_control_read(c);
}
