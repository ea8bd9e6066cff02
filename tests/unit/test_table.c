/*
 * test_table.c: lookup tables (syntax, keys, caps, lookup order) and
 * their place in the configuration: loading from files, value checks,
 * and the bundle that carries them to the children.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mail/table.h"
#include "util/conf.h"
#include "tests/unit/t.h"

#define MAGIC		"\0moat-bundle 1\n"
#define MAGIC_LEN	(sizeof(MAGIC) - 1)

/* Join error lines with '|' so a label stays on its one TAP line. */
static int
flatten(char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		if (*s == '\n') {
			*s = '|';
			n++;
		}
	return n;
}

/* Parse a table, capturing errors into *errs (caller frees). */
static int
tparse(const char *text, size_t len, int (*check)(const char *, char *, size_t),
    struct table **tp, char **errs, int *lines)
{
	size_t errlen;
	FILE *f = open_memstream(errs, &errlen);
	int n;

	n = table_parse("t.map", text, len, check, tp, f);
	fclose(f);
	*lines = flatten(*errs);
	return n;
}

/* A value check that refuses "bad". */
static int
check_not_bad(const char *value, char *err, size_t errlen)
{
	if (strcmp(value, "bad") == 0) {
		snprintf(err, errlen, "value is bad");
		return -1;
	}
	return 0;
}

static const struct {
	const char	*label;
	const char	*text;
	int		 nerr;
	const char	*want;
} bad[] = {
	{ "key with underscore", "a_b.example v\n", 1, "t.map:1: bad key \"a_b.example\"" },
	{ "key trailing dot", "example.com. v\n", 1, "bad key \"example.com.\"" },
	{ "key double dot", "a..example v\n", 1, "bad key" },
	{ "key dot alone", ". v\n", 1, "bad key \".\"" },
	{ "key two leading dots", "..example.com v\n", 1, "bad key" },
	{ "key star suffix", "*.example.com v\n", 1, "bad key \"*.example.com\"" },
	{ "key hyphen start", "-x.example v\n", 1, "bad key" },
	{ "key literal", "[192.0.2.1] v\n", 1, "bad key" },
	{ "key 8-bit", "m\xc3\xb6\x61t.example v\n", 1, "bad key \"m\\xc3\\xb6at.example\"" },
	{ "key label too long",
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example v\n", 1, "bad key" },
	{ "no value", "example.com\n", 1, "t.map:1: example.com: no value" },
	{ "no value, spaces", "example.com   \t\n", 1, "no value" },
	{ "duplicate", "example.com a\n#\nexample.com b\n", 1,
	  "t.map:3: duplicate key \"example.com\" (first on line 1)" },
	{ "duplicate by case", "Example.COM a\nexample.com b\n", 1, "duplicate key \"example.com\"" },
	{ "duplicate star", "* a\n* b\n", 1, "t.map:2: duplicate key \"*\"" },
	{ "duplicate parent", ".example.com a\n.EXAMPLE.com b\n", 1, "duplicate key \".example.com\"" },
	{ "control byte in value", "example.com a\rb\n", 1, "control or non-ASCII byte" },
	{ "8-bit value", "example.com m\xc3\xb6\n", 1, "control or non-ASCII byte" },
	{ "continuation first", "  example.com a\n", 1, "t.map:1: continuation line without an entry" },
	{ "check refuses", "a.example ok\nb.example bad\n", 1, "t.map:2: b.example: value is bad" },
	{ "check on joined value", "a.example b\n ad\nb.example bad\n", 1, "t.map:3:" },
	{ "several errors", "x_y v\nexample.com\nok.example bad\n", 3, "t.map:3:" },
};

static void
test_bad(void)
{
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct table *t = (struct table *)1;
		char *errs = NULL;
		int lines, n;

		n = tparse(bad[i].text, strlen(bad[i].text), check_not_bad, &t,
		    &errs, &lines);
		T_OK(n == bad[i].nerr, "bad %s: %d errors (want %d)", bad[i].label,
		    n, bad[i].nerr);
		T_OK(t == NULL, "bad %s: no table", bad[i].label);
		T_OK(strstr(errs, bad[i].want) != NULL, "bad %s: has '%s' (got '%s')",
		    bad[i].label, bad[i].want, errs);
		T_OK(lines == n, "bad %s: one line per error", bad[i].label);
		free(errs);
	}
}

