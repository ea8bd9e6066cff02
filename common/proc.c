/*
 * proc.c: the table of moat's processes.
 */
#include "config.h"

#include <stddef.h>

#include "proc.h"

static const struct proc_info proc_table[PROC_NROLES] = {
	{ PROC_LISTENER, "listener", "moatd", NULL, CHROOT_NONE,
	  "spawns and supervises all; passes channels to queue-manager" },
	{ PROC_SESSION, "smtpd-session", "smtpd-session", "smtpd_user", CHROOT_EMPTY,
	  "one client; queue-manager" },
	{ PROC_QMGR, "queue-manager", "queue-manager", "queue_user", CHROOT_QUEUE,
	  "listener, sessions, delivery agents, moatctl" },
	{ PROC_RELAY, "delivery-agent", "delivery-agent", "relay_user", CHROOT_EMPTY,
	  "queue-manager; next-hop SMTP servers" },
	{ PROC_LOCAL, "local-delivery", "delivery-agent", "local_user", CHROOT_MAILDIR,
	  "queue-manager; maildirs" },
	{ PROC_KEYS, "keyholder", "keyholder", "keyholder_user", CHROOT_EMPTY,
	  "listener; sessions (signs TLS handshakes)" },
};

const struct proc_info *
proc_info(enum proc_role role)
{
	if ((unsigned int)role >= PROC_NROLES)
		return NULL;
	return &proc_table[role];
}
