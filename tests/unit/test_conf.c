/*
 * test_conf.c: moat.conf parsing: syntax, every error kind with its
 * "file:line:" prefix, bounds and units, defaults, descriptors, and the
 * bundled etc/moat.conf.
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/conf.h"
#include "tests/unit/t.h"

static int
count_lines(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* Lines of error output of the last parse(). */
static int err_lines;

/* Join error lines with '|' so a label stays on its one TAP line. */
static void
flatten(char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '\n')
			*s = '|';
}

/*
 * Parse text, capturing the error output into *errs (caller frees),
 * flattened to one line; err_lines says how many lines it had.
 */
static int
parse(const char *text, size_t len, struct conf **cfgp, char **errs)
{
	size_t errlen;
	FILE *f = open_memstream(errs, &errlen);
	int n;

	n = conf_parse("t.conf", text, len, cfgp, f);
	fclose(f);
	err_lines = count_lines(*errs);
	flatten(*errs);
	return n;
}

static int
parse_str(const char *text, struct conf **cfgp, char **errs)
{
	return parse(text, strlen(text), cfgp, errs);
}

/* Files that must fail: error count and a piece of the message. */
static const struct {
	const char	*label;
	const char	*text;
	int		 nerr;
	const char	*want;		/* substring of the error output */
} bad[] = {
	{ "unknown name", "no_such_thing = 1\n", 1, "t.conf:1: unknown setting \"no_such_thing\"" },
	{ "unknown name, line 3", "# c\n\nlisten_on = 1.2.3.4:25\n", 1, "t.conf:3: unknown setting" },
	{ "name case matters", "LISTEN = 127.0.0.1:25\n", 1, "t.conf:1: unknown setting \"LISTEN\"" },
	{ "duplicate", "delivery_agents = 2\n#\ndelivery_agents = 3\n", 1,
	  "t.conf:3: \"delivery_agents\" given twice (first on line 1)" },
	{ "duplicate, both bad", "delivery_agents = x\ndelivery_agents = y\n", 2,
	  "t.conf:2: \"delivery_agents\" given twice (first on line 1)" },
	{ "missing =", "delivery_agents 2\n", 1, "t.conf:1: missing '=' after \"delivery_agents\"" },
	{ "missing name", "= 2\n", 1, "t.conf:1: missing setting name" },
	{ "continuation first", "  delivery_agents = 2\n", 1,
	  "t.conf:1: continuation line without a setting" },
	{ "int not a number", "delivery_agents = four\n", 1, "t.conf:1: delivery_agents: \"four\" is not a number" },
	{ "int negative", "delivery_agents = -1\n", 1, "is not a number" },
	{ "int trailing junk", "delivery_agents = 4x\n", 1, "t.conf:1: delivery_agents: \"4x\": bad number" },
	{ "int with unit", "delivery_agents = 4k\n", 1, "bad number" },
	{ "int empty", "delivery_agents =\n", 1, "\"\" is not a number" },
	{ "int below min", "smtpd_line_limit = 511\n", 1, "511 is out of range (512..65536)" },
	{ "int above max", "smtpd_line_limit = 65537\n", 1, "65537 is out of range (512..65536)" },
	{ "int overflow", "smtpd_line_limit = 99999999999999999999\n", 1, "is too large" },
	{ "int LLONG_MAX+1", "smtpd_line_limit = 9223372036854775808\n", 1, "is too large" },
	{ "size unit overflow", "queue_min_free = 9223372036854775807k\n", 1, "is too large" },
	{ "size bad unit", "message_size_limit = 10T\n", 1, "(want k, M or G)" },
	{ "size two units", "message_size_limit = 10kk\n", 1, "bad number" },
	{ "size space before unit", "message_size_limit = 10 k\n", 1, "bad number" },
	{ "size over max", "message_size_limit = 2G\n", 1,
	  "2147483648 bytes is out of range (1024..2147483647 bytes)" },
	{ "size under min", "message_size_limit = 1023\n", 1, "1023 bytes is out of range" },
	{ "time bad unit", "smtpd_timeout = 5y\n", 1, "(want s, m, h, d or w)" },
	{ "time over max", "smtpd_timeout = 2h\n", 1, "7200 seconds is out of range (1..3600 seconds)" },
	{ "time zero", "smtpd_timeout = 0s\n", 1, "0 seconds is out of range" },
	{ "time overflow", "maximal_queue_lifetime = 99999999999999999w\n", 1, "is too large" },
	{ "relative path", "run_directory = var/spool\n", 1, "t.conf:1: run_directory: \"var/spool\" is not an absolute path" },
	{ "empty path", "run_directory =\n", 1, "is not an absolute path" },
	{ "bad domain", "local_domains = example.com bad..example\n", 1, "bad domain \"bad..example\"" },
	{ "domain trailing dot", "relay_domains = example.com.\n", 1, "bad domain \"example.com.\"" },
	{ "domain hyphen", "relay_domains = -x.example\n", 1, "bad domain" },
	{ "domain underscore", "relay_domains = a_b.example\n", 1, "bad domain" },
	{ "domain literal", "relay_domains = [192.0.2.1]\n", 1, "bad domain" },
	{ "network host bits", "relay_networks = 10.0.0.1/8\n", 1,
	  "bad network \"10.0.0.1/8\" (host bits set" },
	{ "network v6 host bits", "relay_networks = 2001:db8::1/32\n", 1, "host bits set" },
	{ "network prefix 33", "relay_networks = 10.0.0.0/33\n", 1, "bad network \"10.0.0.0/33\"" },
	{ "network prefix 129", "bare_lf_networks = ::/129\n", 1, "bad network" },
	{ "network name", "relay_networks = localhost\n", 1, "bad network \"localhost\"" },
	{ "network empty prefix", "relay_networks = 10.0.0.0/\n", 1, "bad network" },
	{ "network negative prefix", "relay_networks = 10.0.0.0/-8\n", 1, "bad network" },
	{ "listen empty", "listen =\n", 1, "at least one address" },
	{ "listen port 0", "listen = 127.0.0.1:0\n", 1, "bad listen address \"127.0.0.1:0\"" },
	{ "listen port 65536", "listen = 127.0.0.1:65536\n", 1, "bad listen address" },
	{ "listen no port", "listen = 127.0.0.1\n", 1, "bad listen address" },
	{ "listen host name", "listen = localhost:25\n", 1, "bad listen address" },
	{ "listen v6 unbracketed", "listen = ::1:25\n", 1, "bad listen address" },
	{ "listen second bad", "listen = 127.0.0.1:25, 127.0.0.1:x\n", 1, "\"127.0.0.1:x\"" },
	{ "nexthop bad host name", "relay_host = -mx.example.com\n", 1,
	  "t.conf:1: relay_host: bad host name \"-mx.example.com\"" },
	{ "nexthop bad bracketed name", "relay_host = [mx..example.com]:25\n", 1, "bad host name" },
	{ "nexthop no brackets", "relay_host = 192.0.2.1:25\n", 1, "write an IP address in brackets" },
	{ "nexthop bad IPv4", "relay_host = [300.1.1.1]:25\n", 1, "bad IP address \"300.1.1.1\"" },
	{ "nexthop v6 unbracketed", "relay_host = 2001:db8::1\n", 1, "IPv6 address goes in brackets" },
	{ "nexthop unclosed", "relay_host = [::1\n", 1, "missing ']'" },
	{ "nexthop port 0", "relay_host = [192.0.2.1]:0\n", 1, "out of range (1..65535)" },
	{ "nexthop port 65536", "relay_host = mx.example.com:65536\n", 1, "out of range (1..65535)" },
	{ "nexthop lmtp relative", "relay_host = lmtp:unix:relative\n", 1, "absolute path" },
	{ "nexthop unknown transport", "relay_host = uucp:[192.0.2.1]\n", 1, "unknown transport \"uucp\"" },
	{ "nexthop two", "relay_host = [192.0.2.1]:25 [192.0.2.2]:25\n", 1, "one next hop only" },
	{ "control byte in value", "smtpd_banner_name = moat\rX\n", 1, "control or non-ASCII byte" },
	{ "8-bit byte in value", "smtpd_banner_name = m\xc3\xb6\x61t\n", 1, "control or non-ASCII byte" },
	{ "several errors", "a = 1\nb = 2\nsmtpd_line_limit = 1\n", 3, "t.conf:3:" },
	{ "bad line then continuation", "bogus = 1\n  more\nlisten = 127.0.0.1:25\n", 1, "t.conf:1:" },
};

