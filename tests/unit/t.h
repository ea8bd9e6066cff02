/*
 * t.h: the smallest TAP producer, for table-driven unit tests.
 *
 *   T_OK(cond, "label %d", i);   one test case
 *   return t_done();             prints the plan; exit status 1 on failure
 *
 * Every case has a label so a failure names what broke.
 */
#ifndef MOAT_T_H
#define MOAT_T_H

#include <stdarg.h>
#include <stdio.h>

static int t_count, t_failed;

__attribute__((format(printf, 4, 5), unused)) static void
t_ok(int ok, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	t_count++;
	printf("%s %d - ", ok ? "ok" : "not ok", t_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!ok) {
		t_failed++;
		printf(" # at %s:%d", file, line);
	}
	printf("\n");
	fflush(stdout);
}

#define T_OK(cond, ...) t_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

__attribute__((unused)) static int
t_done(void)
{
	printf("1..%d\n", t_count);
	return t_failed ? 1 : 0;
}

#endif
