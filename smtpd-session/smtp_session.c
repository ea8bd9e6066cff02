/*
 * smtp_session.c: the server side of one SMTP connection (RFC 5321, 2920).
 *
 * The client's bytes land in one input buffer and are cut into command
 * lines in place: a line ends at the first LF, which must follow a CR
 * (bare LF is accepted only from bare_lf_networks), and no other CR may
 * appear in it.  Each command goes through the verb table below, in the
 * manner of OpenSMTPD's smtp_session.c: a check step says whether the
 * verb may run in this state (and answers if not), then the parser's
 * verdict on the arguments is given, then the proceed step does the work.
 *
 * Replies are collected in an output buffer and written only when the
 * input holds no further complete command, i.e. just before the process
 * would block reading: a pipelined batch (RFC 2920) is answered with one
 * write.  DATA hands the content to the streaming reader of smtp_data.c,
 * which passes it on to the queue-manager chunk by chunk.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mail/policy.h"
#include "smtp_cmd.h"
#include "smtp_data.h"
#include "smtp_session.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/xmalloc.h"
#ifdef MOAT_TEST_HOOKS
#include "test_hooks.h"
#endif

/* The input buffer; command lines are limited by smtpd_line_limit. */
#define SMTP_INBUF_SIZE		(64 * 1024)
/* Replies are written early only when this much is waiting. */
#define SMTP_OUT_FLUSH		(16 * 1024)
#define SMTP_OUT_CAP		(64 * 1024)
#define SMTP_REPLY_MAX		(MOAT_TEXT_MAX + 64)
/* What IPC_S2Q_BEGIN carries besides the recipients, at most. */
#define SMTP_BEGIN_FIXED	(4 + MOAT_HELO_MAX + 4 + ADDR_MAILBOX_MAX + 4 + 8 + \
				 4 + 4 + MOAT_ENVID_MAX + 4)
#define SMTP_RCPT_BYTES_MAX	(IPC_MAX_PAYLOAD - SMTP_BEGIN_FIXED)

enum smtp_wait {
	SMTP_WAIT_INPUT,	/* new bytes in the input buffer */
	SMTP_WAIT_EOF,		/* the client closed the connection */
	SMTP_WAIT_TIMEOUT,	/* smtpd_timeout passed in silence */
	SMTP_WAIT_ERROR,	/* read or write failed (logged) */
	SMTP_WAIT_STOP,		/* SIGTERM: moat is shutting down */
};

/*
 * SIGTERM (moatd stopping): a session idle between commands answers 421
 * and ends; one in DATA finishes the message first.  The signal is
 * blocked except inside the ppoll() that waits for the client, so the
 * flag is only ever seen set where it can be acted on, and a signal that
 * comes just before the wait still ends it.
 */
static volatile sig_atomic_t smtp_session_stop_flag;
static sigset_t smtp_session_waitmask;	/* the mask while waiting */
static int smtp_session_have_mask;

static void
smtp_session_sigterm(int sig)
{
	(void)sig;
	smtp_session_stop_flag = 1;
}

/* Install the SIGTERM handler and block the signal; before the sandbox. */
int
smtp_session_signals(void)
{
	struct sigaction sa;
	sigset_t term;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = smtp_session_sigterm;
	sigfillset(&sa.sa_mask);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigprocmask(SIG_BLOCK, &term, &smtp_session_waitmask) == -1)
		return -1;
	sigdelset(&smtp_session_waitmask, SIGTERM);
	smtp_session_have_mask = 1;
	return 0;
}

enum smtp_line {
	SMTP_LINE_NONE,		/* no complete line buffered */
	SMTP_LINE_OK,		/* a command line */
	SMTP_LINE_HANDLED,	/* a refused line, already answered */
};

typedef int (*smtp_check_fn)(struct smtp_session *, const struct smtp_cmd *);
typedef void (*smtp_proceed_fn)(struct smtp_session *, const struct smtp_cmd *);

static int	smtp_check_mail(struct smtp_session *, const struct smtp_cmd *);
static int	smtp_check_rcpt(struct smtp_session *, const struct smtp_cmd *);
static int	smtp_check_data(struct smtp_session *, const struct smtp_cmd *);
static void	smtp_proceed_helo(struct smtp_session *, const struct smtp_cmd *);
static void	smtp_proceed_mail(struct smtp_session *, const struct smtp_cmd *);
static void	smtp_proceed_rcpt(struct smtp_session *, const struct smtp_cmd *);
static void	smtp_proceed_data(struct smtp_session *, const struct smtp_cmd *);
static void	smtp_proceed_rset(struct smtp_session *, const struct smtp_cmd *);
static void	smtp_proceed_noop(struct smtp_session *, const struct smtp_cmd *);
static void	smtp_proceed_quit(struct smtp_session *, const struct smtp_cmd *);
static void	smtp_proceed_help(struct smtp_session *, const struct smtp_cmd *);
static void	smtp_proceed_vrfy(struct smtp_session *, const struct smtp_cmd *);
static int	smtp_check_starttls(struct smtp_session *, const struct smtp_cmd *);
static void	smtp_proceed_starttls(struct smtp_session *, const struct smtp_cmd *);

