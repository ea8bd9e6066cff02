/*
 * conf.c: read moat.conf, check every value against common/settings.h.
 *
 * The file format is Postfix main.cf's: "name = value" lines, lines that
 * start with white space continue the previous one, '#' lines are
 * comments.  Every setting comes from the S() table in settings.h; the
 * defaults there are parsed by the same code as the file, so a default
 * and a written value can never mean different things.  Errors are
 * collected, not fatal: an operator running `moatd -n` sees them all.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "mail/addr.h"
#include "mail/nexthop.h"
#include "mail/table.h"
#include "util/buf.h"
#include "util/conf.h"
#include "util/lines.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/xmalloc.h"

#define CONF_LINE_MAX		4096		/* one physical line */
#define CONF_LOGICAL_MAX	(64 * 1024)	/* one setting with its continuations */
#define CONF_FILE_MAX		(1024 * 1024)
#define CONF_ERR_MAX		256
#define CONF_WS			" \t"
#define CONF_SEP		" \t,"
#define CONF_BUNDLE_MAGIC	"\0moat-bundle 1\n"	/* see conf.h */

static const struct conf_setting_info conf_settings[CONF_NSETTINGS] = {
#define S(id, name, type, def, min, max, doc) \
	[CONF_##id] = { name, type, def, min, max, doc, NULL },
#define SC(id, name, def, choices, doc) \
	[CONF_##id] = { name, CONFT_CHOICE, def, 0, 0, doc, choices },
#include "settings.h"
#undef S
#undef SC
};

/* A table's value check (table_parse()). */
typedef int (*conf_check_fn)(const char *, char *, size_t);

/* State of one parse: where errors go and which names were seen where. */
struct conf_parser {
	const char	*source;
	FILE		*errout;
	int		 nerr;
	int		 seen[CONF_NSETTINGS];	/* line of first use, 0 = unset */
	struct conf	*cfg;
};

/* A unit suffix and what it multiplies by. */
struct conf_unit {
	char		 c;
	long long	 mult;
};

static const struct conf_unit conf_size_units[] = {
	{ 'k', 1024LL }, { 'K', 1024LL },
	{ 'm', 1024LL * 1024 }, { 'M', 1024LL * 1024 },
	{ 'g', 1024LL * 1024 * 1024 }, { 'G', 1024LL * 1024 * 1024 },
	{ '\0', 0 }
};

static const struct conf_unit conf_time_units[] = {
	{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 604800 },
	{ '\0', 0 }
};

const struct conf_setting_info *
conf_setting(enum conf_key k)
{
	if ((unsigned int)k >= CONF_NSETTINGS)
		return NULL;
	return &conf_settings[k];
}

/* Report one error as "source:line: message" and count it. */
__attribute__((format(printf, 3, 4))) static void
conf_error(struct conf_parser *p, int line, const char *fmt, ...)
{
	va_list ap;

	p->nerr++;
	if (p->errout == NULL)
		return;
	fprintf(p->errout, "%s:%d: ", p->source, line);
	va_start(ap, fmt);
	vfprintf(p->errout, fmt, ap);
	va_end(ap);
	fputc('\n', p->errout);
}

/* Report an error about the file as a whole. */
static int
conf_file_error(const char *source, FILE *errout, const char *what, int err)
{
	if (errout != NULL) {
		if (err != 0)
			fprintf(errout, "%s: %s: %s\n", source, what, strerror(err));
		else
			fprintf(errout, "%s: %s\n", source, what);
	}
	return 1;
}

/* Parse digits with an optional unit from units (NULL: none allowed). */
static int
conf_parse_number(const char *s, const struct conf_unit *units, long long *out,
    char *err, size_t errsz)
{
	long long v = 0, mult = 1;
	const char *p = s;

	if (*p < '0' || *p > '9') {
		snprintf(err, errsz, "\"%s\" is not a number", s);
		return -1;
	}
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (LLONG_MAX - (*p - '0')) / 10) {
			snprintf(err, errsz, "\"%s\" is too large", s);
			return -1;
		}
		v = v * 10 + (*p - '0');
	}
	if (*p != '\0') {
		const struct conf_unit *u;

		for (u = units; u != NULL && u->c != '\0'; u++)
			if (u->c == *p)
				break;
		if (u == NULL || u->c == '\0' || p[1] != '\0') {
			snprintf(err, errsz, "\"%s\": bad number or unit%s", s,
			    units == conf_size_units ? " (want k, M or G)" :
			    units == conf_time_units ? " (want s, m, h, d or w)" : "");
			return -1;
		}
		mult = u->mult;
	}
	if (v > LLONG_MAX / mult) {
		snprintf(err, errsz, "\"%s\" is too large", s);
		return -1;
	}
	*out = v * mult;
	return 0;
}

