/*
 * moatctl_fmt.c: pure formatting for moatctl (see moatctl_fmt.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "moatctl_fmt.h"

int
fmt_json_str(struct buf *b, const char *s)
{
	const unsigned char *p;
	char esc[8];
	int r = buf_append_str(b, "\"");

	for (p = (const unsigned char *)s; *p != '\0' && r == 0; p++) {
		if (*p == '"')
			r = buf_append_str(b, "\\\"");
		else if (*p == '\\')
			r = buf_append_str(b, "\\\\");
		else if (*p == '\n')
			r = buf_append_str(b, "\\n");
		else if (*p == '\r')
			r = buf_append_str(b, "\\r");
		else if (*p == '\t')
			r = buf_append_str(b, "\\t");
		else if (*p < 0x20 || *p >= 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			r = buf_append_str(b, esc);
		} else
			r = buf_append(b, p, 1);
	}
	return r == 0 ? buf_append_str(b, "\"") : -1;
}

void
fmt_age(long long secs, char *dst, size_t dstsz)
{
	if (secs < 0)
		secs = 0;
	if (secs < 60)
		snprintf(dst, dstsz, "%llds", secs);
	else if (secs < 3600)
		snprintf(dst, dstsz, "%lldm", secs / 60);
	else if (secs < 86400)
		snprintf(dst, dstsz, "%lldh", secs / 3600);
	else
		snprintf(dst, dstsz, "%lldd", secs / 86400);
}

/* A label value as the exposition format escapes it. */
static int
fmt_prom_label(struct buf *b, const char *v)
{
	int r = 0;

	for (; *v != '\0' && r == 0; v++) {
		if (*v == '\\')
			r = buf_append_str(b, "\\\\");
		else if (*v == '"')
			r = buf_append_str(b, "\\\"");
		else if (*v == '\n')
			r = buf_append_str(b, "\\n");
		else
			r = buf_append(b, v, 1);
	}
	return r;
}

int
fmt_prometheus(struct buf *b, const struct fmt_family *fam, size_t nfam,
    const struct fmt_sample *s, size_t ns)
{
	size_t f, i, used = 0;

	for (f = 0; f < nfam; f++) {
		if (buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", fam[f].metric,
		    fam[f].help, fam[f].metric, fam[f].type) == -1)
			return -1;
		for (i = 0; i < ns; i++) {
			if (strcmp(s[i].metric, fam[f].metric) != 0)
				continue;
			used++;
			if (buf_append_str(b, s[i].metric) == -1)
				return -1;
			if (s[i].label != NULL && (buf_printf(b, "{%s=\"", s[i].label) == -1 ||
			    fmt_prom_label(b, s[i].value_of_label) == -1 ||
			    buf_append_str(b, "\"}") == -1))
				return -1;
			if (buf_printf(b, " %lld\n", s[i].value) == -1)
				return -1;
		}
	}
	return used == ns ? 0 : -1;
}