/* The implemented verbs: may it run now?, then do it. */
static const struct smtp_verb_step {
	enum smtp_verb	 verb;
	smtp_check_fn	 check;
	smtp_proceed_fn	 proceed;
} smtp_verb_steps[] = {
	{ SMTP_VERB_EHLO,	NULL,			smtp_proceed_helo },
	{ SMTP_VERB_HELO,	NULL,			smtp_proceed_helo },
	{ SMTP_VERB_MAIL,	smtp_check_mail,	smtp_proceed_mail },
	{ SMTP_VERB_RCPT,	smtp_check_rcpt,	smtp_proceed_rcpt },
	{ SMTP_VERB_DATA,	smtp_check_data,	smtp_proceed_data },
	{ SMTP_VERB_RSET,	NULL,			smtp_proceed_rset },
	{ SMTP_VERB_NOOP,	NULL,			smtp_proceed_noop },
	{ SMTP_VERB_QUIT,	NULL,			smtp_proceed_quit },
	{ SMTP_VERB_HELP,	NULL,			smtp_proceed_help },
	{ SMTP_VERB_VRFY,	NULL,			smtp_proceed_vrfy },
	{ SMTP_VERB_STARTTLS,	smtp_check_starttls,	smtp_proceed_starttls },
};

/* Limits and buffers from the configuration; the caller adds the peer. */
void
smtp_session_init(struct smtp_session *s, const struct conf *cfg,
    int client_fd, int queue_fd)
{
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->client_fd = client_fd;
	s->queue_fd = queue_fd;
	s->myhostname = xstrdup(conf_myhostname(cfg));
	s->banner_name = conf_str(cfg, CONF_SMTPD_BANNER_NAME);
	s->line_limit = (size_t)conf_num(cfg, CONF_SMTPD_LINE_LIMIT);
	s->rcpt_limit = (size_t)conf_num(cfg, CONF_SMTPD_RECIPIENT_LIMIT);
	s->size_limit = (uint64_t)conf_num(cfg, CONF_MESSAGE_SIZE_LIMIT);
	s->error_limit = (unsigned int)conf_num(cfg, CONF_SMTPD_ERROR_LIMIT);
	s->timeout_ms = (int)conf_num(cfg, CONF_SMTPD_TIMEOUT) * 1000;
	if (s->line_limit > SMTP_INBUF_SIZE)
		s->line_limit = SMTP_INBUF_SIZE;
	s->state = SMTP_STATE_GREETED;
	s->body = MOAT_BODY_7BIT;
	s->verb = "-";
	s->close_reason = "unknown";
	s->in.cap = SMTP_INBUF_SIZE;
	s->in.data = xmalloc(s->in.cap);
	buf_init(&s->out, SMTP_OUT_CAP);
	s->ipcbuf = xmalloc(IPC_MAX_MSG);
	s->chunk = xmalloc(IPC_BLOB_HDR_LEN + IPC_DATA_CHUNK);
	strlcpy_m(s->client_addr, "unknown", sizeof(s->client_addr));
	strlcpy_m(s->client_desc, "unknown", sizeof(s->client_desc));
	strlcpy_m(s->local_desc, "unknown", sizeof(s->local_desc));
}

/*
 * The thin layer under all client I/O: one read or write, in clear or,
 * once TLS is active, through SSL.  Returns the bytes moved; 0 when the
 * client closed the connection (reads); -1 with *wait = POLLIN or
 * POLLOUT when the call must be repeated once the socket is ready, or
 * with *wait = 0 after an error (logged at debug level).
 */
static ssize_t
smtp_session_read_some(struct smtp_session *s, void *p, size_t n, short *wait)
{
	char err[256];
	ssize_t r;

	*wait = 0;
	if (s->ssl != NULL)
		r = s->tls_ops->read(s, p, n, wait, err, sizeof(err));
	else if ((r = read(s->client_fd, p, n)) == -1 &&
	    (errno == EINTR || errno == EAGAIN))
		*wait = POLLIN;
	else if (r == -1)
		strlcpy_m(err, strerror(errno), sizeof(err));
	if (r == -1 && *wait == 0)
		log_debug("client=%s read: %s", s->client_addr, err);
	return r;
}

