/*
 * qmgr_control.c: the control socket, where moatctl asks about the queue.
 *
 * moatd binds run_directory/control.sock (mode 0660, root:admin_group)
 * and hands the listening socket over as descriptor 5.  The kernel's word
 * on who connected (SO_PEERCRED, SO_PEERGROUPS) decides what the caller
 * may ask; a request it may not make is answered "permission denied".
 *
 * Answers are produced a few rows at a time, reading the database with a
 * cursor (the last message id or recipient index sent), so a long queue
 * never sits in memory and a slow reader only waits for socket room.
 *
 * IPC_C2Q_REQUEST carries the operator's commands (docs/moatctl.md).
 * Callers have a role: admin (root, the queue user, admin_group) may do
 * everything; readonly_group may list, show, stats and shape; anyone
 * else reaching the socket is refused.  Every change, and every refused
 * attempt at one, goes to the audit table and the log.  Changes to one
 * message happen in one savepoint and are committed before the answer
 * is sent; an administrator's bounce queues its DSN in the same unit as
 * the recipients it reports (invariant 2).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>

#include <grp.h>

#include "util/log.h"
#include "util/xmalloc.h"
#include "qmgr.h"
#include "qmgr_ctlproto.h"
#include "queue_dsn.h"

/* The recipients column of a listing row is cut (",...") past this. */
#define QMGR_ROW_RCPTS_MAX	(64 * 1024)
#define QMGR_PEERGROUPS_MAX	65536
/* Queue ids named in one audit log line before it says how many more. */
#define QMGR_AUDIT_LOG_IDS	20
#define QMGR_TOP_N		5
#define QMGR_ADMIN_REPLY	"returned by the administrator"

static gid_t	qmgr_ro_gid;
static int	qmgr_have_ro_gid;

/* readonly_group, resolved while /etc/group is still in reach. */
void
qmgr_control_settings(const struct conf *cfg)
{
	const char *name = conf_str(cfg, CONF_READONLY_GROUP);
	struct group *gr;

	qmgr_have_ro_gid = 0;
	if (name == NULL || name[0] == '\0')
		return;
	if ((gr = getgrnam(name)) == NULL) {
		log_info("readonly_group=%s not found: no read-only moatctl users", name);
		return;
	}
	qmgr_ro_gid = gr->gr_gid;
	qmgr_have_ro_gid = 1;
}

static void qmgr_control_io(int fd, short ev, void *arg);

static void
qmgr_control_want(struct qmgr_control *c, short what)
{
	event_del(c->ev);
	event_assign(c->ev, qmgr->base, c->fd, what | EV_PERSIST, qmgr_control_io, c);
	event_add(c->ev, NULL);
}

