/*
 * xtext.c: RFC 3461 xtext encoding (see xtext.h).  The agent sends only
 * what it encodes here, so no byte of an ENVID or ORCPT from a client can
 * end a parameter or a command line on the way to the next hop.
 */
#include "config.h"

#include <string.h>

#include "xtext.h"

size_t
xtext_encode(const char *src, char *dst, size_t dstsz)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0;

	if (dstsz == 0)
		return (size_t)-1;
	for (; *s != '\0'; s++) {
		if (*s >= 33 && *s <= 126 && *s != '+' && *s != '=') {
			if (o + 1 >= dstsz)
				goto toolong;
			dst[o++] = (char)*s;
			continue;
		}
		if (o + 3 >= dstsz)
			goto toolong;
		dst[o++] = '+';
		dst[o++] = hex[*s >> 4];
		dst[o++] = hex[*s & 0x0f];
	}
	dst[o] = '\0';
	return o;
toolong:
	dst[0] = '\0';
	return (size_t)-1;
}
