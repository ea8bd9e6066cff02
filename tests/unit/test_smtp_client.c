/*
 * test_smtp_client.c: the relay transport (delivery-agent/smtp_client.c)
 * against scripted SMTP and LMTP servers on the loopback interface.  Each
 * case runs jobs: the server (a child process) answers each command with
 * the case's reply and records what it was sent; the test checks every
 * recipient's result and the transcript.  Routing cases give the client
 * a resolver that answers from a table (targets on loopback, or a DNS
 * status), since what DNS itself does is dns.c's and is tested there and
 * in tests/integration/test_routing.py against a real DNS server.
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

#include "delivery-agent/dns.h"
#include "delivery-agent/job.h"
#include "delivery-agent/selfaddr.h"
#include "delivery-agent/smtp_client.h"
#include "delivery-agent/xtext.h"
#include "mail/nexthop.h"
#include "ipc_types.h"
#include "util/ipc.h"
#include "util/netaddr.h"
#include "util/xmalloc.h"
#include "unit/t.h"

#define EHLO_PIPE "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250 8BITMIME\r\n"
#define TRANSCRIPT_MAX 60000

/* How the scripted server answers; NULL closes the connection. */
struct script {
	const char	*greeting;	/* NULL: say nothing for 3 s */
	const char	*ehlo, *helo, *mail, *rcpt, *rcpt_bad, *data, *dot;
	int		 lmtp;		/* one end-of-data reply per accepted
					   RCPT; "late" recipients get 552 */
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
	    NULL, "354 go\r\n", "250 2.0.0 Ok: queued as ABC\r\n", 0 },
	  { "a@example.org", "b@example.org" }, MOAT_BODY_8BITMIME, "Subject: x\r\n\r\nhi\r\n", 0,
	  { { 250, "2.0.0", "Ok: queued as ABC" }, { 250, "2.0.0", "Ok: queued as ABC" } },
	  { "EHLO agent.test\r\nMAIL FROM:<s@example.com> SIZE=18 BODY=8BITMIME\r\n"
	    "RCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
	    "Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n" }, NULL, 1 },
	{ "serial without PIPELINING, no SIZE, 8-bit to an old server",
	  { "220 mx.test\r\n", "250 mx.test\r\n", NULL, "250 Ok\r\n", "250 Ok\r\n", NULL,
	    "354 go\r\n", "250 Ok\r\n", 0 },
	  { "a@example.org" }, MOAT_BODY_8BITMIME, "hi\r\n", 0,
	  { { 250, "", "Ok" } },
	  { "MAIL FROM:<s@example.com>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n" }, "BODY=", 1 },
	{ "dot-stuffing across 1-byte chunks",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", "250 Ok\r\n", NULL, "354 go\r\n",
	    "250 Ok\r\n", 0 },
	  { "a@example.org" }, MOAT_BODY_7BIT, ".a\r\n..b\r\n.\r\nc.\r\nend", 1,
	  { { 250, "", "Ok" } },
	  { "DATA\r\n..a\r\n...b\r\n..\r\nc.\r\nend\r\n.\r\nQUIT\r\n" }, "BODY=", 1 },
	{ "empty body",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", "250 Ok\r\n", NULL, "354 go\r\n",
	    "250 Ok\r\n", 0 },
	  { "a@example.org" }, MOAT_BODY_7BIT, "", 0,
	  { { 250, "", "Ok" } }, { "SIZE=0\r\n", "DATA\r\n.\r\nQUIT\r\n" }, NULL, 1 },
	{ "one recipient refused with a multi-line reply",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", "250 Ok\r\n",
	    "550-5.1.1 <bad@example.org>: Recipient address rejected:\r\n"
	    "550 5.1.1 User unknown\r\n", "354 go\r\n", "250 2.0.0 Ok: queued\r\n", 0 },
	  { "good@example.org", "bad@example.org", "good2@example.org" }, 0, "x\r\n", 0,
	  { { 250, "2.0.0", "Ok: queued" },
	    { 550, "5.1.1", "<bad@example.org>: Recipient address rejected: User unknown" },
	    { 250, "2.0.0", "Ok: queued" } }, { "x\r\n.\r\n" }, NULL, 1 },
	{ "every recipient refused, serial: no DATA",
	  { "220 mx\r\n", "250 mx\r\n", NULL, "250 Ok\r\n", NULL, "450 4.2.0 greylisted\r\n",
	    "354 go\r\n", "250 Ok\r\n", 0 },
	  { "bad1@example.org", "bad2@example.org" }, 0, "x\r\n", 0,
	  { { 450, "4.2.0", "greylisted" }, { 450, "4.2.0", "greylisted" } },
	  { "QUIT\r\n" }, "DATA", 0 },
	{ "every recipient refused, pipelined, server says 354 anyway",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", NULL, "550 5.1.1 no\r\n",
	    "354 go\r\n", "554 5.5.1 no valid recipients\r\n", 0 },
	  { "bad@example.org" }, 0, "secret body\r\n", 0,
	  { { 550, "5.1.1", "no" } }, { "DATA\r\n.\r\nQUIT\r\n" }, "secret", 0 },
	{ "every recipient refused, pipelined, DATA refused",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", NULL, "550 5.1.1 no\r\n",
	    "554 5.5.1 no valid recipients\r\n", NULL, 0 },
	  { "bad@example.org" }, 0, "secret body\r\n", 0,
	  { { 550, "5.1.1", "no" } }, { "DATA\r\nQUIT\r\n" }, "secret", 0 },
	{ "message larger than SIZE",
	  { "220 mx\r\n", "250-mx\r\n250 SIZE 10\r\n", NULL, "250 Ok\r\n", "250 Ok\r\n", NULL,
	    "354 go\r\n", "250 Ok\r\n", 0 },
	  { "a@example.org", "b@example.org" }, 0, "01234567890\r\n", 0,
	  { { 552, "5.3.4", "exceeds size limit 10" }, { 552, "5.3.4", "exceeds" } },
	  { "QUIT\r\n" }, "MAIL", 0 },
	{ "SIZE without a limit does not stop mail",
	  { "220 mx\r\n", "250-mx\r\n250 SIZE\r\n", NULL, "250 Ok\r\n", "250 Ok\r\n", NULL,
	    "354 go\r\n", "250 Ok\r\n", 0 },
	  { "a@example.org" }, 0, "01234567890\r\n", 0,
	  { { 250, "", "Ok" } }, { "SIZE=13\r\n" }, NULL, 1 },
	{ "EHLO refused 5xx: HELO",
	  { "220 mx\r\n", "502 5.5.2 what\r\n", "250 mx\r\n", "250 Ok\r\n", "250 Ok\r\n", NULL,
	    "354 go\r\n", "250 Ok\r\n", 0 },
	  { "a@example.org" }, 0, "x\r\n", 0,
	  { { 250, "", "Ok" } }, { "EHLO agent.test\r\nHELO agent.test\r\n" }, NULL, 1 },
	{ "EHLO and HELO refused",
	  { "220 mx\r\n", "500 no\r\n", "554 5.7.1 go away\r\n", NULL, NULL, NULL, NULL, NULL, 0 },
	  { "a@example.org" }, 0, "x\r\n", 0,
	  { { 0, "4.7.1", "said: 554 5.7.1 go away (in reply to HELO command)" } },
	  { "HELO", "QUIT" }, "MAIL", 0 },
	{ "EHLO refused 4xx: no HELO",
	  { "220 mx\r\n", "421 4.3.2 shutting down\r\n", "250 mx\r\n", NULL, NULL, NULL, NULL,
	    NULL, 0 },
	  { "a@example.org" }, 0, "x\r\n", 0,
	  { { 0, "4.3.2", "said: 421 4.3.2 shutting down (in reply to EHLO command)" } },
	  { "EHLO" }, "HELO", 0 },
	{ "greeting 554",
	  { "554 5.7.1 no service\r\n", NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0 },
	  { "a@example.org", "b@example.org" }, 0, "x\r\n", 0,
	  { { 0, "4.7.1", "refused to talk to me: 554 5.7.1 no service" },
	    { 0, "4.7.1", "refused to talk to me: 554 5.7.1 no service" } },
	  { "QUIT" }, "EHLO", 0 },
	{ "multi-line greeting with bare LF",
	  { "220-mx.test\n220 ready\n", "250 mx\n", NULL, "250 Ok\n", "250 Ok\n", NULL,
	    "354 go\n", "250 Ok\n", 0 },
	  { "a@example.org" }, 0, "x\r\n", 0, { { 250, "", "Ok" } }, { "QUIT" }, NULL, 1 },
	{ "malformed greeting",
	  { "220-mx\r\n230 mixed codes\r\n", NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0 },
	  { "a@example.org" }, 0, "x\r\n", 0,
	  { { 0, "4.5.0", "malformed reply from 127.0.0.1[127.0.0.1]:" } }, { NULL }, "EHLO", 0 },
	{ "silent server",
	  { NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0 },
	  { "a@example.org" }, 0, "x\r\n", 0,
	  { { 0, "4.4.2", "timed out while receiving the initial server greeting" } },
	  { NULL }, NULL, 0 },
	{ "MAIL refused",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "553 5.1.8 bad sender\r\n", "503 5.5.1 need MAIL\r\n",
	    NULL, "503 5.5.1 need RCPT\r\n", NULL, 0 },
	  { "a@example.org", "b@example.org" }, 0, "x\r\n", 0,
	  { { 553, "5.1.8", "bad sender" }, { 553, "5.1.8", "bad sender" } },
	  { "QUIT" }, NULL, 0 },
	{ "DATA refused",
	  { "220 mx\r\n", "250 mx\r\n", NULL, "250 Ok\r\n", "250 Ok\r\n", NULL,
	    "451 4.3.0 try later\r\n", NULL, 0 },
	  { "a@example.org" }, 0, "x\r\n", 0,
	  { { 451, "4.3.0", "try later" } }, { "DATA\r\nQUIT" }, NULL, 0 },
	{ "end of data refused",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", "250 Ok\r\n", NULL, "354 go\r\n",
	    "552 5.3.4 too big\r\n", 0 },
	  { "a@example.org" }, 0, "x\r\n", 0, { { 552, "5.3.4", "too big" } }, { "QUIT" },
	  NULL, 1 },
	{ "connection lost after end of data",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", "250 Ok\r\n", NULL, "354 go\r\n",
	    NULL, 0 },
	  { "a@example.org" }, 0, "x\r\n", 0,
	  { { 0, "4.4.2", "may be sent more than once" } }, { "x\r\n.\r\n" }, "QUIT", 1 },
	{ "421 during RCPT",
	  { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n", "250 Ok\r\n",
	    "421 4.7.0 closing\r\n", NULL, NULL, 0 },
	  { "good@example.org", "bad@example.org", "good2@example.org" }, 0, "x\r\n", 0,
	  { { 421, "4.7.0", "closing" }, { 421, "4.7.0", "closing" },
	    { 421, "4.7.0", "closing" } }, { NULL }, NULL, 0 },
	{ "LMTP: one reply per accepted recipient, in RCPT order",
	  { "220 lmtp.test LMTP\r\n", "250-lmtp.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
	    NULL, "250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", "550 5.1.1 unknown\r\n",
	    "354 go\r\n", "250 2.0.0 delivered\r\n", 1 },
	  { "a@example.org", "bad@example.org", "late@example.org" }, 0, "x\r\n", 0,
	  { { 250, "2.0.0", "delivered" }, { 550, "5.1.1", "unknown" },
	    { 552, "5.2.2", "mailbox full" } },
	  { "LHLO agent.test\r\n", "x\r\n.\r\nQUIT\r\n" }, "EHLO", 1 },
	{ "LMTP without PIPELINING: serial, no HELO fallback needed",
	  { "220 lmtp.test LMTP\r\n", "250 lmtp.test\r\n", NULL, "250 Ok\r\n", "250 Ok\r\n",
	    NULL, "354 go\r\n", "250 2.1.5 Ok\r\n", 1 },
	  { "late@example.org", "b@example.org" }, 0, "x\r\n", 0,
	  { { 552, "5.2.2", "mailbox full" }, { 250, "2.1.5", "Ok" } },
	  { "LHLO agent.test\r\nMAIL FROM:<s@example.com>\r\nRCPT TO:<late@example.org>\r\n" },
	  "HELO", 1 },
	{ "LMTP: LHLO refused, no HELO",
	  { "220 lmtp.test\r\n", "500 5.5.1 what\r\n", "250 hi\r\n", NULL, NULL, NULL, NULL,
	    NULL, 1 },
	  { "a@example.org" }, 0, "x\r\n", 0,
	  { { 0, "4.5.1", "(in reply to LHLO command)" } }, { "LHLO", "QUIT" }, "HELO", 0 },
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
/* Connections the scripted server takes before it exits. */
static int srv_nconn = 1;
/* Close the connection after each end-of-data reply (2: 150 ms later). */
static int srv_close_after_dot;

