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
#include <unistd.h>

#include "mail/addr.h"
#include "util/buf.h"
#include "util/conf.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/xmalloc.h"

#define CONF_LINE_MAX		4096		/* one physical line */
#define CONF_LOGICAL_MAX	(64 * 1024)	/* one setting with its continuations */
#define CONF_FILE_MAX		(1024 * 1024)
#define CONF_ERR_MAX		256
#define CONF_WS			" \t"
#define CONF_SEP		" \t,"

static const struct conf_setting_info conf_table[CONF_NSETTINGS] = {
#define S(id, name, type, def, min, max, doc) \
	[CONF_##id] = { name, type, def, min, max, doc, NULL },
#define SC(id, name, def, choices, doc) \
	[CONF_##id] = { name, CONFT_CHOICE, def, 0, 0, doc, choices },
#include "settings.h"
#undef S
#undef SC
};

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
	return &conf_table[k];
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

/* Is s[0..n) a host name (letters, digits, '-', '.', and some letter)
 * rather than a mistyped address? */
static int
conf_looks_like_hostname(const char *s, size_t n)
{
	int alpha = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))
			alpha = 1;
		else if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '-' && s[i] != '.')
			return 0;
	}
	return alpha;
}

/*
 * CONFT_NEXTHOP: empty or "[address]:port".  The brackets are required
 * (as in Postfix's relayhost, where they mean "no MX lookup") so that a
 * later release can give unbracketed names their DNS meaning.
 */
static int
conf_set_nexthop(struct conf_value *v, char *err, size_t errsz)
{
	const char *t = v->text, *close;
	size_t hlen;

	if (*t == '\0')
		return 0;
	if (t[strcspn(t, CONF_SEP)] != '\0') {
		snprintf(err, errsz, "one next hop only, as [address]:port");
		return -1;
	}
	if (t[0] != '[') {
		hlen = strcspn(t, ":");
		if (conf_looks_like_hostname(t, hlen))
			snprintf(err, errsz, "host names are not supported yet; "
			    "write an IP address in brackets");
		else
			snprintf(err, errsz, "write the address in brackets, "
			    "as in [192.0.2.1]:25");
		return -1;
	}
	close = strchr(t, ']');
	hlen = close != NULL ? (size_t)(close - t - 1) : strlen(t + 1);
	v->addrs = xcalloc(1, sizeof(*v->addrs));
	if (hostport_parse(t, &v->addrs[0]) == 0) {
		v->naddrs = 1;
		return 0;
	}
	if (conf_looks_like_hostname(t + 1, hlen))
		snprintf(err, errsz, "host names are not supported yet; "
		    "write an IP address in brackets");
	else if (close == NULL || close[1] != ':')
		snprintf(err, errsz, "bad next hop \"%s\" (want [address]:port)", t);
	else
		snprintf(err, errsz, "bad next hop \"%s\" (want [address]:port, "
		    "port 1..65535)", t);
	return -1;
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
		if (strlen(conf_table[k].name) == n &&
		    memcmp(conf_table[k].name, name, n) == 0)
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
	if (conf_value_set(&p->cfg->v[k], &conf_table[k], val, line, err,
	    sizeof(err)) == -1)
		conf_error(p, line, "%s: %s", safe, err);
}

/* Finish the logical line collected so far. */
static void
conf_flush(struct conf_parser *p, struct buf *logical, int *line)
{
	char *s;
	size_t n;

	if (*line == 0)
		return;
	s = (char *)logical->data;
	n = logical->len;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	s[n] = '\0';
	conf_setting_line(p, s, *line);
	buf_reset(logical);
	*line = 0;
}

/* Is this physical line blank or a comment? */
static int
conf_line_ignored(const char *l, size_t n)
{
	size_t i = 0;

	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	return i == n || l[i] == '#';
}

