/*
 * conf_reload.h: what a configuration reload (SIGHUP, `moatctl reload`)
 * may change in a running moat, decided in one place.
 *
 * moatd and the queue-manager both reload; both ask this list.  A
 * restart-only setting is one that moatd applies once, at start: the
 * sockets it binds, the directories it creates, the users and chroots of
 * the process table, the number of agents, the admin group looked up
 * before the queue-manager's chroot.  Every other setting takes effect at
 * a reload (see docs/operations.md, "Reload").
 */
#ifndef MOAT_CONF_RELOAD_H
#define MOAT_CONF_RELOAD_H

#include <stddef.h>

#include "util/conf.h"

/* 1 if setting k keeps its running value until moatd is restarted. */
int	conf_reload_needs_restart(enum conf_key k);

/*
 * Give next the running value of every restart-only setting of cur (the
 * two values are swapped, so pointers into cur's values stay valid while
 * next lives).  With loud set, log each setting whose value differs as
 * "needs a restart".  Returns the number of such settings.
 */
size_t	conf_reload_keep(struct conf *cur, struct conf *next, int loud);

#endif
