/*
 * test_qmgr_ctlproto.c: the queue-manager's decoders of moatctl's
 * requests (queue-manager/qmgr_ctlproto.c) on well-formed and hostile
 * IPC_C2Q_REQUEST and IPC_C2Q_SHOW payloads: every truncation, a trailing
 * byte, strings one byte over their caps, NUL inside, argument counts
 * past the cap or past the payload.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ipc_types.h"
#include "util/ipc.h"
#include "queue-manager/qmgr_ctlproto.h"
#include "tests/unit/t.h"

/* A frame over p[0..n) of the given type. */
static void
frame(struct ipc_frame *f, uint32_t type, const uint8_t *p, size_t n)
{
	memset(f, 0, sizeof(*f));
	f->hdr.type = type;
	f->hdr.len = (uint32_t)n;
	f->hdr.version = IPC_VERSION;
	f->payload = p;
	f->len = n;
	f->fd = -1;
}

/* The payload of a finished ipc_wr (bytes stay in w). */
static const uint8_t *
payload(struct ipc_wr *w, size_t *n)
{
	const uint8_t *m;
	size_t len;

	if ((m = ipc_wr_finish(w, &len)) == NULL) {
		*n = 0;
		return NULL;
	}
	*n = len - IPC_HDR_LEN;
	return m + IPC_HDR_LEN;
}

/* A string of n copies of c. */
static char *
repeat(int c, size_t n)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Decode p[0..n) as a request; the result, and *q released. */
static int
decode(const uint8_t *p, size_t n, struct qmgr_ctl_req *out)
{
	struct ipc_frame f;
	struct qmgr_ctl_req q;
	int r;

	frame(&f, IPC_C2Q_REQUEST, p, n);
	r = qmgr_ctlproto_request(&f, &q);
	if (out != NULL && r == 0)
		*out = q;
	else
		qmgr_ctlproto_request_free(&q);
	return r;
}

struct req_case {
	const char	*label;
	const char	*cmd;
	uint32_t	 count;		/* as claimed */
	uint32_t	 npair;		/* as sent */
	const char	*key[3];
	const char	*val[3];
	int		 trailing;	/* append a stray byte */
	int		 want;		/* 0 or -1 */
};

static void
test_requests(void)
{
	static const struct req_case cases[] = {
		{ "list, no arguments", "list", 0, 0, { 0 }, { 0 }, 0, 0 },
		{ "hold by id", "hold", 1, 1, { "id" }, { "0123456789ABCDEF" }, 0, 0 },
		{ "three pairs", "list", 3, 3, { "sender", "rcpt", "state" },
		    { "a@b", "", "held" }, 0, 0 },
		{ "unknown command decodes (the caller refuses it)",
		    "frobnicate", 0, 0, { 0 }, { 0 }, 0, 0 },
		{ "empty command decodes", "", 0, 0, { 0 }, { 0 }, 0, 0 },
		{ "count larger than the pairs sent", "list", 2, 1, { "id" },
		    { "x" }, 0, -1 },
		{ "count smaller than the pairs sent", "list", 1, 2, { "id", "id" },
		    { "x", "y" }, 0, -1 },
		{ "trailing byte", "list", 0, 0, { 0 }, { 0 }, 1, -1 },
		{ "trailing byte after pairs", "hold", 1, 1, { "id" }, { "x" }, 1, -1 },
		{ "count past MOAT_CTL_ARGS_MAX", "list", MOAT_CTL_ARGS_MAX + 1, 0,
		    { 0 }, { 0 }, 0, -1 },
		{ "count 2^32-1", "list", 0xffffffffU, 0, { 0 }, { 0 }, 0, -1 },
	};
	struct qmgr_ctl_req q;
	struct ipc_wr w;
	const uint8_t *p;
	size_t n, i;
	uint32_t k;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct req_case *c = &cases[i];

		ipc_wr_init(&w, IPC_C2Q_REQUEST, 0);
		ipc_put_str(&w, c->cmd);
		ipc_put_u32(&w, c->count);
		for (k = 0; k < c->npair; k++) {
			ipc_put_str(&w, c->key[k]);
			ipc_put_str(&w, c->val[k]);
		}
		if (c->trailing)
			ipc_put_blob(&w, "", 0);
		p = payload(&w, &n);
		r = decode(p, n, &q);
		T_OK(p != NULL && r == c->want, "request: %s", c->label);
		if (r == 0) {
			int same = strcmp(q.cmd, c->cmd) == 0 && q.n == c->count;

			for (k = 0; same && k < q.n; k++)
				same = strcmp(q.key[k], c->key[k]) == 0 &&
				    strcmp(q.val[k], c->val[k]) == 0 &&
				    qmgr_ctlproto_get(&q, c->key[k]) != NULL;
			T_OK(same, "request: %s: fields as sent", c->label);
			qmgr_ctlproto_request_free(&q);
		}
		ipc_wr_free(&w);
	}
}