/* NUL bytes, long lines and the caps. */
static void
test_raw(void)
{
	static const char nul[] = "a.example x\nb.example y\0z\nc.example w\n";
	static const char nulcont[] = "a.example x\n  y\0\nc.example w\n";
	char *big, *errs = NULL;
	struct table *t = NULL;
	size_t i, off;
	int lines, n;

	n = tparse(nul, sizeof(nul) - 1, NULL, &t, &errs, &lines);
	T_OK(n == 1 && strstr(errs, "t.map:2: NUL byte in line") != NULL,
	    "NUL byte reported on its line (%s)", errs);
	free(errs);
	n = tparse(nulcont, sizeof(nulcont) - 1, NULL, &t, &errs, &lines);
	T_OK(n == 1 && strstr(errs, "t.map:2: NUL byte") != NULL,
	    "NUL byte in a continuation (%s)", errs);
	free(errs);

	big = malloc(TABLE_FILE_MAX + 64);
	/* 4096 bytes is allowed, 4097 is not. */
	memset(big, 'x', 5000);
	memcpy(big, "a.example ", 10);
	big[4096] = '\n';
	n = tparse(big, 4097, NULL, &t, &errs, &lines);
	T_OK(n == 0 && t != NULL && strlen(table_lookup(t, "a.example", NULL)) == 4086,
	    "4096-byte line accepted (%s)", errs);
	table_free(t);
	free(errs);
	big[4096] = 'x';
	big[4097] = '\n';
	memcpy(big + 4098, "b.example y\n", 12);
	n = tparse(big, 4110, NULL, &t, &errs, &lines);
	T_OK(n == 1 && strstr(errs, "t.map:1: line longer than 4096 bytes") != NULL,
	    "4097-byte line refused, next line still read (%s)", errs);
	free(errs);

	/* Continuations may not build an entry past the logical cap. */
	off = 0;
	off += (size_t)snprintf(big + off, 64, "a.example v\n");
	for (i = 0; i < 20; i++) {
		big[off++] = ' ';
		memset(big + off, 'y', 4000);
		off += 4000;
		big[off++] = '\n';
	}
	n = tparse(big, off, NULL, &t, &errs, &lines);
	T_OK(n == 1 && strstr(errs, "t.map:1: entry longer than") != NULL,
	    "endless continuation refused (%s)", errs);
	free(errs);

	/* The file cap. */
	memset(big, '#', TABLE_FILE_MAX + 1);
	for (i = 99; i < TABLE_FILE_MAX + 1; i += 100)
		big[i] = '\n';
	n = tparse(big, TABLE_FILE_MAX + 1, NULL, &t, &errs, &lines);
	T_OK(n == 1 && t == NULL && strstr(errs, "larger than 1 MiB") != NULL,
	    "file over 1 MiB refused (%s)", errs);
	free(errs);
	n = tparse(big, TABLE_FILE_MAX, NULL, &t, &errs, &lines);
	T_OK(n == 0 && t != NULL && table_count(t) == 0, "1 MiB of comments is an empty table");
	table_free(t);
	free(errs);
	free(big);
}

/* Key number i in base 36: short, so that 100000 fit in 1 MiB. */
static void
key36(int i, char *dst)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	char tmp[16];
	int n = 0, j;

	do {
		tmp[n++] = digits[i % 36];
		i /= 36;
	} while (i > 0);
	for (j = 0; j < n; j++)
		dst[j] = tmp[n - 1 - j];
	dst[n] = '\0';
}

/* The entry cap: 100000 entries load, one more is an error. */
static void
test_entries_cap(void)
{
	size_t cap = (size_t)(TABLE_ENTRIES_MAX + 1) * 16, off = 0;
	char *text = malloc(cap), *errs = NULL, key[16];
	struct table *t = NULL;
	int i, n, lines;

	for (i = 0; i < TABLE_ENTRIES_MAX; i++) {
		key36(i, key);
		off += (size_t)snprintf(text + off, cap - off, "%s %d\n", key, i % 10);
	}
	n = tparse(text, off, NULL, &t, &errs, &lines);
	T_OK(n == 0 && table_count(t) == TABLE_ENTRIES_MAX,
	    "100000 entries load (%s)", errs);
	key36(TABLE_ENTRIES_MAX - 1, key);
	T_OK(t != NULL && strcmp(table_lookup(t, key, NULL), "9") == 0 &&
	    strcmp(table_lookup(t, "A.", NULL), "0") == 0 &&
	    table_lookup(t, "x.255s", NULL) == NULL, "lookups in a full table");
	table_free(t);
	free(errs);
	off += (size_t)snprintf(text + off, cap - off, "last.e v\n");
	n = tparse(text, off, NULL, &t, &errs, &lines);
	T_OK(n == 1 && t == NULL && strstr(errs, "t.map:100001: more than 100000 entries") != NULL,
	    "entry 100001 refused (%s)", errs);
	free(errs);
	free(text);
}