/* Check a number against its setting's bounds (none when both are 0). */
static int
conf_check_bounds(const struct conf_setting_info *si, long long v, char *err,
    size_t errsz)
{
	const char *unit = si->type == CONFT_SIZE ? " bytes" :
	    si->type == CONFT_TIME ? " seconds" : "";

	if (si->min == 0 && si->max == 0)
		return 0;
	if (v < si->min || v > si->max) {
		snprintf(err, errsz, "%lld%s is out of range (%lld..%lld%s)",
		    v, unit, si->min, si->max, unit);
		return -1;
	}
	return 0;
}

/* Split text on white space and commas into fresh words, lower-cased if lower. */
static void
conf_split_case(const char *text, struct conf_words *w, int lower)
{
	const char *p = text;
	size_t alloc = 0;

	w->v = NULL;
	w->n = 0;
	for (;;) {
		size_t n, i;
		char *word;

		p += strspn(p, CONF_SEP);
		if (*p == '\0')
			break;
		n = strcspn(p, CONF_SEP);
		word = xstrndup(p, n);
		for (i = 0; lower && i < n; i++)
			if (word[i] >= 'A' && word[i] <= 'Z')
				word[i] = (char)(word[i] - 'A' + 'a');
		if (w->n == alloc) {
			alloc = alloc == 0 ? 8 : alloc * 2;
			w->v = xreallocarray(w->v, alloc, sizeof(*w->v));
		}
		w->v[w->n++] = word;
		p += n;
	}
}

/* Words of text, lower-cased. */
static void
conf_split(const char *text, struct conf_words *w)
{
	conf_split_case(text, w, 1);
}

/* Free the words of a list and leave it empty. */
static void
conf_words_free(struct conf_words *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		free(w->v[i]);
	free(w->v);
	w->v = NULL;
	w->n = 0;
}

/* Why a network did not parse, for the error message. */
static const char *
conf_network_why(const char *word)
{
	struct netblock nb;
	char addr[64];
	const char *slash = strchr(word, '/');

	if (slash != NULL && (size_t)(slash - word) < sizeof(addr)) {
		memcpy(addr, word, (size_t)(slash - word));
		addr[slash - word] = '\0';
		if (netblock_parse(addr, &nb) == 0 && slash[1] != '\0' &&
		    strspn(slash + 1, "0123456789") == strlen(slash + 1) &&
		    strlen(slash + 1) <= 3 && atoi(slash + 1) <= nb.prefix)
			return "host bits set after the prefix length";
	}
	return "want address or address/prefix";
}

/* CONFT_DOMAINS: a list of domain names. */
static int
conf_set_domains(struct conf_value *v, char *err, size_t errsz)
{
	size_t i;

	conf_split(v->text, &v->words);
	for (i = 0; i < v->words.n; i++) {
		if (!addr_domain_valid(v->words.v[i], strlen(v->words.v[i]))) {
			snprintf(err, errsz, "bad domain \"%s\"", v->words.v[i]);
			return -1;
		}
	}
	return 0;
}

/* CONFT_NETWORKS: a list of CIDR blocks. */
static int
conf_set_networks(struct conf_value *v, char *err, size_t errsz)
{
	struct conf_words w;
	size_t i;
	int rc = 0;

	conf_split(v->text, &w);
	v->nets.v = xcalloc(w.n, sizeof(*v->nets.v));
	for (i = 0; i < w.n; i++) {
		if (netblock_parse(w.v[i], &v->nets.v[v->nets.n]) == -1) {
			snprintf(err, errsz, "bad network \"%s\" (%s)", w.v[i],
			    conf_network_why(w.v[i]));
			rc = -1;
			break;
		}
		v->nets.n++;
	}
	conf_words_free(&w);
	return rc;
}