/* One connection of the scripted server. */
static void
srv_conn(int c, int tfd, const struct script *s)
{
	char line[1200];
	const char *reply;
	int naccepted = 0, late[64], k;

	(void)!write(tfd, "[connect]\n", 10);
	if (s->greeting == NULL) {
		sleep(3);
		_exit(0);
	}
	srv_say(c, s->greeting);
	while (srv_line(c, line, sizeof(line)) > 0) {
		(void)!write(tfd, line, strlen(line));
		if (strncasecmp(line, "EHLO", 4) == 0 ||
		    strncasecmp(line, "LHLO", 4) == 0)
			reply = s->ehlo;
		else if (strncasecmp(line, "HELO", 4) == 0)
			reply = s->helo;
		else if (strncasecmp(line, "MAIL", 4) == 0) {
			reply = s->mail;
			naccepted = 0;
		} else if (strncasecmp(line, "RCPT", 4) == 0) {
			reply = strstr(line, "bad") != NULL || s->rcpt == NULL ?
			    s->rcpt_bad : s->rcpt;
			if (reply != NULL && reply[0] == '2' && naccepted < 64)
				late[naccepted++] = strstr(line, "late") != NULL;
		}
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
			if (!s->lmtp)
				srv_say(c, s->dot);
			for (k = 0; s->lmtp && k < naccepted; k++)
				srv_say(c, late[k] ? "552 5.2.2 mailbox full\r\n" : s->dot);
			if (srv_close_after_dot == 2)
				usleep(150000);
			if (srv_close_after_dot)
				break;
		}
	}
	srv_close(c);
}

