/*
 * test_hooks.h: the XESCAPE command of hook builds (test_hooks.c).
 *
 * Exists only in builds configured with --enable-test-hooks; see
 * docs/testing.md and tests/integration/test_sandbox.py.
 */
#ifndef MOAT_SMTPD_TEST_HOOKS_H
#define MOAT_SMTPD_TEST_HOOKS_H

#include <stddef.h>

struct smtp_session;

/* If line is "XESCAPE <what>": try the escape, queue the reply, return 1. */
int	smtpd_test_hook_command(struct smtp_session *s, const char *line, size_t len);

#endif