static const char lookup_text[] =
    "# the transport table of an edge MX\n"
    "example.com        lmtp:[10.0.0.5]:24\n"
    ".example.com       smtp:[10.0.0.6]\n"
    ".sub.example.com   smtp:[10.0.0.7]\n"
    "deep.sub.example.com\n"
    "\tsmtp:[10.0.0.8]\n"
    "\n"
    "EXAMPLE.NET        mx\n"
    "*                  smtp:[192.0.2.1]:587\n";

static const struct {
	const char	*domain;
	const char	*value;		/* NULL: no match */
	const char	*key;
} lookups[] = {
	{ "example.com", "lmtp:[10.0.0.5]:24", "example.com" },
	{ "EXAMPLE.com", "lmtp:[10.0.0.5]:24", "example.com" },
	{ "example.com.", "lmtp:[10.0.0.5]:24", "example.com" },
	{ "a.example.com", "smtp:[10.0.0.6]", ".example.com" },
	{ "a.b.c.example.com", "smtp:[10.0.0.6]", ".example.com" },
	{ "sub.example.com", "smtp:[10.0.0.6]", ".example.com" },
	{ "x.sub.example.com", "smtp:[10.0.0.7]", ".sub.example.com" },
	{ "y.x.sub.example.com", "smtp:[10.0.0.7]", ".sub.example.com" },
	{ "deep.sub.example.com", "smtp:[10.0.0.8]", "deep.sub.example.com" },
	{ "a.deep.sub.example.com", "smtp:[10.0.0.7]", ".sub.example.com" },
	{ "example.net", "mx", "example.net" },
	{ "a.example.net", "smtp:[192.0.2.1]:587", "*" },
	{ "xexample.com", "smtp:[192.0.2.1]:587", "*" },
	{ "com", "smtp:[192.0.2.1]:587", "*" },
	{ ".example.com", "smtp:[192.0.2.1]:587", "*" },
	{ "", "smtp:[192.0.2.1]:587", "*" },
	{ ".", "smtp:[192.0.2.1]:587", "*" },
	{ "*", "smtp:[192.0.2.1]:587", "*" },
};

/* Exact, then parents from the most specific, then the default. */
static void
test_lookup(void)
{
	struct table *t = NULL, *nodef = NULL;
	char *errs = NULL, longname[400];
	const char *key, *v;
	size_t i;
	int n, lines;

	n = tparse(lookup_text, sizeof(lookup_text) - 1, NULL, &t, &errs, &lines);
	T_OK(n == 0 && t != NULL && table_count(t) == 6, "lookup table parses (%s)", errs);
	free(errs);
	if (t == NULL)
		return;
	for (i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
		v = table_lookup(t, lookups[i].domain, &key);
		T_OK(v != NULL && strcmp(v, lookups[i].value) == 0 && key != NULL &&
		    strcmp(key, lookups[i].key) == 0, "lookup \"%s\" -> %s via %s (got %s via %s)",
		    lookups[i].domain, lookups[i].value, lookups[i].key,
		    v != NULL ? v : "NULL", key != NULL ? key : "NULL");
	}
	memset(longname, 'a', sizeof(longname));
	memcpy(longname + sizeof(longname) - 13, ".example.com", 13);
	v = table_lookup(t, longname, &key);
	T_OK(v != NULL && strcmp(key, "*") == 0, "over-long name gets the default only");
	T_OK(table_lookup(NULL, "example.com", &key) == NULL && key == NULL,
	    "NULL table matches nothing");
	T_OK(table_lookup(t, "example.com", NULL) != NULL, "matched may be NULL");
	table_free(t);

	n = tparse("example.com v\n", 14, NULL, &nodef, &errs, &lines);
	T_OK(n == 0 && table_lookup(nodef, "other.example", &key) == NULL && key == NULL,
	    "no default: NULL");
	T_OK(table_lookup(nodef, "a.example.com", NULL) == NULL,
	    "exact key does not match subdomains");
	table_free(nodef);
	free(errs);
	n = tparse(".example.com v\n", 15, NULL, &nodef, &errs, &lines);
	T_OK(n == 0 && table_lookup(nodef, "example.com", NULL) == NULL,
	    ".domain does not match the domain itself");
	table_free(nodef);
	free(errs);
	n = tparse("", 0, NULL, &nodef, &errs, &lines);
	T_OK(n == 0 && nodef != NULL && table_count(nodef) == 0 &&
	    table_lookup(nodef, "example.com", NULL) == NULL, "empty table");
	table_free(nodef);
	free(errs);
	n = tparse("a.example  x  y \r\n", 18, NULL, &nodef, &errs, &lines);
	T_OK(n == 0 && strcmp(table_lookup(nodef, "a.example", NULL), "x  y") == 0,
	    "value trimmed, inner spaces and CRLF");
	table_free(nodef);
	free(errs);
}

