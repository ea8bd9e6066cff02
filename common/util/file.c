/*
 * file.c: a whole small file in memory (file.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file.h"
#include "util/xmalloc.h"

char *
file_read(const char *path, size_t max, size_t *lenp, char *err, size_t errlen)
{
	struct stat st;
	size_t off = 0;
	char *text;
	int fd;

	/* O_NONBLOCK: a FIFO named by mistake is refused below instead of
	 * blocking until someone writes to it. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return NULL;
	}
	if ((unsigned long long)st.st_size > max) {
		snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
		close(fd);
		return NULL;
	}
	/* One byte more than its size: a file that grew is seen to. */
	text = xmalloc((size_t)st.st_size + 1);
	for (;;) {
		ssize_t n = read(fd, text + off, (size_t)st.st_size + 1 - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "%s: read: %s", path, strerror(errno));
			break;
		}
		if (n == 0) {
			close(fd);
			text[off] = '\0';
			*lenp = off;
			return text;
		}
		off += (size_t)n;
		if (off > (size_t)st.st_size) {
			snprintf(err, errlen, "%s: changed while being read", path);
			break;
		}
	}
	close(fd);
	/* Key files are read this way too: leave no copy behind. */
	explicit_bzero(text, off);
	free(text);
	return NULL;
}