static ssize_t
smtp_session_write_some(struct smtp_session *s, const void *p, size_t n,
    short *wait)
{
	char err[256];
	ssize_t r;

	*wait = 0;
	if (s->ssl != NULL)
		r = s->tls_ops->write(s, p, n, wait, err, sizeof(err));
	else if ((r = write(s->client_fd, p, n)) == -1 &&
	    (errno == EINTR || errno == EAGAIN))
		*wait = POLLOUT;
	else if (r == -1)
		strlcpy_m(err, strerror(errno), sizeof(err));
	if (r == -1 && *wait == 0)
		log_debug("client=%s write: %s", s->client_addr, err);
	return r;
}

/* Write every buffered reply, waiting at most smtpd_timeout for room. */
static int
smtp_session_flush(struct smtp_session *s)
{
	struct pollfd pfd;
	size_t off = 0;
	ssize_t n;
	short wait;
	int r;

	while (!s->out_broken && off < s->out.len) {
		n = smtp_session_write_some(s, s->out.data + off,
		    s->out.len - off, &wait);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == -1 && wait != 0) {
			pfd.fd = s->client_fd;
			pfd.events = wait;
			r = poll(&pfd, 1, s->timeout_ms);
			if (r > 0 || (r == -1 && errno == EINTR))
				continue;
			s->close_reason = r == 0 ? "write timeout" : "write error";
			log_debug("client=%s write: %s", s->client_addr,
			    r == 0 ? "timed out" : strerror(errno));
		} else
			s->close_reason = "write error";
		s->out_broken = 1;
	}
	buf_reset(&s->out);
	if (s->out_broken)
		s->state = SMTP_STATE_CLOSED;
	return s->out_broken ? -1 : 0;
}

/* Log a refusal: the command, the reply, and the message id if there is one. */
static void
smtp_session_log_reject(struct smtp_session *s, const char *reply)
{
	char text[SMTP_REPLY_MAX * 4];

	log_sanitize(text, sizeof(text), reply, strlen(reply));
	if (s->qid[0] != '\0')
		log_info("id=%s reject client=%s cmd=%s reply=\"%s\"", s->qid,
		    s->client_addr, s->verb, text);
	else
		log_info("reject client=%s cmd=%s reply=\"%s\"", s->client_addr,
		    s->verb, text);
}

