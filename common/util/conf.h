/*
 * conf.h: moat.conf, parsed and checked.
 *
 * The file is a list of "name = value" lines.  '#' starts a comment at
 * the beginning of a line; blank lines are ignored; a line that starts
 * with white space continues the previous one.  Every name must be one of
 * common/settings.h and may appear once.  Values are checked against the
 * setting's type and bounds; every error is reported as
 * "file:line: message" and parsing goes on to find the rest.
 *
 * Value syntax by type:
 *   CONFT_STR       any text (leading/trailing white space removed)
 *   CONFT_PATH      an absolute path
 *   CONFT_INT       a decimal number
 *   CONFT_SIZE      a number of bytes, optionally with k, M or G (x1024)
 *   CONFT_TIME      a number with s, m, h, d or w (no unit: seconds)
 *   CONFT_WORDS     words separated by white space or commas (lower-cased)
 *   CONFT_DOMAINS   like CONFT_WORDS, each a valid domain name (lower-cased)
 *   CONFT_NETWORKS  CIDR blocks: 10.0.0.0/8 2001:db8::/32 (address alone = host)
 *   CONFT_LISTEN    ip:port or [ipv6]:port, one or more
 *   CONFT_NEXTHOP   empty, or a transport (mail/nexthop.h): [host]:port,
 *                   [host], host, host:port, smtp:..., lmtp:..., mx
 *   CONFT_PATHS     absolute paths separated by white space or commas
 *   CONFT_CHOICE    one word of the setting's list of choices (lower-cased)
 *   CONFT_TABLE     empty, or the absolute path of a lookup table file
 *                   (mail/table.h), read when the configuration is
 *                   loaded from a file; its errors are configuration
 *                   errors, reported as "tablefile:line: message"
 *
 * The bundle.  Children cannot open files after their chroot, so moatd
 * hands them the configuration and every table it loaded in one sealed
 * memfd, made by conf_bundle():
 *
 *   "\0moat-bundle 1\n"            magic; the NUL makes it a text no
 *                                   config file can hold (a file with a
 *                                   NUL byte is an error)
 *   "conf LEN\n" LEN bytes "\n"    the configuration text
 *   "table NAME LEN\n" LEN bytes "\n"
 *                                  one per loaded table: NAME is the
 *                                  setting (transport_maps, ...), the
 *                                  table's source is the setting's value
 *   "end\n"                        nothing may follow
 *
 * LEN is decimal, no sign, no leading zero; the conf part is at most
 * 1 MiB, each table at most 1 MiB, the bundle at most CONF_BUNDLE_MAX.
 * Every non-empty table setting must have exactly one table in the
 * bundle.  conf_parse() and conf_load_fd() accept a bundle;
 * conf_parse_file() and conf_load_file() (text read from a file) never
 * do, so a configuration file cannot pose as one.
 */
#ifndef MOAT_CONF_H
#define MOAT_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "util/netaddr.h"

#define CONF_BUNDLE_MAX		(4 * 1024 * 1024)

struct table;

enum conf_type {
	CONFT_STR, CONFT_PATH, CONFT_INT, CONFT_SIZE, CONFT_TIME, CONFT_WORDS,
	CONFT_DOMAINS, CONFT_NETWORKS, CONFT_LISTEN, CONFT_NEXTHOP,
	CONFT_PATHS, CONFT_CHOICE, CONFT_TABLE
};

enum conf_key {
#define S(id, name, type, def, min, max, doc) CONF_##id,
#define SC(id, name, def, choices, doc) CONF_##id,
#include "settings.h"
#undef S
#undef SC
	CONF_NSETTINGS
};

struct conf_words {
	char	**v;
	size_t	  n;
};

struct conf_value {
	enum conf_type	 type;
	int		 line;		/* where it was set; 0 = default */
	char		*text;		/* the value as written */
	long long	 num;		/* CONFT_INT, CONFT_SIZE, CONFT_TIME */
	struct conf_words words;		/* CONFT_WORDS, CONFT_DOMAINS,
					   CONFT_PATHS, CONFT_CHOICE (one) */
	struct netlist	 nets;		/* CONFT_NETWORKS */
	struct sockaddr_storage *addrs;	/* CONFT_LISTEN, CONFT_NEXTHOP (an
					   IP literal; port relay_port if
					   not written) */
	size_t		 naddrs;
	struct table	*table;		/* CONFT_TABLE, once loaded */
	char		*table_text;	/* its text, for conf_bundle() */
	size_t		 table_len;
};

struct conf {
	char		*source;	/* file name, for messages */
	struct conf_value v[CONF_NSETTINGS];
	char		*hostname;	/* gethostname() at parse time, for
					   conf_myhostname() in a sandbox */
};

struct conf_setting_info {
	const char	*name;
	enum conf_type	 type;
	const char	*def;
	long long	 min, max;
	const char	*doc;
	const char	*choices;	/* CONFT_CHOICE: the words allowed */
};

/* The declaration of setting k. */
const struct conf_setting_info *conf_setting(enum conf_key k);

/*
 * Parse text of length len (from file "source") into a fresh *cfgp.
 * Errors go to errout one per line as "source:line: message"; the return
 * value is the number of errors (0: *cfgp is valid; otherwise *cfgp is
 * NULL).  Never exits.  text is plain configuration text (no table is
 * loaded: conf_table() is NULL) or a bundle (tables from the bundle).
 */
int	conf_parse(const char *source, const char *text, size_t len,
	    struct conf **cfgp, FILE *errout);
/*
 * Parse the text of a configuration file (never a bundle) and load every
 * non-empty table setting's file; table errors count as errors.  Returns
 * the number of errors, as conf_parse().
 */
int	conf_parse_file(const char *source, const char *text, size_t len,
	    struct conf **cfgp, FILE *errout);
/* Read a file and conf_parse_file() it; unreadable files are one error. */
int	conf_load_file(const char *path, struct conf **cfgp, FILE *errout);
/* Read and parse the text behind a descriptor (the memfd at fd 3): plain
 * text or a bundle. */
int	conf_load_fd(int fd, const char *source, struct conf **cfgp, FILE *errout);

/*
 * A fresh buffer (free() it) holding a bundle of text[0..len) (the
 * configuration cfg was parsed from) and every table cfg has loaded;
 * *outlen gets its length.  NULL if it would exceed CONF_BUNDLE_MAX.
 */
char	*conf_bundle(const struct conf *cfg, const char *text, size_t len,
	    size_t *outlen);
void	conf_free(struct conf *cfg);

/* Print every setting as "name = value", defaults included. */
void	conf_print(const struct conf *cfg, FILE *out);

static inline const char *conf_str(const struct conf *c, enum conf_key k) { return c->v[k].text; }
static inline long long conf_num(const struct conf *c, enum conf_key k) { return c->v[k].num; }
static inline const struct conf_words *conf_words(const struct conf *c, enum conf_key k) { return &c->v[k].words; }
static inline const struct netlist *conf_nets(const struct conf *c, enum conf_key k) { return &c->v[k].nets; }
/* The loaded table of a CONFT_TABLE setting: NULL when the setting is
 * empty, or when the configuration came from plain text through
 * conf_parse() (which opens no file). */
static inline const struct table *conf_table(const struct conf *c, enum conf_key k) { return c->v[k].table; }

/* True if word (compared case-insensitively) is in the list. */
int	conf_words_has(const struct conf_words *w, const char *word);

/* myhostname, or the system's host name when it is empty. */
const char *conf_myhostname(const struct conf *c);

#endif
