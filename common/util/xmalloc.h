/*
 * xmalloc.h: allocation wrappers that abort on exhaustion.
 *
 * Running out of memory is not an error a daemon can recover from in the
 * middle of a transaction; like OpenSSH's xmalloc these log and abort.
 */
#ifndef MOAT_XMALLOC_H
#define MOAT_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Bounded formatting into a fresh string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Copy src into dst of size dstsz, always terminated; returns strlen(src). */
size_t strlcpy_m(char *dst, const char *src, size_t dstsz);

#endif
