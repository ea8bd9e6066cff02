/*
 * sandbox.h (delivery-agent): the seccomp allow-lists of the two
 * transports; the tables themselves are in sandbox.c.
 */
#ifndef MOAT_DELIVERY_SANDBOX_H
#define MOAT_DELIVERY_SANDBOX_H

#include <stddef.h>

#include "util/sandbox.h"

/* The table for MOAT_TRANSPORT_RELAY or MOAT_TRANSPORT_LOCAL; *n its length. */
const struct sandbox_rule *delivery_sandbox_rules(int transport, size_t *n);

#endif
