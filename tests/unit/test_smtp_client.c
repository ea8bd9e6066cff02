/*
 * test_smtp_client.c: the relay transport (delivery-agent/smtp_client.c)
 * against a scripted SMTP server on the loopback interface.  Each case
 * runs one job: the server (a child process) answers each command with
 * the case's reply and records what it was sent; the test checks every
 * recipient's result and the transcript.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "delivery-agent/job.h"
#include "delivery-agent/smtp_client.h"
#include "ipc_types.h"
#include "util/ipc.h"
#include "unit/t.h"

#define EHLO_PIPE "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250 8BITMIME\r\n"
#define TRANSCRIPT_MAX 60000

/* How the scripted server answers; NULL closes the connection. */
struct script {
	const char	*greeting;	/* NULL: say nothing for 3 s */
	const char	*ehlo, *helo, *mail, *rcpt, *rcpt_bad, *data, *dot;
};

struct rcpt_want {
	unsigned int	 code;
	const char	*enh;
	const char	*text;		/* substring of the result text */
};

struct client_case {
	const char	*label;
	struct script	 s;
	const char	*rcpts[3];
	uint32_t	 btype;
	const char	*body;
	size_t		 chunk;		/* chunk size; 0: one chunk */
	struct rcpt_want want[3];
	const char	*sent[4];	/* must appear in the transcript */
	const char	*not_sent;	/* must not */
	uint32_t	 fetches;	/* body chunks fetched: 1 = all */
};

