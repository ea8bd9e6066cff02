/*
 * smtpd_session.c: main() of smtpd-session, one process per SMTP client.
 *
 * moatd execs a fresh copy for every accepted connection with
 *   fd 3  the configuration (sealed memfd)
 *   fd 4  the client socket
 *   fd 5  a SOCK_SEQPACKET channel to the queue-manager
 *   fd 6  a SOCK_SEQPACKET channel to the keyholder (when
 *         smtpd_tls_cert_files is set)
 *   fd 7  the seccomp program of sandbox.c, built once by moatd
 * (common/proc.h).  Everything that needs a privilege or a file happens
 * here, in this order: arguments, configuration, the addresses of the
 * connection and the TLS mode of its listener, the certificate chains
 * (read fresh by every session, so a reload needs no restart), descriptor
 * settings, priv_drop() into the empty chroot with no new processes and
 * no file writes, then the seccomp filter of sandbox.c (as moatd built it,
 * from fd 7).  Only then is a
 * byte read from the client.  The process serves this one connection and
 * exits.
 *
 * Built twice: smtpd-session with TLS (smtp_tls.c), and, with
 * MOAT_SESSION_PLAIN defined, smtpd-session-plain without any TLS code,
 * which moatd starts while smtpd_tls_cert_files is empty.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "proc.h"
#include "sandbox.h"
#include "smtp_session.h"
#include "util/conf.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/privdrop.h"
#include "util/xmalloc.h"

/* Describe one end of the connection as "[addr]:port" for the logs. */
static void
smtpd_session_desc(const struct sockaddr *sa, char *addr, size_t addrsz,
    unsigned int *port, char *desc, size_t descsz)
{
	unsigned int p = 0;

	if (sockaddr_numeric(sa, addr, addrsz, &p) == -1) {
		strlcpy_m(addr, "unknown", addrsz);
		strlcpy_m(desc, "unknown", descsz);
	} else
		hostport_format(sa, desc, descsz);
	if (port != NULL)
		*port = p;
}

/* Who the client is: its numeric address decides relaying and bare LF. */
static void
smtpd_session_peer(struct smtp_session *s)
{
	struct sockaddr_storage ss;
	char local[SMTP_ADDR_STR_MAX];
	socklen_t len;

	len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getpeername(s->client_fd, (struct sockaddr *)&ss, &len) == -1)
		log_fatal("getpeername on descriptor %d: %s", s->client_fd, strerror(errno));
	smtpd_session_desc((struct sockaddr *)&ss, s->client_addr,
	    sizeof(s->client_addr), &s->client_port, s->client_desc,
	    sizeof(s->client_desc));
	s->bare_lf = netlist_match(conf_nets(s->cfg, CONF_BARE_LF_NETWORKS),
	    (struct sockaddr *)&ss);
	len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(s->client_fd, (struct sockaddr *)&ss, &len) == -1)
		log_fatal("getsockname on descriptor %d: %s", s->client_fd, strerror(errno));
	smtpd_session_desc((struct sockaddr *)&ss, local, sizeof(local), NULL,
	    s->local_desc, sizeof(s->local_desc));
	s->tls_mode = tls_listen_mode(s->cfg, (struct sockaddr *)&ss);
}

/*
 * The client socket becomes non-blocking so that writes can time out; the
 * queue channel stays blocking but a send gives up after smtpd_timeout.
 * SIGPIPE is ignored: a vanished client is a write error, not a death.
 */
static void
smtpd_session_fds(struct smtp_session *s)
{
	struct timeval tv;
	int fl;

	if ((fl = fcntl(s->client_fd, F_GETFL)) == -1 ||
	    fcntl(s->client_fd, F_SETFL, fl | O_NONBLOCK) == -1)
		log_fatal("client descriptor: %s", strerror(errno));
	tv.tv_sec = s->timeout_ms / 1000;
	tv.tv_usec = 0;
	if (setsockopt(s->queue_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1)
		log_fatal("queue-manager descriptor %d: %s", s->queue_fd, strerror(errno));
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		log_fatal("signal SIGPIPE: %s", strerror(errno));
}

/* Start-up in the fixed order of the file comment, then one session. */
int
main(int argc, char **argv)
{
	struct smtp_session s;
	struct priv_spec spec;
	const char *cfgname;
	struct conf *cfg;
	char err[256];
	int debug;

	log_init("smtpd-session", 0);
	if (priv_parse_child_args(argc, argv, &spec, &debug, &cfgname, err,
	    sizeof(err)) == -1)
		log_fatal("%s", err);
	log_set_debug(debug);
	if (conf_load_fd(MOAT_FD_CONFIG, cfgname, &cfg, stderr) != 0)
		log_fatal("configuration on descriptor %d is not valid", MOAT_FD_CONFIG);
	smtp_session_init(&s, cfg, MOAT_FD_SESSION_CLIENT, MOAT_FD_SESSION_QUEUE);
	smtpd_session_peer(&s);
#ifdef MOAT_SESSION_PLAIN
	(void)close(MOAT_FD_SESSION_KEYS);
#else
	smtp_tls_setup(&s, MOAT_FD_SESSION_KEYS);
#endif
	smtpd_session_fds(&s);
	close(MOAT_FD_CONFIG);
	/* sigaction is not in the sandbox: the SIGTERM handler goes in now. */
	if (smtp_session_signals() == -1)
		log_fatal("SIGTERM handler: %s", strerror(errno));

	spec.no_new_procs = 1;
	spec.no_file_writes = 1;
	if (priv_drop(&spec, err, sizeof(err)) == -1)
		log_fatal("dropping privileges: %s", err);
	if (smtpd_sandbox_apply(MOAT_FD_SESSION_FILTER, err, sizeof(err)) == -1)
		log_fatal("sandbox: %s", err);

	smtp_session_run(&s);
	return 0;
}