/* Every proper prefix of a valid request is refused, and nothing leaks. */
static void
test_truncations(void)
{
	struct ipc_wr w;
	const uint8_t *p;
	size_t n, cut, bad = 0;

	ipc_wr_init(&w, IPC_C2Q_REQUEST, 0);
	ipc_put_str(&w, "delete");
	ipc_put_u32(&w, 2);
	ipc_put_str(&w, "id");
	ipc_put_str(&w, "0123456789ABCDEF");
	ipc_put_str(&w, "dry_run");
	ipc_put_str(&w, "1");
	p = payload(&w, &n);
	T_OK(p != NULL && decode(p, n, NULL) == 0, "truncation: whole request decodes");
	for (cut = 0; p != NULL && cut < n; cut++)
		if (decode(p, cut, NULL) != -1)
			bad++;
	T_OK(p != NULL && bad == 0, "truncation: all %zu prefixes refused", n);
	ipc_wr_free(&w);
}

/* Strings at their caps pass, one byte over or with a NUL inside fail. */
static void
test_caps(void)
{
	struct {
		const char	*label;
		size_t		 cmdlen, keylen, vallen;
		int		 nul;		/* a NUL inside the value */
		int		 want;
	} cases[] = {
		{ "command at MOAT_CTL_WORD_MAX", MOAT_CTL_WORD_MAX, 2, 1, 0, 0 },
		{ "command over MOAT_CTL_WORD_MAX", MOAT_CTL_WORD_MAX + 1, 2, 1, 0, -1 },
		{ "key at MOAT_CTL_WORD_MAX", 4, MOAT_CTL_WORD_MAX, 1, 0, 0 },
		{ "key over MOAT_CTL_WORD_MAX", 4, MOAT_CTL_WORD_MAX + 1, 1, 0, -1 },
		{ "value at MOAT_TEXT_MAX", 4, 2, MOAT_TEXT_MAX, 0, 0 },
		{ "value over MOAT_TEXT_MAX", 4, 2, MOAT_TEXT_MAX + 1, 0, -1 },
		{ "NUL inside a value", 4, 2, 5, 1, -1 },
	};
	struct ipc_wr w;
	const uint8_t *p;
	char *cmd, *key, *val;
	size_t i, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cmd = repeat('c', cases[i].cmdlen);
		key = repeat('k', cases[i].keylen);
		val = repeat('v', cases[i].vallen);
		ipc_wr_init(&w, IPC_C2Q_REQUEST, 0);
		ipc_put_str(&w, cmd);
		ipc_put_u32(&w, 1);
		ipc_put_str(&w, key);
		if (cases[i].nul)
			ipc_put_blob(&w, "ab\0cd", 5);
		else
			ipc_put_str(&w, val);
		p = payload(&w, &n);
		T_OK(p != NULL && decode(p, n, NULL) == cases[i].want, "caps: %s",
		    cases[i].label);
		ipc_wr_free(&w);
		free(cmd);
		free(key);
		free(val);
	}
}

/* IPC_C2Q_SHOW: one id string and nothing else. */
static void
test_show(void)
{
	struct ipc_wr w;
	struct ipc_frame f;
	const uint8_t *p;
	char id[MOAT_QID_MAX + 1], *big;
	size_t n, cut, bad = 0;

	ipc_wr_init(&w, IPC_C2Q_SHOW, 0);
	ipc_put_str(&w, "0123456789ABCDEF");
	p = payload(&w, &n);
	frame(&f, IPC_C2Q_SHOW, p, n);
	T_OK(p != NULL && qmgr_ctlproto_show(&f, id, sizeof(id)) == 0 &&
	    strcmp(id, "0123456789ABCDEF") == 0, "show: an id");
	for (cut = 0; p != NULL && cut < n; cut++) {
		frame(&f, IPC_C2Q_SHOW, p, cut);
		if (qmgr_ctlproto_show(&f, id, sizeof(id)) != -1)
			bad++;
	}
	T_OK(bad == 0, "show: all %zu prefixes refused", n);
	ipc_wr_free(&w);

	ipc_wr_init(&w, IPC_C2Q_SHOW, 0);
	ipc_put_str(&w, "A");
	ipc_put_blob(&w, "", 0);
	p = payload(&w, &n);
	frame(&f, IPC_C2Q_SHOW, p, n);
	T_OK(p != NULL && qmgr_ctlproto_show(&f, id, sizeof(id)) == -1,
	    "show: trailing bytes refused");
	ipc_wr_free(&w);

	big = repeat('A', MOAT_QID_MAX + 1);
	ipc_wr_init(&w, IPC_C2Q_SHOW, 0);
	ipc_put_str(&w, big);
	p = payload(&w, &n);
	frame(&f, IPC_C2Q_SHOW, p, n);
	T_OK(p != NULL && qmgr_ctlproto_show(&f, id, sizeof(id)) == -1,
	    "show: id over MOAT_QID_MAX refused");
	ipc_wr_free(&w);
	big[MOAT_QID_MAX] = '\0';
	ipc_wr_init(&w, IPC_C2Q_SHOW, 0);
	ipc_put_str(&w, big);
	p = payload(&w, &n);
	frame(&f, IPC_C2Q_SHOW, p, n);
	T_OK(p != NULL && qmgr_ctlproto_show(&f, id, sizeof(id)) == 0 &&
	    strlen(id) == MOAT_QID_MAX, "show: id at MOAT_QID_MAX");
	ipc_wr_free(&w);
	free(big);
}

int
main(void)
{
	test_requests();
	test_truncations();
	test_caps();
	test_show();
	return t_done();
}
