/*
 * sandbox.h (delivery-agent): install the seccomp allow-list of a
 * transport; the tables are in sandbox.c.
 */
#ifndef MOAT_DELIVERY_SANDBOX_H
#define MOAT_DELIVERY_SANDBOX_H

#include <stddef.h>

/* MOAT_TRANSPORT_RELAY or MOAT_TRANSPORT_LOCAL; role names it in debug logs. */
int	delivery_sandbox_apply(int transport, const char *role, char *err,
	    size_t errlen);

#endif