/* Write text to a fresh temporary file; its path goes to path. */
static void
write_tmp(char *path, size_t pathsz, const char *text, size_t len)
{
	int fd;

	snprintf(path, pathsz, "/tmp/moat-test-table.XXXXXX");
	fd = mkstemp(path);
	if (fd == -1 || write(fd, text, len) != (ssize_t)len) {
		perror("mkstemp");
		exit(1);
	}
	close(fd);
}

/* conf_parse_file() of text, errors flattened into *errs. */
static int
cparse_file(const char *text, struct conf **c, char **errs)
{
	size_t errlen;
	FILE *f = open_memstream(errs, &errlen);
	int n = conf_parse_file("t.conf", text, strlen(text), c, f);

	fclose(f);
	flatten(*errs);
	return n;
}

/* conf_parse() of len bytes (a bundle, perhaps). */
static int
cparse(const char *text, size_t len, struct conf **c, char **errs)
{
	size_t errlen;
	FILE *f = open_memstream(errs, &errlen);
	int n = conf_parse("t.conf", text, len, c, f);

	fclose(f);
	flatten(*errs);
	return n;
}

static const char *route_domains[] = {
	"example.com", "a.example.com", "x.sub.example.com", "deep.sub.example.com",
	"example.net", "elsewhere.org", "",
};