/* Forget the answer in progress. */
static void
qmgr_control_reset(struct qmgr_control *c)
{
	size_t i;

	for (i = c->ipre; i < c->npre; i++)
		ipc_wr_free(&c->pre[i]);
	free(c->pre);
	c->pre = NULL;
	c->npre = c->ipre = 0;
	free(c->filter);
	c->filter = NULL;
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
	qmgr_control_reset(c);
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

/* Root, the queue user and admin_group administer; readonly_group looks. */
static enum qmgr_control_role
qmgr_control_role_of(int fd, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	*uid = (uid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
	    len != sizeof(cred))
		return QC_ROLE_NONE;
	*uid = cred.uid;
	if (cred.uid == 0 || cred.uid == qmgr->uid)
		return QC_ROLE_ADMIN;
	if (qmgr->have_admin_gid && (cred.gid == qmgr->admin_gid ||
	    qmgr_control_in_groups(fd, qmgr->admin_gid)))
		return QC_ROLE_ADMIN;
	if (qmgr_have_ro_gid && (cred.gid == qmgr_ro_gid ||
	    qmgr_control_in_groups(fd, qmgr_ro_gid)))
		return QC_ROLE_READONLY;
	return QC_ROLE_NONE;
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
	enum qmgr_control_role role;
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
		/* Callers without a role are refused at their request,
		 * so that the refusal can name (and audit) the command. */
		role = qmgr_control_role_of(fd, &uid);
		if (qmgr->ncontrols >= QMGR_CONTROL_MAX) {
			log_warn("control=busy uid=%ld (%d clients already)", (long)uid,
			    QMGR_CONTROL_MAX);
			qmgr_control_refuse(fd, "too many control clients, try again");
			continue;
		}
		c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		c->uid = uid;
		c->role = role;
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
	if (s->msg.held)
		return "held";
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

	if (c->filter != NULL)
		r = queue_db_filter_next(qmgr->db, c->cursor, c->filter, qmgr_now(), &s);
	else
		r = queue_db_summary_next(qmgr->db, c->cursor, &s);
	if (r != 1)
		return r;
	c->cursor = s.msg.rowid;
	buf_init(&list, QMGR_ROW_RCPTS_MAX);
	if (qmgr_control_rcpts(s.msg.rowid, &list, lasterr, sizeof(lasterr)) == -1) {
		buf_free(&list);
		return -1;
	}
	ipc_wr_init(w, IPC_Q2C_ROW, c->reqid);
	ipc_put_u32(w, 10);
	qmgr_control_kv(w, "id", s.msg.qid);
	qmgr_control_kv_num(w, "arrival", s.msg.arrival_us / 1000000);
	qmgr_control_kv_num(w, "size", (long long)s.msg.size);
	qmgr_control_kv(w, "sender", s.msg.sender);
	qmgr_control_kv(w, "state", qmgr_control_state(&s));
	qmgr_control_kv_num(w, "nrcpt", s.pending);
	qmgr_control_kv(w, "recipients", list.len > 0 ? (const char *)list.data : "");
	qmgr_control_kv(w, "last_error", lasterr);
	qmgr_control_kv_num(w, "held", s.msg.held);
	qmgr_control_kv_num(w, "paused", s.paused);
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
	ipc_put_u32(w, 9);
	qmgr_control_kv(w, "id", s.msg.qid);
	qmgr_control_kv_num(w, "arrival", s.msg.arrival_us / 1000000);
	qmgr_control_kv_num(w, "size", (long long)s.msg.size);
	qmgr_control_kv(w, "sender", s.msg.sender);
	qmgr_control_kv(w, "client", s.msg.client);
	qmgr_control_kv(w, "helo", s.msg.helo);
	qmgr_control_kv(w, "state", qmgr_control_state(&s));
	qmgr_control_kv_num(w, "held", s.msg.held);
	qmgr_control_kv_num(w, "paused", s.paused);
	c->header_sent = 1;
	return 1;
}

/* One recipient row of SHOW; 1, 0 no more, -1 error. */
static int
qmgr_control_show_rcpt(struct qmgr_control *c, struct ipc_wr *w)
{
	char dom[QUEUE_SENDER_MAX + 1];
	struct queue_rcpt r;
	int res, paused;

	if ((res = queue_db_rcpt_next(qmgr->db, c->msg, c->cursor, &r)) != 1)
		return res;
	c->cursor = r.idx;
	queue_domain_of(r.address, dom, sizeof(dom));
	if ((paused = queue_db_paused(qmgr->db, dom)) == -1)
		return -1;
	ipc_wr_init(w, IPC_Q2C_ROW, c->reqid);
	ipc_put_u32(w, 7);
	qmgr_control_kv(w, "recipient", r.address);
	qmgr_control_kv(w, "state", queue_rcpt_state_name(r.state));
	qmgr_control_kv_num(w, "attempts", r.attempts);
	qmgr_control_kv_num(w, "next_attempt", r.next_attempt);
	qmgr_control_kv(w, "last_reply", r.last_reply);
	qmgr_control_kv(w, "relay", r.last_relay);
	qmgr_control_kv_num(w, "paused", paused);
	return 1;
}

/* One audit row; 1, 0, -1. */
static int
qmgr_control_audit_row(struct qmgr_control *c, struct ipc_wr *w)
{
	struct queue_audit a;
	struct buf ids;
	int r;

	buf_init(&ids, IPC_MAX_PAYLOAD / 2);
	if ((r = queue_db_audit_next(qmgr->db, c->cursor, &a, &ids)) != 1) {
		buf_free(&ids);
		return r;
	}
	c->cursor = a.id;
	ipc_wr_init(w, IPC_Q2C_ROW, c->reqid);
	ipc_put_u32(w, 5);
	qmgr_control_kv_num(w, "time", (long long)a.time);
	qmgr_control_kv_num(w, "uid", a.uid);
	qmgr_control_kv(w, "command", a.command);
	ipc_put_str(w, "ids");
	ipc_put_strn(w, ids.len > 0 ? (const char *)ids.data : "", ids.len);
	qmgr_control_kv(w, "result", a.result);
	buf_free(&ids);
	return 1;
}

/*
 * The next piece of a stored message: the header section (up to and
 * including the blank line) or the body after it.  The split is found
 * across chunk boundaries by counting the bytes of CRLFCRLF matched.
 */
static int
qmgr_control_data(struct qmgr_control *c, struct ipc_wr *w)
{
	static const char sep[] = "\r\n\r\n";
	struct buf chunk;
	size_t i, from = 0, to;
	int r;

	for (;;) {
		if (!c->body && c->past_header)
			return 0;
		buf_init(&chunk, IPC_DATA_CHUNK);
		if ((r = queue_db_chunk_get(qmgr->db, c->msg, (uint32_t)c->cursor,
		    &chunk)) != 1) {
			buf_free(&chunk);
			return r;
		}
		c->cursor++;
		to = chunk.len;
		if (!c->past_header) {
			for (i = 0; i < chunk.len; i++) {
				c->crlf = chunk.data[i] == (uint8_t)sep[c->crlf] ? c->crlf + 1 :
				    (chunk.data[i] == '\r' ? 1 : 0);
				if (c->crlf == 4) {
					c->past_header = 1;
					break;
				}
			}
			if (c->past_header)
				to = from = i + 1;
			if (c->body)
				to = chunk.len;
			else
				from = 0;
		}
		if (c->body && !c->past_header)
			from = to;	/* still in the header */
		if (to > from) {
			ipc_wr_init(w, IPC_Q2C_DATA, c->reqid);
			ipc_put_blob(w, chunk.data + from, to - from);
			buf_free(&chunk);
			return 1;
		}
		buf_free(&chunk);
	}
}

/* The next message of the answer in progress: a row, END or ERROR. */
static void
qmgr_control_next(struct qmgr_control *c, struct ipc_wr *w, int *last)
{
	int r;

	*last = 0;
	if (c->req == QC_ROWS) {
		*w = c->pre[c->ipre++];
		*last = c->ipre == c->npre;
		return;
	}
	if (c->req == QC_LIST)
		r = qmgr_control_list_row(c, w);
	else if (c->req == QC_AUDIT)
		r = qmgr_control_audit_row(c, w);
	else if (c->req == QC_DATA)
		r = qmgr_control_data(c, w);
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
			qmgr_control_reset(c);
			qmgr_control_want(c, EV_READ);
			return;
		}
	}
	qmgr_control_want(c, EV_WRITE);	/* more rows, next turn */
}