static const struct client_case cases[] = {
	{ "pipelined, all accepted",
	  { "220 mx.test ESMTP\r\n", EHLO_PIPE, NULL, "250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n",
	    NULL, "354 go\r\n", "250 2.0.0 Ok: queued as ABC\r\n" },
	  { "a@example.org", "b@example.org" }, MOAT_BODY_8BITMIME, "Subject: x\r\n\r\nhi\r\n", 0,
	  { { 250, "2.0.0", "Ok: queued as ABC" }, { 250, "2.0.0", "Ok: queued as ABC" } },
	  { "EHLO agent.test\r\nMAIL FROM:<s@example.com> SIZE=18 BODY=8BITMIME\r\n"
	    "RCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
	    "Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n" }, NULL, 1 },
	{ "serial without PIPELINING, no SIZE, 8-bit to an old server",
	  { "220 mx.test\r\n", "250 mx.test\r\n", NULL, "250 Ok\r\n", "250 Ok\r\n", NULL,
	    "354 go\r\n", "250 Ok\r\n" },
	  { "a@example.org" }, MOAT_BODY_8BITMIME, "hi\r\n", 0,
	  { { 250, "", "Ok" } },
	  { "MAIL FROM:<s@example.com>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n" }, "BODY=", 1 },
	{ "dot-stuffing across 1-byte chunks",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", "250 Ok\r\n", NULL, "354 go\r\n",
	    "250 Ok\r\n" },
	  { "a@example.org" }, MOAT_BODY_7BIT, ".a\r\n..b\r\n.\r\nc.\r\nend", 1,
	  { { 250, "", "Ok" } },
	  { "DATA\r\n..a\r\n...b\r\n..\r\nc.\r\nend\r\n.\r\nQUIT\r\n" }, "BODY=", 1 },
	{ "empty body",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", "250 Ok\r\n", NULL, "354 go\r\n",
	    "250 Ok\r\n" },
	  { "a@example.org" }, MOAT_BODY_7BIT, "", 0,
	  { { 250, "", "Ok" } }, { "SIZE=0\r\n", "DATA\r\n.\r\nQUIT\r\n" }, NULL, 1 },
	{ "one recipient refused with a multi-line reply",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", "250 Ok\r\n",
	    "550-5.1.1 <bad@example.org>: Recipient address rejected:\r\n"
	    "550 5.1.1 User unknown\r\n", "354 go\r\n", "250 2.0.0 Ok: queued\r\n" },
	  { "good@example.org", "bad@example.org", "good2@example.org" }, 0, "x\r\n", 0,
	  { { 250, "2.0.0", "Ok: queued" },
	    { 550, "5.1.1", "<bad@example.org>: Recipient address rejected: User unknown" },
	    { 250, "2.0.0", "Ok: queued" } }, { "x\r\n.\r\n" }, NULL, 1 },
	{ "every recipient refused, serial: no DATA",
	  { "220 mx\r\n", "250 mx\r\n", NULL, "250 Ok\r\n", NULL, "450 4.2.0 greylisted\r\n",
	    "354 go\r\n", "250 Ok\r\n" },
	  { "bad1@example.org", "bad2@example.org" }, 0, "x\r\n", 0,
	  { { 450, "4.2.0", "greylisted" }, { 450, "4.2.0", "greylisted" } },
	  { "QUIT\r\n" }, "DATA", 0 },
	{ "every recipient refused, pipelined, server says 354 anyway",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", NULL, "550 5.1.1 no\r\n",
	    "354 go\r\n", "554 5.5.1 no valid recipients\r\n" },
	  { "bad@example.org" }, 0, "secret body\r\n", 0,
	  { { 550, "5.1.1", "no" } }, { "DATA\r\n.\r\nQUIT\r\n" }, "secret", 0 },
	{ "every recipient refused, pipelined, DATA refused",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", NULL, "550 5.1.1 no\r\n",
	    "554 5.5.1 no valid recipients\r\n", NULL },
	  { "bad@example.org" }, 0, "secret body\r\n", 0,
	  { { 550, "5.1.1", "no" } }, { "DATA\r\nQUIT\r\n" }, "secret", 0 },
	{ "message larger than SIZE",
	  { "220 mx\r\n", "250-mx\r\n250 SIZE 10\r\n", NULL, "250 Ok\r\n", "250 Ok\r\n", NULL,
	    "354 go\r\n", "250 Ok\r\n" },
	  { "a@example.org", "b@example.org" }, 0, "01234567890\r\n", 0,
	  { { 552, "5.3.4", "exceeds size limit 10" }, { 552, "5.3.4", "exceeds" } },
	  { "QUIT\r\n" }, "MAIL", 0 },
	{ "SIZE without a limit does not stop mail",
	  { "220 mx\r\n", "250-mx\r\n250 SIZE\r\n", NULL, "250 Ok\r\n", "250 Ok\r\n", NULL,
	    "354 go\r\n", "250 Ok\r\n" },
	  { "a@example.org" }, 0, "01234567890\r\n", 0,
	  { { 250, "", "Ok" } }, { "SIZE=13\r\n" }, NULL, 1 },
	{ "EHLO refused 5xx: HELO",
	  { "220 mx\r\n", "502 5.5.2 what\r\n", "250 mx\r\n", "250 Ok\r\n", "250 Ok\r\n", NULL,
	    "354 go\r\n", "250 Ok\r\n" },
	  { "a@example.org" }, 0, "x\r\n", 0,
	  { { 250, "", "Ok" } }, { "EHLO agent.test\r\nHELO agent.test\r\n" }, NULL, 1 },
	{ "EHLO and HELO refused",
	  { "220 mx\r\n", "500 no\r\n", "554 5.7.1 go away\r\n", NULL, NULL, NULL, NULL, NULL },
	  { "a@example.org" }, 0, "x\r\n", 0,
	  { { 554, "5.7.1", "go away" } }, { "HELO" }, "MAIL", 0 },
	{ "EHLO refused 4xx: no HELO",
	  { "220 mx\r\n", "421 4.3.2 shutting down\r\n", "250 mx\r\n", NULL, NULL, NULL, NULL,
	    NULL },
	  { "a@example.org" }, 0, "x\r\n", 0,
	  { { 421, "4.3.2", "shutting down" } }, { "EHLO" }, "HELO", 0 },
	{ "greeting 554",
	  { "554 5.7.1 no service\r\n", NULL, NULL, NULL, NULL, NULL, NULL, NULL },
	  { "a@example.org", "b@example.org" }, 0, "x\r\n", 0,
	  { { 554, "5.7.1", "no service" }, { 554, "5.7.1", "no service" } },
	  { "QUIT" }, "EHLO", 0 },
	{ "multi-line greeting with bare LF",
	  { "220-mx.test\n220 ready\n", "250 mx\n", NULL, "250 Ok\n", "250 Ok\n", NULL,
	    "354 go\n", "250 Ok\n" },
	  { "a@example.org" }, 0, "x\r\n", 0, { { 250, "", "Ok" } }, { "QUIT" }, NULL, 1 },
	{ "malformed greeting",
	  { "220-mx\r\n230 mixed codes\r\n", NULL, NULL, NULL, NULL, NULL, NULL, NULL },
	  { "a@example.org" }, 0, "x\r\n", 0,
	  { { 0, "4.5.0", "malformed reply from 127.0.0.1[127.0.0.1]:" } }, { NULL }, "EHLO", 0 },
	{ "silent server",
	  { NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL },
	  { "a@example.org" }, 0, "x\r\n", 0,
	  { { 0, "4.4.2", "timed out while receiving the initial server greeting" } },
	  { NULL }, NULL, 0 },
	{ "MAIL refused",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "553 5.1.8 bad sender\r\n", "503 5.5.1 need MAIL\r\n",
	    NULL, "503 5.5.1 need RCPT\r\n", NULL },
	  { "a@example.org", "b@example.org" }, 0, "x\r\n", 0,
	  { { 553, "5.1.8", "bad sender" }, { 553, "5.1.8", "bad sender" } },
	  { "QUIT" }, NULL, 0 },
	{ "DATA refused",
	  { "220 mx\r\n", "250 mx\r\n", NULL, "250 Ok\r\n", "250 Ok\r\n", NULL,
	    "451 4.3.0 try later\r\n", NULL },
	  { "a@example.org" }, 0, "x\r\n", 0,
	  { { 451, "4.3.0", "try later" } }, { "DATA\r\nQUIT" }, NULL, 0 },
	{ "end of data refused",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", "250 Ok\r\n", NULL, "354 go\r\n",
	    "552 5.3.4 too big\r\n" },
	  { "a@example.org" }, 0, "x\r\n", 0, { { 552, "5.3.4", "too big" } }, { "QUIT" },
	  NULL, 1 },
	{ "connection lost after end of data",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", "250 Ok\r\n", NULL, "354 go\r\n",
	    NULL },
	  { "a@example.org" }, 0, "x\r\n", 0,
	  { { 0, "4.4.2", "may be sent more than once" } }, { "x\r\n.\r\n" }, "QUIT", 1 },
	{ "421 during RCPT",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", "250 Ok\r\n",
	    "421 4.7.0 closing\r\n", NULL, NULL },
	  { "good@example.org", "bad@example.org", "good2@example.org" }, 0, "x\r\n", 0,
	  { { 421, "4.7.0", "closing" }, { 421, "4.7.0", "closing" },
	    { 421, "4.7.0", "closing" } }, { NULL }, NULL, 0 },
};