/* Loading tables with the configuration, and the errors that brings. */
static void
test_conf_tables(void)
{
	char tpath[64], ppath[64], conftext[512], *errs = NULL, *bundle;
	struct conf *c = NULL, *c2 = NULL;
	size_t i, blen;
	int n;

	write_tmp(tpath, sizeof(tpath), lookup_text, sizeof(lookup_text) - 1);
	write_tmp(ppath, sizeof(ppath), "example.com verify\n.example.com encrypt\n", 40);
	snprintf(conftext, sizeof(conftext), "transport_maps = %s\n"
	    "relay_tls_policy_maps = %s\n", tpath, ppath);

	n = cparse_file(conftext, &c, &errs);
	T_OK(n == 0 && c != NULL, "config with two tables loads (%s)", errs);
	free(errs);
	if (c == NULL)
		return;
	T_OK(conf_table(c, CONF_TRANSPORT_MAPS) != NULL &&
	    table_count(conf_table(c, CONF_TRANSPORT_MAPS)) == 6, "transport_maps loaded");
	T_OK(strcmp(table_lookup(conf_table(c, CONF_RELAY_TLS_POLICY_MAPS), "a.example.com",
	    NULL), "encrypt") == 0, "relay_tls_policy_maps loaded");

	/* The bundle carries both tables; its parse looks up the same. */
	bundle = conf_bundle(c, conftext, strlen(conftext), &blen);
	T_OK(bundle != NULL && blen > MAGIC_LEN && memcmp(bundle, MAGIC, MAGIC_LEN) == 0,
	    "bundle made");
	n = bundle != NULL ? cparse(bundle, blen, &c2, &errs) : -1;
	T_OK(n == 0 && c2 != NULL, "bundle parses (%s)", errs != NULL ? errs : "");
	free(errs);
	for (i = 0; c2 != NULL && i < sizeof(route_domains) / sizeof(route_domains[0]); i++) {
		const char *a = table_lookup(conf_table(c, CONF_TRANSPORT_MAPS), route_domains[i], NULL);
		const char *b = table_lookup(conf_table(c2, CONF_TRANSPORT_MAPS), route_domains[i], NULL);
		const char *pa = table_lookup(conf_table(c, CONF_RELAY_TLS_POLICY_MAPS), route_domains[i], NULL);
		const char *pb = table_lookup(conf_table(c2, CONF_RELAY_TLS_POLICY_MAPS), route_domains[i], NULL);

		T_OK(((a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0)) &&
		    ((pa == NULL && pb == NULL) || (pa != NULL && pb != NULL && strcmp(pa, pb) == 0)),
		    "bundle round trip: \"%s\" looks up the same", route_domains[i]);
	}
	if (c2 != NULL)
		T_OK(strcmp(conf_str(c2, CONF_TRANSPORT_MAPS), tpath) == 0 &&
		    table_count(conf_table(c2, CONF_TRANSPORT_MAPS)) == 6, "bundle keeps the setting");

	/* Through a memfd, as a child reads it. */
	if (bundle != NULL) {
		int fd = memfd_create("t", MFD_CLOEXEC);
		struct conf *c3 = NULL;

		T_OK(fd >= 0 && write(fd, bundle, blen) == (ssize_t)blen, "bundle into a memfd");
		n = conf_load_fd(fd, "memfd", &c3, stderr);
		T_OK(n == 0 && c3 != NULL && conf_table(c3, CONF_TRANSPORT_MAPS) != NULL,
		    "conf_load_fd reads the bundle");
		conf_free(c3);
		close(fd);
	}
	conf_free(c2);

	/* A file cannot be a bundle: not through conf_parse_file, nor a file. */
	if (bundle != NULL) {
		char fpath[64];
		FILE *f;
		size_t errlen;

		errs = NULL;
		f = open_memstream(&errs, &errlen);
		n = conf_parse_file("t.conf", bundle, blen, &c2, f);
		fclose(f);
		flatten(errs);
		T_OK(n > 0 && c2 == NULL && strstr(errs, "t.conf:1: NUL byte in line") != NULL,
		    "conf_parse_file refuses a bundle (%s)", errs);
		free(errs);
		write_tmp(fpath, sizeof(fpath), bundle, blen);
		f = open_memstream(&errs, &errlen);
		n = conf_load_file(fpath, &c2, f);
		fclose(f);
		flatten(errs);
		T_OK(n > 0 && c2 == NULL && strstr(errs, "NUL byte in line") != NULL,
		    "conf_load_file refuses a file holding a bundle (%s)", errs);
		free(errs);
		unlink(fpath);
	}
	free(bundle);
	conf_free(c);

	/* Plain conf_parse opens nothing: the setting is kept, no table. */
	n = cparse(conftext, strlen(conftext), &c, &errs);
	T_OK(n == 0 && c != NULL && conf_table(c, CONF_TRANSPORT_MAPS) == NULL &&
	    strcmp(conf_str(c, CONF_TRANSPORT_MAPS), tpath) == 0,
	    "conf_parse of plain text loads no table (%s)", errs);
	T_OK(c != NULL && conf_bundle(c, conftext, strlen(conftext), &blen) == NULL,
	    "no bundle without the tables it names");
	conf_free(c);
	free(errs);

	/* Empty settings: no table, and a bundle of the text alone. */
	n = cparse_file("delivery_agents = 2\n", &c, &errs);
	T_OK(n == 0 && conf_table(c, CONF_TRANSPORT_MAPS) == NULL &&
	    conf_table(c, CONF_RELAY_TLS_POLICY_MAPS) == NULL, "empty table settings: NULL");
	free(errs);
	bundle = c != NULL ? conf_bundle(c, "delivery_agents = 2\n", 20, &blen) : NULL;
	T_OK(bundle != NULL && blen == MAGIC_LEN + 8 + 21 + 4 &&
	    memcmp(bundle + MAGIC_LEN, "conf 20\ndelivery_agents = 2\n\nend\n", 33) == 0,
	    "bundle without tables");
	conf_free(c);
	n = bundle != NULL ? cparse(bundle, blen, &c, &errs) : -1;
	T_OK(n == 0 && c != NULL && conf_num(c, CONF_DELIVERY_AGENTS) == 2,
	    "bundle without tables parses");
	conf_free(c);
	free(errs);
	free(bundle);
	unlink(tpath);
	unlink(ppath);
}

