/*
 * test_moatctl_fmt.c: moatctl's pure formatting: JSON string escaping of
 * hostile queue data, ages, and the Prometheus text exposition.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "t.h"
#include "util/buf.h"
#include "moatctl/moatctl_fmt.h"

static void
test_json(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "\"\"" }, { "plain", "\"plain\"" }, { "a\"b", "\"a\\\"b\"" },
		{ "back\\slash", "\"back\\\\slash\"" }, { "l1\nl2\r\t", "\"l1\\nl2\\r\\t\"" },
		{ "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"" },
		{ "caf\xc3\xa9", "\"caf\\u00c3\\u00a9\"" },
		{ "</script>", "\"</script>\"" },
		{ "\x1b[31mred", "\"\\u001b[31mred\"" },
	};
	struct buf b;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_init(&b, 1024);
		T_OK(fmt_json_str(&b, cases[i].in) == 0 && buf_append(&b, "", 1) == 0 &&
		    strcmp((const char *)b.data, cases[i].out) == 0,
		    "json of case %zu is %s (got %s)", i, cases[i].out, (const char *)b.data);
		buf_free(&b);
	}
	buf_init(&b, 4);
	T_OK(fmt_json_str(&b, "too long for the cap") == -1, "json: a full buffer fails");
	buf_free(&b);
}

static void
test_age(void)
{
	static const struct {
		long long s;
		const char *out;
	} cases[] = {
		{ -3, "0s" }, { 0, "0s" }, { 59, "59s" }, { 60, "1m" }, { 3599, "59m" },
		{ 3600, "1h" }, { 86399, "23h" }, { 86400, "1d" }, { 864000, "10d" },
	};
	char out[32];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fmt_age(cases[i].s, out, sizeof(out));
		T_OK(strcmp(out, cases[i].out) == 0, "age %lld is %s (got %s)", cases[i].s,
		    cases[i].out, out);
	}
}

static void
test_prometheus(void)
{
	static const struct fmt_family fam[] = {
		{ "moat_queue_messages", "gauge", "Messages in the queue, by state." },
		{ "moat_messages_in_total", "counter", "Messages accepted." },
	};
	static const char want[] =
	    "# HELP moat_queue_messages Messages in the queue, by state.\n"
	    "# TYPE moat_queue_messages gauge\n"
	    "moat_queue_messages{state=\"queued\"} 3\n"
	    "moat_queue_messages{state=\"a\\\"b\\\\c\\nd\"} 0\n"
	    "# HELP moat_messages_in_total Messages accepted.\n"
	    "# TYPE moat_messages_in_total counter\n"
	    "moat_messages_in_total 9223372036854775807\n";
	struct fmt_sample s[] = {
		{ "moat_messages_in_total", NULL, NULL, 9223372036854775807LL },
		{ "moat_queue_messages", "state", "queued", 3 },
		{ "moat_queue_messages", "state", "a\"b\\c\nd", 0 },
	};
	struct fmt_sample stray = { "moat_unknown", NULL, NULL, 1 };
	struct buf b;

	buf_init(&b, 4096);
	T_OK(fmt_prometheus(&b, fam, 2, s, 3) == 0 && buf_append(&b, "", 1) == 0,
	    "prometheus text built");
	T_OK(strcmp((const char *)b.data, want) == 0,
	    "families in order, HELP and TYPE first, label values escaped:\n%s", b.data);
	buf_free(&b);
	buf_init(&b, 4096);
	T_OK(fmt_prometheus(&b, fam, 2, &stray, 1) == -1, "a sample of no family fails");
	buf_free(&b);
	buf_init(&b, 40);
	T_OK(fmt_prometheus(&b, fam, 2, s, 3) == -1, "a full buffer fails");
	buf_free(&b);
}

int
main(void)
{
	test_json();
	test_age();
	test_prometheus();
	return t_done();
}
