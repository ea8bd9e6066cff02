/* fuzz-sources: moatctl/moatctl_fmt.c common/util/buf.c common/util/xmalloc.c common/util/log.c */
/*
 * fuzz_moatctl_fmt.c: moatctl prints queue data that came from the
 * network.  Whatever the bytes, the JSON string it writes must be one
 * well-formed literal of printable ASCII, and a Prometheus label value
 * must stay inside its quotes on one line.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "../../moatctl/moatctl_fmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A JSON string literal: quotes at both ends, escapes complete. */
static void
check_json(const struct buf *b)
{
	size_t i;

	if (b->len < 2 || b->data[0] != '"' || b->data[b->len - 1] != '"')
		abort();
	for (i = 1; i < b->len - 1; i++) {
		if (b->data[i] < 0x20 || b->data[i] >= 0x7f)
			abort();
		if (b->data[i] == '"')
			abort();
		if (b->data[i] == '\\') {
			if (++i >= b->len - 1)
				abort();
			if (b->data[i] == 'u')
				i += 4;
			else if (strchr("\"\\nrt", b->data[i]) == NULL)
				abort();
		}
	}
	if (i != b->len - 1)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fmt_family fam[] = { { "moat_x", "gauge", "x" } };
	struct fmt_sample s = { "moat_x", "l", NULL, 1 };
	char *str = malloc(size + 1);
	struct buf b;
	size_t i, quotes = 0;

	if (str == NULL)
		return 0;
	memcpy(str, data, size);
	str[size] = '\0';
	buf_init(&b, 8 * size + 16);
	if (fmt_json_str(&b, str) != 0)
		abort();
	check_json(&b);
	buf_free(&b);

	s.value_of_label = str;
	buf_init(&b, 4 * size + 256);
	if (fmt_prometheus(&b, fam, 1, &s, 1) != 0)
		abort();
	/* HELP, TYPE and one sample: three lines, two unescaped quotes. */
	for (i = 0; i < b.len; i++) {
		if (b.data[i] == '\n' && i + 1 != b.len && quotes % 2 == 1)
			abort();
		if (b.data[i] == '\\')
			i++;
		else if (b.data[i] == '"')
			quotes++;
	}
	if (quotes != 2)
		abort();
	buf_free(&b);
	free(str);
	return 0;
}