/* Table errors are configuration errors, named by the table's file. */
static void
test_conf_table_errors(void)
{
	char tpath[64], ppath[64], text[512], want[128], *errs = NULL;
	struct conf *c = NULL;
	static const char tbad[] =
	    "example.com smtp:[300.1.1.1]:25\n"
	    "a.example smtp:[::1\n"
	    "b.example lmtp:unix:relative\n"
	    "c.example smtp:[192.0.2.1]:0\n"
	    "d.example smtp:[192.0.2.1]:65536\n"
	    "e.example smtp:-bad-.com\n"
	    "f.example lmtp:[::1]:24\n";
	int n;

	write_tmp(tpath, sizeof(tpath), tbad, sizeof(tbad) - 1);
	write_tmp(ppath, sizeof(ppath), "a.example verify\nb.example VERIFY\nc.example dane\n", 49);
	snprintf(text, sizeof(text), "delivery_agents = 2\ntransport_maps = %s\n"
	    "relay_tls_policy_maps = %s\n", tpath, ppath);
	n = cparse_file(text, &c, &errs);
	T_OK(n == 8 && c == NULL, "8 table errors (%d: %s)", n, errs);
	snprintf(want, sizeof(want), "%s:1: example.com: bad IP address \"300.1.1.1\"", tpath);
	T_OK(strstr(errs, want) != NULL, "transport error names table file and line");
	snprintf(want, sizeof(want), "%s:2: a.example: missing ']'", tpath);
	T_OK(strstr(errs, want) != NULL, "unclosed bracket");
	snprintf(want, sizeof(want), "%s:3: b.example: lmtp:unix: needs an absolute path", tpath);
	T_OK(strstr(errs, want) != NULL, "relative unix path");
	snprintf(want, sizeof(want), "%s:4: c.example: port 0 is out of range", tpath);
	T_OK(strstr(errs, want) != NULL, "port 0");
	snprintf(want, sizeof(want), "%s:5: d.example: port 65536 is out of range", tpath);
	T_OK(strstr(errs, want) != NULL, "port 65536");
	snprintf(want, sizeof(want), "%s:6: e.example: bad host name \"-bad-.com\"", tpath);
	T_OK(strstr(errs, want) != NULL, "bad host name");
	snprintf(want, sizeof(want), "%s:2: b.example: \"VERIFY\" is not one of: "
	    "none may encrypt verify", ppath);
	T_OK(strstr(errs, want) != NULL, "TLS policy words are lower-case (%s)", errs);
	snprintf(want, sizeof(want), "%s:3: c.example: \"dane\" is not one of", ppath);
	T_OK(strstr(errs, want) != NULL, "unknown TLS policy");
	free(errs);

	/* A table that cannot be read is an error on the setting's line. */
	n = cparse_file("delivery_agents = 2\ntransport_maps = /nonexistent/moat.map\n", &c, &errs);
	T_OK(n == 1 && c == NULL && strstr(errs, "t.conf:2: transport_maps: "
	    "/nonexistent/moat.map: cannot open: No such file") != NULL,
	    "missing table file (%s)", errs);
	free(errs);
	n = cparse_file("transport_maps = /tmp\n", &c, &errs);
	T_OK(n == 1 && strstr(errs, "/tmp: not a regular file") != NULL,
	    "directory as table (%s)", errs);
	free(errs);
	/* Other errors do not hide the table's. */
	snprintf(text, sizeof(text), "delivery_agents = x\ntransport_maps = %s\n", tpath);
	n = cparse_file(text, &c, &errs);
	T_OK(n == 7, "config and table errors together (%d)", n);
	free(errs);
	unlink(tpath);
	unlink(ppath);
}

/* Build a bundle from parts; returns its length. */
static size_t
mkbundle(char *dst, size_t dstsz, const char *rest)
{
	size_t n = strlen(rest);

	if (MAGIC_LEN + n > dstsz)
		exit(1);
	memcpy(dst, MAGIC, MAGIC_LEN);
	memcpy(dst + MAGIC_LEN, rest, n);
	return MAGIC_LEN + n;
}