/* CONFT_LISTEN: one or more ip:port / [ipv6]:port. */
static int
conf_set_listen(struct conf_value *v, char *err, size_t errsz)
{
	struct conf_words w;
	size_t i;
	int rc = 0;

	conf_split(v->text, &w);
	if (w.n == 0) {
		snprintf(err, errsz, "at least one address is needed");
		conf_words_free(&w);
		return -1;
	}
	v->addrs = xcalloc(w.n, sizeof(*v->addrs));
	for (i = 0; i < w.n; i++) {
		if (hostport_parse(w.v[i], &v->addrs[v->naddrs]) == -1) {
			snprintf(err, errsz, "bad listen address \"%s\" (want "
			    "ip:port or [ipv6]:port, port 1..65535)", w.v[i]);
			rc = -1;
			break;
		}
		v->naddrs++;
	}
	conf_words_free(&w);
	return rc;
}

/* Set the port of an IPv4 or IPv6 socket address. */
static void
conf_addr_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/*
 * CONFT_NEXTHOP: empty or one transport (mail/nexthop.h).  An IP literal
 * ("[192.0.2.1]:25") also fills v->addrs; a missing port is set to
 * relay_port once every setting is known (conf_finish_nexthop()).
 */
static int
conf_set_nexthop(struct conf_value *v, char *err, size_t errsz)
{
	struct nexthop nh;
	unsigned char bin[16];
	char lit[300];
	const char *t = v->text;

	if (*t == '\0')
		return 0;
	if (t[strcspn(t, CONF_SEP)] != '\0') {
		snprintf(err, errsz, "one next hop only, as [address]:port, "
		    "host or smtp:[host]:port");
		return -1;
	}
	if (nexthop_parse_transport(t, &nh, err, errsz) == -1)
		return -1;
	if (nh.kind != NEXTHOP_HOST || (inet_pton(AF_INET, nh.host, bin) != 1 &&
	    inet_pton(AF_INET6, nh.host, bin) != 1))
		return 0;
	snprintf(lit, sizeof(lit), "[%s]:%u", nh.host,
	    nh.port != 0 ? (unsigned int)nh.port : 1);
	v->addrs = xcalloc(1, sizeof(*v->addrs));
	if (hostport_parse(lit, &v->addrs[0]) == -1) {
		snprintf(err, errsz, "bad next hop \"%s\"", t);
		return -1;
	}
	conf_addr_set_port(&v->addrs[0], nh.port);
	v->naddrs = 1;
	return 0;
}

/* relay_host [address] without a port: relay_port, now that it is known. */
static void
conf_finish_nexthop(struct conf *cfg)
{
	struct conf_value *v = &cfg->v[CONF_RELAY_HOST];
	struct nexthop nh;
	char err[CONF_ERR_MAX];

	if (v->naddrs != 1 || v->text == NULL ||
	    nexthop_parse_transport(v->text, &nh, err, sizeof(err)) == -1 ||
	    nh.port != 0)
		return;
	conf_addr_set_port(&v->addrs[0],
	    (uint16_t)cfg->v[CONF_RELAY_PORT].num);
}

/* CONFT_PATHS: absolute paths, case kept. */
static int
conf_set_paths(struct conf_value *v, char *err, size_t errsz)
{
	size_t i;

	conf_split_case(v->text, &v->words, 0);
	for (i = 0; i < v->words.n; i++)
		if (v->words.v[i][0] != '/') {
			snprintf(err, errsz, "\"%s\" is not an absolute path",
			    v->words.v[i]);
			return -1;
		}
	return 0;
}

