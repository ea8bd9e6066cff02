/*
 * delivery_agent.c: the delivery agent, one binary for two transports.
 *
 *   delivery-agent -T relay|local -u UID -g GID [-t CHROOT] [-d] [-n NAME]
 *
 * moatd starts it with "-T TRANSPORT" as the first two arguments (this
 * program's own option: which of the two jobs it does); everything after
 * them is the common child argument list of proc.h, parsed by
 * priv_parse_child_args().
 *
 *   relay  role "delivery-agent": relay_user, chroot run_directory/empty,
 *          SMTP/LMTP client to the next hop (smtp_client.c), routing by
 *          DNS (dns.c), STARTTLS (tls_client.c)
 *   local  role "local-delivery": local_user, chroot run_directory/maildir,
 *          maildir delivery (local.c)
 *
 * Descriptors: 3 the configuration memfd, 4 the SEQPACKET channel to the
 * queue-manager (proc.h).  After the privilege drop and the seccomp filter
 * it takes one job at a time from the queue-manager, delivers it, and
 * answers with the results (job.h), until the channel closes (exit 0).
 * Between jobs the relay may keep the last connection open (reported in
 * IPC_D2Q_DONE); it waits for the next job at most
 * relay_connection_idle_time, and when that passes, or the server closes
 * the connection first, it says QUIT and IPC_D2Q_UNCACHED.  A
 * malformed message from the queue-manager ends the process (exit 1):
 * moatd logs it and starts a fresh agent.
 *
 * SIGTERM (moatd stopping, or restarting agents after a reload) is a
 * graceful stop: the job in hand is finished and answered, then the
 * agent tells the queue-manager IPC_D2Q_STOP and waits for it to close
 * the channel, doing any job that crossed the STOP on the way, and exits
 * 0.  SIGTERM stays blocked while a job runs, so no delivery is cut by
 * it; it is let in only while the agent waits for a job, and its handler
 * sends the STOP itself, so a signal that lands just before the wait
 * cannot be missed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dns.h"
#include "ipc_types.h"
#include "job.h"
#include "local.h"
#include "proc.h"
#include "sandbox.h"
#include "selfaddr.h"
#include "smtp_client.h"
#include "tls_client.h"
#include "util/conf.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/privdrop.h"
#include "util/xmalloc.h"
#ifdef MOAT_TEST_HOOKS
#include "test_hooks.h"
#endif

struct delivery_agent {
	int			 transport;	/* MOAT_TRANSPORT_* */
	const char		*role;
	char			 hostname[MOAT_HELO_MAX + 1];
	struct smtp_client_opts	 relay;
	struct selfaddr		 self;
	struct smtp_client	*client;	/* relay only */
	struct local_opts	 local;
};

/* IPC_D2Q_STOP, built before the signal can come. */
static uint8_t delivery_agent_stop_msg[IPC_HDR_LEN];
static size_t delivery_agent_stop_len;
static volatile sig_atomic_t delivery_agent_stopping;

/*
 * SIGTERM, let in only while waiting for a job: say STOP once.  sendmsg
 * is async-signal-safe; a failure means the queue-manager is gone, and
 * the wait then ends on its own.
 */
static void
delivery_agent_sigterm(int sig)
{
	int saved = errno;

	(void)sig;
	if (!delivery_agent_stopping) {
		delivery_agent_stopping = 1;
		(void)ipc_send_raw(MOAT_FD_AGENT_QUEUE, delivery_agent_stop_msg,
		    delivery_agent_stop_len, -1);
	}
	errno = saved;
}