/* s with CR and LF written as \r and \n, for one-line TAP labels. */
static const char *
esc(const char *s)
{
	static char out[2][512];
	static int k;
	size_t o = 0;

	k ^= 1;
	for (; *s != '\0' && o + 3 < sizeof(out[k]); s++) {
		if (*s == '\r' || *s == '\n') {
			out[k][o++] = '\\';
			out[k][o++] = *s == '\r' ? 'r' : 'n';
		} else
			out[k][o++] = *s;
	}
	out[k][o] = '\0';
	return out[k];
}

/* Read one line (up to LF) from fd into buf; its length, 0 at end of file. */
static size_t
srv_line(int fd, char *buf, size_t bufsz)
{
	size_t n = 0;
	char c;

	while (n + 1 < bufsz && read(fd, &c, 1) == 1) {
		buf[n++] = c;
		if (c == '\n')
			break;
	}
	buf[n] = '\0';
	return n;
}

static void
srv_say(int fd, const char *s)
{
	if (s != NULL)
		(void)!write(fd, s, strlen(s));
}

/*
 * Close as a careful server does (a "lingering close"): stop sending,
 * then read until the client closes.  Closing with pipelined commands
 * still unread would make the kernel send a reset, and a reset makes the
 * client's kernel throw away replies it has not read yet.
 */