/* The scripted server: srv_nconn connections, transcript to tfd. */
static void
srv_run(int ls, int tfd, const struct script *s)
{
	int c, n;

	for (n = 0; n < srv_nconn; n++) {
		if ((c = accept(ls, NULL, NULL)) == -1)
			_exit(1);
		srv_conn(c, tfd, s);
	}
	_exit(0);
}

/* DSN fields of the jobs make_job() builds (recipient 0 only). */
static uint32_t dsn_ret, dsn_notify;
static const char *dsn_envid = "", *dsn_orcpt = "";

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
	/* Several jobs may share a channel: the job id follows the hop. */
	ipc_wr_init(&w, IPC_Q2D_JOB, 0);
	ipc_put_u64(&w, 77);
	ipc_put_str(&w, "FEEDFACE00000001");
	ipc_put_str(&w, "s@example.com");
	ipc_put_u64(&w, size);
	ipc_put_u32(&w, btype);
	ipc_put_str(&w, hop);
	ipc_put_u32(&w, dsn_ret);
	ipc_put_str(&w, dsn_envid);
	ipc_put_u32(&w, n);
	for (i = 0; i < n; i++) {
		ipc_put_u32(&w, i);
		ipc_put_str(&w, rcpts[i]);
		ipc_put_u32(&w, i == 0 ? dsn_notify : 0);
		ipc_put_str(&w, i == 0 ? dsn_orcpt : "");
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

/* Options for a client that never keeps a connection. */
static const struct smtp_client_opts opts_plain = { "agent.test", 2000, 1000, 0, 0,
    NULL, NULL, NULL };

/* One job through a fresh client, which is freed afterwards. */
static int
deliver_once(struct job *j, const struct smtp_client_opts *o)
{
	struct smtp_client *sc = smtp_client_new(o);
	int r = smtp_client_deliver(sc, j);

	smtp_client_free(sc);
	return r;
}

static void
run_case(const struct client_case *c)
{
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
	snprintf(hop, sizeof(hop), "%s:[127.0.0.1]:%u", c->s.lmtp ? "lmtp" : "smtp",
	    port);
	job_init(&j, sv[0]);
	T_OK(make_job(&j, hop, c->rcpts, c->btype, strlen(c->body)) == 0,
	    "%s: job", c->label);
	chunks = queue_body(sv[1], 77, c->body, c->chunk);
	r = deliver_once(&j, &opts_plain);
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
		T_OK(rc->flags == (c->s.lmtp && rc->code / 100 == 2 ?
		    MOAT_RESULT_FINAL : 0u), "%s: recipient %zu: flags %#x", c->label,
		    i, rc->flags);
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


/* A scripted server in a child process. */
struct server {
	unsigned int	 port;
	pid_t		 pid;
	int		 tfd;		/* transcript, read end */
};

static int
server_start(struct server *sv, const struct script *s)
{
	int ls, tp[2];

	if ((ls = listen_any(&sv->port)) == -1 || pipe(tp) == -1)
		return -1;
	if ((sv->pid = fork()) == 0) {
		close(tp[0]);
		srv_run(ls, tp[1], s);
	}
	close(ls);
	close(tp[1]);
	sv->tfd = tp[0];
	return sv->pid == -1 ? -1 : 0;
}

/* Wait for the server to finish; its transcript (free it). */
static char *
server_finish(struct server *sv)
{
	char *tr = calloc(1, TRANSCRIPT_MAX + 1);
	size_t tlen = 0;
	ssize_t n;

	while ((n = read(sv->tfd, tr + tlen, TRANSCRIPT_MAX - tlen)) > 0)
		tlen += (size_t)n;
	close(sv->tfd);
	waitpid(sv->pid, NULL, 0);
	return tr;
}

/* How many times needle occurs in hay. */
static int
count_str(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* A port nobody listens on. */
static unsigned int
closed_port(void)
{
	unsigned int port = 0;
	int ls;

	if ((ls = listen_any(&port)) != -1)
		close(ls);
	return port;
}

/* The resolver the routing cases give the client: a fixed answer. */
static struct dns_result table_res;
static char table_asked[256];

static void
table_resolve(const struct nexthop *nh, struct dns_result *res)
{
	strlcpy_m(table_asked, nh->host, sizeof(table_asked));
	*res = table_res;
}

static void
table_set(enum dns_status st, const char *why)
{
	memset(&table_res, 0, sizeof(table_res));
	table_res.status = st;
	strlcpy_m(table_res.why, why, sizeof(table_res.why));
	table_asked[0] = '\0';
}

/* Append a target host[ip]:port to the table. */
static void
table_add(const char *host, const char *ip, unsigned int port)
{
	struct dns_target *t = &table_res.t[table_res.n++];
	struct sockaddr_in *sin = (struct sockaddr_in *)&t->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->ss;

	strlcpy_m(t->host, host, sizeof(t->host));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		t->sslen = sizeof(*sin);
	} else {
		(void)inet_pton(AF_INET6, ip, &sin6->sin6_addr);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		t->sslen = sizeof(*sin6);
	}
}

static const struct script script_ok = { "220 mx\r\n", EHLO_PIPE, NULL, "250 Ok\r\n",
    "250 Ok\r\n", NULL, "354 go\r\n", "250 2.0.0 Ok: queued\r\n", 0 };
static const struct script script_ok_dsn = { "220 mx\r\n",
    "250-mx\r\n250-PIPELINING\r\n250-DSN\r\n250 SIZE\r\n", NULL, "250 Ok\r\n",
    "250 Ok\r\n", NULL, "354 go\r\n", "250 2.0.0 Ok: queued\r\n", 0 };
static const struct script script_busy = { "421 4.3.2 busy\r\n", NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, 0 };
static const struct script script_5xx = { "554 5.3.2 no thanks\r\n", NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, 0 };

/* One job (3 bytes of body, one chunk) over the channel sv through sc. */
static int
run_job(struct smtp_client *sc, struct job *j, int qfd, const char *hop,
    const char *const *rcpts)
{
	job_clear(j);
	if (make_job(j, hop, rcpts, 0, 3) == -1)
		return -1;
	(void)queue_body(qfd, 77, "x\r\n", 0);
	return smtp_client_deliver(sc, j);
}

/* Nobody listening: code 0 and the connect diagnostic; bad next hops. */
static void
test_refused(void)
{
	static const char *const rcpts[] = { "a@example.org", NULL };
	static const struct {
		const char	*hop;
		const char	*enh;
		const char	*text;
	} bad[] = {
		{ "[127.0.0.1]:25", "4.3.5", "bad next hop" },
		{ "mx.example.org:25", "4.3.5", "bad next hop" },
		{ "smtp:[127.0.0.1]:0", "4.3.5", "bad next hop" },
		{ "smtp:[127.0.0.1]:25\r\nRSET", "4.3.5", "bad next hop" },
		{ "", "4.3.5", "bad next hop" },
		{ "lmtp:unix:/run/dovecot/lmtp", "4.3.5",
		  "lmtp:unix is not supported by this build" },
		{ "smtp:example.org:25", "4.4.3", "no resolver for example.org" },
	};
	char hop[64], want[128];
	unsigned int port = closed_port();
	struct job j;
	size_t i;

	snprintf(hop, sizeof(hop), "smtp:[127.0.0.1]:%u", port);
	job_init(&j, -1);
	T_OK(make_job(&j, hop, rcpts, 0, 3) == 0, "refused: job");
	T_OK(deliver_once(&j, &opts_plain) == 0, "refused: delivered");
	snprintf(want, sizeof(want), "connect to 127.0.0.1[127.0.0.1]:%u: "
	    "Connection refused", port);
	T_OK(j.rcpt[0].code == 0 && strcmp(j.rcpt[0].enh, "4.4.1") == 0 &&
	    strcmp(j.rcpt[0].text, want) == 0, "refused: %s", j.rcpt[0].text);
	job_clear(&j);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		T_OK(make_job(&j, bad[i].hop, rcpts, 0, 3) == 0 &&
		    deliver_once(&j, &opts_plain) == 0, "next hop '%s': done",
		    esc(bad[i].hop));
		T_OK(j.rcpt[0].code == 0 && strcmp(j.rcpt[0].enh, bad[i].enh) == 0 &&
		    strcmp(j.rcpt[0].text, bad[i].text) == 0 &&
		    strcmp(j.relay, "none") == 0, "next hop '%s': %s %s",
		    esc(bad[i].hop), j.rcpt[0].enh, j.rcpt[0].text);
		job_clear(&j);
	}
	free(j.buf);
}

/* The queue-manager channel breaks in the middle of the body: -1. */
static void
test_channel_error(void)
{
	static const char *const rcpts[] = { "a@example.org", NULL };
	struct server srv;
	char hop[64];
	struct job j;
	int sv[2];

	if (server_start(&srv, &script_ok) == -1 || ipc_socketpair(sv) == -1) {
		T_OK(0, "channel error: set-up");
		return;
	}
	snprintf(hop, sizeof(hop), "smtp:[127.0.0.1]:%u", srv.port);
	job_init(&j, sv[0]);
	(void)make_job(&j, hop, rcpts, 0, 10);
	(void)queue_body(sv[1], 78, "0123456789", 0);	/* another job's chunk */
	T_OK(deliver_once(&j, &opts_plain) == -1 && j.err[0] != '\0',
	    "channel error mid-body: -1 (%s)", j.err);
	free(server_finish(&srv));
	job_clear(&j);
	free(j.buf);
	close(sv[0]);
	close(sv[1]);
}

/*
 * Targets in order: a refused connection, a 421 greeting and a 5xx
 * greeting each pass on to the next target; the last working one
 * delivers.  When none works, the last reason defers every recipient.
 */
static void
test_targets(void)
{
	static const char *const rcpts[] = { "a@example.org", "b@example.org", NULL };
	struct smtp_client_opts o = opts_plain;
	struct server busy, rej, ok;
	struct smtp_client *sc;
	char want[128], *tr;
	unsigned int dead = closed_port();
	struct job j;
	int sv[2];

	srv_nconn = 1;
	if (server_start(&busy, &script_busy) == -1 ||
	    server_start(&rej, &script_5xx) == -1 ||
	    server_start(&ok, &script_ok) == -1 || ipc_socketpair(sv) == -1) {
		T_OK(0, "targets: set-up");
		return;
	}
	o.resolve = table_resolve;
	table_set(DNS_OK, "");
	table_add("mx1.example.test", "127.0.0.1", dead);
	table_add("mx2.example.test", "127.0.0.1", busy.port);
	table_add("mx3.example.test", "127.0.0.1", rej.port);
	table_add("mx4.example.test", "127.0.0.1", ok.port);
	job_init(&j, sv[0]);
	sc = smtp_client_new(&o);
	T_OK(run_job(sc, &j, sv[1], "smtp:example.test:25", rcpts) == 0,
	    "targets: job done");
	T_OK(strcmp(table_asked, "example.test") == 0, "targets: resolved %s",
	    table_asked);
	snprintf(want, sizeof(want), "mx4.example.test[127.0.0.1]:%u", ok.port);
	T_OK(j.rcpt[0].code == 250 && j.rcpt[1].code == 250 &&
	    strcmp(j.relay, want) == 0, "targets: delivered by the fourth (%s %u %s)",
	    j.relay, j.rcpt[0].code, j.rcpt[0].text);
	smtp_client_free(sc);
	free(server_finish(&busy));
	tr = server_finish(&rej);
	T_OK(strstr(tr, "QUIT") != NULL && strstr(tr, "EHLO") == NULL,
	    "targets: the 5xx greeter got QUIT only");
	free(tr);
	tr = server_finish(&ok);
	T_OK(count_str(tr, "RCPT TO:") == 2, "targets: one transaction, two RCPTs");
	free(tr);

	/* Nothing works: the last reason, deferred. */
	if (server_start(&rej, &script_5xx) == -1) {
		T_OK(0, "targets: set-up 2");
		return;
	}
	table_set(DNS_OK, "");
	table_add("mx1.example.test", "127.0.0.1", dead);
	table_add("mx2.example.test", "127.0.0.1", rej.port);
	sc = smtp_client_new(&o);
	T_OK(run_job(sc, &j, sv[1], "smtp:example.test:25", rcpts) == 0,
	    "targets: all failing: done");
	snprintf(want, sizeof(want), "host mx2.example.test[127.0.0.1]:%u refused "
	    "to talk to me: 554 5.3.2 no thanks", rej.port);
	T_OK(j.rcpt[0].code == 0 && j.rcpt[1].code == 0 &&
	    strcmp(j.rcpt[0].enh, "4.3.2") == 0 && strcmp(j.rcpt[1].text, want) == 0,
	    "targets: all failing: deferred with the last reason (%s %s)",
	    j.rcpt[1].enh, j.rcpt[1].text);
	T_OK(smtp_client_cached(sc) == NULL, "targets: all failing: nothing kept");
	smtp_client_free(sc);
	free(server_finish(&rej));
	job_clear(&j);
	free(j.buf);
	close(sv[0]);
	close(sv[1]);
}

/* What DNS said decides alone: null MX, no such domain, a failure. */
static void
test_dns_status(void)
{
	static const char *const rcpts[] = { "a@example.org", "b@example.org", NULL };
	static const struct {
		enum dns_status	 st;
		const char	*why;
		unsigned int	 code;
		const char	*enh;
		const char	*text;
	} c[] = {
		{ DNS_NULLMX, "null MX", 556, "5.1.10",
		  "Domain example.test does not accept mail (null MX)" },
		{ DNS_NOTFOUND, "lookup of MX for example.test: no such domain", 550,
		  "5.1.2", "lookup of MX for example.test: no such domain" },
		{ DNS_TEMPFAIL, "lookup of MX for example.test: server failure (SERVFAIL)",
		  0, "4.4.3", "lookup of MX for example.test: server failure (SERVFAIL)" },
		{ DNS_OK, "", 0, "4.4.3", "no address for example.test" },
	};
	struct smtp_client_opts o = opts_plain;
	struct job j;
	size_t i;

	o.resolve = table_resolve;
	job_init(&j, -1);
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		table_set(c[i].st, c[i].why);
		T_OK(make_job(&j, "smtp:example.test:25", rcpts, 0, 3) == 0 &&
		    deliver_once(&j, &o) == 0, "dns %s: done", dns_status_name(c[i].st));
		T_OK(j.rcpt[0].code == c[i].code && j.rcpt[1].code == c[i].code &&
		    strcmp(j.rcpt[1].enh, c[i].enh) == 0 &&
		    strcmp(j.rcpt[1].text, c[i].text) == 0 && strcmp(j.relay, "none") == 0,
		    "dns %s: %u %s %s", dns_status_name(c[i].st), j.rcpt[1].code,
		    j.rcpt[1].enh, j.rcpt[1].text);
		job_clear(&j);
	}
	free(j.buf);
}