/*
 * Rows built in advance.
 */

/* Append a prepared message to the answer. */
static struct ipc_wr *
qmgr_control_pre(struct qmgr_control *c, uint32_t type)
{
	struct ipc_wr *w;

	c->pre = xreallocarray(c->pre, c->npre + 1, sizeof(*c->pre));
	w = &c->pre[c->npre++];
	ipc_wr_init(w, type, c->reqid);
	return w;
}

/* A row of n key/value pairs given as strings. */
static void
qmgr_control_pre_row(struct qmgr_control *c, uint32_t n, ...)
{
	struct ipc_wr *w = qmgr_control_pre(c, IPC_Q2C_ROW);
	va_list ap;
	uint32_t i;

	va_start(ap, n);
	ipc_put_u32(w, n);
	for (i = 0; i < n; i++) {
		const char *k = va_arg(ap, const char *);
		const char *v = va_arg(ap, const char *);

		qmgr_control_kv(w, k, v);
	}
	va_end(ap);
	c->rows++;
}

/* Finish a prepared answer with END and start sending it. */
static void
qmgr_control_pre_end(struct qmgr_control *c)
{
	struct ipc_wr *w = qmgr_control_pre(c, IPC_Q2C_END);

	ipc_put_u32(w, c->rows);
	c->rows = 0;
	c->req = QC_ROWS;
}

/* The answer is one error. */
static void
qmgr_control_pre_error(struct qmgr_control *c, const char *text)
{
	size_t i;

	for (i = 0; i < c->npre; i++)
		ipc_wr_free(&c->pre[i]);
	c->npre = 0;
	c->rows = 0;
	ipc_put_str(qmgr_control_pre(c, IPC_Q2C_ERROR), text);
	c->req = QC_ROWS;
}

/*
 * The audit trail: the table and the log.  ids is the comma-separated
 * list; the log names the first QMGR_AUDIT_LOG_IDS of them.
 */
static void
qmgr_control_audit(struct qmgr_control *c, const char *cmd, const char *ids,
    const char *result)
{
	struct queue_audit a;
	const char *p = ids;
	int i;

	memset(&a, 0, sizeof(a));
	a.time = qmgr_now();
	a.uid = c->uid == (uid_t)-1 ? -1 : (long long)c->uid;
	strlcpy_m(a.command, cmd, sizeof(a.command));
	strlcpy_m(a.result, result, sizeof(a.result));
	if (queue_db_audit_add(qmgr->db, &a, ids) == -1)
		qmgr_db_trouble("audit", 0);
	for (i = 0; p != NULL && i < QMGR_AUDIT_LOG_IDS; i++)
		if ((p = strchr(p, ',')) != NULL)
			p++;
	if (strcmp(result, "refused") == 0)
		log_warn("control=refused uid=%lld cmd=%s", a.uid, cmd);
	else
		log_info("control=audit uid=%lld cmd=%s ids=%.*s%s", a.uid, cmd,
		    p == NULL ? (int)strlen(ids) : (int)(p - ids - 1), ids,
		    p == NULL ? "" : ",...");
}

/* Changes reach the disk before the caller hears they were made. */
static int
qmgr_control_commit(void)
{
	if (queue_db_commit(qmgr->db) == -1) {
		qmgr_db_trouble("commit of an operator's change", 1);
		return -1;
	}
	/* Operators' changes are rare: their sync is waited for here. */
	qmgr_sync_wait();
	return 0;
}