static void
srv_close(int c)
{
	struct pollfd pfd = { c, POLLIN, 0 };
	char buf[512];

	(void)shutdown(c, SHUT_WR);
	while (poll(&pfd, 1, 2000) == 1 && read(c, buf, sizeof(buf)) > 0)
		;
	close(c);
}

/* The scripted server: one connection, transcript to tfd. */
static void
srv_run(int ls, int tfd, const struct script *s)
{
	char line[1200];
	const char *reply;
	int c;

	if ((c = accept(ls, NULL, NULL)) == -1)
		_exit(1);
	if (s->greeting == NULL) {
		sleep(3);
		_exit(0);
	}
	srv_say(c, s->greeting);
	while (srv_line(c, line, sizeof(line)) > 0) {
		(void)!write(tfd, line, strlen(line));
		if (strncasecmp(line, "EHLO", 4) == 0)
			reply = s->ehlo;
		else if (strncasecmp(line, "HELO", 4) == 0)
			reply = s->helo;
		else if (strncasecmp(line, "MAIL", 4) == 0)
			reply = s->mail;
		else if (strncasecmp(line, "RCPT", 4) == 0)
			reply = strstr(line, "bad") != NULL || s->rcpt == NULL ?
			    s->rcpt_bad : s->rcpt;
		else if (strncasecmp(line, "DATA", 4) == 0)
			reply = s->data;
		else if (strncasecmp(line, "QUIT", 4) == 0)
			reply = "221 2.0.0 Bye\r\n";
		else
			reply = "502 5.5.2 unknown\r\n";
		if (reply == NULL)
			break;
		srv_say(c, reply);
		if (strncmp(reply, "421", 3) == 0 || strncasecmp(line, "QUIT", 4) == 0)
			break;
		if (strncasecmp(line, "DATA", 4) == 0 && strncmp(reply, "354", 3) == 0) {
			while (srv_line(c, line, sizeof(line)) > 0) {
				(void)!write(tfd, line, strlen(line));
				if (strcmp(line, ".\r\n") == 0)
					break;
			}
			if (s->dot == NULL)
				break;
			srv_say(c, s->dot);
		}
	}
	srv_close(c);
	_exit(0);
}

/* A job for the relay transport, decoded as the agent would. */
static int
make_job(struct job *j, const char *hop, const char *const *rcpts, uint32_t btype,
    size_t size)
{
	struct ipc_wr w;
	struct ipc_frame f;
	const uint8_t *msg;
	const char *why;
	char err[JOB_ERR_MAX];
	uint32_t i, n = 0;
	size_t len;
	int r = -1;

	while (n < 3 && rcpts[n] != NULL)
		n++;
	ipc_wr_init(&w, IPC_Q2D_JOB, 0);
	ipc_put_u64(&w, 77);
	ipc_put_str(&w, "FEEDFACE00000001");
	ipc_put_str(&w, "s@example.com");
	ipc_put_u64(&w, size);
	ipc_put_u32(&w, btype);
	ipc_put_str(&w, hop);
	ipc_put_u32(&w, n);
	for (i = 0; i < n; i++) {
		ipc_put_u32(&w, i);
		ipc_put_str(&w, rcpts[i]);
	}
	if ((msg = ipc_wr_finish(&w, &len)) != NULL &&
	    ipc_frame_decode(msg, len, &f, &why) == 0) {
		f.fd = -1;
		r = job_decode(j, &f, err, sizeof(err));
	}
	ipc_wr_free(&w);
	return r;
}

