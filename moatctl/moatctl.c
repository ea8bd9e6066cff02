/*
 * moatctl.c: the operator's view of the queue, as a client of the
 * queue-manager's control socket (run_directory/control.sock).
 *
 *   moatctl [-f CONFIG] [-S SOCKET] queue     (or: mailq)
 *   moatctl [-f CONFIG] [-S SOCKET] show ID
 *
 * moatctl never touches the database: it asks, and prints the rows the
 * queue-manager sends (IPC_C2Q_LIST / IPC_C2Q_SHOW, common/ipc_types.h).
 * Everything the queue holds came from the network at some point, so each
 * value is made printable before it reaches the terminal.
 *
 * Exit status: 0 done, 1 the daemon could not be reached or refused,
 * 2 usage, 3 no such message.  See docs/moatctl.md.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ipc_types.h"
#include "util/conf.h"
#include "util/ipc.h"
#include "util/xmalloc.h"

#define EXIT_OK		0
#define EXIT_ERROR	1
#define EXIT_USAGE	2
#define EXIT_NOMSG	3

#define CTL_TIMEOUT_MS	30000
#define CTL_FIELDS_MAX	64
#define CTL_KEY_MAX	64
#define CTL_SENDER_W	40	/* widest SENDER column */
#define CTL_ERROR_W	60	/* widest LAST ERROR column */
#define CTL_REPLY_W	70	/* widest LAST REPLY column of show */

#ifndef MOAT_SYSCONFDIR
#define MOAT_SYSCONFDIR "/usr/local/etc"
#endif

/* One row from the queue-manager: keys and values. */
struct ctl_row {
	size_t	 n;
	char	*key[CTL_FIELDS_MAX];
	char	*val[CTL_FIELDS_MAX];
};

struct ctl_rows {
	struct ctl_row	*v;
	size_t		 n, alloc;
};

static const char *progname = "moatctl";

static void
ctl_usage(void)
{
	fprintf(stderr,
	    "usage: %s [-f CONFIG] [-S SOCKET] queue\n"
	    "       %s [-f CONFIG] [-S SOCKET] show ID\n"
	    "  queue (or mailq)  list the messages in the queue\n"
	    "  show ID           one message and each of its recipients\n"
	    "  -f CONFIG         configuration file (default %s/moat.conf)\n"
	    "  -S SOCKET         control socket (default run_directory/control.sock)\n",
	    progname, progname, MOAT_SYSCONFDIR);
	exit(EXIT_USAGE);
}

__attribute__((format(printf, 1, 2), noreturn)) static void
ctl_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_ERROR);
}

/* A value as it may be printed: control and 8-bit bytes become '?'. */
static char *
ctl_clean(const char *s)
{
	char *d = xstrdup(s), *p;

	for (p = d; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	return d;
}

static const char *
ctl_get(const struct ctl_row *r, const char *key)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->key[i], key) == 0)
			return r->val[i];
	return "";
}

static long long
ctl_num(const struct ctl_row *r, const char *key)
{
	const char *s = ctl_get(r, key);
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return 0;
	return v;
}

/* The control socket: -S, or run_directory/control.sock from the config. */
static char *
ctl_socket_path(const char *cfgpath, const char *sockpath)
{
	struct conf *cfg;
	char *p;

	if (sockpath != NULL)
		return xstrdup(sockpath);
	if (conf_load_file(cfgpath, &cfg, stderr) != 0)
		ctl_die("cannot use %s (give the socket with -S)", cfgpath);
	p = xasprintf("%s/control.sock", conf_str(cfg, CONF_RUN_DIRECTORY));
	conf_free(cfg);
	return p;
}

static int
ctl_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		ctl_die("%s: socket path too long", path);
	strlcpy_m(sun.sun_path, path, sizeof(sun.sun_path));
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1)
		ctl_die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		if (errno == EACCES || errno == EPERM)
			ctl_die("%s: permission denied (root and members of admin_group "
			    "may use moatctl)", path);
		ctl_die("cannot connect to %s: %s (is moatd running?)", path, strerror(errno));
	}
	return fd;
}