enum qmgr_ctl_action { QA_HOLD, QA_RELEASE, QA_DELETE, QA_RETRY, QA_BOUNCE };

static const char *const qmgr_ctl_action_names[] = {
	"hold", "release", "delete", "retry", "bounce",
};

/* An administrator's bounce: every waiting recipient fails, one DSN. */
static int
qmgr_control_bounce_msg(const struct queue_msg *m, char *bqid, int *removed)
{
	struct qmgr_bounced *b = NULL;
	struct queue_rcpt r;
	char (*addr)[QUEUE_SENDER_MAX + 1] = NULL;
	size_t n = 0, alloc = 0, i;
	int64_t after = -1;
	uint64_t bsize = 0;
	int res, ret = -1;

	bqid[0] = '\0';
	while ((res = queue_db_rcpt_next(qmgr->db, m->rowid, after, &r)) == 1) {
		after = r.idx;
		if (r.state != QRCPT_QUEUED && r.state != QRCPT_DEFERRED)
			continue;
		r.state = QRCPT_BOUNCED;
		strlcpy_m(r.last_reply, "550 5.0.0 " QMGR_ADMIN_REPLY, sizeof(r.last_reply));
		if (queue_db_rcpt_update(qmgr->db, &r) == -1)
			goto out;
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 8;
			addr = xreallocarray(addr, alloc, sizeof(*addr));
		}
		strlcpy_m(addr[n++], r.address, sizeof(addr[0]));
	}
	if (res == -1)
		goto out;
	b = xcalloc(n + 1, sizeof(*b));
	for (i = 0; i < n; i++) {
		b[i].address = addr[i];
		b[i].status = "5.0.0";
		b[i].diagnostic = QMGR_ADMIN_REPLY;
	}
	if (n > 0 && queue_dsn_wanted(m->sender) &&
	    qmgr_bounce_create(m, b, n, bqid, &bsize) == -1)
		goto out;
	if (qmgr_msg_remove_if_done(m, removed) == -1)
		goto out;
	ret = 0;
out:
	free(b);
	free(addr);
	return ret;
}

/*
 * One action on one message, in one savepoint.  *result says what
 * happened (or would, in a dry run); 1 when something changed.
 */
static int
qmgr_control_act(struct qmgr_control *c, enum qmgr_ctl_action act,
    const struct queue_summary *s, int dry, const char **result)
{
	static const char *const done[] = { "held", "released", "deleted", "retried",
	    "bounced" };
	static const char *const would[] = { "would hold", "would release",
	    "would delete", "would retry", "would bounce" };
	char bqid[QUEUE_ID_LEN + 1] = "";
	int r = 0, removed = 0;

	/* A message with an agent is the agent's until its results are in. */
	if ((act == QA_DELETE || act == QA_BOUNCE) && s->active > 0) {
		*result = "skipped: being delivered (hold it, then try again)";
		return 0;
	}
	if ((act == QA_HOLD && s->msg.held) || (act == QA_RELEASE && !s->msg.held)) {
		*result = act == QA_HOLD ? "already held" : "not held";
		return 0;
	}
	if (act == QA_RETRY && s->pending == s->active) {
		*result = "nothing waiting";
		return 0;
	}
	*result = dry ? would[act] : done[act];
	if (dry)
		return 1;
	if (queue_db_sp_begin(qmgr->db) == -1)
		goto fail;
	switch (act) {
	case QA_HOLD:
	case QA_RELEASE:
		r = queue_db_msg_set_held(qmgr->db, s->msg.rowid, act == QA_HOLD);
		break;
	case QA_DELETE:
		r = queue_db_msg_delete(qmgr->db, s->msg.rowid);
		break;
	case QA_RETRY:
		r = queue_db_msg_retry(qmgr->db, s->msg.rowid, qmgr_now());
		break;
	case QA_BOUNCE:
		r = qmgr_control_bounce_msg(&s->msg, bqid, &removed);
		break;
	}
	if (r == -1) {
		queue_db_sp_rollback(qmgr->db);
		goto fail;
	}
	if (queue_db_sp_release(qmgr->db) == -1)
		goto fail;
	if (act == QA_DELETE)
		log_info("id=%s status=deleted by=%ld", s->msg.qid, (long)c->uid);
	else if (act == QA_BOUNCE) {
		log_info("id=%s status=bounced by=%ld (" QMGR_ADMIN_REPLY ")",
		    s->msg.qid, (long)c->uid);
		if (bqid[0] != '\0')
			log_info("id=%s bounce_id=%s status=bounce-queued", s->msg.qid, bqid);
		if (removed)
			log_info("id=%s status=removed", s->msg.qid);
	} else
		log_info("id=%s status=%s by=%ld", s->msg.qid, done[act], (long)c->uid);
	qmgr->sched_dirty = 1;
	return 1;
fail:
	qmgr_db_trouble("operator's change", 0);
	*result = "failed: queue database error";
	return 0;
}