/* Queue the body as chunks of the given size for the agent to fetch. */
static uint32_t
queue_body(int fd, uint64_t id, const char *body, size_t chunk)
{
	size_t len = strlen(body), off = 0, n;
	struct ipc_wr w;
	uint32_t seq = 0;

	if (chunk == 0)
		chunk = len > 0 ? len : 1;
	do {
		n = len - off < chunk ? len - off : chunk;
		ipc_wr_init(&w, IPC_Q2D_CHUNK, 0);
		ipc_put_u64(&w, id);
		ipc_put_u32(&w, seq++);
		ipc_put_u32(&w, off + n == len);
		ipc_put_blob(&w, body + off, n);
		(void)ipc_send(fd, &w, -1);
		ipc_wr_free(&w);
		off += n;
	} while (off < len);
	return seq;
}

/* FETCH requests the agent sent. */
static uint32_t
count_fetches(int fd)
{
	uint8_t *buf = malloc(IPC_MAX_MSG);
	struct ipc_frame f;
	const char *why;
	uint32_t n = 0;
	ssize_t r;

	while ((r = recv(fd, buf, IPC_MAX_MSG, MSG_DONTWAIT)) > 0)
		if (ipc_frame_decode(buf, (size_t)r, &f, &why) == 0 &&
		    f.hdr.type == IPC_D2Q_FETCH)
			n++;
	free(buf);
	return n;
}

