/*
 * qmgr_listener.c: the channel from moatd (descriptor 4).
 *
 * moatd hands over the queue-manager's end of every new session channel
 * (with the client address it accepted) and of every delivery-agent
 * channel, and a new configuration at a reload.  moatd is trusted, but its messages are still checked: a
 * malformed one is logged and dropped, with any descriptor it carried.
 * When moatd goes away the queue-manager stops.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "ipc_types.h"
#include "util/ipc.h"
#include "util/log.h"
#include "qmgr.h"

/* A passed descriptor must be a SEQPACKET socket, as every channel is. */
static int
qmgr_listener_fd_ok(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);

	if (fd < 0)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_SEQPACKET)
		return 0;
	return qmgr_set_nonblock(fd) == 0;
}

static int
qmgr_listener_session(struct ipc_frame *f)
{
	char client[QUEUE_CLIENT_MAX + 1], local[QUEUE_CLIENT_MAX + 1];
	uint32_t pid, cport, lport;
	struct ipc_rd r;

	ipc_rd_init(&r, f);
	pid = ipc_get_u32(&r);
	ipc_get_str(&r, client, sizeof(client));
	cport = ipc_get_u32(&r);
	ipc_get_str(&r, local, sizeof(local));
	lport = ipc_get_u32(&r);
	if (ipc_rd_end(&r) == -1 || client[0] == '\0' || cport > 65535 ||
	    lport > 65535 || !qmgr_listener_fd_ok(f->fd))
		return -1;
	qmgr_session_new(f->fd, (pid_t)pid, client, cport, local, lport);
	return 0;
}

static int
qmgr_listener_agent(struct ipc_frame *f)
{
	uint32_t pid, transport;
	struct ipc_rd r;

	ipc_rd_init(&r, f);
	pid = ipc_get_u32(&r);
	transport = ipc_get_u32(&r);
	if (ipc_rd_end(&r) == -1 || !qmgr_listener_fd_ok(f->fd) ||
	    (transport != MOAT_TRANSPORT_RELAY && transport != MOAT_TRANSPORT_LOCAL))
		return -1;
	qmgr_agent_new(f->fd, (pid_t)pid, transport == MOAT_TRANSPORT_LOCAL ?
	    QTRANSPORT_LOCAL : QTRANSPORT_RELAY);
	return 0;
}

/* IPC_L2Q_RELOAD: a new configuration, as a sealed memfd. */
static int
qmgr_listener_reload(struct ipc_frame *f)
{
	struct ipc_rd r;

	ipc_rd_init(&r, f);
	if (ipc_rd_end(&r) == -1 || f->fd < 0)
		return -1;
	qmgr_reload(f->fd);
	return 0;
}

static void
qmgr_listener_handle(struct ipc_frame *f)
{
	int r = -1;

	switch (f->hdr.type) {
	case IPC_L2Q_SESSION:
		r = qmgr_listener_session(f);
		break;
	case IPC_L2Q_AGENT:
		r = qmgr_listener_agent(f);
		break;
	case IPC_L2Q_RELOAD:
		r = qmgr_listener_reload(f);
		break;
	default:
		break;
	}
	if (r == -1) {
		log_warn("listener: malformed %s (type %u, %zu bytes%s): dropped",
		    ipc_type_name(f->hdr.type), f->hdr.type, f->len,
		    f->fd >= 0 ? ", with a descriptor" : "");
		if (f->fd >= 0)
			close(f->fd);
	}
}

/* Everything moatd sent since the last batch. */
void
qmgr_listener_read(int fd, short ev, void *arg)
{
	struct ipc_frame f;
	const char *why = "";
	int n;

	(void)ev; (void)arg;
	for (;;) {
		n = ipc_recv(fd, qmgr->rbuf, &f, &why);
		if (n == 1) {
			qmgr_listener_handle(&f);
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == -1 && errno == EPROTO) {
			log_warn("listener: malformed message: %s", why);
			continue;
		}
		break;
	}
	if (n == 0)
		log_info("event=listener-closed: stopping");
	else
		log_warnx("listener: receive failed; stopping");
	event_del(qmgr->parent_ev);
	qmgr->quit = 1;
}