/* moat's own addresses are never a target; only those: 5.4.6. */
static void
test_loop(void)
{
	static const char *const rcpts[] = { "a@example.org", NULL };
	struct smtp_client_opts o = opts_plain;
	struct sockaddr_storage lis;
	struct selfaddr self;
	struct server ok;
	char want[128];
	struct job j;
	int sv[2];

	srv_nconn = 1;
	if (server_start(&ok, &script_ok) == -1 || ipc_socketpair(sv) == -1) {
		T_OK(0, "loop: set-up");
		return;
	}
	memset(&self, 0, sizeof(self));
	(void)hostport_parse("0.0.0.0:2999", &lis);
	selfaddr_add_listener(&self, (struct sockaddr *)&lis, NULL, 0);
	o.resolve = table_resolve;
	o.self = &self;
	table_set(DNS_OK, "");
	table_add("mx1.example.test", "127.0.0.9", 2999);
	job_init(&j, sv[0]);
	T_OK(make_job(&j, "smtp:example.test:2999", rcpts, 0, 3) == 0 &&
	    deliver_once(&j, &o) == 0, "loop: done");
	T_OK(j.rcpt[0].code == 554 && strcmp(j.rcpt[0].enh, "5.4.6") == 0 &&
	    strcmp(j.rcpt[0].text, "mail for example.test loops back to myself") == 0,
	    "loop: %u %s %s", j.rcpt[0].code, j.rcpt[0].enh, j.rcpt[0].text);
	job_clear(&j);

	/* A looping MX among others is passed over. */
	table_set(DNS_OK, "");
	table_add("mx1.example.test", "127.0.0.1", 2999);
	table_add("mx2.example.test", "127.0.0.1", ok.port);
	T_OK(make_job(&j, "smtp:example.test:2999", rcpts, 0, 3) == 0, "loop 2: job");
	(void)queue_body(sv[1], 77, "x\r\n", 0);
	T_OK(deliver_once(&j, &o) == 0, "loop 2: done");
	snprintf(want, sizeof(want), "mx2.example.test[127.0.0.1]:%u", ok.port);
	T_OK(j.rcpt[0].code == 250 && strcmp(j.relay, want) == 0,
	    "loop 2: delivered by the other MX (%s)", j.relay);
	free(server_finish(&ok));
	selfaddr_free(&self);
	job_clear(&j);
	free(j.buf);
	close(sv[0]);
	close(sv[1]);
}

