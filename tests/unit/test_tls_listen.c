/*
 * test_tls_listen.c: which TLS rules a session applies, from the address
 * it was accepted on (smtpd-session/tls_listen.c), and the configuration
 * check that refuses listeners that could never do TLS.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "smtpd-session/tls_listen.h"
#include "tests/unit/t.h"
#include "util/conf.h"
#include "util/netaddr.h"

static struct conf *
parse(const char *text)
{
	struct conf *cfg = NULL;

	if (conf_parse("test.conf", text, strlen(text), &cfg, stderr) != 0)
		return NULL;
	return cfg;
}

static const char three[] =
    "listen = 127.0.0.1:25\n"
    "submission_listen = 127.0.0.1:587\n"
    "smtps_listen = 127.0.0.1:465\n";

static void
test_mode(void)
{
	static const struct {
		const char		*label;
		const char		*conf;
		const char		*local;
		enum tls_listen_mode	 want;
	} cases[] = {
		{ "listen, default may", three, "127.0.0.1:25", TLS_LISTEN_MAY },
		{ "submission, default required", three, "127.0.0.1:587", TLS_LISTEN_REQUIRED },
		{ "smtps, implicit", three, "127.0.0.1:465", TLS_LISTEN_IMPLICIT },
		{ "unknown address falls back to smtpd_tls", three, "127.0.0.1:9999",
		  TLS_LISTEN_MAY },
		{ "same port, other address: no match", three, "127.0.0.2:465",
		  TLS_LISTEN_MAY },
		{ "smtpd_tls = required", "listen = 127.0.0.1:25\nsmtpd_tls = required\n"
		  "smtpd_tls_cert_files = /c.pem\nsmtpd_tls_key_files = /k.pem\n",
		  "127.0.0.1:25", TLS_LISTEN_REQUIRED },
		{ "smtpd_tls = none", "listen = 127.0.0.1:25\nsmtpd_tls = none\n",
		  "127.0.0.1:25", TLS_LISTEN_NONE },
		{ "submission_tls = none", "listen = 127.0.0.1:25\n"
		  "submission_listen = 127.0.0.1:587\nsubmission_tls = none\n",
		  "127.0.0.1:587", TLS_LISTEN_NONE },
		{ "submission_tls = may", "listen = 127.0.0.1:25\n"
		  "submission_listen = 127.0.0.1:587\nsubmission_tls = may\n",
		  "127.0.0.1:587", TLS_LISTEN_MAY },
		{ "IPv4 wildcard matches by port", "listen = 0.0.0.0:25\n"
		  "smtpd_tls = none\n", "192.0.2.1:25", TLS_LISTEN_NONE },
		{ "IPv6 wildcard matches by port", "listen = 127.0.0.1:25\n"
		  "submission_listen = [::]:587\n", "[2001:db8::1]:587",
		  TLS_LISTEN_REQUIRED },
		{ "IPv6 exact", "listen = 127.0.0.1:25\nsmtps_listen = [::1]:465\n"
		  "smtpd_tls_cert_files = /c.pem\nsmtpd_tls_key_files = /k.pem\n",
		  "[::1]:465", TLS_LISTEN_IMPLICIT },
		{ "IPv6 wildcard does not match IPv4", "listen = 127.0.0.1:25\n"
		  "smtps_listen = [::]:465\nsmtpd_tls = none\n", "127.0.0.1:465",
		  TLS_LISTEN_NONE },
		{ "IPv4 wildcard does not match IPv6", "listen = 127.0.0.1:25\n"
		  "smtps_listen = 0.0.0.0:465\nsmtpd_tls = none\n", "[::1]:465",
		  TLS_LISTEN_NONE },
		{ "exact address beats a wildcard", "listen = 0.0.0.0:2525\n"
		  "smtpd_tls = none\nsmtps_listen = 127.0.0.1:2525\n",
		  "127.0.0.1:2525", TLS_LISTEN_IMPLICIT },
		{ "wildcard still serves other addresses", "listen = 0.0.0.0:2525\n"
		  "smtpd_tls = none\nsmtps_listen = 127.0.0.1:2525\n",
		  "10.0.0.1:2525", TLS_LISTEN_NONE },
		{ "several listen addresses", "listen = 127.0.0.1:25 127.0.0.2:26\n"
		  "smtpd_tls = none\n", "127.0.0.2:26", TLS_LISTEN_NONE },
	};
	struct sockaddr_storage ss;
	struct conf *cfg;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cfg = parse(cases[i].conf);
		memset(&ss, 0, sizeof(ss));
		if (cfg == NULL || hostport_parse(cases[i].local, &ss) == -1) {
			T_OK(0, "mode: %s: set-up", cases[i].label);
			continue;
		}
		T_OK(tls_listen_mode(cfg, (struct sockaddr *)&ss) == cases[i].want,
		    "mode: %s is %s", cases[i].label, tls_listen_mode_name(cases[i].want));
		conf_free(cfg);
	}
	T_OK(strcmp(tls_listen_mode_name(TLS_LISTEN_IMPLICIT), "implicit") == 0 &&
	    strcmp(tls_listen_mode_name(TLS_LISTEN_NONE), "none") == 0,
	    "mode names");
}

static void
test_check(void)
{
	static const struct {
		const char	*label;
		const char	*conf;
		int		 problems;
		const char	*mention;	/* in the message, or NULL */
	} cases[] = {
		{ "defaults are fine", "listen = 127.0.0.1:25\n", 0, NULL },
		{ "smtps without certificates", "listen = 127.0.0.1:25\n"
		  "smtps_listen = 127.0.0.1:465\n", 1, "test.conf:2: smtps_listen:" },
		{ "required without certificates", "listen = 127.0.0.1:25\n"
		  "smtpd_tls = required\n", 1, "test.conf:2: smtpd_tls:" },
		{ "submission (required by default) without certificates",
		  "listen = 127.0.0.1:25\nsubmission_listen = 127.0.0.1:587\n", 1,
		  "test.conf:2: submission_listen:" },
		{ "submission_tls = required written out",
		  "listen = 127.0.0.1:25\nsubmission_listen = 127.0.0.1:587\n"
		  "submission_tls = required\n", 1, "test.conf:3: submission_tls:" },
		{ "submission may without certificates",
		  "listen = 127.0.0.1:25\nsubmission_listen = 127.0.0.1:587\n"
		  "submission_tls = may\n", 0, NULL },
		{ "required on a listener that is not there",
		  "listen = 127.0.0.1:25\nsubmission_tls = required\n", 0, NULL },
		{ "all three without certificates", "listen = 127.0.0.1:25\n"
		  "smtpd_tls = required\nsubmission_listen = 127.0.0.1:587\n"
		  "smtps_listen = 127.0.0.1:465\n", 3, NULL },
		{ "a certificate without its key", "listen = 127.0.0.1:25\n"
		  "smtpd_tls_cert_files = /a.pem\n", 1,
		  "test.conf:2: smtpd_tls_cert_files: smtpd_tls_key_files needs" },
		{ "a key without its certificate", "listen = 127.0.0.1:25\n"
		  "smtpd_tls_key_files = /a.key\nsmtps_listen = 127.0.0.1:465\n", 2, NULL },
		{ "two certificates, one key", "listen = 127.0.0.1:25\n"
		  "smtpd_tls_cert_files = /a.pem /b.pem\nsmtpd_tls_key_files = /a.key\n",
		  1, "test.conf:3: smtpd_tls_key_files:" },
		{ "everything with certificates", "listen = 127.0.0.1:25\n"
		  "smtpd_tls = required\nsubmission_listen = 127.0.0.1:587\n"
		  "smtps_listen = 127.0.0.1:465\n"
		  "smtpd_tls_cert_files = /a.pem, /b.pem\n"
		  "smtpd_tls_key_files = /a.key /b.key\n", 0, NULL },
	};
	char err[1024], tiny[8];
	struct conf *cfg;
	size_t i;
	int n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if ((cfg = parse(cases[i].conf)) == NULL) {
			T_OK(0, "check: %s: set-up", cases[i].label);
			continue;
		}
		n = tls_listen_check(cfg, err, sizeof(err));
		T_OK(n == cases[i].problems, "check: %s: %d problem(s) (got %d: %s)",
		    cases[i].label, cases[i].problems, n, err);
		T_OK((n == 0) == (err[0] == '\0'), "check: %s: message iff problems",
		    cases[i].label);
		if (cases[i].mention != NULL)
			T_OK(strstr(err, cases[i].mention) != NULL,
			    "check: %s: names \"%s\"", cases[i].label, cases[i].mention);
		/* A short buffer is cut, never overrun. */
		memset(tiny, 'x', sizeof(tiny));
		n = tls_listen_check(cfg, tiny, sizeof(tiny));
		T_OK(n == cases[i].problems && memchr(tiny, '\0', sizeof(tiny)) != NULL,
		    "check: %s: short buffer stays terminated", cases[i].label);
		conf_free(cfg);
	}
}

int
main(void)
{
	test_mode();
	test_check();
	return t_done();
}