/* The summary of the message with queue id qid; 1, 0, -1. */
static int
qmgr_control_find(const char *qid, struct queue_summary *s)
{
	struct queue_msg m;
	int r;

	if (!queue_id_valid(qid))
		return 0;
	if ((r = queue_db_msg_find(qmgr->db, qid, &m)) != 1)
		return r;
	if (m.state != QMSG_QUEUED)
		return 0;
	if ((r = queue_db_summary_next(qmgr->db, m.rowid - 1, s)) != 1)
		return r;
	return s->msg.rowid == m.rowid;
}

/* Build a filter from the request's filter keys; -1 for a bad one. */
static int
qmgr_control_filter(const struct qmgr_ctl_req *q, struct queue_filter *f, int *any)
{
	uint32_t i;

	queue_filter_init(f);
	*any = 0;
	for (i = 0; i < q->n; i++) {
		if (strcmp(q->key[i], "id") == 0 || strcmp(q->key[i], "all") == 0 ||
		    strcmp(q->key[i], "dry_run") == 0)
			continue;
		if (queue_filter_set(f, q->key[i], q->val[i]) == -1)
			return -1;
		*any = 1;
	}
	return 0;
}

/* hold, release, delete, retry, bounce: by ids, or a filter with all. */
static void
qmgr_control_change(struct qmgr_control *c, enum qmgr_ctl_action act,
    const struct qmgr_ctl_req *q)
{
	const char *name = qmgr_ctl_action_names[act], *result;
	int dry = qmgr_ctlproto_get(q, "dry_run") != NULL;
	int all = qmgr_ctlproto_get(q, "all") != NULL, any, r, nid = 0;
	struct queue_filter f;
	struct queue_summary s;
	struct buf ids;
	int64_t cursor = 0, *rowids = NULL;
	size_t nrow = 0, alloc = 0, k;
	uint32_t i;

	if (qmgr_control_filter(q, &f, &any) == -1) {
		qmgr_control_pre_error(c, "usage: bad filter (see moatctl queue --help)");
		return;
	}
	for (i = 0; i < q->n; i++)
		nid += strcmp(q->key[i], "id") == 0;
	if ((nid > 0) == all || (nid > 0 && any)) {
		qmgr_control_pre_error(c, "usage: give message ids, or a filter with --all");
		return;
	}
	buf_init(&ids, SIZE_MAX / 2);
	/* A filter is resolved to its messages first, so that changes made
	 * on the way do not move the cursor. */
	if (all) {
		while ((r = queue_db_filter_next(qmgr->db, cursor, &f, qmgr_now(), &s)) == 1) {
			cursor = s.msg.rowid;
			if (nrow == alloc) {
				alloc = alloc ? alloc * 2 : 64;
				rowids = xreallocarray(rowids, alloc, sizeof(*rowids));
			}
			rowids[nrow++] = s.msg.rowid;
		}
		if (r == -1)
			goto dberr;
		for (k = 0; k < nrow; k++) {
			if ((r = queue_db_summary_next(qmgr->db, rowids[k] - 1, &s)) == -1)
				goto dberr;
			if (r == 0 || s.msg.rowid != rowids[k])
				continue;
			if (qmgr_control_act(c, act, &s, dry, &result) == 1) {
				if (ids.len > 0)
					buf_append_str(&ids, ",");
				buf_append_str(&ids, s.msg.qid);
			}
			qmgr_control_pre_row(c, 2, "id", s.msg.qid, "result", result);
		}
	} else {
		for (i = 0; i < q->n; i++) {
			if (strcmp(q->key[i], "id") != 0)
				continue;
			if ((r = qmgr_control_find(q->val[i], &s)) == -1)
				goto dberr;
			if (r == 0) {
				qmgr_control_pre_row(c, 2, "id", q->val[i], "result",
				    "no such message");
				continue;
			}
			if (qmgr_control_act(c, act, &s, dry, &result) == 1) {
				if (ids.len > 0)
					buf_append_str(&ids, ",");
				buf_append_str(&ids, s.msg.qid);
			}
			qmgr_control_pre_row(c, 2, "id", s.msg.qid, "result", result);
		}
	}
	buf_append(&ids, "", 1);
	if (!dry) {
		qmgr_control_audit(c, name, (const char *)ids.data, "ok");
		if (qmgr_control_commit() == -1) {
			qmgr_control_pre_error(c, "queue database error: the change is lost");
			goto out;
		}
	}
	qmgr_control_pre_end(c);
	goto out;
dberr:
	log_warn("control: queue database: %s", queue_db_errmsg(qmgr->db));
	qmgr_control_pre_error(c, "queue database error");
out:
	free(rowids);
	buf_free(&ids);
}

