/*
 * moatctl.c: the operator's view of the queue, as a client of the
 * queue-manager's control socket (run_directory/control.sock).
 *
 *   moatctl [-f CONFIG] [-S SOCKET] COMMAND [OPTIONS]   (docs/moatctl.md)
 *
 * moatctl never touches the database: it asks, and prints the rows the
 * queue-manager sends (IPC_C2Q_REQUEST, common/ipc_types.h), as an
 * aligned table or, with --json, as one JSON document.  Filters, ids and
 * --dry-run travel in the request; the queue-manager selects and decides.
 * Everything the queue holds came from the network at some point, so each
 * value is made printable (or JSON-escaped) before it reaches the terminal.
 *
 * Exit status: 0 done, 1 the daemon could not be reached, refused, or a
 * change failed, 2 usage, 3 no such message.  See docs/moatctl.md.
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
#include "moatctl_signal.h"
#include "moatctl_status.h"
#include "util/conf.h"
#include "util/ipc.h"
#include "util/buf.h"
#include "util/xmalloc.h"
#include "moatctl_fmt.h"

#define EXIT_OK		0
#define EXIT_ERROR	1
#define EXIT_USAGE	2
#define EXIT_NOMSG	3

#define CTL_DATA_MAX	(256 * 1024 * 1024)	/* --json of --headers/--body */

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
	    "usage: %s [-f CONFIG] [-S SOCKET] COMMAND [OPTIONS]\n"
	    "  queue (or mailq) [FILTER] [--count]   list messages\n"
	    "  show ID [--headers | --body]           one message\n"
	    "  hold | release | delete | retry | bounce  ID... | FILTER --all  [--dry-run]\n"
	    "  pause DOMAIN | resume DOMAIN           stop or restart deliveries to a domain\n"
	    "  stats [--prometheus]                   counts, traffic, top destinations\n"
	    "  shape                                  messages by destination and age\n"
	    "  audit                                  the record of changes\n"
	    "  status                                 moatd's processes and configuration\n"
	    "  reload | stop                          signal moatd: SIGHUP, SIGTERM\n"
	    "FILTER: --state active|deferred|held|bounce|queued  --from ADDR  --to ADDR\n"
	    "        --domain DOMAIN  --older-than 2h  --reason TEXT\n"
	    "Every command takes --json.  -f CONFIG (default %s/moat.conf),\n"
	    "-S SOCKET (default run_directory/control.sock).  See docs/moatctl.md.\n",
	    progname, MOAT_SYSCONFDIR);
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

/* The options of every command, as parsed. */
struct ctl_opts {
	int		 json, count, all, dry_run, headers, body, prometheus;
	const char	*filter_key[6], *filter_val[6];
	size_t		 nfilter;
	char		**pos;		/* ids, or the domain */
	size_t		 npos;
};

/* A request: the command and its key/value arguments. */
static void
ctl_req_init(struct ipc_wr *w, const char *cmd, uint32_t nargs)
{
	ipc_wr_init(w, IPC_C2Q_REQUEST, 1);
	ipc_put_str(w, cmd);
	ipc_put_u32(w, nargs);
}

static void
ctl_req_kv(struct ipc_wr *w, const char *k, const char *v)
{
	ipc_put_str(w, k);
	ipc_put_str(w, v);
}

/*
 * Send one request and gather its answer: rows, or (data != NULL) the
 * bytes of IPC_Q2C_DATA.  An error answer ends the program.
 */
static void
ctl_exchange(const char *path, struct ipc_wr *w, struct ctl_rows *rows, struct buf *data,
    int json)
{
	uint8_t *buf = xmalloc(IPC_MAX_MSG);
	char text[MOAT_TEXT_MAX + 1], *clean;
	const uint8_t *p;
	struct ipc_frame f;
	struct ipc_rd rd;
	uint32_t count, got = 0;
	size_t n;
	int fd;

	fd = ctl_connect(path);
	/* A refused caller may find the socket closed under its request;
	 * the refusal is still there to read. */
	if (ipc_send(fd, w, -1) == -1 && errno != EPIPE && errno != ECONNRESET)
		ctl_die("send: %s", strerror(errno));
	ipc_wr_free(w);
	for (;;) {
		if (ctl_recv(fd, buf, &f) == 0)
			ctl_die("the queue-manager closed the connection");
		switch (f.hdr.type) {
		case IPC_Q2C_ROW:
			ctl_parse_row(&f, rows);
			got++;
			break;
		case IPC_Q2C_DATA:
			ipc_rd_init(&rd, &f);
			if (data == NULL || ipc_get_blob(&rd, &p, &n, IPC_DATA_CHUNK) == -1 ||
			    ipc_rd_end(&rd) == -1)
				ctl_die("malformed data answer");
			if (json) {
				if (buf_append(data, p, n) == -1)
					ctl_die("message larger than %d bytes", CTL_DATA_MAX);
			} else if (fwrite(p, 1, n, stdout) != n)
				ctl_die("writing the output: %s", strerror(errno));
			got++;
			break;
		case IPC_Q2C_END:
			ipc_rd_init(&rd, &f);
			count = ipc_get_u32(&rd);
			if (ipc_rd_end(&rd) == -1 || count != got)
				ctl_die("answer ended after %u rows, announced %u", got, count);
			close(fd);
			free(buf);
			return;
		case IPC_Q2C_ERROR:
			ipc_rd_init(&rd, &f);
			if (ipc_get_str(&rd, text, sizeof(text)) == -1 || ipc_rd_end(&rd) == -1)
				ctl_die("malformed error answer");
			clean = ctl_clean(text);
			fprintf(stderr, "%s: %s\n", progname, clean);
			free(clean);
			free(buf);
			close(fd);
			if (strcmp(text, "no such message") == 0)
				exit(EXIT_NOMSG);
			exit(strncmp(text, "usage:", 6) == 0 ? EXIT_USAGE : EXIT_ERROR);
		default:
			ctl_die("unexpected answer %s", ipc_type_name(f.hdr.type));
		}
	}
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
	if (s[0] == '\0')
		return xstrdup("<>");
	return ctl_cut(s, CTL_SENDER_W);
}

