/*
 * test_hooks.h (queue-manager): escape attempts of hook builds
 * (test_hooks.c).  Exists only in builds configured with
 * --enable-test-hooks; see docs/testing.md.
 */
#ifndef MOAT_QMGR_TEST_HOOKS_H
#define MOAT_QMGR_TEST_HOOKS_H

/* A BEGIN with HELO escape-<what>.hooks.test: try <what>, log how it went. */
void	qmgr_test_hook_begin(const char *helo);

#endif