void
smtp_session_reply(struct smtp_session *s, const char *fmt, ...)
{
	char line[SMTP_REPLY_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* 421 closes the session itself; it is not one of the client's errors. */
	if ((line[0] == '4' || line[0] == '5') && strncmp(line, "421", 3) != 0) {
		s->nerrors++;
		smtp_session_log_reject(s, line);
	}
	if (s->out.len > SMTP_OUT_FLUSH)
		(void)smtp_session_flush(s);
	if (buf_append_str(&s->out, line) == -1 || buf_append(&s->out, "\r\n", 2) == -1)
		log_panic("reply buffer overflow");
}

/* Forget the mail transaction (RSET, HELO/EHLO, end of a message). */
static void
smtp_session_reset(struct smtp_session *s)
{
	size_t i;

	for (i = 0; i < s->nrcpt; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpt = s->nrcpt_refused = s->rcpt_bytes = 0;
	s->sender[0] = '\0';
	s->body = MOAT_BODY_7BIT;
	s->size_declared = 0;
	s->qid[0] = '\0';
	s->qfail[0] = '\0';
	if (s->qstate != SMTP_QUEUE_BROKEN)
		s->qstate = SMTP_QUEUE_IDLE;
	if (s->state != SMTP_STATE_GREETED && s->state != SMTP_STATE_CLOSED)
		s->state = SMTP_STATE_READY;
}

/* The queue-manager is gone or misbehaved: nothing more can be accepted. */
static void
smtp_session_queue_lost(struct smtp_session *s)
{
	smtp_session_reply(s, "451 4.3.0 Error: queue temporarily unavailable");
	smtp_session_reply(s, "421 4.3.0 %s Error: closing connection", s->myhostname);
	s->state = SMTP_STATE_CLOSED;
	s->close_reason = "queue-manager unavailable";
}

/*
 * Wait for client input (and, while a message is open, for a FAIL the
 * queue-manager may send unasked), after writing every pending reply.
 */
static enum smtp_wait
smtp_session_fill(struct smtp_session *s)
{
	struct pollfd pfd[2];
	struct timespec ts;
	short want = POLLIN;
	nfds_t nfds;
	ssize_t n;
	int r, pending;

	if (smtp_session_flush(s) == -1)
		return SMTP_WAIT_ERROR;
	if (s->in.start > 0) {
		memmove(s->in.data, s->in.data + s->in.start, s->in.end - s->in.start);
		s->in.end -= s->in.start;
		s->in.start = 0;
	}
	if (s->in.end == s->in.cap)
		log_panic("input buffer full while waiting for input");
	ts.tv_sec = s->timeout_ms / 1000;
	ts.tv_nsec = (long)(s->timeout_ms % 1000) * 1000000;
	/* Bytes SSL already holds would never wake poll(): read them first. */
	pending = s->ssl != NULL && s->tls_ops->pending(s);
	for (;;) {
		if (smtp_session_stop_flag && s->state != SMTP_STATE_DATA)
			return SMTP_WAIT_STOP;
		if (!pending) {
			pfd[0].fd = s->client_fd;
			pfd[0].events = want;
			pfd[1].fd = s->queue_fd;
			pfd[1].events = POLLIN;
			pfd[1].revents = 0;
			nfds = s->qstate == SMTP_QUEUE_OPEN ? 2 : 1;
			r = ppoll(pfd, nfds, &ts, smtp_session_have_mask ?
			    &smtp_session_waitmask : NULL);
			if (r == -1 && errno == EINTR)
				continue;
			if (r == -1) {
				log_warnx("client=%s poll", s->client_addr);
				s->close_reason = "poll error";
				return SMTP_WAIT_ERROR;
			}
			if (r == 0)
				return SMTP_WAIT_TIMEOUT;
			if (nfds == 2 && pfd[1].revents != 0)
				smtp_queue_unsolicited(s);
			if (pfd[0].revents == 0)
				continue;
		}
		pending = 0;
		n = smtp_session_read_some(s, s->in.data + s->in.end,
		    s->in.cap - s->in.end, &want);
		if (n > 0) {
			s->in.end += (size_t)n;
			return SMTP_WAIT_INPUT;
		}
		if (n == 0)
			return SMTP_WAIT_EOF;
		if (want != 0)
			continue;
		s->close_reason = "read error";
		return SMTP_WAIT_ERROR;
	}
}

/* A wait that brought no input ends the session, with a 421 on timeout. */
static void
smtp_session_wait_failed(struct smtp_session *s, enum smtp_wait w)
{
	if (w == SMTP_WAIT_TIMEOUT) {
		smtp_session_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->myhostname);
		s->close_reason = "timeout";
	} else if (w == SMTP_WAIT_STOP) {
		smtp_session_reply(s, "421 4.3.2 Service shutting down");
		s->close_reason = "shutting down";
	} else if (w == SMTP_WAIT_EOF)
		s->close_reason = "lost connection";
	s->state = SMTP_STATE_CLOSED;
}

/*
 * Cut the next command line out of the input buffer.  Lines that are too
 * long or carry a bare CR or LF are answered here and skipped.
 */
static enum smtp_line
smtp_session_next_line(struct smtp_session *s, const char **linep, size_t *lenp)
{
	const uint8_t *p = s->in.data + s->in.start, *lf;
	size_t avail = s->in.end - s->in.start, n;

	if (s->discard) {
		if ((lf = memchr(p, '\n', avail)) == NULL) {
			s->in.start = s->in.end;
			return SMTP_LINE_NONE;
		}
		s->in.start += (size_t)(lf - p) + 1;
		s->discard = 0;
		return SMTP_LINE_HANDLED;
	}
	/* The limit counts the CR LF: the LF must be within line_limit bytes. */
	lf = memchr(p, '\n', avail < s->line_limit ? avail : s->line_limit);
	if (lf == NULL) {
		if (avail < s->line_limit)
			return SMTP_LINE_NONE;
		s->discard = 1;
		s->verb = "-";
		smtp_session_reply(s, "500 5.5.2 Error: line too long");
		return SMTP_LINE_HANDLED;
	}
	n = (size_t)(lf - p);
	s->in.start += n + 1;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	else if (!s->bare_lf)
		goto bare;
	if (memchr(p, '\r', n) != NULL)
		goto bare;
	*linep = (const char *)p;
	*lenp = n;
	return SMTP_LINE_OK;
bare:
	s->verb = "-";
	smtp_session_reply(s, "500 5.5.2 Error: bare <CR> or <LF> in command");
	return SMTP_LINE_HANDLED;
}

static const struct smtp_verb_step *
smtp_session_step(enum smtp_verb v)
{
	size_t i;

	for (i = 0; i < sizeof(smtp_verb_steps) / sizeof(smtp_verb_steps[0]); i++)
		if (smtp_verb_steps[i].verb == v)
			return &smtp_verb_steps[i];
	return NULL;
}

/* One command line: verb table lookup, state check, argument verdict, work. */
static void
smtp_session_command(struct smtp_session *s, const char *line, size_t len)
{
	const struct smtp_verb_step *vs;
	char reply[SMTP_REPLY_MAX];
	struct smtp_cmd cmd;

	s->ncommands++;
#ifdef MOAT_TEST_HOOKS
	if (smtpd_test_hook_command(s, line, len))
		return;
#endif
	(void)smtp_cmd_parse(line, len, &cmd);
	s->verb = smtp_verb_name(cmd.verb);
	vs = smtp_session_step(cmd.verb);
	if (cmd.err == SMTP_CMD_ERR_UNRECOGNIZED ||
	    cmd.err == SMTP_CMD_ERR_NOT_IMPLEMENTED || vs == NULL) {
		smtp_cmd_reply(&cmd, reply, sizeof(reply));
		smtp_session_reply(s, "%s", reply);
		return;
	}
	if (vs->check != NULL && vs->check(s, &cmd) == -1)
		return;
	if (cmd.err != SMTP_CMD_OK) {
		smtp_cmd_reply(&cmd, reply, sizeof(reply));
		smtp_session_reply(s, "%s", reply);
		return;
	}
	vs->proceed(s, &cmd);
}

/* After any reply: has the client used up its errors? */
static void
smtp_session_error_limit(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_CLOSED || s->nerrors < s->error_limit)
		return;
	smtp_session_reply(s, "421 4.7.0 %s Error: too many errors", s->myhostname);
	s->state = SMTP_STATE_CLOSED;
	s->close_reason = "too many errors";
}

