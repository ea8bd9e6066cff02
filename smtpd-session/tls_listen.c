/*
 * tls_listen.c: the TLS mode of a listener, and the configuration check
 * that keeps moatd from starting listeners that could never do TLS
 * (see tls_listen.h).
 */
#include "config.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "tls_listen.h"

enum tls_listen_match {
	TLS_LISTEN_NOMATCH,
	TLS_LISTEN_WILDCARD,	/* same family and port, wildcard address */
	TLS_LISTEN_EXACT,	/* same family, address and port */
};

/* How well the configured address a matches the socket's address b. */
static enum tls_listen_match
tls_listen_match_one(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return TLS_LISTEN_NOMATCH;
	if (b->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)b;

		if (x->sin_port != y->sin_port)
			return TLS_LISTEN_NOMATCH;
		if (x->sin_addr.s_addr == y->sin_addr.s_addr)
			return TLS_LISTEN_EXACT;
		return x->sin_addr.s_addr == htonl(INADDR_ANY) ?
		    TLS_LISTEN_WILDCARD : TLS_LISTEN_NOMATCH;
	}
	if (b->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;

		if (x->sin6_port != y->sin6_port)
			return TLS_LISTEN_NOMATCH;
		if (memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0)
			return TLS_LISTEN_EXACT;
		return IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr) ?
		    TLS_LISTEN_WILDCARD : TLS_LISTEN_NOMATCH;
	}
	return TLS_LISTEN_NOMATCH;
}

/* The best match of local among the addresses of setting k. */
static enum tls_listen_match
tls_listen_match_setting(const struct conf *cfg, enum conf_key k,
    const struct sockaddr *local)
{
	const struct conf_value *v = &cfg->v[k];
	enum tls_listen_match best = TLS_LISTEN_NOMATCH, m;
	size_t i;

	for (i = 0; i < v->naddrs; i++)
		if ((m = tls_listen_match_one(&v->addrs[i], local)) > best)
			best = m;
	return best;
}

/* The mode a choice setting (smtpd_tls, submission_tls) names. */
static enum tls_listen_mode
tls_listen_choice(const struct conf *cfg, enum conf_key k)
{
	const struct conf_words *w = conf_words(cfg, k);
	const char *c = w->n > 0 ? w->v[0] : "none";

	if (strcmp(c, "required") == 0)
		return TLS_LISTEN_REQUIRED;
	if (strcmp(c, "may") == 0)
		return TLS_LISTEN_MAY;
	return TLS_LISTEN_NONE;
}

enum tls_listen_mode
tls_listen_mode(const struct conf *cfg, const struct sockaddr *local)
{
	static const enum conf_key keys[] = {
		CONF_SMTPS_LISTEN, CONF_SUBMISSION_LISTEN, CONF_LISTEN
	};
	enum tls_listen_match best = TLS_LISTEN_NOMATCH, m;
	enum conf_key which = CONF_LISTEN;
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if ((m = tls_listen_match_setting(cfg, keys[i], local)) > best) {
			best = m;
			which = keys[i];
		}
	if (which == CONF_SMTPS_LISTEN)
		return TLS_LISTEN_IMPLICIT;
	if (which == CONF_SUBMISSION_LISTEN)
		return tls_listen_choice(cfg, CONF_SUBMISSION_TLS);
	return tls_listen_choice(cfg, CONF_SMTPD_TLS);
}

const char *
tls_listen_mode_name(enum tls_listen_mode m)
{
	switch (m) {
	case TLS_LISTEN_NONE:
		return "none";
	case TLS_LISTEN_MAY:
		return "may";
	case TLS_LISTEN_REQUIRED:
		return "required";
	case TLS_LISTEN_IMPLICIT:
		return "implicit";
	}
	return "unknown";
}

/* Append one "file:line: message" line to err. */
static void
tls_listen_problem(const struct conf *cfg, enum conf_key k, char *err,
    size_t errlen, const char *msg)
{
	size_t len = strlen(err);

	if (len < errlen)
		snprintf(err + len, errlen - len, "%s%s:%d: %s: %s",
		    len > 0 ? "\n" : "", cfg->source != NULL ? cfg->source : "-",
		    cfg->v[k].line, conf_setting(k)->name, msg);
}

int
tls_listen_check(const struct conf *cfg, char *err, size_t errlen)
{
	size_t ncert = conf_words(cfg, CONF_SMTPD_TLS_CERT_FILES)->n;
	size_t nkey = conf_words(cfg, CONF_SMTPD_TLS_KEY_FILES)->n;
	int n = 0;

	if (errlen > 0)
		err[0] = '\0';
	if (nkey != ncert) {
		/* Point at whichever of the two was written in the file. */
		tls_listen_problem(cfg, cfg->v[CONF_SMTPD_TLS_KEY_FILES].line > 0 ?
		    CONF_SMTPD_TLS_KEY_FILES : CONF_SMTPD_TLS_CERT_FILES, err, errlen,
		    "smtpd_tls_key_files needs exactly one key file per "
		    "smtpd_tls_cert_files entry");
		n++;
	}
	if (ncert > 0)
		return n;
	if (cfg->v[CONF_SMTPS_LISTEN].naddrs > 0) {
		tls_listen_problem(cfg, CONF_SMTPS_LISTEN, err, errlen,
		    "implicit TLS needs smtpd_tls_cert_files");
		n++;
	}
	if (cfg->v[CONF_LISTEN].naddrs > 0 &&
	    tls_listen_choice(cfg, CONF_SMTPD_TLS) == TLS_LISTEN_REQUIRED) {
		tls_listen_problem(cfg, CONF_SMTPD_TLS, err, errlen,
		    "smtpd_tls = required needs smtpd_tls_cert_files");
		n++;
	}
	if (cfg->v[CONF_SUBMISSION_LISTEN].naddrs > 0 &&
	    tls_listen_choice(cfg, CONF_SUBMISSION_TLS) == TLS_LISTEN_REQUIRED) {
		/* submission_tls is required by default: blame the listener. */
		tls_listen_problem(cfg, cfg->v[CONF_SUBMISSION_TLS].line > 0 ?
		    CONF_SUBMISSION_TLS : CONF_SUBMISSION_LISTEN, err, errlen,
		    "submission_tls = required needs smtpd_tls_cert_files "
		    "(or set submission_tls = may or none)");
		n++;
	}
	return n;
}