static size_t
ctl_max(size_t a, size_t b)
{
	return a > b ? a : b;
}

/* JSON output: one document built in a buffer, printed at the end. */
static struct buf ctl_json;

static void
ctl_js(const char *s)
{
	if (buf_append_str(&ctl_json, s) == -1)
		ctl_die("output too large");
}

static void
ctl_jstr(const char *s)
{
	if (fmt_json_str(&ctl_json, s) == -1)
		ctl_die("output too large");
}

/* "key": "value" or "key": number (from a row), with a leading comma. */
static void
ctl_jfield(const char *key, const char *val, int num, int first)
{
	if (!first)
		ctl_js(", ");
	ctl_jstr(key);
	ctl_js(": ");
	if (num) {
		char n[32];

		snprintf(n, sizeof(n), "%lld", strtoll(val, NULL, 10));
		ctl_js(n);
	} else
		ctl_jstr(val);
}

static void
ctl_jnum(const char *key, long long v, int first)
{
	char n[32];

	snprintf(n, sizeof(n), "%lld", v);
	ctl_jfield(key, n, 1, first);
}

static void
ctl_jbool(const char *key, int v, int first)
{
	if (!first)
		ctl_js(", ");
	ctl_jstr(key);
	ctl_js(v ? ": true" : ": false");
}

static void
ctl_json_print(void)
{
	fwrite(ctl_json.data, 1, ctl_json.len, stdout);
	fputc('\n', stdout);
}

/* A comma-separated list as a JSON array of strings. */
static void
ctl_jlist(const char *list)
{
	char *copy = xstrdup(list), *p = copy, *tok;
	int first = 1;

	ctl_js("[");
	while ((tok = strsep(&p, ",")) != NULL) {
		if (tok[0] == '\0')
			continue;
		if (!first)
			ctl_js(", ");
		ctl_jstr(tok);
		first = 0;
	}
	ctl_js("]");
	free(copy);
}

/* queue --json. */
static void
ctl_json_queue(const struct ctl_rows *rows, int count_only)
{
	time_t now = time(NULL);
	size_t i;

	ctl_js("{");
	ctl_jnum("count", (long long)rows->n, 1);
	if (!count_only) {
		ctl_js(", \"messages\": [");
		for (i = 0; i < rows->n; i++) {
			const struct ctl_row *r = &rows->v[i];

			ctl_js(i == 0 ? "{" : ", {");
			ctl_jfield("id", ctl_get(r, "id"), 0, 1);
			ctl_jnum("arrival", ctl_num(r, "arrival"), 0);
			ctl_jnum("age", (long long)now - ctl_num(r, "arrival"), 0);
			ctl_jnum("size", ctl_num(r, "size"), 0);
			ctl_jfield("sender", ctl_get(r, "sender"), 0, 0);
			ctl_jfield("state", ctl_get(r, "state"), 0, 0);
			ctl_jbool("held", ctl_num(r, "held") != 0, 0);
			ctl_jbool("paused", ctl_num(r, "paused") != 0, 0);
			ctl_jnum("nrcpt", ctl_num(r, "nrcpt"), 0);
			ctl_js(", \"recipients\": ");
			ctl_jlist(ctl_get(r, "recipients"));
			ctl_jfield("last_error", ctl_get(r, "last_error"), 0, 0);
			ctl_js("}");
		}
		ctl_js("]");
	}
	ctl_js("}");
	ctl_json_print();
}

/* The state column: a '*' marks recipients waiting for a paused domain. */
static char *
ctl_state_col(const struct ctl_row *r)
{
	char *st = ctl_clean(ctl_get(r, "state")), *v;

	v = xasprintf("%s%s", st, ctl_num(r, "paused") > 0 ? "*" : "");
	free(st);
	return v;
}