/* Wait for and receive one message. */
static int
ctl_recv(int fd, uint8_t *buf, struct ipc_frame *f)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	const char *why = "";
	int n, tries;

	for (tries = 0; tries < 2; tries++) {
		n = poll(&pfd, 1, CTL_TIMEOUT_MS);
		if (n == 0)
			ctl_die("no answer from the queue-manager in %d s", CTL_TIMEOUT_MS / 1000);
		if (n == -1 && errno != EINTR)
			ctl_die("poll: %s", strerror(errno));
		n = ipc_recv(fd, buf, f, &why);
		/* A peer that closed with our request unread reports a reset
		 * once; its answer, if any, is still queued behind it. */
		if (n == -1 && errno == ECONNRESET)
			continue;
		if (n == -1 && errno == EPROTO)
			ctl_die("malformed answer: %s", why);
		if (n == -1)
			ctl_die("receive: %s", strerror(errno));
		if (n == 1 && f->fd >= 0) {
			close(f->fd);
			ctl_die("unexpected descriptor in an answer");
		}
		return n;
	}
	ctl_die("the queue-manager closed the connection");
}

static void
ctl_parse_row(const struct ipc_frame *f, struct ctl_rows *rows)
{
	struct ctl_row *r;
	struct ipc_rd rd;
	uint32_t n, i;

	if (rows->n == rows->alloc) {
		rows->alloc = rows->alloc ? rows->alloc * 2 : 64;
		rows->v = xreallocarray(rows->v, rows->alloc, sizeof(*rows->v));
	}
	r = &rows->v[rows->n];
	memset(r, 0, sizeof(*r));
	ipc_rd_init(&rd, f);
	n = ipc_get_u32(&rd);
	if (n == 0 || n > CTL_FIELDS_MAX)
		ctl_die("malformed row: %u fields", n);
	for (i = 0; i < n; i++) {
		r->key[i] = ipc_get_strdup(&rd, CTL_KEY_MAX);
		r->val[i] = ipc_get_strdup(&rd, IPC_MAX_PAYLOAD);
		if (r->key[i] == NULL || r->val[i] == NULL)
			ctl_die("malformed row");
		r->n++;
	}
	if (ipc_rd_end(&rd) == -1)
		ctl_die("malformed row");
	rows->n++;
}

/* Send one request and gather the rows of its answer. */
static void
ctl_request(const char *path, uint32_t type, const char *arg, struct ctl_rows *rows)
{
	uint8_t *buf = xmalloc(IPC_MAX_MSG);
	char text[MOAT_TEXT_MAX + 1], *clean;
	struct ipc_frame f;
	struct ipc_wr w;
	struct ipc_rd rd;
	uint32_t count;
	int fd;

	fd = ctl_connect(path);
	ipc_wr_init(&w, type, 1);
	if (arg != NULL)
		ipc_put_str(&w, arg);
	/* A refused caller may find the socket closed under its request;
	 * the refusal is still there to read. */
	if (ipc_send(fd, &w, -1) == -1 && errno != EPIPE && errno != ECONNRESET)
		ctl_die("send: %s", strerror(errno));
	ipc_wr_free(&w);
	for (;;) {
		if (ctl_recv(fd, buf, &f) == 0)
			ctl_die("the queue-manager closed the connection");
		switch (f.hdr.type) {
		case IPC_Q2C_ROW:
			ctl_parse_row(&f, rows);
			break;
		case IPC_Q2C_END:
			ipc_rd_init(&rd, &f);
			count = ipc_get_u32(&rd);
			if (ipc_rd_end(&rd) == -1 || count != rows->n)
				ctl_die("answer ended after %zu rows, announced %u", rows->n, count);
			close(fd);
			free(buf);
			return;
		case IPC_Q2C_ERROR:
			ipc_rd_init(&rd, &f);
			if (ipc_get_str(&rd, text, sizeof(text)) == -1 || ipc_rd_end(&rd) == -1)
				ctl_die("malformed error answer");
			clean = ctl_clean(text);
			fprintf(stderr, "%s: %s\n", progname, clean);
			exit(strcmp(text, "no such message") == 0 ? EXIT_NOMSG : EXIT_ERROR);
		default:
			ctl_die("unexpected answer %s", ipc_type_name(f.hdr.type));
		}
	}
}

