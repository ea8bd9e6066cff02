/* fuzz-sources: common/util/conf.c common/mail/table.c common/mail/nexthop.c common/util/netaddr.c common/mail/addr.c common/util/buf.c common/util/lines.c common/util/log.c common/util/xmalloc.c */
/*
 * fuzz_conf.c: conf_parse on arbitrary bytes.  A parse with no errors
 * must yield a usable configuration; any parse must free what it took.
 * The first byte picks either a raw file or "NAME = rest" for one setting
 * of the table, so every value parser is reached without a seed corpus.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse text and check what a caller relies on. */
static void
fuzz_conf_one(const char *text, size_t len, FILE *devnull)
{
	struct conf *cfg = (struct conf *)1;
	int n, k;

	n = conf_parse("fuzz.conf", text, len, &cfg, devnull);
	if ((n == 0) != (cfg != NULL))
		abort();
	if (cfg == NULL)
		return;
	conf_print(cfg, devnull);
	(void)conf_myhostname(cfg);
	for (k = 0; k < CONF_NSETTINGS; k++) {
		const struct conf_setting_info *si = conf_setting((enum conf_key)k);

		if (cfg->v[k].text == NULL)
			abort();
		if ((si->type == CONFT_INT || si->type == CONFT_SIZE ||
		    si->type == CONFT_TIME) && (si->min != 0 || si->max != 0) &&
		    (cfg->v[k].num < si->min || cfg->v[k].num > si->max))
			abort();
	}
	(void)netlist_match_str(conf_nets(cfg, CONF_RELAY_NETWORKS), "192.0.2.1");
	(void)conf_words_has(conf_words(cfg, CONF_LOCAL_DOMAINS), "example.com");
	conf_free(cfg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	const struct conf_setting_info *si;
	char *text;
	size_t nlen;

	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		return 0;
	if (size == 0 || (si = conf_setting((enum conf_key)(data[0] %
	    (CONF_NSETTINGS + 1)))) == NULL) {
		fuzz_conf_one((const char *)data, size, devnull);
		return 0;
	}
	nlen = strlen(si->name);
	text = malloc(nlen + 3 + size);
	if (text == NULL)
		return 0;
	memcpy(text, si->name, nlen);
	memcpy(text + nlen, " = ", 3);
	memcpy(text + nlen + 3, data + 1, size - 1);
	fuzz_conf_one(text, nlen + 3 + size - 1, devnull);
	free(text);
	return 0;
}
