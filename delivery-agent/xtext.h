/*
 * xtext.h: RFC 3461 section 4 "xtext", the encoding of the DSN
 * parameters ENVID and ORCPT on MAIL FROM and RCPT TO.
 *
 *   xtext   = *( xchar / hexchar )
 *   xchar   = any ASCII from "!" (33) to "~" (126) except "+" and "="
 *   hexchar = "+" two upper-case hex digits
 */
#ifndef MOAT_XTEXT_H
#define MOAT_XTEXT_H

#include <stddef.h>

/*
 * Encode src into dst (NUL-terminated).  Returns the encoded length, or
 * (size_t)-1 when it does not fit in dstsz (dst then holds "").  At most
 * three bytes out per byte in.
 */
size_t	xtext_encode(const char *src, char *dst, size_t dstsz);

#endif