/* Files that must parse, and one value to check. */
static const struct {
	const char	*label;
	const char	*text;
	enum conf_key	 key;
	long long	 num;		/* for numbers */
	const char	*str;		/* for text, or NULL */
} good[] = {
	{ "empty file", "", CONF_DELIVERY_AGENTS, 20, NULL },
	{ "int", "delivery_agents = 8\n", CONF_DELIVERY_AGENTS, 8, NULL },
	{ "no spaces", "delivery_agents=8\n", CONF_DELIVERY_AGENTS, 8, NULL },
	{ "tabs", "delivery_agents\t=\t8\t\n", CONF_DELIVERY_AGENTS, 8, NULL },
	{ "CRLF", "delivery_agents = 8\r\n", CONF_DELIVERY_AGENTS, 8, NULL },
	{ "no final newline", "delivery_agents = 8", CONF_DELIVERY_AGENTS, 8, NULL },
	{ "leading zeros", "delivery_agents = 008\n", CONF_DELIVERY_AGENTS, 8, NULL },
	{ "min edge", "smtpd_line_limit = 512\n", CONF_SMTPD_LINE_LIMIT, 512, NULL },
	{ "max edge", "smtpd_line_limit = 65536\n", CONF_SMTPD_LINE_LIMIT, 65536, NULL },
	{ "size plain", "message_size_limit = 1024\n", CONF_MESSAGE_SIZE_LIMIT, 1024, NULL },
	{ "size k", "message_size_limit = 10k\n", CONF_MESSAGE_SIZE_LIMIT, 10240, NULL },
	{ "size K", "message_size_limit = 10K\n", CONF_MESSAGE_SIZE_LIMIT, 10240, NULL },
	{ "size m", "message_size_limit = 10m\n", CONF_MESSAGE_SIZE_LIMIT, 10485760, NULL },
	{ "size M", "message_size_limit = 10M\n", CONF_MESSAGE_SIZE_LIMIT, 10485760, NULL },
	{ "size g", "queue_min_free = 2g\n", CONF_QUEUE_MIN_FREE, 2147483648LL, NULL },
	{ "size G", "queue_min_free = 1024G\n", CONF_QUEUE_MIN_FREE, 1099511627776LL, NULL },
	{ "size just under 2G", "message_size_limit = 2097151k\n", CONF_MESSAGE_SIZE_LIMIT, 2147482624LL, NULL },
	{ "size zero allowed", "queue_min_free = 0\n", CONF_QUEUE_MIN_FREE, 0, NULL },
	{ "time no unit", "smtpd_timeout = 90\n", CONF_SMTPD_TIMEOUT, 90, NULL },
	{ "time s", "smtpd_timeout = 90s\n", CONF_SMTPD_TIMEOUT, 90, NULL },
	{ "time m", "smtpd_timeout = 5m\n", CONF_SMTPD_TIMEOUT, 300, NULL },
	{ "time h", "smtpd_timeout = 1h\n", CONF_SMTPD_TIMEOUT, 3600, NULL },
	{ "time d", "maximal_queue_lifetime = 3d\n", CONF_MAXIMAL_QUEUE_LIFETIME, 259200, NULL },
	{ "time w", "maximal_backoff_time = 1w\n", CONF_MAXIMAL_BACKOFF_TIME, 604800, NULL },
	{ "str with =", "smtpd_banner_name = a=b\n", CONF_SMTPD_BANNER_NAME, 0, "a=b" },
	{ "str with #", "smtpd_banner_name = moat # not a comment\n", CONF_SMTPD_BANNER_NAME, 0,
	  "moat # not a comment" },
	{ "str trimmed", "myhostname =   mx.example.com   \n", CONF_MYHOSTNAME, 0, "mx.example.com" },
	{ "continuation", "smtpd_banner_name = a\n  b\n\tc\n", CONF_SMTPD_BANNER_NAME, 0, "a b c" },
	{ "comment inside continuation", "smtpd_banner_name = a\n# c\n  b\n", CONF_SMTPD_BANNER_NAME, 0, "a b" },
	{ "indented comment", "  # indented\nsmtpd_banner_name = x\n", CONF_SMTPD_BANNER_NAME, 0, "x" },
	{ "blank lines", "\n\n   \n\t\nsmtpd_banner_name = x\n\n", CONF_SMTPD_BANNER_NAME, 0, "x" },
	{ "path", "run_directory = /srv/moat\n", CONF_RUN_DIRECTORY, 0, "/srv/moat" },
	{ "empty str", "myhostname =\n", CONF_MYHOSTNAME, 0, "" },
	{ "nexthop empty", "relay_host =\n", CONF_RELAY_HOST, 0, "" },
	{ "nexthop host name", "relay_host = mx.example.com\n", CONF_RELAY_HOST, 0, "mx.example.com" },
	{ "nexthop host name port", "relay_host = mx.example.com:2525\n", CONF_RELAY_HOST, 0,
	  "mx.example.com:2525" },
	{ "nexthop bracketed name", "relay_host = [mx.example.com]:25\n", CONF_RELAY_HOST, 0,
	  "[mx.example.com]:25" },
	{ "nexthop no port", "relay_host = [192.0.2.1]\n", CONF_RELAY_HOST, 0, "[192.0.2.1]" },
	{ "nexthop smtp:", "relay_host = smtp:[192.0.2.1]:2525\n", CONF_RELAY_HOST, 0,
	  "smtp:[192.0.2.1]:2525" },
	{ "nexthop lmtp", "relay_host = lmtp:[::1]:24\n", CONF_RELAY_HOST, 0, "lmtp:[::1]:24" },
	{ "nexthop mx", "relay_host = mx\n", CONF_RELAY_HOST, 0, "mx" },
	{ "8-bit in comment", "# m\xc3\xb6\x61t\nsmtpd_banner_name = x\n", CONF_SMTPD_BANNER_NAME, 0, "x" },
};