static void
ctl_print_queue(const struct ctl_rows *rows)
{
	size_t i, wsize = 4, wsender = 6, wstate = 5;
	char **sender = xcalloc(rows->n + 1, sizeof(char *));
	char age[32];
	time_t now = time(NULL);
	char *err, *st;
	int paused = 0;

	if (rows->n == 0) {
		printf("Queue is empty\n");
		free(sender);
		return;
	}
	for (i = 0; i < rows->n; i++) {
		sender[i] = ctl_sender(ctl_get(&rows->v[i], "sender"));
		wsender = ctl_max(wsender, strlen(sender[i]));
		wsize = ctl_max(wsize, strlen(ctl_get(&rows->v[i], "size")));
		wstate = ctl_max(wstate, strlen(ctl_get(&rows->v[i], "state")) + 1);
	}
	printf("%-16s  %-4s  %*s  %-*s  %5s  %-*s  %s\n", "ID", "AGE", (int)wsize, "SIZE",
	    (int)wsender, "SENDER", "RCPTS", (int)wstate, "STATE", "LAST ERROR");
	for (i = 0; i < rows->n; i++) {
		const struct ctl_row *r = &rows->v[i];
		char *id = ctl_clean(ctl_get(r, "id"));

		st = ctl_state_col(r);
		paused |= ctl_num(r, "paused") > 0;
		fmt_age((long long)now - ctl_num(r, "arrival"), age, sizeof(age));
		err = ctl_cut(ctl_get(r, "last_error"), CTL_ERROR_W);
		printf("%-16s  %-4s  %*lld  %-*s  %5lld  %-*s  %s\n", id, age, (int)wsize,
		    ctl_num(r, "size"), (int)wsender, sender[i], ctl_num(r, "nrcpt"),
		    (int)wstate, st, err);
		free(id);
		free(st);
		free(err);
		free(sender[i]);
	}
	printf("%zu message%s\n", rows->n, rows->n == 1 ? "" : "s");
	if (paused)
		printf("* waiting for a paused destination (moatctl stats lists them)\n");
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
ctl_next(const struct ctl_row *r, int held, char *dst, size_t dstsz)
{
	const char *st = ctl_get(r, "state");
	long long delta = ctl_num(r, "next_attempt") - (long long)time(NULL);
	char age[32];

	if (strcmp(st, "queued") != 0 && strcmp(st, "deferred") != 0) {
		snprintf(dst, dstsz, "-");
		return;
	}
	if (held || ctl_num(r, "paused")) {
		snprintf(dst, dstsz, "%s", held ? "held" : "paused");
		return;
	}
	if (delta <= 0) {
		snprintf(dst, dstsz, "now");
		return;
	}
	fmt_age(delta, age, sizeof(age));
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
	int held = ctl_num(m, "held") != 0;

	for (k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
		if (strcmp(fields[k].key, "arrival") == 0) {
			ctl_time(ctl_num(m, "arrival"), when, sizeof(when));
			fmt_age((long long)time(NULL) - ctl_num(m, "arrival"), age, sizeof(age));
			printf("%-8s %s (%s ago)\n", fields[k].label, when, age);
			continue;
		}
		if (strcmp(fields[k].key, "sender") == 0)
			v = ctl_sender(ctl_get(m, "sender"));
		else if (strcmp(fields[k].key, "state") == 0)
			v = ctl_state_col(m);
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

		ctl_next(r, held, next, sizeof(next));
		printf("%-*s  %-8s  %8lld  %-12s  %-*s  %s\n", (int)wr, rc, st,
		    ctl_num(r, "attempts"), next, (int)wrelay, relay[0] ? relay : "-",
		    reply);
		free(rc);
		free(st);
		free(relay);
		free(reply);
	}
}

static void
ctl_json_show(const struct ctl_rows *rows)
{
	const struct ctl_row *m = &rows->v[0];
	size_t i;

	ctl_js("{");
	ctl_jfield("id", ctl_get(m, "id"), 0, 1);
	ctl_jnum("arrival", ctl_num(m, "arrival"), 0);
	ctl_jnum("size", ctl_num(m, "size"), 0);
	ctl_jfield("sender", ctl_get(m, "sender"), 0, 0);
	ctl_jfield("client", ctl_get(m, "client"), 0, 0);
	ctl_jfield("helo", ctl_get(m, "helo"), 0, 0);
	ctl_jfield("state", ctl_get(m, "state"), 0, 0);
	ctl_jbool("held", ctl_num(m, "held") != 0, 0);
	ctl_js(", \"recipients\": [");
	for (i = 1; i < rows->n; i++) {
		const struct ctl_row *r = &rows->v[i];

		ctl_js(i == 1 ? "{" : ", {");
		ctl_jfield("recipient", ctl_get(r, "recipient"), 0, 1);
		ctl_jfield("state", ctl_get(r, "state"), 0, 0);
		ctl_jnum("attempts", ctl_num(r, "attempts"), 0);
		ctl_jnum("next_attempt", ctl_num(r, "next_attempt"), 0);
		ctl_jfield("last_reply", ctl_get(r, "last_reply"), 0, 0);
		ctl_jfield("relay", ctl_get(r, "relay"), 0, 0);
		ctl_jbool("paused", ctl_num(r, "paused") != 0, 0);
		ctl_js("}");
	}
	ctl_js("]}");
	ctl_json_print();
}

/* Results of a change; the exit status says whether all went well. */
static int
ctl_print_change(const char *cmd, const struct ctl_opts *o, const struct ctl_rows *rows)
{
	size_t i, changed = 0;
	int status = EXIT_OK;

	for (i = 0; i < rows->n; i++) {
		const char *res = ctl_get(&rows->v[i], "result");

		if (strcmp(res, "no such message") == 0 && status == EXIT_OK)
			status = EXIT_NOMSG;
		else if (strncmp(res, "failed", 6) == 0)
			status = EXIT_ERROR;
		else if (strncmp(res, "would ", 6) == 0 || (strchr(res, ' ') == NULL &&
		    strcmp(res, "not") != 0))
			changed++;
	}
	if (o->json) {
		ctl_js("{");
		ctl_jfield("command", cmd, 0, 1);
		ctl_jbool("dry_run", o->dry_run, 0);
		ctl_jnum("changed", (long long)changed, 0);
		ctl_js(", \"results\": [");
		for (i = 0; i < rows->n; i++) {
			ctl_js(i == 0 ? "{" : ", {");
			ctl_jfield("id", ctl_get(&rows->v[i], "id"), 0, 1);
			ctl_jfield("result", ctl_get(&rows->v[i], "result"), 0, 0);
			ctl_js("}");
		}
		ctl_js("]}");
		ctl_json_print();
		return status;
	}
	if (rows->n > 0)
		printf("%-16s  %s\n", "ID", "RESULT");
	for (i = 0; i < rows->n; i++) {
		char *id = ctl_clean(ctl_get(&rows->v[i], "id"));
		char *res = ctl_clean(ctl_get(&rows->v[i], "result"));

		printf("%-16s  %s\n", id, res);
		free(id);
		free(res);
	}
	printf("%zu message%s %s%s\n", changed, changed == 1 ? "" : "s",
	    o->dry_run ? "would change (dry run: nothing changed)" : "changed",
	    rows->n == 0 ? " (nothing matched)" : "");
	return status;
}

static void
ctl_print_pause(const char *cmd, const struct ctl_opts *o, const struct ctl_rows *rows)
{
	const struct ctl_row *r;
	char *d, *res;

	if (rows->n != 1)
		ctl_die("malformed answer");
	r = &rows->v[0];
	if (o->json) {
		ctl_js("{");
		ctl_jfield("command", cmd, 0, 1);
		ctl_jfield("domain", ctl_get(r, "domain"), 0, 0);
		ctl_jfield("result", ctl_get(r, "result"), 0, 0);
		ctl_js("}");
		ctl_json_print();
		return;
	}
	d = ctl_clean(ctl_get(r, "domain"));
	res = ctl_clean(ctl_get(r, "result"));
	printf("%s: %s\n", d, res);
	free(d);
	free(res);
}

/* The value of one stats row. */
static long long
ctl_stat(const struct ctl_rows *rows, const char *metric, const char *label)
{
	size_t i;

	for (i = 0; i < rows->n; i++)
		if (strcmp(ctl_get(&rows->v[i], "metric"), metric) == 0 &&
		    strcmp(ctl_get(&rows->v[i], "label"), label) == 0)
			return ctl_num(&rows->v[i], "value");
	return 0;
}

static const char *const ctl_states[] = { "queued", "active", "deferred", "held" };
static const char *const ctl_windows[] = { "last_minute", "last_hour", "total" };
static const char *const ctl_traffic[] = {
	"messages_in", "bytes_in", "messages_out", "bytes_out", "sent", "deferred", "bounced",
};
#define CTL_N(a) (sizeof(a) / sizeof((a)[0]))

/* The rows of one kind (top_destination, top_deferral, paused). */
static void
ctl_json_list(const struct ctl_rows *rows, const char *metric, const char *key,
    const char *valkey)
{
	size_t i;
	int first = 1;

	ctl_js("[");
	for (i = 0; i < rows->n; i++) {
		if (strcmp(ctl_get(&rows->v[i], "metric"), metric) != 0)
			continue;
		ctl_js(first ? "{" : ", {");
		ctl_jfield(key, ctl_get(&rows->v[i], "label"), 0, 1);
		ctl_jnum(valkey, ctl_num(&rows->v[i], "value"), 0);
		ctl_js("}");
		first = 0;
	}
	ctl_js("]");
}

static void
ctl_json_stats(const struct ctl_rows *rows)
{
	long long total = 0;
	size_t i, k;

	ctl_js("{\"queue\": {");
	for (i = 0; i < CTL_N(ctl_states); i++) {
		ctl_jnum(ctl_states[i], ctl_stat(rows, "queue", ctl_states[i]), i == 0);
		total += ctl_stat(rows, "queue", ctl_states[i]);
	}
	ctl_jnum("total", total, 0);
	ctl_js("}");
	ctl_jnum("oldest_age", ctl_stat(rows, "oldest_age", ""), 0);
	for (k = 0; k < CTL_N(ctl_windows); k++) {
		ctl_js(", ");
		ctl_jstr(ctl_windows[k]);
		ctl_js(": {");
		for (i = 0; i < CTL_N(ctl_traffic); i++)
			ctl_jnum(ctl_traffic[i], ctl_stat(rows, ctl_windows[k], ctl_traffic[i]),
			    i == 0);
		ctl_js("}");
	}
	ctl_js(", \"top_destinations\": ");
	ctl_json_list(rows, "top_destination", "domain", "count");
	ctl_js(", \"top_deferral_reasons\": ");
	ctl_json_list(rows, "top_deferral", "reason", "count");
	ctl_js(", \"paused_domains\": ");
	ctl_json_list(rows, "paused", "domain", "since");
	ctl_js(", \"delivery\": {");
	ctl_jnum("relay_jobs", ctl_stat(rows, "delivery", "relay_jobs"), 1);
	ctl_jnum("reused_connections", ctl_stat(rows, "delivery",
	    "reused_connections"), 0);
	ctl_js("}, \"connections\": ");
	ctl_json_list(rows, "connections", "nexthop", "count");
	ctl_js("}");
	ctl_json_print();
}

static void
ctl_print_stats(const struct ctl_rows *rows)
{
	static const char *const wlabel[] = { "last minute", "last hour", "total" };
	long long total = 0;
	char age[32], when[64];
	size_t i, k;
	int any;

	printf("%-10s", "MESSAGES");
	for (i = 0; i < CTL_N(ctl_states); i++)
		printf("  %8s", ctl_states[i]);
	printf("  %8s\n%-10s", "total", "");
	for (i = 0; i < CTL_N(ctl_states); i++) {
		printf("  %8lld", ctl_stat(rows, "queue", ctl_states[i]));
		total += ctl_stat(rows, "queue", ctl_states[i]);
	}
	fmt_age(ctl_stat(rows, "oldest_age", ""), age, sizeof(age));
	printf("  %8lld\noldest message: %s\n\n", total, total > 0 ? age : "-");
	printf("%-12s", "TRAFFIC");
	for (i = 0; i < CTL_N(ctl_traffic); i++)
		printf("  %12s", ctl_traffic[i]);
	printf("\n");
	for (k = 0; k < CTL_N(ctl_windows); k++) {
		printf("%-12s", wlabel[k]);
		for (i = 0; i < CTL_N(ctl_traffic); i++)
			printf("  %12lld", ctl_stat(rows, ctl_windows[k], ctl_traffic[i]));
		printf("\n");
	}
	{
		static const struct {
			const char *metric, *title, *col;
		} lists[] = {
			{ "top_destination", "TOP DESTINATIONS", "DOMAIN" },
			{ "top_deferral", "TOP DEFERRAL REASONS", "REASON" },
			{ "paused", "PAUSED DOMAINS", "SINCE" },
			{ "connections", "OUTBOUND CONNECTIONS (open or idle, per next hop)",
			    "NEXT HOP" },
		};

		for (k = 0; k < CTL_N(lists); k++) {
			printf("\n%s\n", lists[k].title);
			any = 0;
			for (i = 0; i < rows->n; i++) {
				const struct ctl_row *r = &rows->v[i];
				char *l;

				if (strcmp(ctl_get(r, "metric"), lists[k].metric) != 0)
					continue;
				l = ctl_cut(ctl_get(r, "label"), CTL_REPLY_W);
				if (strcmp(lists[k].metric, "paused") == 0) {
					ctl_time(ctl_num(r, "value"), when, sizeof(when));
					printf("  %-30s  since %s\n", l, when);
				} else
					printf("  %8lld  %s\n", ctl_num(r, "value"), l);
				free(l);
				any = 1;
			}
			if (!any)
				printf("  (none)\n");
		}
	}
	printf("\nrelay jobs since start: %lld, over a reused connection: %lld\n",
	    ctl_stat(rows, "delivery", "relay_jobs"),
	    ctl_stat(rows, "delivery", "reused_connections"));
}

/* stats --prometheus: the text exposition for node_exporter. */
static void
ctl_print_prometheus(const struct ctl_rows *rows)
{
	static const struct fmt_family fam[] = {
		{ "moat_queue_messages", "gauge", "Messages in the queue, by state." },
		{ "moat_queue_oldest_message_age_seconds", "gauge",
		    "Age of the oldest message in the queue (0 when empty)." },
		{ "moat_paused_domains", "gauge", "Destination domains paused with moatctl pause." },
		{ "moat_messages_in_total", "counter",
		    "Messages accepted into the queue, bounces moat generated included." },
		{ "moat_bytes_in_total", "counter", "Bytes of the messages accepted into the queue." },
		{ "moat_messages_out_total", "counter",
		    "Messages that left the queue (delivered, bounced or deleted)." },
		{ "moat_bytes_out_total", "counter", "Bytes of the messages that left the queue." },
		{ "moat_deliveries_total", "counter",
		    "Delivery attempts per recipient, by result (sent, deferred, bounced)." },
	};
	struct fmt_sample s[16];
	struct buf out;
	size_t n = 0, i;
	long long paused = 0;

	for (i = 0; i < CTL_N(ctl_states); i++)
		s[n++] = (struct fmt_sample){ "moat_queue_messages", "state", ctl_states[i],
		    ctl_stat(rows, "queue", ctl_states[i]) };
	s[n++] = (struct fmt_sample){ "moat_queue_oldest_message_age_seconds", NULL, NULL,
	    ctl_stat(rows, "oldest_age", "") };
	for (i = 0; i < rows->n; i++)
		paused += strcmp(ctl_get(&rows->v[i], "metric"), "paused") == 0;
	s[n++] = (struct fmt_sample){ "moat_paused_domains", NULL, NULL, paused };
	s[n++] = (struct fmt_sample){ "moat_messages_in_total", NULL, NULL,
	    ctl_stat(rows, "total", "messages_in") };
	s[n++] = (struct fmt_sample){ "moat_bytes_in_total", NULL, NULL,
	    ctl_stat(rows, "total", "bytes_in") };
	s[n++] = (struct fmt_sample){ "moat_messages_out_total", NULL, NULL,
	    ctl_stat(rows, "total", "messages_out") };
	s[n++] = (struct fmt_sample){ "moat_bytes_out_total", NULL, NULL,
	    ctl_stat(rows, "total", "bytes_out") };
	s[n++] = (struct fmt_sample){ "moat_deliveries_total", "result", "sent",
	    ctl_stat(rows, "total", "sent") };
	s[n++] = (struct fmt_sample){ "moat_deliveries_total", "result", "deferred",
	    ctl_stat(rows, "total", "deferred") };
	s[n++] = (struct fmt_sample){ "moat_deliveries_total", "result", "bounced",
	    ctl_stat(rows, "total", "bounced") };
	buf_init(&out, 1024 * 1024);
	if (fmt_prometheus(&out, fam, CTL_N(fam), s, n) == -1)
		ctl_die("formatting the metrics failed");
	fwrite(out.data, 1, out.len, stdout);
	buf_free(&out);
}

static const char *const ctl_shape_cols[] = {
	"T", "5m", "10m", "20m", "40m", "80m", "160m", "320m", "640m", "1280m", "1280m+",
};

static void
ctl_print_shape(const struct ctl_rows *rows, int json)
{
	size_t i, k, wd = 6;

	if (json) {
		ctl_js("{\"columns\": [");
		for (k = 0; k < CTL_N(ctl_shape_cols); k++) {
			ctl_js(k == 0 ? "" : ", ");
			ctl_jstr(ctl_shape_cols[k]);
		}
		ctl_js("], \"rows\": [");
		for (i = 0; i < rows->n; i++) {
			ctl_js(i == 0 ? "{" : ", {");
			ctl_jfield("domain", ctl_get(&rows->v[i], "domain"), 0, 1);
			for (k = 0; k < CTL_N(ctl_shape_cols); k++)
				ctl_jnum(ctl_shape_cols[k], ctl_num(&rows->v[i], ctl_shape_cols[k]), 0);
			ctl_js("}");
		}
		ctl_js("]}");
		ctl_json_print();
		return;
	}
	for (i = 0; i < rows->n; i++)
		wd = ctl_max(wd, strlen(ctl_get(&rows->v[i], "domain")));
	printf("%-*s", (int)wd, "DOMAIN");
	for (k = 0; k < CTL_N(ctl_shape_cols); k++)
		printf(" %6s", ctl_shape_cols[k]);
	printf("\n");
	for (i = 0; i < rows->n; i++) {
		char *d = ctl_clean(ctl_get(&rows->v[i], "domain"));

		printf("%-*s", (int)wd, d);
		for (k = 0; k < CTL_N(ctl_shape_cols); k++)
			printf(" %6lld", ctl_num(&rows->v[i], ctl_shape_cols[k]));
		printf("\n");
		free(d);
	}
}

static void
ctl_print_audit(const struct ctl_rows *rows, int json)
{
	char when[64];
	size_t i;

	if (json) {
		ctl_js("{\"entries\": [");
		for (i = 0; i < rows->n; i++) {
			const struct ctl_row *r = &rows->v[i];

			ctl_js(i == 0 ? "{" : ", {");
			ctl_jnum("time", ctl_num(r, "time"), 1);
			ctl_jnum("uid", ctl_num(r, "uid"), 0);
			ctl_jfield("command", ctl_get(r, "command"), 0, 0);
			ctl_js(", \"ids\": ");
			ctl_jlist(ctl_get(r, "ids"));
			ctl_jfield("result", ctl_get(r, "result"), 0, 0);
			ctl_js("}");
		}
		ctl_js("]}");
		ctl_json_print();
		return;
	}
	printf("%-23s  %6s  %-8s  %-8s  %s\n", "TIME", "UID", "COMMAND", "RESULT", "IDS");
	for (i = 0; i < rows->n; i++) {
		const struct ctl_row *r = &rows->v[i];
		char *cmd = ctl_clean(ctl_get(r, "command")), *res = ctl_clean(ctl_get(r, "result"));
		char *ids = ctl_clean(ctl_get(r, "ids"));

		ctl_time(ctl_num(r, "time"), when, sizeof(when));
		printf("%-23s  %6lld  %-8s  %-8s  %s\n", when, ctl_num(r, "uid"), cmd, res,
		    ids[0] ? ids : "-");
		free(cmd);
		free(res);
		free(ids);
	}
}

/* Ids are upper-case hex; accept them typed in lower case. */
static char *
ctl_id(const char *s)
{
	char *id = xstrdup(s), *p;

	for (p = id; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	return id;
}

static const char *const ctl_filter_opts[] = {
	"state", "from", "to", "domain", "older-than", "reason",
};

/* The options after the command: flags, filters and positional words. */
static void
ctl_parse_opts(int argc, char **argv, struct ctl_opts *o)
{
	static const char *const states[] = { "active", "deferred", "held", "bounce", "queued" };
	int i;
	size_t k;

	memset(o, 0, sizeof(*o));
	o->pos = xcalloc((size_t)argc + 1, sizeof(char *));
	for (i = 0; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		char name[32];

		if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
			if (strcmp(a, "--") == 0)
				continue;
			if (a[0] == '-')
				ctl_usage();
			o->pos[o->npos++] = argv[i];
			continue;
		}
		a += 2;
		if ((eq = strchr(a, '=')) != NULL) {
			if ((size_t)(eq - a) >= sizeof(name))
				ctl_usage();
			memcpy(name, a, (size_t)(eq - a));
			name[eq - a] = '\0';
			val = eq + 1;
		} else
			strlcpy_m(name, a, sizeof(name));
		for (k = 0; k < CTL_N(ctl_filter_opts); k++)
			if (strcmp(name, ctl_filter_opts[k]) == 0)
				break;
		if (k < CTL_N(ctl_filter_opts)) {
			if (val == NULL) {
				if (i + 1 >= argc)
					ctl_usage();
				val = argv[++i];
			}
			if (o->nfilter == CTL_N(o->filter_key))
				ctl_usage();
			o->filter_key[o->nfilter] = ctl_filter_opts[k];
			o->filter_val[o->nfilter++] = val;
			if (k == 0) {
				size_t j;

				for (j = 0; j < CTL_N(states); j++)
					if (strcmp(val, states[j]) == 0)
						break;
				if (j == CTL_N(states)) {
					fprintf(stderr, "%s: --state takes active, deferred, held, "
					    "bounce or queued\n", progname);
					exit(EXIT_USAGE);
				}
			}
			continue;
		}
		if (val != NULL)
			ctl_usage();
		if (strcmp(name, "json") == 0)
			o->json = 1;
		else if (strcmp(name, "count") == 0)
			o->count = 1;
		else if (strcmp(name, "all") == 0)
			o->all = 1;
		else if (strcmp(name, "dry-run") == 0)
			o->dry_run = 1;
		else if (strcmp(name, "headers") == 0)
			o->headers = 1;
		else if (strcmp(name, "body") == 0)
			o->body = 1;
		else if (strcmp(name, "prometheus") == 0)
			o->prometheus = 1;
		else
			ctl_usage();
	}
}

/* The filter keys of a request ("older-than" travels as older_than). */
static void
ctl_put_filter(struct ipc_wr *w, const struct ctl_opts *o)
{
	size_t k;

	for (k = 0; k < o->nfilter; k++)
		ctl_req_kv(w, strcmp(o->filter_key[k], "older-than") == 0 ? "older_than" :
		    o->filter_key[k], o->filter_val[k]);
}

/* Only the flags a command knows. */
static void
ctl_only(const struct ctl_opts *o, int filter, int count, int change, int content,
    int prom, size_t minpos, size_t maxpos)
{
	if ((!filter && o->nfilter > 0) || (!count && o->count) ||
	    (!change && (o->all || o->dry_run)) || (!content && (o->headers || o->body)) ||
	    (!prom && o->prometheus) || o->npos < minpos || o->npos > maxpos)
		ctl_usage();
}

static void
ctl_rows_free(struct ctl_rows *rows)
{
	size_t i, k;

	for (i = 0; i < rows->n; i++) {
		for (k = 0; k < rows->v[i].n; k++) {
			free(rows->v[i].key[k]);
			free(rows->v[i].val[k]);
		}
	}
	free(rows->v);
	rows->v = NULL;
	rows->n = rows->alloc = 0;
}

static int
ctl_run(const char *path, const char *cmd, const struct ctl_opts *o)
{
	struct ctl_rows rows = { NULL, 0, 0 };
	struct ipc_wr w;
	struct buf data;
	size_t k;
	char *id;
	int status = EXIT_OK;

	if (strcmp(cmd, "queue") == 0 || strcmp(cmd, "mailq") == 0) {
		ctl_only(o, 1, 1, 0, 0, 0, 0, 0);
		ctl_req_init(&w, "list", (uint32_t)o->nfilter);
		ctl_put_filter(&w, o);
		ctl_exchange(path, &w, &rows, NULL, 0);
		if (o->json)
			ctl_json_queue(&rows, o->count);
		else if (o->count)
			printf("%zu\n", rows.n);
		else
			ctl_print_queue(&rows);
	} else if (strcmp(cmd, "show") == 0) {
		ctl_only(o, 0, 0, 0, 1, 0, 1, 1);
		if (o->headers && o->body)
			ctl_usage();
		id = ctl_id(o->pos[0]);
		if (strlen(id) > MOAT_QID_MAX) {
			fprintf(stderr, "%s: no such message\n", progname);
			return EXIT_NOMSG;
		}
		if (o->headers || o->body) {
			ctl_req_init(&w, o->headers ? "headers" : "body", 1);
			ctl_req_kv(&w, "id", id);
			buf_init(&data, CTL_DATA_MAX);
			ctl_exchange(path, &w, &rows, &data, o->json);
			if (o->json) {
				ctl_js("{");
				ctl_jfield("id", id, 0, 1);
				ctl_jfield("part", o->headers ? "headers" : "body", 0, 0);
				if (buf_append(&data, "", 1) == -1)
					ctl_die("message too large");
				ctl_jfield("data", (const char *)data.data, 0, 0);
				ctl_js("}");
				ctl_json_print();
			}
			buf_free(&data);
		} else {
			ctl_req_init(&w, "show", 1);
			ctl_req_kv(&w, "id", id);
			ctl_exchange(path, &w, &rows, NULL, 0);
			if (rows.n == 0)
				ctl_die("empty answer");
			if (o->json)
				ctl_json_show(&rows);
			else
				ctl_print_show(&rows);
		}
		free(id);
	} else if (strcmp(cmd, "hold") == 0 || strcmp(cmd, "release") == 0 ||
	    strcmp(cmd, "delete") == 0 || strcmp(cmd, "retry") == 0 ||
	    strcmp(cmd, "bounce") == 0) {
		ctl_only(o, 1, 0, 1, 0, 0, 0, SIZE_MAX);
		if (o->npos > MOAT_CTL_ARGS_MAX - 2)
			ctl_die("too many ids at once (at most %d)", MOAT_CTL_ARGS_MAX - 2);
		/* Ids, or a filter with --all: never both, never neither. */
		if ((o->npos > 0) == (o->all != 0) || (o->npos > 0 && o->nfilter > 0)) {
			fprintf(stderr, "%s: %s takes message ids, or a filter with --all\n",
			    progname, cmd);
			return EXIT_USAGE;
		}
		ctl_req_init(&w, cmd, (uint32_t)(o->npos + o->nfilter + (o->all != 0) +
		    (o->dry_run != 0)));
		for (k = 0; k < o->npos; k++) {
			id = ctl_id(o->pos[k]);
			ctl_req_kv(&w, "id", id);
			free(id);
		}
		ctl_put_filter(&w, o);
		if (o->all)
			ctl_req_kv(&w, "all", "1");
		if (o->dry_run)
			ctl_req_kv(&w, "dry_run", "1");
		ctl_exchange(path, &w, &rows, NULL, 0);
		status = ctl_print_change(cmd, o, &rows);
	} else if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0) {
		ctl_only(o, 0, 0, 0, 0, 0, 1, 1);
		ctl_req_init(&w, cmd, 1);
		ctl_req_kv(&w, "domain", o->pos[0]);
		ctl_exchange(path, &w, &rows, NULL, 0);
		ctl_print_pause(cmd, o, &rows);
	} else if (strcmp(cmd, "stats") == 0) {
		ctl_only(o, 0, 0, 0, 0, 1, 0, 0);
		if (o->json && o->prometheus)
			ctl_usage();
		ctl_req_init(&w, "stats", 0);
		ctl_exchange(path, &w, &rows, NULL, 0);
		if (o->prometheus)
			ctl_print_prometheus(&rows);
		else if (o->json)
			ctl_json_stats(&rows);
		else
			ctl_print_stats(&rows);
	} else if (strcmp(cmd, "shape") == 0 || strcmp(cmd, "audit") == 0) {
		ctl_only(o, 0, 0, 0, 0, 0, 0, 0);
		ctl_req_init(&w, cmd, 0);
		ctl_exchange(path, &w, &rows, NULL, 0);
		if (cmd[0] == 's')
			ctl_print_shape(&rows, o->json);
		else
			ctl_print_audit(&rows, o->json);
	} else
		ctl_usage();
	ctl_rows_free(&rows);
	return status;
}