/* CONFT_CHOICE: exactly one of the words in si->choices. */
static int
conf_set_choice(struct conf_value *v, const struct conf_setting_info *si,
    char *err, size_t errsz)
{
	struct conf_words allowed = { NULL, 0 };
	int ok;

	conf_split(v->text, &v->words);
	conf_split(si->choices, &allowed);
	ok = v->words.n == 1 && conf_words_has(&allowed, v->words.v[0]);
	conf_words_free(&allowed);
	if (!ok) {
		snprintf(err, errsz, "\"%s\" is not one of: %s", v->text,
		    si->choices);
		return -1;
	}
	return 0;
}

/* Parse text as the value of setting si into v. */
static int
conf_value_set(struct conf_value *v, const struct conf_setting_info *si,
    const char *text, int line, char *err, size_t errsz)
{
	v->type = si->type;
	v->line = line;
	v->text = xstrdup(text);
	switch (si->type) {
	case CONFT_STR:
		return 0;
	case CONFT_PATH:
		if (text[0] != '/') {
			snprintf(err, errsz, "\"%s\" is not an absolute path", text);
			return -1;
		}
		return 0;
	case CONFT_INT:
		if (conf_parse_number(text, NULL, &v->num, err, errsz) == -1)
			return -1;
		return conf_check_bounds(si, v->num, err, errsz);
	case CONFT_SIZE:
		if (conf_parse_number(text, conf_size_units, &v->num, err, errsz) == -1)
			return -1;
		return conf_check_bounds(si, v->num, err, errsz);
	case CONFT_TIME:
		if (conf_parse_number(text, conf_time_units, &v->num, err, errsz) == -1)
			return -1;
		return conf_check_bounds(si, v->num, err, errsz);
	case CONFT_WORDS:
		conf_split(text, &v->words);
		return 0;
	case CONFT_DOMAINS:
		return conf_set_domains(v, err, errsz);
	case CONFT_NETWORKS:
		return conf_set_networks(v, err, errsz);
	case CONFT_LISTEN:
		/* Optional listeners (no default) may stay empty. */
		if (si->def[0] == '\0' && strspn(text, CONF_SEP) == strlen(text))
			return 0;
		return conf_set_listen(v, err, errsz);
	case CONFT_NEXTHOP:
		return conf_set_nexthop(v, err, errsz);
	case CONFT_PATHS:
		return conf_set_paths(v, err, errsz);
	case CONFT_CHOICE:
		return conf_set_choice(v, si, err, errsz);
	case CONFT_TABLE:
		if (text[0] != '\0' && text[0] != '/') {
			snprintf(err, errsz, "\"%s\" is not an absolute path", text);
			return -1;
		}
		return 0;
	}
	snprintf(err, errsz, "unknown setting type");
	return -1;
}

/* The setting called name[0..n), or CONF_NSETTINGS. */
static enum conf_key
conf_lookup(const char *name, size_t n)
{
	int k;

	for (k = 0; k < CONF_NSETTINGS; k++)
		if (strlen(conf_settings[k].name) == n &&
		    memcmp(conf_settings[k].name, name, n) == 0)
			return (enum conf_key)k;
	return CONF_NSETTINGS;
}

/* Handle one logical line "name = value" (text is trimmed). */
static void
conf_setting_line(struct conf_parser *p, const char *text, int line)
{
	char err[CONF_ERR_MAX], safe[128];
	size_t nlen = strcspn(text, CONF_WS "=");
	const char *val;
	enum conf_key k;
	size_t i;

	log_sanitize(safe, sizeof(safe), text, nlen);
	if (nlen == 0) {
		conf_error(p, line, "missing setting name before '='");
		return;
	}
	if ((k = conf_lookup(text, nlen)) == CONF_NSETTINGS) {
		conf_error(p, line, "unknown setting \"%s\"", safe);
		return;
	}
	val = text + nlen;
	val += strspn(val, CONF_WS);
	if (*val != '=') {
		conf_error(p, line, "missing '=' after \"%s\"", safe);
		return;
	}
	val++;
	val += strspn(val, CONF_WS);
	if (p->seen[k] != 0) {
		conf_error(p, line, "\"%s\" given twice (first on line %d)",
		    safe, p->seen[k]);
		return;
	}
	p->seen[k] = line;
	for (i = 0; val[i] != '\0'; i++) {
		unsigned char c = (unsigned char)val[i];

		/* Values end up in SMTP replies, headers and file names. */
		if ((c < 0x20 && c != '\t') || c >= 0x7f) {
			conf_error(p, line, "%s: control or non-ASCII byte in value",
			    safe);
			return;
		}
	}
	if (conf_value_set(&p->cfg->v[k], &conf_settings[k], val, line, err,
	    sizeof(err)) == -1)
		conf_error(p, line, "%s: %s", safe, err);
}

