/*
 * qchan.c: moatd's channel to the queue-manager.
 *
 * moatd tells the queue-manager about every new session and delivery
 * agent (IPC_L2Q_SESSION, IPC_L2Q_AGENT) and hands it the far end of the
 * socketpair that connects the two; at a reload it sends the new
 * configuration memfd (IPC_L2Q_RELOAD).  The channel is non-blocking: a
 * queue-manager that is still opening its database, or one that hangs,
 * must never stop moatd from accepting and reaping.  Messages that do
 * not fit are kept, in order, with their descriptors, and sent when the
 * socket becomes writable again (the event loop polls for POLLOUT while
 * qchan_pending() is non-zero).  When the queue-manager goes away the
 * queue is dropped: those sessions and agents fail on their own.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc_types.h"
#include "moatd.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* A backlog this long means the queue-manager has stopped reading. */
#define QCHAN_MAX_PENDING	4096

struct qchan_msg {
	uint8_t	*msg;
	size_t	 len;
	int	 fd;
};

static struct qchan_msg *qchan_q;
static size_t qchan_head, qchan_n, qchan_alloc;

int
qchan_pending(void)
{
	return qchan_n > qchan_head;
}

static void
qchan_drop_all(void)
{
	size_t i;

	for (i = qchan_head; i < qchan_n; i++) {
		free(qchan_q[i].msg);
		if (qchan_q[i].fd >= 0)
			close(qchan_q[i].fd);
	}
	qchan_head = qchan_n = 0;
}

/* A new channel; our end is non-blocking, *child_end goes to fd 4 of the child. */
int
qchan_open(struct moatd *m, int *child_end)
{
	int sv[2];

	if (ipc_socketpair(sv) == -1) {
		log_warnx("child=queue-manager socketpair");
		return -1;
	}
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) == -1) {
		log_warnx("child=queue-manager channel O_NONBLOCK");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	qchan_drop_all();
	m->qmgr_chan = sv[0];
	*child_end = sv[1];
	return 0;
}

void
qchan_close(struct moatd *m)
{
	qchan_drop_all();
	if (m->qmgr_chan != -1)
		close(m->qmgr_chan);
	m->qmgr_chan = -1;
}

/* Send what is queued until the socket is full. */
void
qchan_flush(struct moatd *m)
{
	while (qchan_pending() && m->qmgr_chan != -1) {
		struct qchan_msg *q = &qchan_q[qchan_head];

		if (ipc_send_raw(m->qmgr_chan, q->msg, q->len, q->fd) == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
				return;
			log_warnx("child=queue-manager channel send");
			if (errno == EPIPE || errno == ECONNRESET) {
				/* The event loop sees the hang-up and acts on it. */
				qchan_drop_all();
				return;
			}
		}
		free(q->msg);
		if (q->fd >= 0)
			close(q->fd);
		qchan_head++;
	}
	if (!qchan_pending())
		qchan_head = qchan_n = 0;
}

/* Queue a message (copied) and the descriptor (now ours) and try to send. */
void
qchan_queue(struct moatd *m, const uint8_t *msg, size_t len, int fd)
{
	struct qchan_msg *q;

	if (m->qmgr_chan == -1 || qchan_n - qchan_head >= QCHAN_MAX_PENDING) {
		log_warn("child=queue-manager channel %s: message dropped",
		    m->qmgr_chan == -1 ? "down" : "backlog full");
		if (fd >= 0)
			close(fd);
		return;
	}
	if (qchan_head > 0 && qchan_n == qchan_alloc) {
		memmove(qchan_q, qchan_q + qchan_head,
		    (qchan_n - qchan_head) * sizeof(*qchan_q));
		qchan_n -= qchan_head;
		qchan_head = 0;
	}
	if (qchan_n == qchan_alloc) {
		qchan_alloc = qchan_alloc ? qchan_alloc * 2 : 16;
		qchan_q = xreallocarray(qchan_q, qchan_alloc, sizeof(*qchan_q));
	}
	q = &qchan_q[qchan_n++];
	q->msg = xmalloc(len);
	memcpy(q->msg, msg, len);
	q->len = len;
	q->fd = fd;
	qchan_flush(m);
}

/* Finish w and queue it with fd; returns -1 if it could not be built. */
static int
qchan_send_wr(struct moatd *m, struct ipc_wr *w, int fd)
{
	const uint8_t *msg;
	size_t len;

	if ((msg = ipc_wr_finish(w, &len)) == NULL) {
		log_warn("child=queue-manager message too large");
		ipc_wr_free(w);
		close(fd);
		return -1;
	}
	qchan_queue(m, msg, len, fd);
	ipc_wr_free(w);
	return 0;
}

/* IPC_L2Q_SESSION: a new session and the queue-manager's end of its channel. */
int
qchan_session(struct moatd *m, pid_t pid, int qfd, const char *caddr,
    unsigned int cport, const char *laddr, unsigned int lport)
{
	struct ipc_wr w;

	ipc_wr_init(&w, IPC_L2Q_SESSION, 0);
	if (ipc_put_u32(&w, (uint32_t)pid) == -1 || ipc_put_str(&w, caddr) == -1 ||
	    ipc_put_u32(&w, cport) == -1 || ipc_put_str(&w, laddr) == -1 ||
	    ipc_put_u32(&w, lport) == -1) {
		log_warn("child=queue-manager cannot build session message");
		ipc_wr_free(&w);
		close(qfd);
		return -1;
	}
	return qchan_send_wr(m, &w, qfd);
}

/* IPC_L2Q_AGENT: a new delivery agent and the queue-manager's end of its channel. */
int
qchan_agent(struct moatd *m, pid_t pid, enum proc_role role, int qfd)
{
	struct ipc_wr w;

	ipc_wr_init(&w, IPC_L2Q_AGENT, 0);
	if (ipc_put_u32(&w, (uint32_t)pid) == -1 ||
	    ipc_put_u32(&w, role == PROC_LOCAL ? MOAT_TRANSPORT_LOCAL :
	    MOAT_TRANSPORT_RELAY) == -1) {
		log_warn("child=queue-manager cannot build agent message");
		ipc_wr_free(&w);
		close(qfd);
		return -1;
	}
	return qchan_send_wr(m, &w, qfd);
}

/* IPC_L2Q_RELOAD: a copy of the new configuration memfd. */
int
qchan_reload(struct moatd *m, int cfg_fd)
{
	struct ipc_wr w;
	int fd;

	if (m->qmgr_chan == -1)
		return -1;	/* it starts later, with the new memfd */
	if ((fd = fcntl(cfg_fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		log_warnx("child=queue-manager reload: dup");
		return -1;
	}
	ipc_wr_init(&w, IPC_L2Q_RELOAD, 0);
	return qchan_send_wr(m, &w, fd);
}