int
main(int argc, char **argv)
{
	const char *cfgpath = MOAT_SYSCONFDIR "/moat.conf", *sockpath = NULL, *cmd;
	struct ctl_opts o;
	const char *base;
	char *path;
	int ch, status;

	base = strrchr(argv[0], '/');
	base = base != NULL ? base + 1 : argv[0];
	if (strcmp(base, "mailq") == 0)
		progname = "mailq";
	signal(SIGPIPE, SIG_IGN);
	/* "+": options after the command are the command's. */
	while ((ch = getopt(argc, argv, "+f:S:h")) != -1) {
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
	if (strcmp(progname, "mailq") == 0)
		cmd = "queue";
	else if (argc >= 1) {
		cmd = argv[0];
		argc--;
		argv++;
	} else
		ctl_usage();
	if (strcmp(cmd, "help") == 0)
		ctl_usage();
	/* reload, stop: a signal to moatd, not a control socket request. */
	if ((strcmp(cmd, "reload") == 0 || strcmp(cmd, "stop") == 0) && argc == 0)
		return ctl_signal_moatd(cfgpath, cmd);
	/* status: moatd's status file, not a control socket request. */
	if (strcmp(cmd, "status") == 0) {
		ctl_parse_opts(argc, argv, &o);
		ctl_only(&o, 0, 0, 0, 0, 0, 0, 0);
		return ctl_status(cfgpath, o.json);
	}
	ctl_parse_opts(argc, argv, &o);
	buf_init(&ctl_json, SIZE_MAX / 2);
	path = ctl_socket_path(cfgpath, sockpath);
	status = ctl_run(path, cmd, &o);
	if (fflush(stdout) == EOF || ferror(stdout))
		ctl_die("writing the output: %s", strerror(errno));
	buf_free(&ctl_json);
	free(o.pos);
	free(path);
	return status;
}