static void
test_bad(void)
{
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct conf *c = (struct conf *)1;
		char *errs = NULL;
		int n = parse_str(bad[i].text, &c, &errs);

		T_OK(n == bad[i].nerr, "bad %s: %d errors (want %d)", bad[i].label, n, bad[i].nerr);
		T_OK(c == NULL, "bad %s: no config", bad[i].label);
		T_OK(strstr(errs, bad[i].want) != NULL, "bad %s: message has '%s' (got '%s')",
		    bad[i].label, bad[i].want, errs);
		T_OK(err_lines == n, "bad %s: one line per error", bad[i].label);
		free(errs);
	}
}

static void
test_good(void)
{
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct conf *c = NULL;
		char *errs = NULL;
		int n = parse_str(good[i].text, &c, &errs);

		T_OK(n == 0 && c != NULL && errs[0] == '\0', "good %s: parses (%s)", good[i].label, errs);
		if (c != NULL && good[i].str == NULL)
			T_OK(conf_num(c, good[i].key) == good[i].num, "good %s: value %lld (want %lld)",
			    good[i].label, conf_num(c, good[i].key), good[i].num);
		if (c != NULL && good[i].str != NULL)
			T_OK(strcmp(conf_str(c, good[i].key), good[i].str) == 0, "good %s: text '%s'",
			    good[i].label, conf_str(c, good[i].key));
		conf_free(c);
		free(errs);
	}
}

