/*
 * conf_reload.c: the restart-only settings and the merge of a reloaded
 * configuration with the running one (see conf_reload.h).
 */
#include "config.h"

#include <string.h>

#include "conf_reload.h"
#include "util/log.h"

/*
 * THE list of settings a reload does not change.  Everything else
 * (limits, timeouts, back-off, relay_host, domains, networks, myhostname,
 * shutdown_timeout, ...) is applied by a reload.
 */
static const enum conf_key conf_reload_restart_only[] = {
	CONF_RUN_DIRECTORY,	/* moatd made it and bound control.sock in it */
	CONF_LISTEN,		/* bound once, before the capabilities go */
	CONF_SUBMISSION_LISTEN,
	CONF_SMTPS_LISTEN,
	CONF_SMTPD_USER,	/* the process table's users, resolved as root */
	CONF_QUEUE_USER,
	CONF_RELAY_USER,
	CONF_LOCAL_USER,
	CONF_KEYHOLDER_USER,
	CONF_ADMIN_GROUP,	/* looked up before the queue-manager's chroot */
	CONF_READONLY_GROUP,	/* the same; and control.sock's mode depends on it */
	CONF_DELIVERY_AGENTS,	/* the size of moatd's child table */
};

int
conf_reload_needs_restart(enum conf_key k)
{
	size_t i;

	for (i = 0; i < sizeof(conf_reload_restart_only) /
	    sizeof(conf_reload_restart_only[0]); i++)
		if (conf_reload_restart_only[i] == k)
			return 1;
	return 0;
}

/* Two values are the same setting if they were written the same way. */
static int
conf_reload_same(const struct conf_value *a, const struct conf_value *b)
{
	const char *ta = a->text != NULL ? a->text : "";
	const char *tb = b->text != NULL ? b->text : "";

	return strcmp(ta, tb) == 0;
}

size_t
conf_reload_keep(struct conf *cur, struct conf *next, int loud)
{
	struct conf_value tmp;
	size_t i, n = 0;

	for (i = 0; i < sizeof(conf_reload_restart_only) /
	    sizeof(conf_reload_restart_only[0]); i++) {
		enum conf_key k = conf_reload_restart_only[i];

		if (!conf_reload_same(&cur->v[k], &next->v[k])) {
			n++;
			if (loud)
				log_warn("reload: setting=%s needs a restart (new value "
				    "\"%s\" not applied; keeping \"%s\")",
				    conf_setting(k)->name,
				    next->v[k].text != NULL ? next->v[k].text : "",
				    cur->v[k].text != NULL ? cur->v[k].text : "");
		}
		tmp = cur->v[k];
		cur->v[k] = next->v[k];
		next->v[k] = tmp;
	}
	return n;
}