/* "45s", "3m", "2h", "4d". */
static void
ctl_age(long long secs, char *dst, size_t dstsz)
{
	if (secs < 0)
		secs = 0;
	if (secs < 60)
		snprintf(dst, dstsz, "%llds", secs);
	else if (secs < 3600)
		snprintf(dst, dstsz, "%lldm", secs / 60);
	else if (secs < 86400)
		snprintf(dst, dstsz, "%lldh", secs / 3600);
	else
		snprintf(dst, dstsz, "%lldd", secs / 86400);
}

/* Cut s to width w with "..." at the end; returns a fresh string. */
static char *
ctl_cut(const char *s, size_t w)
{
	char *c = ctl_clean(s);

	if (strlen(c) > w && w > 3) {
		c[w - 3] = '.';
		c[w - 2] = '.';
		c[w - 1] = '.';
		c[w] = '\0';
	}
	return c;
}

static char *
ctl_sender(const char *s)
{
	char *c, *r;

	if (s[0] == '\0')
		return xstrdup("<>");
	c = ctl_cut(s, CTL_SENDER_W);
	r = xstrdup(c);
	free(c);
	return r;
}

static size_t
ctl_max(size_t a, size_t b)
{
	return a > b ? a : b;
}

static void
ctl_print_queue(const struct ctl_rows *rows)
{
	size_t i, wsize = 4, wsender = 6;
	char **sender = xcalloc(rows->n + 1, sizeof(char *));
	char age[32];
	time_t now = time(NULL);
	char *err;

	if (rows->n == 0) {
		printf("Queue is empty\n");
		free(sender);
		return;
	}
	for (i = 0; i < rows->n; i++) {
		sender[i] = ctl_sender(ctl_get(&rows->v[i], "sender"));
		wsender = ctl_max(wsender, strlen(sender[i]));
		wsize = ctl_max(wsize, strlen(ctl_get(&rows->v[i], "size")));
	}
	printf("%-16s  %-4s  %*s  %-*s  %5s  %-8s  %s\n", "ID", "AGE", (int)wsize, "SIZE",
	    (int)wsender, "SENDER", "RCPTS", "STATE", "LAST ERROR");
	for (i = 0; i < rows->n; i++) {
		const struct ctl_row *r = &rows->v[i];
		char *id = ctl_clean(ctl_get(r, "id")), *state = ctl_clean(ctl_get(r, "state"));

		ctl_age((long long)now - ctl_num(r, "arrival"), age, sizeof(age));
		err = ctl_cut(ctl_get(r, "last_error"), CTL_ERROR_W);
		printf("%-16s  %-4s  %*lld  %-*s  %5lld  %-8s  %s\n", id, age, (int)wsize,
		    ctl_num(r, "size"), (int)wsender, sender[i], ctl_num(r, "nrcpt"),
		    state, err);
		free(id);
		free(state);
		free(err);
		free(sender[i]);
	}
	printf("%zu message%s\n", rows->n, rows->n == 1 ? "" : "s");
	free(sender);
}