/* Check steps: answer 503 and return -1 when the verb may not run now. */
static int
smtp_check_mail(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	if (s->state == SMTP_STATE_GREETED) {
		smtp_session_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return -1;
	}
	if (s->tls_mode == TLS_LISTEN_REQUIRED && s->ssl == NULL) {
		smtp_session_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return -1;
	}
	if (s->state != SMTP_STATE_READY) {
		smtp_session_reply(s, "503 5.5.1 Error: nested MAIL command");
		return -1;
	}
	return 0;
}

static int
smtp_check_rcpt(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	if (s->state != SMTP_STATE_MAIL && s->state != SMTP_STATE_RCPT) {
		smtp_session_reply(s, "503 5.5.1 Error: need MAIL command");
		return -1;
	}
	return 0;
}

static int
smtp_check_data(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	if (s->state == SMTP_STATE_RCPT)
		return 0;
	/* As Postfix: "need RCPT" even before MAIL, 554 once all were refused. */
	if (s->state == SMTP_STATE_MAIL && s->nrcpt_refused > 0)
		smtp_session_reply(s, "554 5.5.1 Error: no valid recipients");
	else
		smtp_session_reply(s, "503 5.5.1 Error: need RCPT command");
	return -1;
}

/* STARTTLS is offered where TLS is set up, ready and not yet active. */
static int
smtp_session_starttls_offered(const struct smtp_session *s)
{
	return s->tls_ops != NULL && s->tls_ready && s->ssl == NULL;
}

/* HELO and EHLO: (re)start the session; EHLO lists the extensions. */
static void
smtp_proceed_helo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	smtp_session_reset(s);
	memcpy(s->helo, cmd->arg, cmd->arglen);
	s->helo[cmd->arglen] = '\0';
	s->esmtp = cmd->verb == SMTP_VERB_EHLO;
	s->state = SMTP_STATE_READY;
	if (!s->esmtp) {
		smtp_session_reply(s, "250 %s", s->myhostname);
		return;
	}
	smtp_session_reply(s, "250-%s", s->myhostname);
	smtp_session_reply(s, "250-PIPELINING");
	smtp_session_reply(s, "250-SIZE %llu", (unsigned long long)s->size_limit);
	smtp_session_reply(s, "250-8BITMIME");
	smtp_session_reply(s, "250-ENHANCEDSTATUSCODES");
	smtp_session_reply(s, "250-DSN");
	if (smtp_session_starttls_offered(s))
		smtp_session_reply(s, "250-STARTTLS");
	smtp_session_reply(s, "250 HELP");
}

