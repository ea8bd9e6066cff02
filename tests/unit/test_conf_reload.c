/*
 * test_conf_reload.c: the restart-only list of a configuration reload and
 * the merge that keeps their running values (common/conf_reload.c).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "conf_reload.h"
#include "t.h"
#include "util/log.h"

static struct conf *
parse(const char *text)
{
	struct conf *c = NULL;

	if (conf_parse("test.conf", text, strlen(text), &c, stderr) != 0)
		return NULL;
	return c;
}

static void
test_list(void)
{
	static const struct { enum conf_key k; int restart; const char *label; } cases[] = {
		{ CONF_LISTEN, 1, "listen needs a restart" },
		{ CONF_RUN_DIRECTORY, 1, "run_directory needs a restart" },
		{ CONF_SMTPD_USER, 1, "smtpd_user needs a restart" },
		{ CONF_QUEUE_USER, 1, "queue_user needs a restart" },
		{ CONF_RELAY_USER, 1, "relay_user needs a restart" },
		{ CONF_LOCAL_USER, 1, "local_user needs a restart" },
		{ CONF_ADMIN_GROUP, 1, "admin_group needs a restart" },
		{ CONF_READONLY_GROUP, 1, "readonly_group needs a restart" },
		{ CONF_DELIVERY_AGENTS, 1, "delivery_agents needs a restart" },
		{ CONF_RELAY_HOST, 0, "relay_host reloads" },
		{ CONF_SMTPD_RECIPIENT_LIMIT, 0, "smtpd_recipient_limit reloads" },
		{ CONF_RELAY_DOMAINS, 0, "relay_domains reloads" },
		{ CONF_RELAY_NETWORKS, 0, "relay_networks reloads" },
		{ CONF_MINIMAL_BACKOFF_TIME, 0, "minimal_backoff_time reloads" },
		{ CONF_SHUTDOWN_TIMEOUT, 0, "shutdown_timeout reloads" },
		{ CONF_MYHOSTNAME, 0, "myhostname reloads" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		T_OK(conf_reload_needs_restart(cases[i].k) == cases[i].restart,
		    "%s", cases[i].label);
	T_OK(conf_reload_needs_restart(CONF_NSETTINGS) == 0, "out of range key: no");
}

static void
test_keep(void)
{
	static const struct {
		const char *cur, *next;
		size_t changed;
		const char *listen, *relay_host;
		long long agents;
		const char *label;
	} cases[] = {
		{ "listen = 127.0.0.1:25\nrelay_host = [127.0.0.1]:10\n",
		  "listen = 127.0.0.1:25\nrelay_host = [127.0.0.1]:10\n",
		  0, "127.0.0.1:25", "[127.0.0.1]:10", 20, "same file: nothing kept back" },
		{ "listen = 127.0.0.1:25\nrelay_host = [127.0.0.1]:10\n",
		  "listen = 127.0.0.1:25\nrelay_host = [127.0.0.1]:11\n",
		  0, "127.0.0.1:25", "[127.0.0.1]:11", 20, "relay_host change applies" },
		{ "listen = 127.0.0.1:25\ndelivery_agents = 2\n",
		  "listen = 127.0.0.1:26\ndelivery_agents = 3\nrelay_host = [127.0.0.1]:11\n",
		  2, "127.0.0.1:25", "[127.0.0.1]:11", 2, "listen and agents kept, relay_host applies" },
		{ "",
		  "delivery_agents = 20\n",
		  0, "127.0.0.1:2525", "", 20, "default written out is no change" },
		{ "delivery_agents = 8\n",
		  "",
		  1, "127.0.0.1:2525", "", 8, "setting removed: running value kept" },
		{ "run_directory = /var/spool/moat\n",
		  "run_directory = /tmp/elsewhere\nqueue_user = root\nadmin_group = wheel\n",
		  3, "127.0.0.1:2525", "", 20, "hostile: directory, user and group kept" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *cur = parse(cases[i].cur), *next = parse(cases[i].next);
		size_t n;

		if (cur == NULL || next == NULL) {
			T_OK(0, "%s: parses", cases[i].label);
			conf_free(cur);
			conf_free(next);
			continue;
		}
		n = conf_reload_keep(cur, next, 0);
		T_OK(n == cases[i].changed, "%s: %zu restart-only changes (got %zu)",
		    cases[i].label, cases[i].changed, n);
		T_OK(strcmp(conf_str(next, CONF_LISTEN), cases[i].listen) == 0,
		    "%s: listen %s", cases[i].label, cases[i].listen);
		T_OK(strcmp(conf_str(next, CONF_RELAY_HOST), cases[i].relay_host) == 0,
		    "%s: relay_host %s", cases[i].label, cases[i].relay_host);
		T_OK(conf_num(next, CONF_DELIVERY_AGENTS) == cases[i].agents,
		    "%s: delivery_agents %lld", cases[i].label, cases[i].agents);
		T_OK(strcmp(conf_str(next, CONF_RUN_DIRECTORY), "/var/spool/moat") == 0,
		    "%s: run_directory kept", cases[i].label);
		T_OK(strcmp(conf_str(next, CONF_QUEUE_USER), "moat-queue") == 0,
		    "%s: queue_user kept", cases[i].label);
		conf_free(cur);
		conf_free(next);
	}
}

int
main(void)
{
	log_init("test_conf_reload", 0);
	test_list();
	test_keep();
	return t_done();
}