/* lines_split: one logical line "name = value". */
static void
conf_lines_line(void *arg, char *s, size_t n, int line)
{
	(void)n;
	conf_setting_line(arg, s, line);
}

/* lines_split: one error. */
static void
conf_lines_error(void *arg, int line, const char *msg)
{
	conf_error(arg, line, "%s", msg);
}

/* Split the text into logical lines and handle each. */
static void
conf_parse_text(struct conf_parser *p, const char *text, size_t len)
{
	const struct lines_reader r = {
		CONF_LINE_MAX, CONF_LOGICAL_MAX, "setting", "a", p,
		conf_lines_line, conf_lines_error
	};

	lines_split(&r, text, len);
}

/* Give every setting the file did not mention its default. */
static void
conf_apply_defaults(struct conf_parser *p)
{
	char err[CONF_ERR_MAX];
	int k;

	for (k = 0; k < CONF_NSETTINGS; k++) {
		if (p->seen[k] != 0)
			continue;
		if (conf_value_set(&p->cfg->v[k], &conf_settings[k],
		    conf_settings[k].def, 0, err, sizeof(err)) == -1)
			conf_error(p, 0, "%s: bad default: %s", conf_settings[k].name, err);
	}
}

/* Remember the system's host name while the process may still ask. */
static void
conf_cache_hostname(struct conf *cfg)
{
	char name[256];

	if (cfg->v[CONF_MYHOSTNAME].text[0] != '\0')
		return;
	if (gethostname(name, sizeof(name)) == -1 || name[0] == '\0')
		strlcpy_m(name, "localhost", sizeof(name));
	name[sizeof(name) - 1] = '\0';
	cfg->hostname = xstrdup(name);
}

/* Start a parse of a configuration named source. */
static void
conf_parser_init(struct conf_parser *p, const char *source, FILE *errout)
{
	memset(p, 0, sizeof(*p));
	p->source = source != NULL ? source : "(config)";
	p->errout = errout;
	p->cfg = xcalloc(1, sizeof(*p->cfg));
	p->cfg->source = xstrdup(p->source);
}

/* End a parse: hand over the configuration, or free it after errors. */
static int
conf_parser_done(struct conf_parser *p, struct conf **cfgp)
{
	if (p->nerr != 0) {
		conf_free(p->cfg);
		*cfgp = NULL;
		return p->nerr;
	}
	conf_cache_hostname(p->cfg);
	*cfgp = p->cfg;
	return 0;
}

/* The settings of a plain configuration text, defaults for the rest. */
static void
conf_parse_plain(struct conf_parser *p, const char *text, size_t len)
{
	conf_parse_text(p, text, len);
	conf_apply_defaults(p);
	conf_finish_nexthop(p->cfg);
}

/* transport_maps values: transports (mail/nexthop.h). */
static int
conf_check_transport(const char *value, char *err, size_t errlen)
{
	struct nexthop nh;

	return nexthop_parse_transport(value, &nh, err, errlen);
}

/* relay_tls_policy_maps values: one of relay_tls's choices. */
static int
conf_check_tls_policy(const char *value, char *err, size_t errlen)
{
	const char *choices = conf_settings[CONF_RELAY_TLS].choices;
	struct conf_words w = { NULL, 0 };
	size_t i;
	int ok = 0;

	conf_split(choices, &w);
	for (i = 0; i < w.n; i++)
		if (strcmp(w.v[i], value) == 0)
			ok = 1;
	conf_words_free(&w);
	if (!ok) {
		snprintf(err, errlen, "\"%.64s\" is not one of: %s", value, choices);
		return -1;
	}
	return 0;
}