/* Open a transaction: the sender, BODY= and a SIZE= within the limit. */
static void
smtp_proceed_mail(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	if (cmd->has_size && cmd->size > s->size_limit) {
		smtp_session_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	if (addr_format(&cmd->path, s->sender, sizeof(s->sender)) == -1) {
		smtp_session_reply(s, "501 5.1.7 Error: bad sender address syntax");
		return;
	}
	s->body = cmd->body == SMTP_BODY_NONE ? MOAT_BODY_7BIT : cmd->body;
	s->size_declared = cmd->has_size ? cmd->size : 0;
	s->dsn_ret = cmd->dsn_ret;
	strlcpy_m(s->dsn_envid, cmd->has_envid ? cmd->dsn_envid : "",
	    sizeof(s->dsn_envid));
	s->state = SMTP_STATE_MAIL;
	smtp_session_reply(s, "250 2.1.0 Ok");
}

/* <Postmaster> without a domain means postmaster of a local domain. */
static int
smtp_session_postmaster_domain(struct smtp_session *s, struct mailaddr *a)
{
	const struct conf_words *ld = conf_words(s->cfg, CONF_LOCAL_DOMAINS);
	const char *d;
	size_t i;

	if (conf_words_has(ld, s->myhostname))
		d = s->myhostname;
	else if (ld->n > 0)
		d = ld->v[0];
	else
		return -1;
	for (i = 0; d[i] != '\0' && i + 1 < sizeof(a->domain); i++)
		a->domain[i] = (d[i] >= 'A' && d[i] <= 'Z') ? (char)(d[i] - 'A' + 'a') : d[i];
	a->domain[i] = '\0';
	return 0;
}

/*
 * Keep an accepted recipient once, with its DSN NOTIFY and ORCPT in the
 * same allocation; duplicates get 250 but no second copy (the first
 * one's DSN parameters stay).
 */
static int
smtp_session_add_rcpt(struct smtp_session *s, const char *mbox, uint32_t notify,
    const char *orcpt)
{
	size_t i, len = strlen(mbox), olen = strlen(orcpt);
	char *r;

	for (i = 0; i < s->nrcpt; i++)
		if (strcmp(s->rcpts[i], mbox) == 0)
			return 0;
	/* Its share of IPC_S2Q_BEGIN: str mailbox, u32 NOTIFY, str ORCPT. */
	if (s->rcpt_bytes + 4 + len + 4 + 4 + olen > SMTP_RCPT_BYTES_MAX)
		return -1;
	r = xmalloc(len + 1 + 1 + olen + 1);
	memcpy(r, mbox, len + 1);
	r[len + 1] = (char)notify;
	memcpy(r + len + 2, orcpt, olen + 1);
	s->rcpts = xreallocarray(s->rcpts, s->nrcpt + 1, sizeof(*s->rcpts));
	s->rcpts[s->nrcpt++] = r;
	s->rcpt_bytes += 4 + len + 4 + 4 + olen;
	s->nrcpt_total++;
	return 0;
}

void
smtp_session_rcpt_dsn(const struct smtp_session *s, size_t i, uint32_t *notify,
    const char **orcpt)
{
	const char *r = s->rcpts[i];
	size_t len = strlen(r);

	*notify = (unsigned char)r[len + 1];
	*orcpt = r + len + 2;
}

/* One recipient: the limits, then the relay policy (common/mail/policy.h). */
static void
smtp_proceed_rcpt(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct mailaddr rcpt = cmd->path;
	char mbox[ADDR_MAILBOX_MAX + 1];

	if (s->nrcpt >= s->rcpt_limit) {
		smtp_session_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if ((cmd->postmaster && smtp_session_postmaster_domain(s, &rcpt) == -1) ||
	    addr_format(&rcpt, mbox, sizeof(mbox)) == -1) {
		s->nrcpt_refused++;
		smtp_session_reply(s, "550 5.1.1 <%s>: Recipient address rejected: "
		    "User unknown", cmd->postmaster ? "postmaster" : "");
		return;
	}
	switch (policy_check_rcpt(s->cfg, s->client_addr, &rcpt)) {
	case POLICY_LOCAL:
	case POLICY_RELAY:
		break;
	case POLICY_UNKNOWN_USER:
		s->nrcpt_refused++;
		smtp_session_reply(s, "550 5.1.1 <%s>: Recipient address rejected: "
		    "User unknown", mbox);
		return;
	case POLICY_DENY_RELAY:
	default:
		s->nrcpt_refused++;
		smtp_session_reply(s, "554 5.7.1 <%s>: Relay access denied", mbox);
		return;
	}
	if (smtp_session_add_rcpt(s, mbox, cmd->dsn_notify,
	    cmd->has_orcpt ? cmd->dsn_orcpt : "") == -1) {
		smtp_session_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	s->state = SMTP_STATE_RCPT;
	smtp_session_reply(s, "250 2.1.5 Ok");
}

/* The DATA reader's output: message bytes on their way to the queue. */
static void
smtp_session_data_out(void *arg, const uint8_t *p, size_t n)
{
	smtp_queue_data(arg, p, n);
}

/* The Received: header is the first thing stored. */
static void
smtp_session_received(struct smtp_session *s)
{
	struct buf hdr;

	/* Everything but myhostname is bounded: HELO, address, id, recipient. */
	buf_init(&hdr, 1024 + strlen(s->myhostname));
	if (smtp_received_format(&hdr, s->helo, s->esmtp, s->client_addr,
	    s->ssl != NULL ? s->tls_desc : NULL, s->myhostname, s->qid, s->nrcpt == 1 ? s->rcpts[0] : NULL,
	    time(NULL)) == -1)
		log_panic("Received: header does not fit");
	smtp_queue_data(s, hdr.data, hdr.len);
	buf_free(&hdr);
}

/* The names of the reasons a message's content was refused, for the log. */
static void
smtp_session_data_flags(unsigned int flags, char *dst, size_t dstsz)
{
	snprintf(dst, dstsz, "%s%s%s%s",
	    flags & SMTP_DATA_BARE_CR ? "bare_cr," : "",
	    flags & SMTP_DATA_BARE_LF ? "bare_lf," : "",
	    flags & SMTP_DATA_NUL ? "nul," : "",
	    flags & SMTP_DATA_TOO_BIG ? "too_big," : "");
	if (dst[0] != '\0')
		dst[strlen(dst) - 1] = '\0';
}

/* The accepted message's line: the one place its envelope is logged whole. */
static void
smtp_session_log_accepted(struct smtp_session *s)
{
	char helo[MOAT_HELO_MAX * 4 + 1], from[ADDR_MAILBOX_MAX * 4 + 1];

	log_sanitize(helo, sizeof(helo), s->helo, strlen(s->helo));
	log_sanitize(from, sizeof(from), s->sender, strlen(s->sender));
	log_info("id=%s client=%s helo=%s from=<%s> nrcpt=%zu size=%llu",
	    s->qid, s->client_addr, helo, from, s->nrcpt,
	    (unsigned long long)s->qbytes);
}

/* After the final dot: refuse bad content, or commit and answer 250. */
static void
smtp_session_data_end(struct smtp_session *s, const struct smtp_data *rd)
{
	unsigned int flags = smtp_data_flags(rd);
	char why[64];

	s->state = SMTP_STATE_READY;
	if (flags != 0) {
		smtp_session_data_flags(flags, why, sizeof(why));
		log_info("id=%s client=%s content refused: reason=%s size=%llu",
		    s->qid, s->client_addr, why,
		    (unsigned long long)smtp_data_count(rd));
		smtp_queue_abort(s);
	}
	if (s->qstate == SMTP_QUEUE_BROKEN) {
		smtp_session_queue_lost(s);
		return;
	}
	if (flags & SMTP_DATA_BAD)
		smtp_session_reply(s, "550 5.6.0 Error: message refused: bare <CR> "
		    "or <LF> or NUL in message content (RFC 5321 2.3.8)");
	else if (flags & SMTP_DATA_TOO_BIG)
		smtp_session_reply(s, "552 5.3.4 Error: message size exceeds fixed limit");
	else {
		switch (smtp_queue_commit(s)) {
		case SMTP_QUEUE_ANSWER_OK:
			s->nmessages++;
			smtp_session_log_accepted(s);
			smtp_session_reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
			break;
		case SMTP_QUEUE_ANSWER_FAIL:
			smtp_session_reply(s, "%s", s->qfail);
			break;
		case SMTP_QUEUE_ANSWER_BROKEN:
			smtp_session_queue_lost(s);
			return;
		}
	}
	smtp_session_reset(s);
}

/* Stream the content through the DATA reader until the final dot. */
static void
smtp_session_data(struct smtp_session *s)
{
	struct smtp_data rd;
	enum smtp_wait w;
	size_t n;

	s->state = SMTP_STATE_DATA;
	smtp_session_received(s);
	smtp_data_init(&rd, s->size_limit, s->bare_lf, smtp_session_data_out, s);
	for (;;) {
		if (s->in.end > s->in.start) {
			n = smtp_data_feed(&rd, s->in.data + s->in.start,
			    s->in.end - s->in.start);
			s->in.start += n;
			if (smtp_data_done(&rd))
				break;
		}
		if ((w = smtp_session_fill(s)) != SMTP_WAIT_INPUT) {
			log_info("id=%s client=%s %s during DATA after %llu bytes",
			    s->qid, s->client_addr, w == SMTP_WAIT_TIMEOUT ?
			    "timeout" : "lost connection",
			    (unsigned long long)smtp_data_count(&rd));
			smtp_queue_abort(s);
			smtp_session_wait_failed(s, w);
			return;
		}
	}
	smtp_session_data_end(s, &rd);
}

/* DATA: the queue-manager opens the message before the client may send it. */
static void
smtp_proceed_data(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	switch (smtp_queue_begin(s)) {
	case SMTP_QUEUE_ANSWER_OK:
		break;
	case SMTP_QUEUE_ANSWER_FAIL:
		smtp_session_reply(s, "%s", s->qfail);
		smtp_session_reset(s);
		return;
	case SMTP_QUEUE_ANSWER_BROKEN:
		smtp_session_queue_lost(s);
		return;
	}
	smtp_session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	smtp_session_data(s);
}

static void
smtp_proceed_rset(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_session_reset(s);
	smtp_session_reply(s, "250 2.0.0 Ok");
}

static void
smtp_proceed_noop(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_session_reply(s, "250 2.0.0 Ok");
}

static void
smtp_proceed_quit(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_session_reply(s, "221 2.0.0 Bye");
	s->state = SMTP_STATE_CLOSED;
	s->close_reason = "quit";
}

static void
smtp_proceed_help(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_session_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA "
	    "RSET NOOP QUIT HELP VRFY%s",
	    smtp_session_starttls_offered(s) ? " STARTTLS" : "");
}

static void
smtp_proceed_vrfy(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_session_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message");
}

/* Handshake on the client socket; a failure ends the session (logged). */
static int
smtp_session_tls_start(struct smtp_session *s, const char *how)
{
	if (s->tls_ops != NULL && s->tls_ops->start(s, how) == 0)
		return 0;
	if (s->tls_ops == NULL)
		log_info("tls client=%s mode=%s handshake failed: no "
		    "smtpd_tls_cert_files", s->client_addr, how);
	s->state = SMTP_STATE_CLOSED;
	s->close_reason = "TLS handshake failed";
	/* Nothing more may go out in clear on this connection. */
	s->out_broken = 1;
	return -1;
}

/*
 * STARTTLS (RFC 3207): only where it is offered, once, after EHLO/HELO
 * and outside a mail transaction (Postfix's and OpenSMTPD's rules).
 */
static int
smtp_check_starttls(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	if (s->tls_ops == NULL) {
		smtp_session_reply(s, "502 5.5.1 Error: command not implemented");
		return -1;
	}
	if (s->ssl != NULL) {
		smtp_session_reply(s, "503 5.5.1 Error: TLS already active");
		return -1;
	}
	if (s->state == SMTP_STATE_GREETED) {
		smtp_session_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return -1;
	}
	if (s->state != SMTP_STATE_READY) {
		smtp_session_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		return -1;
	}
	return 0;
}

/*
 * 220, then drop whatever the client sent after STARTTLS: it came in
 * clear and must never be taken as said under TLS (CVE-2011-0411).  After
 * the handshake the session forgets all it learnt before (RFC 3207 4.2):
 * the client must EHLO again.
 */
static void
smtp_proceed_starttls(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	size_t dropped;

	(void)cmd;
	if (!s->tls_ready || s->tls_ops->prepare(s) == -1) {
		smtp_session_reply(s, "454 4.7.0 TLS not available due to local problem");
		return;
	}
	smtp_session_reply(s, "220 2.0.0 Ready to start TLS");
	if (smtp_session_flush(s) == -1)
		return;
	dropped = s->in.end - s->in.start;
	s->in.start = s->in.end = 0;
	s->discard = 0;
	if (dropped > 0)
		log_info("client=%s starttls: discarded %zu bytes sent after "
		    "STARTTLS before the handshake", s->client_addr, dropped);
	if (smtp_session_tls_start(s, "starttls") == -1)
		return;
	smtp_session_reset(s);
	s->state = SMTP_STATE_GREETED;
	s->helo[0] = '\0';
	s->esmtp = 0;
}

/* Greet, then answer commands until QUIT, an error limit, a timeout or EOF. */
void
smtp_session_run(struct smtp_session *s)
{
	const char *line = NULL;
	size_t len = 0;
	enum smtp_wait w;

	log_info("connect client=%s local=%s tls=%s%s", s->client_desc,
	    s->local_desc, tls_listen_mode_name(s->tls_mode),
	    s->bare_lf ? " bare_lf=yes" : "");
	/* Implicit TLS (RFC 8314): the handshake comes before the greeting. */
	if (s->tls_mode != TLS_LISTEN_IMPLICIT ||
	    smtp_session_tls_start(s, "implicit") == 0)
		smtp_session_reply(s, "220 %s ESMTP %s", s->myhostname, s->banner_name);
	while (s->state != SMTP_STATE_CLOSED && !s->out_broken) {
		switch (smtp_session_next_line(s, &line, &len)) {
		case SMTP_LINE_OK:
			smtp_session_command(s, line, len);
			break;
		case SMTP_LINE_HANDLED:
			break;
		case SMTP_LINE_NONE:
			if ((w = smtp_session_fill(s)) != SMTP_WAIT_INPUT)
				smtp_session_wait_failed(s, w);
			break;
		}
		smtp_session_error_limit(s);
	}
	(void)smtp_session_flush(s);
	/* close_notify, without waiting for the client's. */
	if (s->ssl != NULL && !s->out_broken)
		s->tls_ops->shutdown(s);
	log_info("disconnect client=%s reason=\"%s\" last=%s commands=%u "
	    "errors=%u messages=%u rcpt=%u", s->client_desc, s->close_reason,
	    s->verb, s->ncommands, s->nerrors, s->nmessages, s->nrcpt_total);
}