/* Before the sandbox: the STOP message, the handler, SIGTERM blocked. */
static void
delivery_agent_signals(sigset_t *term)
{
	struct sigaction sa;
	struct ipc_wr w;
	const uint8_t *msg;
	size_t len;

	ipc_wr_init(&w, IPC_D2Q_STOP, 0);
	if ((msg = ipc_wr_finish(&w, &len)) == NULL ||
	    len > sizeof(delivery_agent_stop_msg))
		log_fatal("cannot build the stop message");
	memcpy(delivery_agent_stop_msg, msg, len);
	delivery_agent_stop_len = len;
	ipc_wr_free(&w);
	sigemptyset(term);
	sigaddset(term, SIGTERM);
	if (sigprocmask(SIG_BLOCK, term, NULL) == -1)
		log_fatal("sigprocmask: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = delivery_agent_sigterm;
	sigfillset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;	/* the wait goes on: the answer is EOF */
	if (sigaction(SIGTERM, &sa, NULL) == -1)
		log_fatal("sigaction SIGTERM: %s", strerror(errno));
}

/* "-T relay|local" in argv[1..2]; the transport, or -1. */
static int
delivery_agent_transport(int argc, char **argv)
{
	if (argc < 3 || strcmp(argv[1], "-T") != 0)
		return -1;
	if (strcmp(argv[2], "relay") == 0)
		return MOAT_TRANSPORT_RELAY;
	if (strcmp(argv[2], "local") == 0)
		return MOAT_TRANSPORT_LOCAL;
	return -1;
}

/*
 * The relay's resources that need the file system or the kernel's view
 * of the host: DNS resolvers, the TLS context (CA file, policy table),
 * and moat's own listening addresses (getifaddrs).  Before the sandbox.
 */
static void
delivery_agent_relay_setup(struct delivery_agent *da, const struct conf *cfg)
{
	char err[256];

	da->relay.reuse_limit =
	    (unsigned int)conf_num(cfg, CONF_RELAY_CONNECTION_REUSE_LIMIT);
	da->relay.idle_ms =
	    (int)conf_num(cfg, CONF_RELAY_CONNECTION_IDLE_TIME) * 1000;
	if (dns_init(cfg, err, sizeof(err)) == -1)
		log_fatal("dns: %s", err);
	da->relay.resolve = dns_resolve;
	if ((da->relay.tls = tls_client_new(cfg, err, sizeof(err))) == NULL)
		log_fatal("tls: %s", err);
	if (selfaddr_init(&da->self, cfg, err, sizeof(err)) == -1)
		log_fatal("own addresses: %s", err);
	da->relay.self = &da->self;
}

/* Read the settings this process uses; fd 3 is closed afterwards. */
static void
delivery_agent_config(struct delivery_agent *da, const char *config_name)
{
	struct conf *cfg;

	if (conf_load_fd(MOAT_FD_CONFIG, config_name, &cfg, stderr) != 0)
		log_fatal("event=config status=invalid");
	/* conf_myhostname may ask the kernel (uname): before the sandbox. */
	strlcpy_m(da->hostname, conf_myhostname(cfg), sizeof(da->hostname));
	da->relay.helo_name = da->hostname;
	da->relay.connect_timeout_ms =
	    (int)conf_num(cfg, CONF_RELAY_CONNECT_TIMEOUT) * 1000;
	da->relay.timeout_ms = (int)conf_num(cfg, CONF_RELAY_TIMEOUT) * 1000;
	da->local.hostname = da->hostname;
	if (da->transport == MOAT_TRANSPORT_RELAY)
		delivery_agent_relay_setup(da, cfg);
	conf_free(cfg);
	close(MOAT_FD_CONFIG);
}

/* The channel must block: every exchange with the queue-manager waits. */
static void
delivery_agent_channel(void)
{
	int fl;

	if ((fl = fcntl(MOAT_FD_AGENT_QUEUE, F_GETFL)) == -1)
		log_fatal("no queue-manager channel on fd %d: %s",
		    MOAT_FD_AGENT_QUEUE, strerror(errno));
	if ((fl & O_NONBLOCK) &&
	    fcntl(MOAT_FD_AGENT_QUEUE, F_SETFL, fl & ~O_NONBLOCK) == -1)
		log_fatal("fcntl: %s", strerror(errno));
}

/*
 * Drop privileges and install the transport's seccomp table.  The relay
 * also gets RLIMIT_FSIZE 0 (priv_drop skips it while the log is a file).
 */
static void
delivery_agent_confine(const struct delivery_agent *da, struct priv_spec *spec)
{
	char err[256];

	spec->no_new_procs = 1;
	spec->no_file_writes = da->transport == MOAT_TRANSPORT_RELAY;
	if (priv_drop(spec, err, sizeof(err)) == -1)
		log_fatal("privilege drop: %s", err);
	if (delivery_sandbox_apply(da->transport, da->role, err, sizeof(err)) == -1)
		log_fatal("sandbox: %s", err);
}

/*
 * With an idle connection kept: wait until a job comes (1), or the idle
 * time passes or the server closes the connection (0: it is closed and
 * the queue-manager told).  -1 when telling it failed.
 */
static int
delivery_agent_idle(struct delivery_agent *da, struct job *j)
{
	struct pollfd pfd[2];
	int left, r;

	while ((left = smtp_client_idle_left(da->client)) > 0) {
		pfd[0].fd = MOAT_FD_AGENT_QUEUE;
		pfd[0].events = POLLIN;
		pfd[1].fd = smtp_client_cached_fd(da->client);
		pfd[1].events = POLLIN;
		pfd[0].revents = pfd[1].revents = 0;
		r = poll(pfd, 2, left);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			log_fatal("poll: %s", strerror(errno));
		if (pfd[0].revents != 0)
			return 1;
		if (pfd[1].revents != 0) {
			smtp_client_uncache(da->client, "closed");
			return job_uncached(j) == -1 ? -1 : 0;
		}
	}
	smtp_client_uncache(da->client, "idle");
	return job_uncached(j) == -1 ? -1 : 0;
}

/* The next job: 1, 0 when the channel closed, -1 on an error (j->err). */
static int
delivery_agent_next(struct delivery_agent *da, struct job *j,
    const sigset_t *term)
{
	int r = 0;

	/* A SIGTERM that came during the last job is handled here. */
	(void)sigprocmask(SIG_UNBLOCK, term, NULL);
	if (da->client != NULL && smtp_client_cached(da->client) != NULL)
		r = delivery_agent_idle(da, j);
	if (r != -1)
		r = job_recv(j);
	(void)sigprocmask(SIG_BLOCK, term, NULL);
	return r;
}

/* Serve jobs until the queue-manager closes the channel. */
static int
delivery_agent_loop(struct delivery_agent *da, const sigset_t *term)
{
	struct job j;
	int r;

	job_init(&j, MOAT_FD_AGENT_QUEUE);
	if (da->transport == MOAT_TRANSPORT_RELAY)
		da->client = smtp_client_new(&da->relay);
	for (;;) {
		r = delivery_agent_next(da, &j, term);
		if (r == 0) {
			if (delivery_agent_stopping)
				log_info("event=exit reason=stopped");
			else
				log_debug("event=exit reason=\"channel closed\"");
			smtp_client_free(da->client);
			return 0;
		}
		if (r == -1)
			break;
		log_debug("id=%s job=%llu nrcpt=%zu size=%llu", j.qid,
		    (unsigned long long)j.id, j.nrcpt, (unsigned long long)j.size);
#ifdef MOAT_TEST_HOOKS
		delivery_test_hook_job(&j, da->transport);
#endif
		if (da->transport == MOAT_TRANSPORT_RELAY)
			r = smtp_client_deliver(da->client, &j);
		else
			r = local_deliver(&j, &da->local);
		if (r == -1 || job_finish(&j, da->client != NULL ?
		    smtp_client_cached(da->client) : NULL) == -1)
			break;
		job_clear(&j);
	}
	if (j.qid[0] != '\0')
		log_warn("id=%s queue-manager channel: %s", j.qid, j.err);
	else
		log_warn("queue-manager channel: %s", j.err);
	return 1;
}

int
main(int argc, char **argv)
{
	struct delivery_agent da;
	struct priv_spec spec;
	sigset_t term;
	const char *config_name;
	char err[256];
	char **args;
	int debug, i;

	memset(&da, 0, sizeof(da));
	da.transport = delivery_agent_transport(argc, argv);
	da.role = proc_info(da.transport == MOAT_TRANSPORT_LOCAL ?
	    PROC_LOCAL : PROC_RELAY)->name;
	log_init(da.role, 0);
	if (da.transport == -1)
		log_fatal("usage: %s -T relay|local -u UID -g GID [-t CHROOT] "
		    "[-d] [-n NAME] (started by moatd only)",
		    argc > 0 ? argv[0] : "delivery-agent");
	/* priv_parse_child_args() wants argv[0] followed by its options. */
	args = xcalloc((size_t)argc - 1, sizeof(*args));
	args[0] = argv[0];
	for (i = 3; i < argc; i++)
		args[i - 2] = argv[i];
	if (priv_parse_child_args(argc - 2, args, &spec, &debug, &config_name,
	    err, sizeof(err)) == -1)
		log_fatal("%s", err);
	free(args);
	log_set_debug(debug);
	delivery_agent_config(&da, config_name);
	delivery_agent_channel();
	signal(SIGPIPE, SIG_IGN);
	delivery_agent_signals(&term);
	delivery_agent_confine(&da, &spec);
	log_debug("event=start transport=%s", argv[2]);
	return delivery_agent_loop(&da, &term);
}