/* Which address:port pairs count as moat's own. */
static void
test_selfaddr(void)
{
	static const struct {
		const char	*listen;
		const char	*target;
		int		 self;
	} c[] = {
		{ "127.0.0.1:25", "127.0.0.1:25", 1 },
		{ "127.0.0.1:25", "127.0.0.1:26", 0 },
		{ "127.0.0.1:25", "127.0.0.2:25", 0 },
		{ "0.0.0.0:25", "127.0.0.2:25", 1 },
		{ "0.0.0.0:25", "127.255.255.254:25", 1 },
		{ "0.0.0.0:25", "128.0.0.1:25", 0 },
		{ "0.0.0.0:25", "192.0.2.7:25", 1 },
		{ "0.0.0.0:25", "192.0.2.8:25", 0 },
		{ "0.0.0.0:25", "[::1]:25", 1 },
		{ "0.0.0.0:25", "[2001:db8::7]:25", 0 },
		{ "[::]:25", "[2001:db8::7]:25", 1 },
		{ "[::]:25", "192.0.2.7:25", 1 },
		{ "[::]:25", "[::ffff:127.0.0.1]:25", 1 },
		{ "[::]:25", "[::2]:25", 0 },
		{ "[2001:db8::7]:587", "[2001:db8::7]:587", 1 },
		{ "[2001:db8::7]:587", "[2001:db8::7]:25", 0 },
		{ "192.0.2.1:25", "[::ffff:192.0.2.1]:25", 1 },
	};
	struct sockaddr_storage ifs[2], lis, tgt;
	struct selfaddr sa;
	size_t i;

	(void)hostport_parse("192.0.2.7:1", &ifs[0]);
	(void)hostport_parse("[2001:db8::7]:1", &ifs[1]);
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(&sa, 0, sizeof(sa));
		if (hostport_parse(c[i].listen, &lis) == -1 ||
		    hostport_parse(c[i].target, &tgt) == -1) {
			T_OK(0, "selfaddr: %s %s parse", c[i].listen, c[i].target);
			continue;
		}
		selfaddr_add_listener(&sa, (struct sockaddr *)&lis, ifs, 2);
		T_OK(selfaddr_match(&sa, (struct sockaddr *)&tgt) == c[i].self,
		    "selfaddr: listening on %s, %s is %s", c[i].listen, c[i].target,
		    c[i].self ? "ours" : "not ours");
		selfaddr_free(&sa);
	}
	T_OK(selfaddr_match(NULL, (struct sockaddr *)&tgt) == 0,
	    "selfaddr: no list, nothing is ours");
}