/* min and max of every bounded setting are accepted, one beyond is not. */
static void
test_bounds_from_table(void)
{
	int k;

	for (k = 0; k < CONF_NSETTINGS; k++) {
		const struct conf_setting_info *si = conf_setting((enum conf_key)k);
		struct {
			long long v;
			int ok;
		} edge[4] = {
			{ si->min, 1 }, { si->max, 1 }, { si->min - 1, 0 }, { si->max + 1, 0 },
		};
		int e;

		if (si->type != CONFT_INT && si->type != CONFT_SIZE && si->type != CONFT_TIME)
			continue;
		for (e = 0; e < 4; e++) {
			struct conf *c = NULL;
			char text[128], *errs = NULL;
			int n;

			if (edge[e].v < 0)
				continue;	/* "-1" is a syntax error, tested above */
			snprintf(text, sizeof(text), "%s = %lld\n", si->name, edge[e].v);
			n = parse_str(text, &c, &errs);
			if (edge[e].ok)
				T_OK(n == 0 && conf_num(c, (enum conf_key)k) == edge[e].v,
				    "bounds %s = %lld accepted", si->name, edge[e].v);
			else
				T_OK(n == 1 && strstr(errs, "out of range") != NULL,
				    "bounds %s = %lld refused (%s)", si->name, edge[e].v, errs);
			conf_free(c);
			free(errs);
		}
	}
}

