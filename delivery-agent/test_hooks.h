/*
 * test_hooks.h (delivery-agent): escape attempts of hook builds
 * (test_hooks.c).  Exists only in builds configured with
 * --enable-test-hooks; see docs/testing.md.
 */
#ifndef MOAT_DELIVERY_TEST_HOOKS_H
#define MOAT_DELIVERY_TEST_HOOKS_H

struct job;

/* A job from escape-<what>@hooks.test: try <what>, log how it went. */
void	delivery_test_hook_job(const struct job *j, int transport);

#endif