/* DSN parameters only to a server that offers DSN, xtext-encoded. */
static void
test_dsn(void)
{
	static const char *const rcpts[] = { "a@example.org", "b@example.org", NULL };
	struct server srv;
	char hop[64], *tr;
	struct job j;
	int sv[2], with;

	for (with = 1; with >= 0; with--) {
		srv_nconn = 1;
		if (server_start(&srv, with ? &script_ok_dsn : &script_ok) == -1 ||
		    ipc_socketpair(sv) == -1) {
			T_OK(0, "dsn: set-up");
			return;
		}
		snprintf(hop, sizeof(hop), "smtp:[127.0.0.1]:%u", srv.port);
		dsn_ret = MOAT_RET_HDRS;
		dsn_envid = "a+b=c d~";
		dsn_notify = MOAT_NOTIFY_SUCCESS | MOAT_NOTIFY_DELAY;
		dsn_orcpt = "rfc822;A+b=@example.org";
		job_init(&j, sv[0]);
		T_OK(make_job(&j, hop, rcpts, 0, 3) == 0, "dsn %d: job", with);
		(void)queue_body(sv[1], 77, "x\r\n", 0);
		T_OK(deliver_once(&j, &opts_plain) == 0 && j.rcpt[0].code == 250 &&
		    j.rcpt[1].code == 250, "dsn %d: delivered", with);
		tr = server_finish(&srv);
		if (with) {
			T_OK(strstr(tr, " RET=HDRS ENVID=a+2Bb+3Dc+20d~\r\n") != NULL,
			    "dsn: MAIL with RET= and an xtext ENVID=");
			T_OK(strstr(tr, "RCPT TO:<a@example.org> NOTIFY=SUCCESS,DELAY "
			    "ORCPT=rfc822;A+2Bb+3D@example.org\r\n") != NULL,
			    "dsn: RCPT with NOTIFY= and an xtext ORCPT=");
			T_OK(strstr(tr, "RCPT TO:<b@example.org>\r\n") != NULL,
			    "dsn: a recipient without DSN parameters gets none");
			T_OK(j.rcpt[0].flags == MOAT_RESULT_DSN_PASSED &&
			    j.rcpt[1].flags == MOAT_RESULT_DSN_PASSED,
			    "dsn: results flagged DSN_PASSED");
		} else {
			T_OK(strstr(tr, "RET=") == NULL && strstr(tr, "ENVID=") == NULL &&
			    strstr(tr, "NOTIFY=") == NULL && strstr(tr, "ORCPT=") == NULL,
			    "dsn: no DSN parameters to a server without DSN");
			T_OK(j.rcpt[0].flags == 0, "dsn: no DSN_PASSED without DSN");
		}
		free(tr);
		dsn_ret = dsn_notify = 0;
		dsn_envid = dsn_orcpt = "";
		job_clear(&j);
		free(j.buf);
		close(sv[0]);
		close(sv[1]);
	}
}