/* The table itself: unique names, defaults valid, defaults are line 0. */
static void
test_defaults(void)
{
	struct conf *c = NULL;
	char *errs = NULL;
	int k, j, n;

	T_OK(conf_setting(CONF_NSETTINGS) == NULL, "conf_setting out of range is NULL");
	for (k = 0; k < CONF_NSETTINGS; k++)
		for (j = k + 1; j < CONF_NSETTINGS; j++)
			if (strcmp(conf_setting((enum conf_key)k)->name,
			    conf_setting((enum conf_key)j)->name) == 0)
				T_OK(0, "duplicate name %s in settings.h", conf_setting((enum conf_key)k)->name);
	n = parse_str("", &c, &errs);
	T_OK(n == 0 && c != NULL, "defaults alone parse (%s)", errs);
	for (k = 0; c != NULL && k < CONF_NSETTINGS; k++) {
		const struct conf_setting_info *si = conf_setting((enum conf_key)k);

		T_OK(c->v[k].line == 0 && strcmp(c->v[k].text, si->def) == 0,
		    "default %s = '%s' kept as text, line 0", si->name, si->def);
		T_OK(c->v[k].type == si->type, "default %s has its type", si->name);
	}
	if (c != NULL) {
		T_OK(conf_num(c, CONF_MESSAGE_SIZE_LIMIT) == 10240000, "default message_size_limit");
		T_OK(conf_num(c, CONF_QUEUE_MIN_FREE) == 64LL * 1024 * 1024, "default queue_min_free 64M");
		T_OK(conf_num(c, CONF_MAXIMAL_QUEUE_LIFETIME) == 5 * 86400, "default lifetime 5d");
		T_OK(c->v[CONF_LISTEN].naddrs == 1, "default listen has one address");
		T_OK(c->v[CONF_RELAY_HOST].naddrs == 0, "default relay_host empty");
		T_OK(conf_nets(c, CONF_RELAY_NETWORKS)->n == 2, "default relay_networks two blocks");
		T_OK(conf_words_has(conf_words(c, CONF_LOCAL_DOMAINS), "LOCALHOST"),
		    "default local_domains has localhost (any case)");
		T_OK(conf_words(c, CONF_LOCAL_USERS)->n == 0, "default local_users empty");
		T_OK(strcmp(c->source, "t.conf") == 0, "source kept");
	}
	conf_free(c);
	free(errs);
}

