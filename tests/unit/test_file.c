/*
 * test_file.c: file_read() (common/util/file.c): a whole small file, and
 * every way one is refused.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t.h"
#include "util/file.h"

static char dir[] = "/tmp/test_file.XXXXXX";

static void
put(const char *name, const char *text, size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL || fwrite(text, 1, len, f) != len ||
	    fclose(f) != 0)
		abort();
}

static void
check(const char *name, size_t max, const char *want, size_t wantlen,
    const char *errpart)
{
	char path[128], err[256] = "";
	size_t len = 0;
	char *text;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	text = file_read(path, max, &len, err, sizeof(err));
	if (want != NULL)
		T_OK(text != NULL && len == wantlen && memcmp(text, want, len) == 0 &&
		    text[len] == '\0', "%s: read whole, NUL after it", name);
	else
		T_OK(text == NULL && strstr(err, errpart) != NULL &&
		    strstr(err, name) != NULL, "%s: refused (%s)", name, err);
	free(text);
}

int
main(void)
{
	char path[128];

	if (mkdtemp(dir) == NULL)
		abort();
	put("plain", "a = b\n", 6);
	put("nul", "a\0b", 3);
	put("empty", "", 0);
	put("big", "0123456789", 10);
	check("plain", 100, "a = b\n", 6, NULL);
	check("nul", 100, "a\0b", 3, NULL);
	check("empty", 100, "", 0, NULL);
	check("big", 10, "0123456789", 10, NULL);
	check("big", 9, NULL, 0, "larger than 9 bytes");
	check("missing", 100, NULL, 0, "No such file");
	snprintf(path, sizeof(path), "%s/adir", dir);
	if (mkdir(path, 0700) != 0)
		abort();
	check("adir", 100, NULL, 0, "not a regular file");
	rmdir(path);
	/* A FIFO must be refused, not waited on for a writer. */
	snprintf(path, sizeof(path), "%s/fifo", dir);
	if (mkfifo(path, 0600) != 0)
		abort();
	alarm(10);
	check("fifo", 100, NULL, 0, "not a regular file");
	alarm(0);
	unlink(path);
	for (const char *n = "plain\0nul\0empty\0big\0"; *n != '\0'; n += strlen(n) + 1) {
		snprintf(path, sizeof(path), "%s/%s", dir, n);
		unlink(path);
	}
	rmdir(dir);
	return t_done();
}