/*
 * Connection reuse: jobs for one next hop share a connection up to the
 * reuse limit; a job for another next hop closes it first; a connection
 * the server closed while idle is replaced without a word.
 */
static void
test_reuse(void)
{
	static const char *const rcpts[] = { "a@example.org", NULL };
	struct smtp_client_opts o = opts_plain;
	struct smtp_client *sc;
	struct server srv;
	char hop[64], other[64], *tr;
	struct job j;
	int sv[2], r, i;

	srv_nconn = 2;
	if (server_start(&srv, &script_ok) == -1 || ipc_socketpair(sv) == -1) {
		T_OK(0, "reuse: set-up");
		return;
	}
	snprintf(hop, sizeof(hop), "smtp:[127.0.0.1]:%u", srv.port);
	snprintf(other, sizeof(other), "smtp:[127.0.0.1]:%u", closed_port());
	o.reuse_limit = 2;
	o.idle_ms = 5000;
	sc = smtp_client_new(&o);
	job_init(&j, sv[0]);
	for (i = 0; i < 3; i++) {
		r = run_job(sc, &j, sv[1], hop, rcpts);
		T_OK(r == 0 && j.rcpt[0].code == 250, "reuse: job %d delivered", i + 1);
		T_OK((smtp_client_cached(sc) != NULL) == (i != 1),
		    "reuse: after job %d the connection is %s", i + 1,
		    i != 1 ? "kept" : "closed (limit 2)");
	}
	T_OK(smtp_client_cached(sc) != NULL && strcmp(smtp_client_cached(sc), hop) == 0 &&
	    smtp_client_cached_fd(sc) >= 0 && smtp_client_idle_left(sc) > 0,
	    "reuse: the kept connection is named by its next hop");
	r = run_job(sc, &j, sv[1], other, rcpts);
	T_OK(r == 0 && j.rcpt[0].code == 0 && smtp_client_cached(sc) == NULL,
	    "reuse: a job for another next hop closes it (%s)", j.rcpt[0].text);
	smtp_client_free(sc);
	tr = server_finish(&srv);
	T_OK(count_str(tr, "[connect]") == 2 && count_str(tr, "MAIL FROM") == 3 &&
	    count_str(tr, "QUIT") == 2 && count_str(tr, "EHLO") == 2 &&
	    count_str(tr, "RSET") == 0,
	    "reuse: 3 messages over 2 connections, each ended by QUIT");
	free(tr);

	/* The server closes the idle connection: a new one, no error. */
	srv_nconn = 2;
	srv_close_after_dot = 1;
	if (server_start(&srv, &script_ok) == -1) {
		T_OK(0, "reuse: set-up 2");
		return;
	}
	snprintf(hop, sizeof(hop), "smtp:[127.0.0.1]:%u", srv.port);
	o.reuse_limit = 100;
	sc = smtp_client_new(&o);
	r = run_job(sc, &j, sv[1], hop, rcpts);
	T_OK(r == 0 && j.rcpt[0].code == 250 && smtp_client_cached(sc) != NULL,
	    "reuse: first job kept its connection");
	usleep(200000);
	r = run_job(sc, &j, sv[1], hop, rcpts);
	T_OK(r == 0 && j.rcpt[0].code == 250, "reuse: closed by the server, "
	    "delivered over a new connection (%u %s)", j.rcpt[0].code, j.rcpt[0].text);
	smtp_client_uncache(sc, "test");
	T_OK(smtp_client_cached(sc) == NULL && smtp_client_idle_left(sc) == -1,
	    "reuse: uncached");
	smtp_client_free(sc);
	tr = server_finish(&srv);
	T_OK(count_str(tr, "[connect]") == 2 && count_str(tr, "MAIL FROM") == 2,
	    "reuse: two connections for two messages");
	free(tr);

	/* It closes just after the liveness check: the job goes on anew. */
	srv_close_after_dot = 2;
	if (server_start(&srv, &script_ok) == -1) {
		T_OK(0, "reuse: set-up 3");
		return;
	}
	snprintf(hop, sizeof(hop), "smtp:[127.0.0.1]:%u", srv.port);
	sc = smtp_client_new(&o);
	r = run_job(sc, &j, sv[1], hop, rcpts);
	T_OK(r == 0 && j.rcpt[0].code == 250 && smtp_client_cached(sc) != NULL,
	    "reuse: kept again");
	r = run_job(sc, &j, sv[1], hop, rcpts);
	T_OK(r == 0 && j.rcpt[0].code == 250, "reuse: the server closed it before "
	    "answering MAIL: delivered over a new one (%u %s)", j.rcpt[0].code,
	    j.rcpt[0].text);
	smtp_client_free(sc);
	tr = server_finish(&srv);
	T_OK(count_str(tr, "[connect]") == 2, "reuse: a second connection was made");
	free(tr);
	srv_close_after_dot = 0;
	srv_nconn = 1;
	job_clear(&j);
	free(j.buf);
	close(sv[0]);
	close(sv[1]);
}