/* How the values of table setting k are checked (NULL: any text). */
static conf_check_fn
conf_table_check(enum conf_key k)
{
	if (k == CONF_TRANSPORT_MAPS)
		return conf_check_transport;
	if (k == CONF_RELAY_TLS_POLICY_MAPS)
		return conf_check_tls_policy;
	return NULL;
}

/* Parse text as the table of setting k; the table keeps a copy of text. */
static void
conf_table_set(struct conf_parser *p, enum conf_key k, const char *text,
    size_t len)
{
	struct conf_value *v = &p->cfg->v[k];
	struct table *t;
	int n;

	n = table_parse(v->text, text, len, conf_table_check(k), &t, p->errout);
	if (n != 0) {
		p->nerr += n;
		return;
	}
	table_free(v->table);
	free(v->table_text);
	v->table = t;
	v->table_text = xmalloc(len + 1);
	memcpy(v->table_text, text, len);
	v->table_text[len] = '\0';
	v->table_len = len;
}

/*
 * Read what fd holds, at most max bytes, into a fresh NUL-terminated
 * buffer.  Returns 0, or 1 (one error, reported as "source: ...").
 */
static int
conf_read_fd(int fd, const char *source, size_t max, char **textp,
    size_t *lenp, FILE *errout)
{
	struct stat st;
	size_t size, off = 0;
	char *text;

	*textp = NULL;
	if (fstat(fd, &st) == -1)
		return conf_file_error(source, errout, "cannot stat", errno);
	if (!S_ISREG(st.st_mode))
		return conf_file_error(source, errout, "not a regular file", 0);
	if ((unsigned long long)st.st_size > max)
		return conf_file_error(source, errout, max == CONF_BUNDLE_MAX ?
		    "larger than 4 MiB" : "larger than 1 MiB", 0);
	size = (size_t)st.st_size;
	text = xmalloc(size + 1);
	/* pread from 0: a memfd's offset is shared with every process
	 * that inherited it, so read() would depend on who read first. */
	while (off < size) {
		ssize_t n = pread(fd, text + off, size - off, (off_t)off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			free(text);
			return conf_file_error(source, errout, "cannot read", errno);
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	text[off] = '\0';
	*textp = text;
	*lenp = off;
	return 0;
}

/* Read and parse the file of every non-empty table setting. */
static void
conf_tables_load(struct conf_parser *p)
{
	int k;

	for (k = 0; k < CONF_NSETTINGS; k++) {
		struct conf_value *v = &p->cfg->v[k];
		char *text;
		size_t len;
		int fd;

		if (conf_settings[k].type != CONFT_TABLE || v->text == NULL ||
		    v->text[0] != '/')
			continue;
		/* O_NONBLOCK: a FIFO named by mistake must not hang moatd. */
		if ((fd = open(v->text, O_RDONLY | O_CLOEXEC | O_NOCTTY |
		    O_NONBLOCK)) == -1) {
			conf_error(p, v->line, "%s: %s: cannot open: %s",
			    conf_settings[k].name, v->text, strerror(errno));
			continue;
		}
		p->nerr += conf_read_fd(fd, v->text, TABLE_FILE_MAX, &text, &len,
		    p->errout);
		close(fd);
		if (text == NULL)
			continue;
		conf_table_set(p, (enum conf_key)k, text, len);
		free(text);
	}
}

/* Report a malformed bundle. */
static void
conf_bundle_error(struct conf_parser *p, const char *what)
{
	p->nerr++;
	if (p->errout != NULL)
		fprintf(p->errout, "%s: bad configuration bundle: %s\n",
		    p->source, what);
}

/*
 * The next header line of a bundle at *pos, NUL-terminated into line;
 * -1 if there is no '\n' within the line's size.
 */
static int
conf_bundle_line(const char *text, size_t len, size_t *pos, char *line,
    size_t linesz)
{
	size_t avail = len - *pos, n;
	const char *nl;

	if (avail > linesz - 1)
		avail = linesz - 1;
	if ((nl = memchr(text + *pos, '\n', avail)) == NULL)
		return -1;
	n = (size_t)(nl - (text + *pos));
	memcpy(line, text + *pos, n);
	line[n] = '\0';
	*pos += n + 1;
	return 0;
}

/* A section length: decimal, no leading zero, at most max. */
static int
conf_bundle_len(const char *s, size_t max, size_t *out)
{
	size_t v = 0;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > max)
			return -1;
		v = v * 10 + (size_t)(*s - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* The body of a section of length n at *pos, which must end with '\n'. */
static const char *
conf_bundle_body(const char *text, size_t len, size_t *pos, size_t n)
{
	const char *body = text + *pos;

	if (len - *pos < n + 1 || body[n] != '\n')
		return NULL;
	*pos += n + 1;
	return body;
}

/* One "table NAME LEN" section; -1 if the bundle is malformed. */
static int
conf_bundle_table(struct conf_parser *p, const char *line, const char *text,
    size_t len, size_t *pos, int *have)
{
	const char *name = line + 6, *sp = strchr(name, ' ');
	const char *body;
	enum conf_key k;
	size_t n;

	if (sp == NULL ||
	    (k = conf_lookup(name, (size_t)(sp - name))) == CONF_NSETTINGS ||
	    conf_settings[k].type != CONFT_TABLE) {
		conf_bundle_error(p, "table of an unknown setting");
		return -1;
	}
	if (conf_bundle_len(sp + 1, TABLE_FILE_MAX, &n) == -1 ||
	    (body = conf_bundle_body(text, len, pos, n)) == NULL) {
		conf_bundle_error(p, "bad table length");
		return -1;
	}
	if (have[k]) {
		conf_bundle_error(p, "a table given twice");
		return -1;
	}
	have[k] = 1;
	if (p->cfg->v[k].text == NULL || p->cfg->v[k].text[0] != '/') {
		conf_bundle_error(p, "a table for an empty setting");
		return -1;
	}
	conf_table_set(p, k, body, n);
	return 0;
}

/* Parse a bundle (see conf.h); text starts with the magic. */
static void
conf_bundle_parse(struct conf_parser *p, const char *text, size_t len)
{
	int have[CONF_NSETTINGS] = { 0 };
	char line[128];
	const char *body;
	size_t pos = sizeof(CONF_BUNDLE_MAGIC) - 1, n;
	int k;

	if (conf_bundle_line(text, len, &pos, line, sizeof(line)) == -1 ||
	    strncmp(line, "conf ", 5) != 0 ||
	    conf_bundle_len(line + 5, CONF_FILE_MAX, &n) == -1 ||
	    (body = conf_bundle_body(text, len, &pos, n)) == NULL) {
		conf_bundle_error(p, "bad conf section");
		return;
	}
	conf_parse_plain(p, body, n);
	for (;;) {
		if (conf_bundle_line(text, len, &pos, line, sizeof(line)) == -1) {
			conf_bundle_error(p, "missing end");
			return;
		}
		if (strcmp(line, "end") == 0)
			break;
		if (strncmp(line, "table ", 6) != 0) {
			conf_bundle_error(p, "unknown section");
			return;
		}
		if (conf_bundle_table(p, line, text, len, &pos, have) == -1)
			return;
	}
	if (pos != len)
		conf_bundle_error(p, "data after end");
	for (k = 0; k < CONF_NSETTINGS; k++)
		if (conf_settings[k].type == CONFT_TABLE && !have[k] &&
		    p->cfg->v[k].text != NULL && p->cfg->v[k].text[0] != '\0')
			conf_error(p, p->cfg->v[k].line, "%s: table %s is missing "
			    "from the configuration bundle", conf_settings[k].name,
			    p->cfg->v[k].text);
}

int
conf_parse(const char *source, const char *text, size_t len,
    struct conf **cfgp, FILE *errout)
{
	struct conf_parser p;

	conf_parser_init(&p, source, errout);
	if (len >= sizeof(CONF_BUNDLE_MAGIC) - 1 &&
	    memcmp(text, CONF_BUNDLE_MAGIC, sizeof(CONF_BUNDLE_MAGIC) - 1) == 0)
		conf_bundle_parse(&p, text, len);
	else if (len > CONF_FILE_MAX)
		p.nerr += conf_file_error(p.source, errout, "larger than 1 MiB", 0);
	else
		conf_parse_plain(&p, text, len);
	return conf_parser_done(&p, cfgp);
}

int
conf_parse_file(const char *source, const char *text, size_t len,
    struct conf **cfgp, FILE *errout)
{
	struct conf_parser p;

	conf_parser_init(&p, source, errout);
	if (len > CONF_FILE_MAX)
		p.nerr += conf_file_error(p.source, errout, "larger than 1 MiB", 0);
	else {
		/* A bundle's magic starts with NUL: the plain parser refuses it. */
		conf_parse_plain(&p, text, len);
		conf_tables_load(&p);
	}
	return conf_parser_done(&p, cfgp);
}

int
conf_load_fd(int fd, const char *source, struct conf **cfgp, FILE *errout)
{
	char *text;
	size_t len;
	int r;

	*cfgp = NULL;
	if (conf_read_fd(fd, source, CONF_BUNDLE_MAX, &text, &len, errout) != 0)
		return 1;
	r = conf_parse(source, text, len, cfgp, errout);
	free(text);
	return r;
}

int
conf_load_file(const char *path, struct conf **cfgp, FILE *errout)
{
	char *text;
	size_t len;
	int fd, r;

	*cfgp = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
		return conf_file_error(path, errout, "cannot open", errno);
	r = conf_read_fd(fd, path, CONF_FILE_MAX, &text, &len, errout);
	close(fd);
	if (r != 0)
		return r;
	r = conf_parse_file(path, text, len, cfgp, errout);
	free(text);
	return r;
}

char *
conf_bundle(const struct conf *cfg, const char *text, size_t len,
    size_t *outlen)
{
	struct buf b;
	int k, bad = 0;

	*outlen = 0;
	if (len > CONF_FILE_MAX || memchr(text, '\0', len) != NULL)
		return NULL;
	buf_init(&b, CONF_BUNDLE_MAX);
	bad |= buf_append(&b, CONF_BUNDLE_MAGIC, sizeof(CONF_BUNDLE_MAGIC) - 1);
	bad |= buf_printf(&b, "conf %zu\n", len);
	bad |= buf_append(&b, text, len);
	bad |= buf_append(&b, "\n", 1);
	for (k = 0; k < CONF_NSETTINGS; k++) {
		const struct conf_value *v = &cfg->v[k];

		if (conf_settings[k].type != CONFT_TABLE || v->text == NULL ||
		    v->text[0] == '\0')
			continue;
		/* Without its table the bundle would not parse: say so now. */
		if (v->table == NULL) {
			bad = -1;
			break;
		}
		bad |= buf_printf(&b, "table %s %zu\n", conf_settings[k].name,
		    v->table_len);
		bad |= buf_append(&b, v->table_text, v->table_len);
		bad |= buf_append(&b, "\n", 1);
	}
	bad |= buf_append(&b, "end\n", 4);
	if (bad != 0) {
		buf_free(&b);
		return NULL;
	}
	*outlen = b.len;
	return (char *)b.data;
}

void
conf_free(struct conf *cfg)
{
	int k;

	if (cfg == NULL)
		return;
	for (k = 0; k < CONF_NSETTINGS; k++) {
		struct conf_value *v = &cfg->v[k];

		free(v->text);
		conf_words_free(&v->words);
		netlist_free(&v->nets);
		free(v->addrs);
		table_free(v->table);
		free(v->table_text);
	}
	free(cfg->hostname);
	free(cfg->source);
	free(cfg);
}

void
conf_print(const struct conf *cfg, FILE *out)
{
	int k;

	for (k = 0; k < CONF_NSETTINGS; k++)
		fprintf(out, "%s = %s\n", conf_settings[k].name,
		    cfg->v[k].text != NULL ? cfg->v[k].text : conf_settings[k].def);
}

int
conf_words_has(const struct conf_words *w, const char *word)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		if (strcasecmp(w->v[i], word) == 0)
			return 1;
	return 0;
}

const char *
conf_myhostname(const struct conf *c)
{
	const char *h = c->v[CONF_MYHOSTNAME].text;

	if (h != NULL && h[0] != '\0')
		return h;
	return c->hostname != NULL ? c->hostname : "localhost";
}