static void
ctl_time(long long t, char *dst, size_t dstsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL || strftime(dst, dstsz, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
		snprintf(dst, dstsz, "%lld", t);
}

/* When a waiting recipient is tried next, relative to now. */
static void
ctl_next(const struct ctl_row *r, char *dst, size_t dstsz)
{
	const char *st = ctl_get(r, "state");
	long long delta = ctl_num(r, "next_attempt") - (long long)time(NULL);
	char age[32];

	if (strcmp(st, "queued") != 0 && strcmp(st, "deferred") != 0) {
		snprintf(dst, dstsz, "-");
		return;
	}
	if (delta <= 0) {
		snprintf(dst, dstsz, "now");
		return;
	}
	ctl_age(delta, age, sizeof(age));
	snprintf(dst, dstsz, "in %s", age);
}

/* The message's fields, one per line, then a table of its recipients. */
static void
ctl_print_show(const struct ctl_rows *rows)
{
	static const struct {
		const char *key, *label;
	} fields[] = {
		{ "id", "id:" }, { "arrival", "arrival:" }, { "size", "size:" },
		{ "sender", "sender:" }, { "client", "client:" }, { "helo", "helo:" },
		{ "state", "state:" },
	};
	const struct ctl_row *m = &rows->v[0];
	size_t i, k, wr = 9, wrelay = 5;
	char when[64], age[32], next[40], *v;

	for (k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
		if (strcmp(fields[k].key, "arrival") == 0) {
			ctl_time(ctl_num(m, "arrival"), when, sizeof(when));
			ctl_age((long long)time(NULL) - ctl_num(m, "arrival"), age, sizeof(age));
			printf("%-8s %s (%s ago)\n", fields[k].label, when, age);
			continue;
		}
		if (strcmp(fields[k].key, "sender") == 0)
			v = ctl_sender(ctl_get(m, "sender"));
		else
			v = ctl_clean(ctl_get(m, fields[k].key));
		printf("%-8s %s\n", fields[k].label, v);
		free(v);
	}
	for (i = 1; i < rows->n; i++) {
		wr = ctl_max(wr, strlen(ctl_get(&rows->v[i], "recipient")));
		wrelay = ctl_max(wrelay, strlen(ctl_get(&rows->v[i], "relay")));
	}
	printf("\n%-*s  %-8s  %8s  %-12s  %-*s  %s\n", (int)wr, "RECIPIENT", "STATE",
	    "ATTEMPTS", "NEXT ATTEMPT", (int)wrelay, "RELAY", "LAST REPLY");
	for (i = 1; i < rows->n; i++) {
		const struct ctl_row *r = &rows->v[i];
		char *rc = ctl_clean(ctl_get(r, "recipient")), *st = ctl_clean(ctl_get(r, "state"));
		char *relay = ctl_clean(ctl_get(r, "relay"));
		char *reply = ctl_cut(ctl_get(r, "last_reply"), CTL_REPLY_W);

		ctl_next(r, next, sizeof(next));
		printf("%-*s  %-8s  %8lld  %-12s  %-*s  %s\n", (int)wr, rc, st,
		    ctl_num(r, "attempts"), next, (int)wrelay, relay[0] ? relay : "-",
		    reply);
		free(rc);
		free(st);
		free(relay);
		free(reply);
	}
}

int
main(int argc, char **argv)
{
	const char *cfgpath = MOAT_SYSCONFDIR "/moat.conf", *sockpath = NULL, *cmd;
	struct ctl_rows rows = { NULL, 0, 0 };
	char *path, id[MOAT_QID_MAX + 1];
	const char *base;
	size_t i;
	int ch;

	base = strrchr(argv[0], '/');
	base = base != NULL ? base + 1 : argv[0];
	if (strcmp(base, "mailq") == 0)
		progname = "mailq";
	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt(argc, argv, "f:S:h")) != -1) {
		switch (ch) {
		case 'f':
			cfgpath = optarg;
			break;
		case 'S':
			sockpath = optarg;
			break;
		default:
			ctl_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0 && strcmp(progname, "mailq") == 0)
		cmd = "queue";
	else if (argc >= 1)
		cmd = argv[0];
	else
		ctl_usage();

	if ((strcmp(cmd, "queue") == 0 || strcmp(cmd, "mailq") == 0) && argc <= 1) {
		path = ctl_socket_path(cfgpath, sockpath);
		ctl_request(path, IPC_C2Q_LIST, NULL, &rows);
		ctl_print_queue(&rows);
	} else if (strcmp(cmd, "show") == 0 && argc == 2) {
		if (strlen(argv[1]) > MOAT_QID_MAX) {
			fprintf(stderr, "%s: no such message\n", progname);
			return EXIT_NOMSG;
		}
		/* Ids are upper-case hex; accept them typed in lower case. */
		for (i = 0; argv[1][i] != '\0'; i++)
			id[i] = (char)toupper((unsigned char)argv[1][i]);
		id[i] = '\0';
		path = ctl_socket_path(cfgpath, sockpath);
		ctl_request(path, IPC_C2Q_SHOW, id, &rows);
		if (rows.n == 0)
			ctl_die("empty answer");
		ctl_print_show(&rows);
	} else {
		ctl_usage();
	}
	if (fflush(stdout) == EOF || ferror(stdout))
		ctl_die("writing the output: %s", strerror(errno));
	free(path);
	return EXIT_OK;
}
