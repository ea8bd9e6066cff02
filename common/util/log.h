/*
 * log.h: one line per event, "key=value" fields, to standard error.
 *
 * Every process writes to its inherited standard error; moatd started in
 * the foreground leaves it on the terminal, under a service manager it is
 * the journal.  Lines look like
 *   2026-11-22T13:20:01Z moat/queue-manager[123]: id=... status=sent
 * log_warn/log_info/log_debug return; log_fatal exits (top level only);
 * log_panic aborts: it is for broken invariants and exhaustion.
 */
#ifndef MOAT_LOG_H
#define MOAT_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_PANIC, LOG_LVL_FATAL, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(const char *process_name, int debug);
void log_set_debug(int debug);
const char *log_process_name(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_warnx appends ": <strerror(errno)>" */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * Make text from a peer safe for a log line: control bytes, quotes and
 * backslashes become \xNN, and the result is cut at dstsz - 1.
 */
const char *log_sanitize(char *dst, size_t dstsz, const char *src, size_t srclen);

#endif
