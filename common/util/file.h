/*
 * file.h: a whole small file in memory.
 *
 * For the files moat reads whole before it uses them: moat.conf (moatd,
 * at start and at reload), the TLS key files (moatd, for the keyholder)
 * and the certificate chains (each smtpd-session, before its sandbox).
 */
#ifndef MOAT_FILE_H
#define MOAT_FILE_H

#include <stddef.h>

/*
 * The bytes of the regular file at path, NUL-terminated, at most max of
 * them; *lenp is their number.  NULL with err ("path: reason") when it
 * cannot be opened or read, is not a regular file, is larger than max,
 * or grows while being read.
 */
char	*file_read(const char *path, size_t max, size_t *lenp, char *err,
	    size_t errlen);

#endif