/* pause and resume one destination domain. */
static void
qmgr_control_pause(struct qmgr_control *c, int pause, const struct qmgr_ctl_req *q)
{
	const char *d = qmgr_ctlproto_get(q, "domain");
	char dom[QUEUE_SENDER_MAX + 1];
	int r;

	if (d == NULL || q->n != 1 || !queue_domain_valid(d)) {
		qmgr_control_pre_error(c, "usage: give one destination domain");
		return;
	}
	queue_domain_lower(d, dom, sizeof(dom));
	if ((r = queue_db_pause(qmgr->db, dom, pause, qmgr_now(),
	    (long long)c->uid)) == -1) {
		qmgr_db_trouble(pause ? "pause" : "resume", 0);
		qmgr_control_pre_error(c, "queue database error");
		return;
	}
	qmgr_control_audit(c, pause ? "pause" : "resume", dom, "ok");
	if (qmgr_control_commit() == -1) {
		qmgr_control_pre_error(c, "queue database error: the change is lost");
		return;
	}
	log_info("control=%s domain=%s uid=%ld", pause ? "pause" : "resume", dom,
	    (long)c->uid);
	qmgr->sched_dirty = 1;
	qmgr_control_pre_row(c, 2, "domain", dom, "result", pause ?
	    (r ? "paused" : "already paused") : (r ? "resumed" : "not paused"));
	qmgr_control_pre_end(c);
}

/* One stats row: metric, label, value. */
static void
qmgr_control_stat(struct qmgr_control *c, const char *metric, const char *label,
    long long v)
{
	char s[32];

	snprintf(s, sizeof(s), "%lld", v);
	qmgr_control_pre_row(c, 3, "metric", metric, "label", label, "value", s);
}

static void
qmgr_control_traffic(struct qmgr_control *c, const char *window,
    const struct queue_traffic *t)
{
	char m[48];

	snprintf(m, sizeof(m), "%s", window);
	qmgr_control_stat(c, m, "messages_in", t->msgs_in);
	qmgr_control_stat(c, m, "bytes_in", t->bytes_in);
	qmgr_control_stat(c, m, "messages_out", t->msgs_out);
	qmgr_control_stat(c, m, "bytes_out", t->bytes_out);
	qmgr_control_stat(c, m, "sent", t->sent);
	qmgr_control_stat(c, m, "deferred", t->deferred);
	qmgr_control_stat(c, m, "bounced", t->bounced);
}

static void
qmgr_control_stat_hop(const char *hop, unsigned int conns, void *arg)
{
	qmgr_control_stat(arg, "connections", hop, conns);
}

/* stats: one row per number (docs/moatctl.md lists them). */
static void
qmgr_control_stats(struct qmgr_control *c)
{
	struct queue_top top[QMGR_TOP_N];
	struct queue_stats qs;
	struct queue_paused p;
	char after[QUEUE_SENDER_MAX + 1] = "";
	int i, n, r;

	if (queue_db_stats(qmgr->db, qmgr_now(), &qs) == -1)
		goto dberr;
	for (i = QVIEW_QUEUED; i <= QVIEW_HELD; i++)
		qmgr_control_stat(c, "queue", queue_view_state_name(i), qs.state[i]);
	qmgr_control_stat(c, "oldest_age", "", qs.oldest_age);
	qmgr_control_traffic(c, "last_minute", &qs.minute);
	qmgr_control_traffic(c, "last_hour", &qs.hour);
	qmgr_control_traffic(c, "total", &qs.total);
	if (queue_db_top(qmgr->db, 0, QMGR_TOP_N, top, &n) == -1)
		goto dberr;
	for (i = 0; i < n; i++)
		qmgr_control_stat(c, "top_destination", top[i].key, top[i].count);
	if (queue_db_top(qmgr->db, 1, QMGR_TOP_N, top, &n) == -1)
		goto dberr;
	for (i = 0; i < n; i++)
		qmgr_control_stat(c, "top_deferral", top[i].key, top[i].count);
	while ((r = queue_db_paused_next(qmgr->db, after, &p)) == 1) {
		qmgr_control_stat(c, "paused", p.domain, p.since);
		strlcpy_m(after, p.domain, sizeof(after));
	}
	if (r == -1)
		goto dberr;
	/* Since the queue-manager started: relay jobs, and those that went
	 * over a connection kept open from the job before. */
	qmgr_control_stat(c, "delivery", "relay_jobs", (long long)qmgr->jobs_relay);
	qmgr_control_stat(c, "delivery", "reused_connections",
	    (long long)qmgr->jobs_reused);
	qmgr_hops_walk(&qmgr->hops, qmgr_control_stat_hop, c);
	qmgr_control_pre_end(c);
	return;
dberr:
	log_warn("control: queue database: %s", queue_db_errmsg(qmgr->db));
	qmgr_control_pre_error(c, "queue database error");
}

