/*
 * sandbox.h: the seccomp allow-list of smtpd-session (sandbox.c).
 *
 * moatd builds the filter from this table once, with SANDBOX_SELF for
 * the pid, and hands it to every session at MOAT_FD_SESSION_FILTER.
 */
#ifndef MOAT_SMTPD_SANDBOX_H
#define MOAT_SMTPD_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include "util/sandbox.h"

/* The table, with self as the only pid tgkill may signal. */
const struct sandbox_rule *smtpd_sandbox_rules(uint32_t self, size_t *n);

/* Install the program at filter_fd (then closed), or, when that
 * descriptor is not open, build the filter from the table here. */
int	smtpd_sandbox_apply(int filter_fd, char *err, size_t errlen);

#endif