/* Split the text into logical lines and handle each. */
static void
conf_parse_text(struct conf_parser *p, const char *text, size_t len)
{
	struct buf logical;
	size_t off = 0;
	int lineno = 0, start = 0, discard = 0;

	buf_init(&logical, CONF_LOGICAL_MAX);
	while (off < len) {
		const char *l = text + off, *nl = memchr(l, '\n', len - off);
		size_t n = nl != NULL ? (size_t)(nl - l) : len - off;
		int cont;

		off += n + (nl != NULL);
		lineno++;
		if (n > 0 && l[n - 1] == '\r')
			n--;
		cont = n > 0 && (l[0] == ' ' || l[0] == '\t');
		if (memchr(l, '\0', n) != NULL || n > CONF_LINE_MAX) {
			conf_error(p, lineno, memchr(l, '\0', n) != NULL ?
			    "NUL byte in line" : "line longer than 4096 bytes");
			/* Drop the whole setting this line belongs to. */
			if (!cont) {
				conf_flush(p, &logical, &start);
			} else {
				buf_reset(&logical);
				start = 0;
			}
			discard = 1;
			continue;
		}
		if (conf_line_ignored(l, n))
			continue;
		if (!cont) {
			conf_flush(p, &logical, &start);
			discard = 0;
			start = lineno;
			(void)buf_append(&logical, l, n);
			continue;
		}
		if (discard)
			continue;
		if (start == 0) {
			conf_error(p, lineno, "continuation line without a setting before it");
			discard = 1;
			continue;
		}
		while (n > 0 && (*l == ' ' || *l == '\t')) {
			l++;
			n--;
		}
		if (buf_append(&logical, " ", 1) == -1 ||
		    buf_append(&logical, l, n) == -1) {
			conf_error(p, start, "setting longer than %d bytes",
			    CONF_LOGICAL_MAX);
			buf_reset(&logical);
			start = 0;
			discard = 1;
		}
	}
	conf_flush(p, &logical, &start);
	buf_free(&logical);
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
		if (conf_value_set(&p->cfg->v[k], &conf_table[k],
		    conf_table[k].def, 0, err, sizeof(err)) == -1)
			conf_error(p, 0, "%s: bad default: %s", conf_table[k].name, err);
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

int
conf_parse(const char *source, const char *text, size_t len,
    struct conf **cfgp, FILE *errout)
{
	struct conf_parser p;

	memset(&p, 0, sizeof(p));
	p.source = source != NULL ? source : "(config)";
	p.errout = errout;
	p.cfg = xcalloc(1, sizeof(*p.cfg));
	p.cfg->source = xstrdup(p.source);
	conf_parse_text(&p, text, len);
	conf_apply_defaults(&p);
	if (p.nerr != 0) {
		conf_free(p.cfg);
		*cfgp = NULL;
		return p.nerr;
	}
	conf_cache_hostname(p.cfg);
	*cfgp = p.cfg;
	return 0;
}

int
conf_load_fd(int fd, const char *source, struct conf **cfgp, FILE *errout)
{
	struct stat st;
	size_t size, off = 0;
	char *text;
	int r;

	*cfgp = NULL;
	if (fstat(fd, &st) == -1)
		return conf_file_error(source, errout, "cannot stat", errno);
	if (!S_ISREG(st.st_mode))
		return conf_file_error(source, errout, "not a regular file", 0);
	if (st.st_size > CONF_FILE_MAX)
		return conf_file_error(source, errout, "larger than 1 MiB", 0);
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
	r = conf_parse(source, text, off, cfgp, errout);
	free(text);
	return r;
}

int
conf_load_file(const char *path, struct conf **cfgp, FILE *errout)
{
	int fd, r;

	*cfgp = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
		return conf_file_error(path, errout, "cannot open", errno);
	r = conf_load_fd(fd, path, cfgp, errout);
	close(fd);
	return r;
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
		fprintf(out, "%s = %s\n", conf_table[k].name,
		    cfg->v[k].text != NULL ? cfg->v[k].text : conf_table[k].def);
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
