/*
 * accept.c: a client connects.
 *
 * moatd never reads from a client.  It checks the limits that need no
 * data (seccomp violations caused from this address, sessions in all,
 * sessions from this address), then either hands the socket to a fresh
 * smtpd-session, or writes one 421 line without waiting and closes.
 * The new session's channel to the queue-manager is a socketpair whose
 * far end goes to the queue-manager together with the addresses from
 * accept() and getsockname(), so the queue-manager knows who the client
 * is without believing the session.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "moatd.h"
#include "util/ipc.h"
#include "util/log.h"

#define ACCEPT_BURST		64	/* clients taken per wake-up and socket */
#define ACCEPT_PAUSE_MS		1000	/* out of descriptors: wait this long */

/* "addr:port" or "[addr]:port" */
static void
accept_text(char *dst, size_t dstsz, const char *addr, unsigned int port)
{
	snprintf(dst, dstsz, strchr(addr, ':') != NULL ? "[%s]:%u" : "%s:%u",
	    addr, port);
}

/* Best effort: one line, never blocking, then close without reading. */
static void
accept_refuse(const struct moatd *m, int fd, const char *status, const char *text)
{
	char line[512];
	int n;

	n = snprintf(line, sizeof(line), "421 %s %s %s\r\n", status, m->hostname,
	    text);
	if (n > 0 && (size_t)n < sizeof(line))
		(void)send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

/* Why this client may not have a session now, or NULL. */
static const char *
accept_limit(const struct moatd *m, const char *caddr, char *detail, size_t dsz)
{
	long long max = conf_num(m->cfg, CONF_SMTPD_MAX_SESSIONS);
	long long per = conf_num(m->cfg, CONF_SMTPD_CLIENT_LIMIT);
	size_t all = supervise_sessions(), mine;

	if ((long long)all >= max) {
		snprintf(detail, dsz, "sessions=%zu limit=%lld", all, max);
		return "too-many-sessions";
	}
	if ((long long)(mine = supervise_sessions_from(caddr)) >= per) {
		snprintf(detail, dsz, "sessions_from_client=%zu limit=%lld", mine, per);
		return "client-limit";
	}
	return NULL;
}

/* Start a session for the accepted socket c; c is closed here either way. */
static void
accept_session(struct moatd *m, int c, const char *caddr, unsigned int cport,
    const char *ctext)
{
	struct sockaddr_storage ls;
	socklen_t llen = sizeof(ls);
	char laddr[MOATD_ADDR_MAX];
	unsigned int lport;
	int sv[2];
	pid_t pid;

	if (getsockname(c, (struct sockaddr *)&ls, &llen) == -1) {
		log_warnx("client=%s getsockname", ctext);
		close(c);
		return;
	}
	sockets_addr((struct sockaddr *)&ls, laddr, sizeof(laddr), &lport);
	if (ipc_socketpair(sv) == -1) {
		log_warnx("client=%s socketpair", ctext);
		accept_refuse(m, c, "4.3.2", "Service not available, try again later");
		return;
	}
	pid = spawn_child(m, PROC_SESSION, c, sv[1]);
	close(sv[1]);
	if (pid == -1) {
		close(sv[0]);
		accept_refuse(m, c, "4.3.2", "Service not available, try again later");
		return;
	}
	close(c);
	supervise_add_session(pid, caddr);
	log_info("client=%s session=%ld", ctext, (long)pid);
	qchan_session(m, pid, sv[0], caddr, cport, laddr, lport);
}

/* Take one client from lfd; 0 when there is nothing more to take now. */
static int
accept_one(struct moatd *m, int lfd, int64_t now)
{
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);
	char caddr[MOATD_ADDR_MAX], ctext[MOATD_ADDR_MAX + 16], detail[96];
	const char *why;
	unsigned int cport, count;
	int c;

	if ((c = accept4(lfd, (struct sockaddr *)&ss, &slen, SOCK_CLOEXEC)) == -1) {
		switch (errno) {
		case EAGAIN:
		case EINTR:
			return errno == EINTR;
		case ECONNABORTED:
		case EPROTO:
		case EPERM:
			return 1;	/* that client is gone; others may wait */
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			/* The socket stays readable: pause or we would spin. */
			log_warnx("accept: pausing %d ms", ACCEPT_PAUSE_MS);
			m->accept_paused_until = now + ACCEPT_PAUSE_MS;
			return 0;
		default:
			log_warnx("accept");
			return 0;
		}
	}
	sockets_addr((struct sockaddr *)&ss, caddr, sizeof(caddr), &cport);
	accept_text(ctext, sizeof(ctext), caddr, cport);
	if (violation_blocked(&m->violations, caddr, now, &count)) {
		/* Its sessions keep being killed by their filter: no more. */
		log_warn("client=%s refused=violations count=%u", caddr, count);
		accept_refuse(m, c, "4.7.0",
		    "Error: too many protocol violations from your address");
		return 1;
	}
	if (!supervise_qmgr_running() || m->qmgr_chan == -1) {
		/* A session could take mail it cannot queue: send it back later. */
		log_warn("client=%s refused=queue-manager-down", ctext);
		accept_refuse(m, c, "4.3.2", "Service not available, try again later");
		return 1;
	}
	if ((why = accept_limit(m, caddr, detail, sizeof(detail))) != NULL) {
		log_warn("client=%s refused=%s %s", ctext, why, detail);
		accept_refuse(m, c, "4.7.0", "Error: too many connections");
		return 1;
	}
	accept_session(m, c, caddr, cport, ctext);
	return 1;
}

/* The listening socket lfd is readable: take what is waiting, within reason. */
void
accept_ready(struct moatd *m, int lfd, int64_t now)
{
	int i;

	for (i = 0; i < ACCEPT_BURST; i++)
		if (!accept_one(m, lfd, now))
			break;
}