static void
test_xtext(void)
{
	static const struct {
		const char	*in, *out;
	} c[] = {
		{ "", "" },
		{ "abc", "abc" },
		{ "a+b", "a+2Bb" },
		{ "a=b", "a+3Db" },
		{ "a b", "a+20b" },
		{ "\r\n", "+0D+0A" },
		{ "\x7f\x80\xff", "+7F+80+FF" },
		{ "!~", "!~" },
	};
	char out[64], small[4];
	size_t i, n;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		n = xtext_encode(c[i].in, out, sizeof(out));
		T_OK(n == strlen(c[i].out) && strcmp(out, c[i].out) == 0,
		    "xtext '%s' -> '%s'", esc(c[i].in), out);
	}
	T_OK(xtext_encode("abcd", small, sizeof(small)) == (size_t)-1 &&
	    small[0] == '\0', "xtext: too long for the buffer");
	T_OK(xtext_encode("ab+", small, sizeof(small)) == (size_t)-1,
	    "xtext: an escape that does not fit");
	T_OK(xtext_encode("abc", small, sizeof(small)) == 3, "xtext: exact fit");
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
	test_targets();
	test_dns_status();
	test_loop();
	test_selfaddr();
	test_dsn();
	test_reuse();
	test_xtext();
	return t_done();
}
