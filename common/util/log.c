/*
 * log.c: key=value event lines on standard error.
 *
 * A line is assembled in one bounded buffer and written with a single
 * write(2), so lines from different processes sharing stderr do not
 * interleave.  No allocation happens here: logging must work under the
 * tightest sandbox and after memory runs out.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define LOG_LINE_MAX 2048

static char log_name[64] = "moat";
static int log_debug_on;

void
log_init(const char *process_name, int debug)
{
	snprintf(log_name, sizeof(log_name), "%s", process_name);
	log_debug_on = debug;
	/*
	 * glibc reads /etc/localtime at the first time conversion, even for
	 * gmtime_r().  Do it now, before any chroot or seccomp filter, so no
	 * later log line makes a file system call the sandbox refuses.
	 */
	tzset();
}

void
log_set_debug(int debug)
{
	log_debug_on = debug;
}

const char *
log_process_name(void)
{
	return log_name;
}

/* Append formatted text at *off, never past the end of line[]. */
__attribute__((format(printf, 4, 5))) static void
log_append(char *line, size_t size, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= size - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line + *off, size - *off, fmt, ap);
	va_end(ap);
	if (n > 0)
		*off += (size_t)n >= size - *off ? size - *off - 1 : (size_t)n;
}

__attribute__((format(printf, 2, 0))) static void
log_vemit(const char *level, const char *fmt, va_list ap, int with_errno)
{
	char line[LOG_LINE_MAX];
	int saved_errno = errno;
	struct timespec ts;
	struct tm tm;
	size_t off = 0;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	log_append(line, sizeof(line), &off, "%04d-%02d-%02dT%02d:%02d:%02dZ moat/%s[%ld]: %s",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, log_name, (long)getpid(), level);
	n = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	if (n > 0)
		off += (size_t)n >= sizeof(line) - off ? sizeof(line) - off - 1 : (size_t)n;
	if (with_errno)
		log_append(line, sizeof(line), &off, ": %s", strerror(saved_errno));
	if (off > sizeof(line) - 2)
		off = sizeof(line) - 2;
	line[off++] = '\n';
	(void)!write(STDERR_FILENO, line, off);
	errno = saved_errno;
}

#define LOG_BODY(level, with_errno) do {		\
	va_list ap;					\
	va_start(ap, fmt);				\
	log_vemit(level, fmt, ap, with_errno);		\
	va_end(ap);					\
} while (0)

void log_info(const char *fmt, ...) { LOG_BODY("", 0); }
void log_warn(const char *fmt, ...) { LOG_BODY("warning: ", 0); }
void log_warnx(const char *fmt, ...) { LOG_BODY("warning: ", 1); }

void
log_debug(const char *fmt, ...)
{
	if (log_debug_on)
		LOG_BODY("debug: ", 0);
}

void
log_fatal(const char *fmt, ...)
{
	LOG_BODY("fatal: ", 0);
	exit(1);
}

void
log_panic(const char *fmt, ...)
{
	LOG_BODY("panic: ", 0);
	abort();
}

const char *
log_sanitize(char *dst, size_t dstsz, const char *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	if (dstsz == 0)
		return dst;
	for (i = 0; i < srclen; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			if (o + 1 >= dstsz)
				break;
			dst[o++] = (char)c;
		} else {
			if (o + 4 >= dstsz)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = '\0';
	return dst;
}