/* Lists: splitting, lower-casing, networks, listen addresses, next hop. */
static void
test_lists(void)
{
	const char *text =
	    "local_domains = Example.COM,example.net  localhost\n"
	    "local_users = Alice, bob,,carol\n"
	    "relay_networks = 192.0.2.0/24, 2001:DB8::/32 10.1.2.3\n"
	    "listen = 127.0.0.1:25, [::1]:2525 0.0.0.0:587\n"
	    "relay_host = [127.0.0.1]:10025\n";
	const struct conf_words *w;
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	struct conf *c = NULL;
	char *errs = NULL;
	int n;

	n = parse_str(text, &c, &errs);
	T_OK(n == 0, "lists parse (%s)", errs);
	free(errs);
	if (c == NULL)
		return;
	w = conf_words(c, CONF_LOCAL_DOMAINS);
	T_OK(w->n == 3 && strcmp(w->v[0], "example.com") == 0 &&
	    strcmp(w->v[1], "example.net") == 0 && strcmp(w->v[2], "localhost") == 0,
	    "domains split on commas and spaces, lower-cased");
	w = conf_words(c, CONF_LOCAL_USERS);
	T_OK(w->n == 3 && strcmp(w->v[0], "alice") == 0, "words lower-cased, empty items skipped");
	T_OK(conf_words_has(w, "ALICE") && conf_words_has(w, "Bob") && !conf_words_has(w, "dave") &&
	    !conf_words_has(w, "alic") && !conf_words_has(w, ""), "conf_words_has case-insensitive, exact");
	T_OK(conf_nets(c, CONF_RELAY_NETWORKS)->n == 3, "three networks");
	T_OK(netlist_match_str(conf_nets(c, CONF_RELAY_NETWORKS), "10.1.2.3") &&
	    !netlist_match_str(conf_nets(c, CONF_RELAY_NETWORKS), "10.1.2.4"),
	    "bare address is a host block");
	T_OK(netlist_match_str(conf_nets(c, CONF_RELAY_NETWORKS), "2001:db8:ffff::1"),
	    "upper-case v6 network matches");
	T_OK(c->v[CONF_LISTEN].naddrs == 3, "three listen addresses");
	sin = (struct sockaddr_in *)&c->v[CONF_LISTEN].addrs[0];
	T_OK(sin->sin_family == AF_INET && ntohs(sin->sin_port) == 25, "listen[0] 127.0.0.1:25");
	sin6 = (struct sockaddr_in6 *)&c->v[CONF_LISTEN].addrs[1];
	T_OK(sin6->sin6_family == AF_INET6 && ntohs(sin6->sin6_port) == 2525, "listen[1] [::1]:2525");
	T_OK(c->v[CONF_RELAY_HOST].naddrs == 1, "relay_host one address");
	sin = (struct sockaddr_in *)&c->v[CONF_RELAY_HOST].addrs[0];
	T_OK(sin->sin_family == AF_INET && ntohs(sin->sin_port) == 10025 &&
	    ntohl(sin->sin_addr.s_addr) == 0x7f000001, "relay_host [127.0.0.1]:10025");
	T_OK(strcmp(conf_str(c, CONF_RELAY_HOST), "[127.0.0.1]:10025") == 0, "relay_host text kept");
	T_OK(c->v[CONF_RELAY_HOST].line == 5, "line number recorded");
	conf_free(c);

	n = parse_str("relay_host = [2001:db8::1]:25\n", &c, &errs);
	T_OK(n == 0 && c != NULL &&
	    c->v[CONF_RELAY_HOST].addrs[0].ss_family == AF_INET6, "relay_host IPv6 literal");
	conf_free(c);
	free(errs);

	/* An address without a port gets relay_port, wherever that is set. */
	n = parse_str("relay_host = [192.0.2.1]\nrelay_port = 2526\n", &c, &errs);
	sin = c != NULL ? (struct sockaddr_in *)&c->v[CONF_RELAY_HOST].addrs[0] : NULL;
	T_OK(n == 0 && c != NULL && c->v[CONF_RELAY_HOST].naddrs == 1 &&
	    ntohs(sin->sin_port) == 2526, "relay_host [192.0.2.1] takes relay_port (%s)", errs);
	conf_free(c);
	free(errs);

	/* Names have no address to keep. */
	n = parse_str("relay_host = smtp:[relay.example.net]:587\n", &c, &errs);
	T_OK(n == 0 && c != NULL && c->v[CONF_RELAY_HOST].naddrs == 0,
	    "relay_host by name keeps no address (%s)", errs);
	conf_free(c);
	free(errs);
}

/* NUL bytes and over-long lines are errors naming their line. */
static void
test_raw_bytes(void)
{
	static const char nul[] = "delivery_agents = 2\nsmtpd_banner_name = a\0b\nlisten = x\n";
	char line[4200], *errs = NULL;
	struct conf *c = NULL;
	int n;

	n = parse(nul, sizeof(nul) - 1, &c, &errs);
	T_OK(n == 2 && strstr(errs, "t.conf:2: NUL byte") != NULL && strstr(errs, "t.conf:3:") != NULL,
	    "NUL byte reported on its line, parsing goes on (%s)", errs);
	free(errs);

	memset(line, 'x', sizeof(line));
	line[0] = '#';
	line[4096] = '\n';
	n = parse(line, 4097, &c, &errs);
	T_OK(n == 0 && c != NULL, "4096-byte line accepted (%s)", errs);
	conf_free(c);
	free(errs);
	line[4096] = 'x';
	line[4097] = '\n';
	n = parse(line, 4098, &c, &errs);
	T_OK(n == 1 && strstr(errs, "t.conf:1: line longer than 4096 bytes") != NULL,
	    "4097-byte line refused (%s)", errs);
	free(errs);

	/* A setting longer than the logical line cap, built of continuations. */
	{
		size_t i, cap = 20 * 4000 + 64, len = 0;
		char *big = malloc(cap);

		len += (size_t)snprintf(big, cap, "local_users = a\n");
		for (i = 0; i < 20; i++) {
			memset(big + len, 'u', 4000);
			big[len] = ' ';
			big[len + 3999] = '\n';
			len += 4000;
		}
		n = parse(big, len, &c, &errs);
		T_OK(n == 1 && strstr(errs, "t.conf:1: setting longer than") != NULL,
		    "over-long continued setting refused (%s)", errs);
		free(errs);
		free(big);
	}
}