/* A listening socket on 127.0.0.1 and its port. */
static int
listen_any(unsigned int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int s;

	if ((s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(s, 4) == -1 ||
	    getsockname(s, (struct sockaddr *)&sin, &len) == -1) {
		close(s);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return s;
}

static void
run_case(const struct client_case *c)
{
	struct smtp_client_opts o = { "agent.test", 2000, 1000 };
	char hop[64], *tr = calloc(1, TRANSCRIPT_MAX + 1);
	unsigned int port;
	uint32_t chunks, fetched;
	struct job j;
	size_t i, tlen = 0;
	ssize_t n;
	int ls, tp[2], sv[2], r;
	pid_t pid;

	if ((ls = listen_any(&port)) == -1 || pipe(tp) == -1 || ipc_socketpair(sv) == -1) {
		T_OK(0, "%s: set-up", c->label);
		return;
	}
	if ((pid = fork()) == 0) {
		close(tp[0]);
		srv_run(ls, tp[1], &c->s);
	}
	close(ls);
	close(tp[1]);
	snprintf(hop, sizeof(hop), "[127.0.0.1]:%u", port);
	job_init(&j, sv[0]);
	T_OK(make_job(&j, hop, c->rcpts, c->btype, strlen(c->body)) == 0,
	    "%s: job", c->label);
	chunks = queue_body(sv[1], 77, c->body, c->chunk);
	r = smtp_client_deliver(&j, &o);
	while ((n = read(tp[0], tr + tlen, TRANSCRIPT_MAX - tlen)) > 0)
		tlen += (size_t)n;
	waitpid(pid, NULL, 0);
	fetched = count_fetches(sv[1]);
	T_OK(r == 0 && !job_pending(&j), "%s: every recipient has a result", c->label);
	for (i = 0; i < j.nrcpt; i++) {
		const struct job_rcpt *rc = &j.rcpt[i];

		T_OK(rc->code == c->want[i].code && strcmp(rc->enh, c->want[i].enh) == 0 &&
		    strstr(rc->text, c->want[i].text) != NULL,
		    "%s: recipient %zu: %u %s %s", c->label, i, rc->code, rc->enh, rc->text);
	}
	for (i = 0; i < 4 && c->sent[i] != NULL; i++)
		T_OK(strstr(tr, c->sent[i]) != NULL, "%s: server got '%s'", c->label,
		    esc(c->sent[i]));
	if (c->not_sent != NULL)
		T_OK(strstr(tr, c->not_sent) == NULL, "%s: server never got '%s'",
		    c->label, c->not_sent);
	T_OK(c->fetches ? fetched == chunks : fetched == 0,
	    "%s: %u of %u chunks fetched", c->label, fetched, chunks);
	snprintf(hop, sizeof(hop), "127.0.0.1[127.0.0.1]:%u", port);
	T_OK(strcmp(j.relay, hop) == 0, "%s: relay named %s", c->label, j.relay);
	job_clear(&j);
	free(j.buf);
	free(tr);
	close(tp[0]);
	close(sv[0]);
	close(sv[1]);
}

/* Nobody listening: code 0 and the connect diagnostic. */
static void
test_refused(void)
{
	static const char *const rcpts[] = { "a@example.org", NULL };
	struct smtp_client_opts o = { "agent.test", 2000, 1000 };
	char hop[64], want[128];
	unsigned int port;
	struct job j;
	int ls;

	if ((ls = listen_any(&port)) == -1) {
		T_OK(0, "refused: set-up");
		return;
	}
	close(ls);
	snprintf(hop, sizeof(hop), "[127.0.0.1]:%u", port);
	job_init(&j, -1);
	T_OK(make_job(&j, hop, rcpts, 0, 3) == 0, "refused: job");
	T_OK(smtp_client_deliver(&j, &o) == 0, "refused: delivered");
	snprintf(want, sizeof(want), "connect to 127.0.0.1[127.0.0.1]:%u: "
	    "Connection refused", port);
	T_OK(j.rcpt[0].code == 0 && strcmp(j.rcpt[0].enh, "4.4.1") == 0 &&
	    strcmp(j.rcpt[0].text, want) == 0, "refused: %s", j.rcpt[0].text);
	job_clear(&j);

	T_OK(make_job(&j, "mx.example.org:25", rcpts, 0, 3) == 0 &&
	    smtp_client_deliver(&j, &o) == 0, "host name next hop: delivered");
	T_OK(j.rcpt[0].code == 0 && strcmp(j.rcpt[0].enh, "4.4.3") == 0 &&
	    strcmp(j.relay, "none") == 0, "host name next hop: deferred 4.4.3 (%s)",
	    j.rcpt[0].text);
	job_clear(&j);
	free(j.buf);
}

/* The queue-manager channel breaks in the middle of the body: -1. */
static void
test_channel_error(void)
{
	static const struct script s = { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n",
	    "250 Ok\r\n", NULL, "354 go\r\n", "250 Ok\r\n" };
	static const char *const rcpts[] = { "a@example.org", NULL };
	struct smtp_client_opts o = { "agent.test", 2000, 1000 };
	char hop[64];
	unsigned int port;
	struct job j;
	int ls, tp[2], sv[2];
	pid_t pid;

	if ((ls = listen_any(&port)) == -1 || pipe(tp) == -1 || ipc_socketpair(sv) == -1) {
		T_OK(0, "channel error: set-up");
		return;
	}
	if ((pid = fork()) == 0) {
		close(tp[0]);
		srv_run(ls, tp[1], &s);
	}
	close(ls);
	close(tp[1]);
	snprintf(hop, sizeof(hop), "[127.0.0.1]:%u", port);
	job_init(&j, sv[0]);
	(void)make_job(&j, hop, rcpts, 0, 10);
	(void)queue_body(sv[1], 78, "0123456789", 0);	/* another job's chunk */
	T_OK(smtp_client_deliver(&j, &o) == -1 && j.err[0] != '\0',
	    "channel error mid-body: -1 (%s)", j.err);
	waitpid(pid, NULL, 0);
	job_clear(&j);
	free(j.buf);
	close(tp[0]);
	close(sv[0]);
	close(sv[1]);
}

int
main(void)
{
	size_t i;

	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	test_refused();
	test_channel_error();
	return t_done();
}