/* qshape's table being gathered: domains in order of appearance. */
struct qmgr_shape {
	struct qmgr_shape_row {
		char		*domain;
		long long	 n[QUEUE_SHAPE_BUCKETS + 1];	/* [0]: total */
	}		*v;
	size_t		 n, alloc;
	long long	 total[QUEUE_SHAPE_BUCKETS + 1];
};

static void
qmgr_control_shape_add(const char *domain, int64_t age, void *arg)
{
	struct qmgr_shape *sh = arg;
	int b = queue_shape_bucket(age) + 1;
	size_t i;

	for (i = 0; i < sh->n; i++)
		if (strcmp(sh->v[i].domain, domain) == 0)
			break;
	if (i == sh->n) {
		if (sh->n == sh->alloc) {
			sh->alloc = sh->alloc ? sh->alloc * 2 : 32;
			sh->v = xreallocarray(sh->v, sh->alloc, sizeof(*sh->v));
		}
		memset(&sh->v[i], 0, sizeof(sh->v[i]));
		sh->v[i].domain = xstrdup(domain);
		sh->n++;
	}
	sh->v[i].n[0]++;
	sh->v[i].n[b]++;
	sh->total[0]++;
	sh->total[b]++;
}

static int
qmgr_control_shape_cmp(const void *a, const void *b)
{
	const struct qmgr_shape_row *x = a, *y = b;

	if (x->n[0] != y->n[0])
		return x->n[0] < y->n[0] ? 1 : -1;
	return strcmp(x->domain, y->domain);
}

static void
qmgr_control_shape_row(struct qmgr_control *c, const char *domain, const long long *n)
{
	struct ipc_wr *w = qmgr_control_pre(c, IPC_Q2C_ROW);
	int i;

	ipc_put_u32(w, QUEUE_SHAPE_BUCKETS + 2);
	qmgr_control_kv(w, "domain", domain);
	qmgr_control_kv_num(w, "T", n[0]);
	for (i = 0; i < QUEUE_SHAPE_BUCKETS; i++)
		qmgr_control_kv_num(w, queue_shape_labels[i], n[i + 1]);
	c->rows++;
}

/* shape: TOTAL first, then each destination, biggest first. */
static void
qmgr_control_shape(struct qmgr_control *c)
{
	struct qmgr_shape sh;
	size_t i;

	memset(&sh, 0, sizeof(sh));
	if (queue_db_shape(qmgr->db, qmgr_now(), qmgr_control_shape_add, &sh) == -1) {
		log_warn("control: queue database: %s", queue_db_errmsg(qmgr->db));
		qmgr_control_pre_error(c, "queue database error");
	} else {
		qsort(sh.v, sh.n, sizeof(*sh.v), qmgr_control_shape_cmp);
		qmgr_control_shape_row(c, "TOTAL", sh.total);
		for (i = 0; i < sh.n; i++)
			qmgr_control_shape_row(c, sh.v[i].domain, sh.v[i].n);
		qmgr_control_pre_end(c);
	}
	for (i = 0; i < sh.n; i++)
		free(sh.v[i].domain);
	free(sh.v);
}

/* The commands and who may use them. */
static const struct {
	const char		*name;
	enum qmgr_control_role	 need;
	int			 changes;	/* audited */
} qmgr_ctl_cmds[] = {
	{ "list", QC_ROLE_READONLY, 0 }, { "stats", QC_ROLE_READONLY, 0 },
	{ "shape", QC_ROLE_READONLY, 0 }, { "show", QC_ROLE_READONLY, 0 },
	{ "headers", QC_ROLE_ADMIN, 0 }, { "body", QC_ROLE_ADMIN, 0 },
	{ "audit", QC_ROLE_ADMIN, 0 },
	{ "hold", QC_ROLE_ADMIN, 1 }, { "release", QC_ROLE_ADMIN, 1 },
	{ "delete", QC_ROLE_ADMIN, 1 }, { "retry", QC_ROLE_ADMIN, 1 },
	{ "bounce", QC_ROLE_ADMIN, 1 }, { "pause", QC_ROLE_ADMIN, 1 },
	{ "resume", QC_ROLE_ADMIN, 1 },
};

/* Refuse a command the caller's role does not allow. */
static void
qmgr_control_refused(struct qmgr_control *c, const char *cmd, int changes)
{
	if (changes) {
		qmgr_control_audit(c, cmd, "", "refused");
		(void)qmgr_control_commit();
	} else
		log_warn("control=refused uid=%ld cmd=%s", c->uid == (uid_t)-1 ? -1L :
		    (long)c->uid, cmd);
	qmgr_control_pre_error(c, "permission denied");
}