/* conf_print: every setting once, in table order, "name = value". */
static void
test_print(void)
{
	struct conf *c = NULL;
	char *out = NULL, *errs = NULL, *p;
	size_t outlen;
	FILE *f;
	int k;

	k = parse_str("delivery_agents = 7\nmyhostname = mx.example\n", &c, &errs);
	T_OK(k == 0, "print: parse (%s)", errs);
	free(errs);
	if (c == NULL)
		return;
	f = open_memstream(&out, &outlen);
	conf_print(c, f);
	fclose(f);
	T_OK(count_lines(out) == CONF_NSETTINGS, "print: one line per setting");
	p = out;
	for (k = 0; k < CONF_NSETTINGS; k++) {
		const char *name = conf_setting((enum conf_key)k)->name;
		size_t n = strlen(name);

		T_OK(strncmp(p, name, n) == 0 && strncmp(p + n, " = ", 3) == 0,
		    "print: line %d is %s", k + 1, name);
		p = strchr(p, '\n');
		if (p == NULL)
			break;
		p++;
	}
	T_OK(strstr(out, "\ndelivery_agents = 7\n") != NULL, "print: set value");
	T_OK(strstr(out, "\nsmtpd_timeout = 300s\n") != NULL, "print: default as written");
	T_OK(strcmp(conf_myhostname(c), "mx.example") == 0, "myhostname when set");
	free(out);
	conf_free(c);

	k = parse_str("", &c, &errs);
	T_OK(k == 0, "hostname: parse");
	if (c != NULL) {
		char host[256] = "";

		if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0')
			snprintf(host, sizeof(host), "localhost");
		T_OK(strcmp(conf_myhostname(c), host) == 0, "myhostname empty: system name %s",
		    conf_myhostname(c));
	}
	conf_free(c);
	free(errs);
}

/* conf_load_fd reads from offset 0 whatever the shared offset is. */
static void
test_fd(void)
{
	const char *text = "delivery_agents = 9\n";
	struct conf *c = NULL;
	char *errs = NULL;
	size_t errlen;
	FILE *f;
	int fd, n;

	fd = memfd_create("moat.conf", MFD_CLOEXEC);
	T_OK(fd != -1 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), "memfd written");
	f = open_memstream(&errs, &errlen);
	n = conf_load_fd(fd, "memfd", &c, f);
	fclose(f);
	flatten(errs);
	T_OK(n == 0 && c != NULL && conf_num(c, CONF_DELIVERY_AGENTS) == 9,
	    "fd at end of file still parses from 0 (%s)", errs);
	T_OK(lseek(fd, 0, SEEK_CUR) == (off_t)strlen(text), "fd offset untouched");
	conf_free(c);
	free(errs);
	n = conf_load_fd(fd, "memfd", &c, NULL);
	T_OK(n == 0 && c != NULL, "second read of the same fd");
	conf_free(c);
	close(fd);

	fd = memfd_create("bad.conf", MFD_CLOEXEC);
	T_OK(write(fd, "x = 1\n", 6) == 6, "bad memfd written");
	f = open_memstream(&errs, &errlen);
	n = conf_load_fd(fd, "memfd-bad", &c, f);
	fclose(f);
	flatten(errs);
	T_OK(n == 1 && c == NULL && strncmp(errs, "memfd-bad:1: ", 13) == 0,
	    "errors carry the source name (%s)", errs);
	free(errs);
	close(fd);

	fd = memfd_create("huge.conf", MFD_CLOEXEC);
	T_OK(ftruncate(fd, 1024 * 1024 + 1) == 0, "huge memfd sized");
	f = open_memstream(&errs, &errlen);
	n = conf_load_fd(fd, "huge", &c, f);
	fclose(f);
	flatten(errs);
	T_OK(n == 1 && c == NULL && strstr(errs, "larger than 1 MiB") != NULL, "over 1 MiB refused (%s)", errs);
	free(errs);
	close(fd);

	f = open_memstream(&errs, &errlen);
	n = conf_load_file("/nonexistent/moat.conf", &c, f);
	fclose(f);
	flatten(errs);
	T_OK(n == 1 && c == NULL && strstr(errs, "/nonexistent/moat.conf: cannot open") != NULL,
	    "missing file is one error (%s)", errs);
	free(errs);

	f = open_memstream(&errs, &errlen);
	n = conf_load_file("/", &c, f);
	fclose(f);
	flatten(errs);
	T_OK(n == 1 && c == NULL && strstr(errs, "not a regular file") != NULL,
	    "directory refused (%s)", errs);
	free(errs);
}