static const struct {
	const char	*label;
	const char	*rest;		/* after the magic */
	const char	*want;
} bad_bundles[] = {
	{ "no conf section", "end\n", "bad conf section" },
	{ "empty", "", "bad conf section" },
	{ "conf length short", "conf 5\ndelivery_agents = 2\n\nend\n", "bad conf section" },
	{ "conf length long", "conf 99\nx\nend\n", "bad conf section" },
	{ "conf length sign", "conf +1\nx\n\nend\n", "bad conf section" },
	{ "conf length leading zero", "conf 01\nx\n\nend\n", "bad conf section" },
	{ "conf length huge", "conf 99999999999999999999999\n", "bad conf section" },
	{ "conf length over cap", "conf 1048577\n", "bad conf section" },
	{ "missing end", "conf 0\n\n", "missing end" },
	{ "data after end", "conf 0\n\nend\nx", "data after end" },
	{ "unknown section", "conf 0\n\nfile /etc/passwd\nend\n", "unknown section" },
	{ "table of unknown setting", "conf 0\n\ntable no_such 2\nx\n\nend\n",
	  "table of an unknown setting" },
	{ "table of a non-table setting", "conf 0\n\ntable relay_host 0\n\nend\n",
	  "table of an unknown setting" },
	{ "table for empty setting", "conf 0\n\ntable transport_maps 0\n\nend\n",
	  "a table for an empty setting" },
	{ "table length wrong", "conf 28\ntransport_maps = /etc/t.map\n\n"
	  "table transport_maps 3\na b c d\n\nend\n", "bad table length" },
	{ "table over cap", "conf 28\ntransport_maps = /etc/t.map\n\n"
	  "table transport_maps 1048577\n", "bad table length" },
	{ "table twice", "conf 28\ntransport_maps = /etc/t.map\n\n"
	  "table transport_maps 0\n\ntable transport_maps 0\n\nend\n", "a table given twice" },
	{ "table missing", "conf 28\ntransport_maps = /etc/t.map\n\nend\n",
	  "t.conf:1: transport_maps: table /etc/t.map is missing from the configuration bundle" },
	{ "bad table content", "conf 28\ntransport_maps = /etc/t.map\n\n"
	  "table transport_maps 9\nx smtp:[\n\nend\n", "/etc/t.map:1: x: missing ']'" },
	{ "bad conf inside", "conf 8\nbogus=1\n\nend\n", "t.conf:1: unknown setting \"bogus\"" },
	{ "header line without newline", "conf 0", "bad conf section" },
};

/* Malformed bundles, and bundles inside bundles. */
static void
test_bad_bundles(void)
{
	char b[512], *errs = NULL;
	struct conf *c;
	size_t i, len;
	int n;

	for (i = 0; i < sizeof(bad_bundles) / sizeof(bad_bundles[0]); i++) {
		c = (struct conf *)1;
		len = mkbundle(b, sizeof(b), bad_bundles[i].rest);
		n = cparse(b, len, &c, &errs);
		T_OK(n > 0 && c == NULL && strstr(errs, bad_bundles[i].want) != NULL,
		    "bundle %s: refused with '%s' (%s)", bad_bundles[i].label,
		    bad_bundles[i].want, errs);
		free(errs);
	}
	/* A bundle as the conf part of a bundle. */
	len = mkbundle(b, sizeof(b), "conf 27\n");
	len += mkbundle(b + len, sizeof(b) - len, "conf 0\n\nend\n");
	memcpy(b + len, "\nend\n", 5);
	len += 5;
	n = cparse(b, len, &c, &errs);
	T_OK(n > 0 && c == NULL && strstr(errs, "NUL byte") != NULL,
	    "nested bundle refused (%s)", errs);
	free(errs);
	/* A good hand-made bundle, the format conf.h documents. */
	len = mkbundle(b, sizeof(b), "conf 28\ntransport_maps = /etc/t.map\n\n"
	    "table transport_maps 16\n* smtp:[::1]:25\n\nend\n");
	n = cparse(b, len, &c, &errs);
	T_OK(n == 0 && c != NULL && strcmp(table_lookup(conf_table(c, CONF_TRANSPORT_MAPS),
	    "any.example", NULL), "smtp:[::1]:25") == 0, "hand-made bundle (%s)", errs);
	conf_free(c);
	free(errs);
}

int
main(void)
{
	test_bad();
	test_raw();
	test_entries_cap();
	test_lookup();
	test_conf_tables();
	test_conf_table_errors();
	test_bad_bundles();
	return t_done();
}