/* headers or body of one message: streamed in chunks. */
static void
qmgr_control_content(struct qmgr_control *c, int body, const struct qmgr_ctl_req *q)
{
	const char *id = qmgr_ctlproto_get(q, "id");
	struct queue_msg m;
	int r;

	if (id == NULL || q->n != 1 || !queue_id_valid(id) ||
	    (r = queue_db_msg_find(qmgr->db, id, &m)) == 0 || (r == 1 && m.state != QMSG_QUEUED)) {
		qmgr_control_pre_error(c, "no such message");
		return;
	}
	if (r == -1) {
		qmgr_control_pre_error(c, "queue database error");
		return;
	}
	log_info("id=%s control=%s uid=%ld", m.qid, body ? "body" : "headers", (long)c->uid);
	c->req = QC_DATA;
	c->msg = m.rowid;
	c->cursor = 0;
	c->body = body;
	c->crlf = 2;	/* a message with no header at all starts with CRLF */
	c->past_header = 0;
}

/* IPC_C2Q_REQUEST: check the role, then run the command. */
static int
qmgr_control_command(struct qmgr_control *c, const struct ipc_frame *f)
{
	struct qmgr_ctl_req q;
	const char *id;
	size_t k;
	int any;

	if (qmgr_ctlproto_request(f, &q) == -1) {
		qmgr_ctlproto_request_free(&q);
		return -1;
	}
	for (k = 0; k < sizeof(qmgr_ctl_cmds) / sizeof(qmgr_ctl_cmds[0]); k++)
		if (strcmp(qmgr_ctl_cmds[k].name, q.cmd) == 0)
			break;
	if (k == sizeof(qmgr_ctl_cmds) / sizeof(qmgr_ctl_cmds[0])) {
		qmgr_control_pre_error(c, "usage: unknown command");
	} else if (c->role < qmgr_ctl_cmds[k].need) {
		qmgr_control_refused(c, q.cmd, qmgr_ctl_cmds[k].changes);
	} else if (qmgr_ctl_cmds[k].changes && qmgr->db_broken) {
		/* Until recovery, nothing written would last. */
		qmgr_control_pre_error(c, "queue database error: try again shortly");
	} else if (strcmp(q.cmd, "list") == 0) {
		c->filter = xcalloc(1, sizeof(*c->filter));
		if (qmgr_control_filter(&q, c->filter, &any) == -1 || q.n > 6)
			qmgr_control_pre_error(c, "usage: bad filter (see moatctl queue --help)");
		else {
			c->req = QC_LIST;
			c->cursor = 0;
		}
	} else if (strcmp(q.cmd, "show") == 0) {
		id = qmgr_ctlproto_get(&q, "id");
		c->req = QC_SHOW;
		c->cursor = -1;
		c->msg = 0;
		if (id != NULL) {
			struct queue_msg m;

			if (queue_id_valid(id) && queue_db_msg_find(qmgr->db, id, &m) == 1 &&
			    m.state == QMSG_QUEUED)
				c->msg = m.rowid;
		}
	} else if (strcmp(q.cmd, "stats") == 0) {
		qmgr_control_stats(c);
	} else if (strcmp(q.cmd, "shape") == 0) {
		qmgr_control_shape(c);
	} else if (strcmp(q.cmd, "audit") == 0) {
		c->req = QC_AUDIT;
		c->cursor = 0;
	} else if (strcmp(q.cmd, "headers") == 0 || strcmp(q.cmd, "body") == 0) {
		qmgr_control_content(c, q.cmd[0] == 'b', &q);
	} else if (strcmp(q.cmd, "pause") == 0 || strcmp(q.cmd, "resume") == 0) {
		qmgr_control_pause(c, q.cmd[0] == 'p', &q);
	} else {
		for (k = 0; k < sizeof(qmgr_ctl_action_names) / sizeof(char *); k++)
			if (strcmp(qmgr_ctl_action_names[k], q.cmd) == 0)
				qmgr_control_change(c, (enum qmgr_ctl_action)k, &q);
	}
	qmgr_ctlproto_request_free(&q);
	return 0;
}

/* One request; -1 when the client must be dropped. */
static int
qmgr_control_request(struct qmgr_control *c, const struct ipc_frame *f)
{
	char id[MOAT_QID_MAX + 1];
	struct queue_msg m;

	c->reqid = f->hdr.reqid;
	c->rows = 0;
	c->header_sent = 0;
	if (f->hdr.type == IPC_C2Q_REQUEST)
		return qmgr_control_command(c, f);
	if (c->role == QC_ROLE_NONE && (f->hdr.type == IPC_C2Q_LIST ||
	    f->hdr.type == IPC_C2Q_SHOW)) {
		qmgr_control_refused(c, f->hdr.type == IPC_C2Q_LIST ? "list" : "show", 0);
		return 0;
	}
	if (f->hdr.type == IPC_C2Q_LIST && f->len == 0) {
		c->req = QC_LIST;
		c->cursor = 0;
		return 0;
	}
	if (f->hdr.type != IPC_C2Q_SHOW)
		return -1;
	if (qmgr_ctlproto_show(f, id, sizeof(id)) == -1)
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