/* The bundled etc/moat.conf: no errors, names every setting. */
static void
test_bundled(void)
{
	const char *srcdir = getenv("srcdir");
	char path[PATH_MAX], *errs = NULL;
	struct conf *c = NULL;
	size_t errlen;
	FILE *f;
	int n, k;

	snprintf(path, sizeof(path), "%s/../etc/moat.conf", srcdir != NULL ? srcdir : ".");
	f = open_memstream(&errs, &errlen);
	n = conf_load_file(path, &c, f);
	fclose(f);
	flatten(errs);
	T_OK(n == 0 && c != NULL, "%s parses with no errors (%s)", path, errs);
	free(errs);
	if (c == NULL)
		return;
	for (k = 0; k < CONF_NSETTINGS; k++)
		T_OK(c->v[k].line != 0, "moat.conf sets %s", conf_setting((enum conf_key)k)->name);
	T_OK(strcmp(conf_str(c, CONF_RUN_DIRECTORY), "/var/spool/moat") == 0, "moat.conf run_directory");
	T_OK(c->v[CONF_LISTEN].naddrs == 1 &&
	    ntohs(((struct sockaddr_in *)&c->v[CONF_LISTEN].addrs[0])->sin_port) == 2525,
	    "moat.conf listen 127.0.0.1:2525");
	T_OK(c->v[CONF_RELAY_HOST].naddrs == 1 &&
	    ntohs(((struct sockaddr_in *)&c->v[CONF_RELAY_HOST].addrs[0])->sin_port) == 10025,
	    "moat.conf relay_host [127.0.0.1]:10025");
	T_OK(netlist_match_str(conf_nets(c, CONF_RELAY_NETWORKS), "127.0.0.1") &&
	    netlist_match_str(conf_nets(c, CONF_RELAY_NETWORKS), "::1") &&
	    !netlist_match_str(conf_nets(c, CONF_RELAY_NETWORKS), "192.0.2.1"),
	    "moat.conf relay_networks loopback only");
	T_OK(conf_words_has(conf_words(c, CONF_LOCAL_DOMAINS), "localhost"), "moat.conf local_domains");
	/* Everything else is the default. */
	for (k = 0; k < CONF_NSETTINGS; k++) {
		const struct conf_setting_info *si = conf_setting((enum conf_key)k);

		if (k == CONF_RELAY_HOST)
			continue;
		T_OK(strcmp(c->v[k].text, si->def) == 0, "moat.conf %s is the default '%s'",
		    si->name, si->def);
	}
	conf_free(c);
}

/* docs/configuration.md has a table row per setting with its default. */
static void
test_docs(void)
{
	const char *srcdir = getenv("srcdir");
	char path[PATH_MAX], line[1024], want[128];
	int k, found[CONF_NSETTINGS] = { 0 };
	FILE *f;

	snprintf(path, sizeof(path), "%s/../docs/configuration.md", srcdir != NULL ? srcdir : ".");
	f = fopen(path, "r");
	T_OK(f != NULL, "%s readable", path);
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		for (k = 0; k < CONF_NSETTINGS; k++) {
			const struct conf_setting_info *si = conf_setting((enum conf_key)k);

			snprintf(want, sizeof(want), "| `%s` | ", si->name);
			if (strncmp(line, want, strlen(want)) != 0)
				continue;
			if (si->def[0] != '\0')
				snprintf(want, sizeof(want), " | `%s` | ", si->def);
			else
				snprintf(want, sizeof(want), " | (empty) | ");
			if (strstr(line, want) != NULL)
				found[k]++;
		}
	}
	fclose(f);
	for (k = 0; k < CONF_NSETTINGS; k++)
		T_OK(found[k] == 1, "configuration.md documents %s once, with its default",
		    conf_setting((enum conf_key)k)->name);
}

int
main(void)
{
	test_bad();
	test_good();
	test_bounds_from_table();
	test_defaults();
	test_lists();
	test_raw_bytes();
	test_print();
	test_fd();
	test_bundled();
	test_docs();
	return t_done();
}
