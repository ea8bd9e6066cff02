/*
 * test_qmgr_proto.c: the queue-manager's decoders of what sessions and
 * delivery agents send (queue-manager/qmgr_proto.c).  Round trips, every
 * truncation, trailing bytes, each cap at and past its edge, NUL inside
 * strings, hostile HELO names and addresses, reply codes.  Checks that
 * need a session or a job (relay policy, sizes, the job id, whether an
 * index belongs to the job) are the callers' and are not tested here.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ipc_types.h"
#include "util/buf.h"
#include "util/ipc.h"
#include "queue-manager/qmgr_proto.h"
#include "tests/unit/t.h"

#define NOSTR	((const char *)-1)	/* leave the field out */

/* A message built for a test, with its payload in a buffer of its own. */
struct msg {
	struct ipc_wr	 w;
	struct ipc_frame f;
};

/* Finish m->w and point m->f at it; 0 on success. */
static int
msg_frame(struct msg *m)
{
	const uint8_t *p;
	const char *why = NULL;
	size_t len;

	if ((p = ipc_wr_finish(&m->w, &len)) == NULL)
		return -1;
	if (ipc_frame_decode(p, len, &m->f, &why) == -1)
		return -1;
	m->f.fd = -1;
	return 0;
}

/* A frame over the first n payload bytes of f, in an exact-size copy
 * so that a sanitizer build sees any read past them. */
static uint8_t *
prefix_frame(const struct ipc_frame *f, size_t n, struct ipc_frame *out)
{
	uint8_t *copy = malloc(n > 0 ? n : 1);

	if (copy == NULL)
		abort();
	memcpy(copy, f->payload, n);
	*out = *f;
	out->payload = copy;
	out->len = n;
	out->hdr.len = (uint32_t)n;
	return copy;
}

/* A string field, possibly with a NUL inside: the bytes as sent. */
static void
put_raw(struct ipc_wr *w, const char *s, size_t n)
{
	if (ipc_put_blob(w, s, n) == -1)
		abort();
}

/*
 * IPC_S2Q_BEGIN from its fields; rcpt ends at NULL, count is sent as
 * given.  DSN: RET and ENVID as given, and each recipient's NOTIFY and
 * ORCPT (notify[i] and orcpt[i] when those arrays are given, else 0 and
 * "").
 */
static void
begin_build_dsn(struct msg *m, const char *helo, const char *sender, uint32_t body,
    uint64_t declared, uint32_t ret, const char *envid, uint32_t count,
    const char *const *rcpt, const uint32_t *notify, const char *const *orcpt)
{
	size_t i;

	ipc_wr_init(&m->w, IPC_S2Q_BEGIN, 1);
	put_raw(&m->w, helo, strlen(helo));
	put_raw(&m->w, sender, strlen(sender));
	ipc_put_u32(&m->w, body);
	ipc_put_u64(&m->w, declared);
	ipc_put_u32(&m->w, ret);
	put_raw(&m->w, envid, strlen(envid));
	ipc_put_u32(&m->w, count);
	for (i = 0; rcpt[i] != NULL; i++) {
		put_raw(&m->w, rcpt[i], strlen(rcpt[i]));
		ipc_put_u32(&m->w, notify != NULL ? notify[i] : 0);
		put_raw(&m->w, orcpt != NULL ? orcpt[i] : "",
		    orcpt != NULL ? strlen(orcpt[i]) : 0);
	}
}

static void
begin_build(struct msg *m, const char *helo, const char *sender, uint32_t body,
    uint64_t declared, uint32_t count, const char *const *rcpt)
{
	begin_build_dsn(m, helo, sender, body, declared, MOAT_RET_NONE, "", count, rcpt,
	    NULL, NULL);
}

static void
test_begin_roundtrip(void)
{
	static const char *const rcpt[] = {
		"bob@example.net", "\"c d\"@[192.0.2.1]", "Carol@Sub.EXAMPLE.org", NULL
	};
	struct qmgr_proto_begin b;
	struct msg m;

	begin_build(&m, "mail.example.org", "Alice@Example.ORG", MOAT_BODY_8BITMIME,
	    12345, 3, rcpt);
	T_OK(msg_frame(&m) == 0, "begin: frame builds");
	T_OK(qmgr_proto_begin(&m.f, 1000, &b) == QP_OK, "begin: valid message decodes");
	T_OK(strcmp(b.helo, "mail.example.org") == 0, "begin: helo");
	T_OK(strcmp(b.sender, "Alice@example.org") == 0,
	    "begin: sender in stored form (domain lower-cased)");
	T_OK(b.body_type == MOAT_BODY_8BITMIME, "begin: body type");
	T_OK(b.declared == 12345, "begin: declared size passes through");
	T_OK(b.count == 3 && b.nrcpt == 3, "begin: three recipients");
	T_OK(b.nrcpt == 3 && strcmp(b.rcpt[0].mailbox, "bob@example.net") == 0 &&
	    strcmp(b.rcpt[0].canon, "bob@example.net") == 0, "begin: recipient 0");
	T_OK(b.nrcpt == 3 && strcmp(b.rcpt[1].mailbox, "\"c d\"@[192.0.2.1]") == 0 &&
	    strcmp(b.rcpt[1].canon, "\"c d\"@[192.0.2.1]") == 0,
	    "begin: quoted local part and address literal kept as written");
	T_OK(b.nrcpt == 3 && strcmp(b.rcpt[2].mailbox, "Carol@Sub.EXAMPLE.org") == 0 &&
	    strcmp(b.rcpt[2].canon, "Carol@sub.example.org") == 0,
	    "begin: recipient as sent for policy and logs, stored form for the queue");
	qmgr_proto_begin_free(&b);
	T_OK(b.rcpt == NULL && b.nrcpt == 0, "begin: free clears the recipients");
	ipc_wr_free(&m.w);
}

/* Every proper prefix of a valid BEGIN is malformed, and nothing more. */
static void
test_begin_truncated(void)
{
	static const char *const rcpt[] = { "bob@example.net", "carol@example.org", NULL };
	struct qmgr_proto_begin b;
	struct ipc_frame t;
	struct msg m;
	size_t n, bad = 0;
	uint8_t *copy;

	begin_build(&m, "client.example", "alice@example.org", MOAT_BODY_7BIT, 0, 2, rcpt);
	T_OK(msg_frame(&m) == 0, "truncated: frame builds");
	for (n = 0; n < m.f.len; n++) {
		copy = prefix_frame(&m.f, n, &t);
		if (qmgr_proto_begin(&t, 1000, &b) != QP_MALFORMED || b.nrcpt > 2)
			bad++;
		qmgr_proto_begin_free(&b);
		free(copy);
	}
	T_OK(bad == 0, "truncated: all %zu prefixes are malformed (%zu were not)",
	    m.f.len, bad);
	copy = prefix_frame(&m.f, m.f.len, &t);
	T_OK(qmgr_proto_begin(&t, 1000, &b) == QP_OK, "truncated: the whole message decodes");
	qmgr_proto_begin_free(&b);
	free(copy);
	ipc_wr_free(&m.w);
}

static void
test_begin_trailing(void)
{
	static const char *const rcpt[] = { "bob@example.net", NULL };
	struct qmgr_proto_begin b;
	struct msg m;

	begin_build(&m, "client.example", "", MOAT_BODY_7BIT, 0, 1, rcpt);
	ipc_put_u32(&m.w, 0);
	T_OK(msg_frame(&m) == 0, "trailing: frame builds");
	T_OK(qmgr_proto_begin(&m.f, 1000, &b) == QP_MALFORMED, "trailing: bytes after "
	    "the last recipient are malformed");
	T_OK(b.nrcpt == 1, "trailing: the recipients are still there for the policy pass");
	qmgr_proto_begin_free(&b);
	ipc_wr_free(&m.w);

	begin_build(&m, "client.example", "", MOAT_BODY_7BIT, 0, 1, rcpt);
	if (buf_append(&m.w.b, "x", 1) == -1)
		abort();
	T_OK(msg_frame(&m) == 0 && qmgr_proto_begin(&m.f, 1000, &b) == QP_MALFORMED,
	    "trailing: one byte too many");
	qmgr_proto_begin_free(&b);
	ipc_wr_free(&m.w);
}

static void
test_begin_count(void)
{
	static const char *const one[] = { "bob@example.net", NULL };
	static const char *const three[] = {
		"a@example.net", "b@example.net", "c@example.net", NULL
	};
	static const struct {
		const char		*label;
		uint32_t		 count, cap;
		const char *const	*rcpt;
		enum qmgr_proto_err	 want;
		uint32_t		 nrcpt;
	} cases[] = {
		{ "count 0", 0, 1000, one, QP_RCPT_COUNT, 0 },
		{ "count 0, none sent", 0, 1000, one + 1, QP_RCPT_COUNT, 0 },
		{ "count at the cap", 3, 3, three, QP_OK, 3 },
		{ "count over the cap", 3, 2, three, QP_RCPT_COUNT, 0 },
		{ "count 1, cap 1", 1, 1, one, QP_OK, 1 },
		{ "count far over the cap", 0xffffffffu, 100000, one, QP_RCPT_COUNT, 0 },
		{ "count 3, one sent", 3, 1000, one, QP_MALFORMED, 1 },
		{ "count at a large cap, one sent", 100000, 100000, one, QP_MALFORMED, 1 },
		{ "count 2, three sent", 2, 1000, three, QP_MALFORMED, 2 },
		{ "count 1, none sent", 1, 1000, one + 1, QP_MALFORMED, 0 },
	};
	struct qmgr_proto_begin b;
	enum qmgr_proto_err e;
	struct msg m;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		begin_build(&m, "h.example", "", MOAT_BODY_7BIT, 0, cases[i].count,
		    cases[i].rcpt);
		T_OK(msg_frame(&m) == 0, "count: %s: frame builds", cases[i].label);
		e = qmgr_proto_begin(&m.f, cases[i].cap, &b);
		T_OK(e == cases[i].want && b.nrcpt == cases[i].nrcpt,
		    "count: %s (got %d with %u decoded)", cases[i].label, (int)e, b.nrcpt);
		qmgr_proto_begin_free(&b);
		ipc_wr_free(&m.w);
	}
}

/* A BEGIN with one field sent as raw bytes (a NUL inside, say). */
static enum qmgr_proto_err
begin_raw_field(int which, const char *s, size_t n, uint32_t *nrcpt)
{
	struct qmgr_proto_begin b;
	enum qmgr_proto_err e;
	struct msg m;

	ipc_wr_init(&m.w, IPC_S2Q_BEGIN, 1);
	if (which == 0)
		put_raw(&m.w, s, n);
	else
		put_raw(&m.w, "h.example", 9);
	if (which == 1)
		put_raw(&m.w, s, n);
	else
		put_raw(&m.w, "a@example.org", 13);
	ipc_put_u32(&m.w, MOAT_BODY_7BIT);
	ipc_put_u64(&m.w, 0);
	ipc_put_u32(&m.w, MOAT_RET_NONE);
	put_raw(&m.w, "", 0);
	ipc_put_u32(&m.w, 2);
	put_raw(&m.w, "b@example.org", 13);
	ipc_put_u32(&m.w, 0);
	put_raw(&m.w, "", 0);
	if (which == 2)
		put_raw(&m.w, s, n);
	else
		put_raw(&m.w, "c@example.org", 13);
	ipc_put_u32(&m.w, 0);
	put_raw(&m.w, "", 0);
	if (msg_frame(&m) == -1)
		abort();
	e = qmgr_proto_begin(&m.f, 1000, &b);
	*nrcpt = b.nrcpt;
	qmgr_proto_begin_free(&b);
	ipc_wr_free(&m.w);
	return e;
}

static void
test_begin_strings(void)
{
	static const char *const field[] = { "helo", "sender", "recipient" };
	char mb254[300], mb255[300], long255[300], long256[300];
	struct {
		const char		*label;
		int			 which;
		const char		*s;
		size_t			 n;
		enum qmgr_proto_err	 want;
	} cases[] = {
		{ "NUL inside", 0, "h.exa\0mple", 10, QP_MALFORMED },
		{ "NUL inside", 1, "a@exa\0mple.org", 14, QP_MALFORMED },
		{ "NUL inside", 2, "c@exa\0mple.org", 14, QP_MALFORMED },
		{ "NUL at the end", 2, "c@example.org\0", 14, QP_MALFORMED },
		{ "255 bytes", 0, long255, 255, QP_OK },
		{ "256 bytes", 0, long256, 256, QP_MALFORMED },
		{ "254-byte mailbox", 1, mb254, 254, QP_OK },
		{ "255-byte mailbox", 1, mb255, 255, QP_MALFORMED },
		{ "254-byte mailbox", 2, mb254, 254, QP_OK },
		{ "255-byte mailbox", 2, mb255, 255, QP_MALFORMED },
		{ "with a space", 0, "evil host", 9, QP_MALFORMED },
		{ "with a tab", 0, "evil\thost", 9, QP_MALFORMED },
		{ "with CR LF", 0, "evil\r\nX-Injected: 1", 19, QP_MALFORMED },
		{ "with DEL", 0, "evil\x7fhost", 9, QP_MALFORMED },
		{ "with a byte over 0x7f", 0, "\xc3\xa9vil", 5, QP_MALFORMED },
		{ "address literal", 0, "[192.0.2.1]", 11, QP_OK },
		{ "no domain", 1, "alice", 5, QP_BAD_SENDER },
		{ "angle brackets", 1, "<a@example.org>", 15, QP_BAD_SENDER },
		{ "two @", 1, "a@b@example.org", 15, QP_BAD_SENDER },
		{ "trailing dot", 1, "a@example.org.", 14, QP_BAD_SENDER },
		{ "no domain", 2, "carol", 5, QP_BAD_RCPT },
		{ "empty", 2, "", 0, QP_BAD_RCPT },
		{ "with a space", 2, "car ol@example.org", 18, QP_BAD_RCPT },
		{ "with CR LF", 2, "c@example.org\r\nRCPT TO:<x@y>", 28, QP_BAD_RCPT },
		{ "source route", 2, "@relay.example:c@example.org", 28, QP_BAD_RCPT },
		{ "local part over 64", 2, NULL, 0, QP_BAD_RCPT },
	};
	char local65[80];
	uint32_t nrcpt;
	enum qmgr_proto_err e;
	size_t i;

	memset(long255, 'h', 255);
	memset(long256, 'h', 256);
	/* 64 + "@" + 63 "." 63 "." 61 = 254; one more label byte makes 255. */
	snprintf(mb254, sizeof(mb254), "%.64s@%.63s.%.63s.%.61s",
	    long255, long255, long255, long255);
	snprintf(mb255, sizeof(mb255), "%.64s@%.63s.%.63s.%.62s",
	    long255, long255, long255, long255);
	snprintf(local65, sizeof(local65), "%.65s@example.org", long255);
	cases[sizeof(cases) / sizeof(cases[0]) - 1].s = local65;
	cases[sizeof(cases) / sizeof(cases[0]) - 1].n = strlen(local65);
	T_OK(strlen(mb254) == 254 && strlen(mb255) == 255, "strings: test addresses");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e = begin_raw_field(cases[i].which, cases[i].s, cases[i].n, &nrcpt);
		T_OK(e == cases[i].want, "strings: %s %s (got %d)", field[cases[i].which],
		    cases[i].label, (int)e);
		if (cases[i].which == 2 && cases[i].want != QP_OK)
			T_OK(nrcpt == 1, "strings: %s %s: the recipient before it kept",
			    field[cases[i].which], cases[i].label);
	}
}

static void
test_begin_fields(void)
{
	static const char *const one[] = { "bob@example.net", NULL };
	static const char *const bad_then_good[] = {
		"bob@example.net", "not-a-mailbox", "carol@example.net", NULL
	};
	static const struct {
		const char		*label;
		uint32_t		 body;
		const char		*sender;
		uint32_t		 count;
		const char *const	*rcpt;
		enum qmgr_proto_err	 want;
	} cases[] = {
		{ "body type 0", 0, "", 1, one, QP_OK },
		{ "body type 1", 1, "", 1, one, QP_OK },
		{ "body type 2", 2, "", 1, one, QP_MALFORMED },
		{ "body type 0xffffffff", 0xffffffffu, "", 1, one, QP_MALFORMED },
		/* The checks come in field order, as the violations always did. */
		{ "bad body before the count", 2, "", 0, one, QP_MALFORMED },
		{ "count before the sender", 0, "bad", 0, one, QP_RCPT_COUNT },
		{ "sender before the recipients", 0, "bad", 3, bad_then_good, QP_BAD_SENDER },
	};
	struct qmgr_proto_begin b;
	enum qmgr_proto_err e;
	struct msg m;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		begin_build(&m, "h.example", cases[i].sender, cases[i].body, 0,
		    cases[i].count, cases[i].rcpt);
		T_OK(msg_frame(&m) == 0 && (e = qmgr_proto_begin(&m.f, 1000, &b)) ==
		    cases[i].want, "fields: %s", cases[i].label);
		T_OK(cases[i].want == QP_OK || b.nrcpt == 0,
		    "fields: %s: no recipient decoded", cases[i].label);
		qmgr_proto_begin_free(&b);
		ipc_wr_free(&m.w);
	}

	begin_build(&m, "h.example", "", 0, 0, 3, bad_then_good);
	T_OK(msg_frame(&m) == 0 && qmgr_proto_begin(&m.f, 1000, &b) == QP_BAD_RCPT,
	    "fields: a bad recipient in the middle");
	T_OK(b.nrcpt == 1 && strcmp(b.rcpt[0].mailbox, "bob@example.net") == 0,
	    "fields: recipients before the bad one are kept, those after are not read");
	T_OK(strcmp(b.bad, "not-a-mailbox") == 0, "fields: the bad recipient is named");
	qmgr_proto_begin_free(&b);
	ipc_wr_free(&m.w);
}

static void
test_data(void)
{
	static const struct {
		const char		*label;
		size_t			 n;
		int			 trailing;
		enum qmgr_proto_err	 want;
	} cases[] = {
		{ "empty", 0, 0, QP_MALFORMED },
		{ "one byte", 1, 0, QP_OK },
		{ "IPC_DATA_CHUNK bytes", IPC_DATA_CHUNK, 0, QP_OK },
		{ "IPC_DATA_CHUNK + 1 bytes", IPC_DATA_CHUNK + 1, 0, QP_MALFORMED },
		{ "one byte, then a trailing byte", 1, 1, QP_MALFORMED },
	};
	uint8_t *body = malloc(IPC_DATA_CHUNK + 1);
	struct ipc_frame t;
	const uint8_t *p;
	struct msg m;
	uint8_t *copy;
	size_t i, n, k, bad;

	if (body == NULL)
		abort();
	for (i = 0; i < IPC_DATA_CHUNK + 1; i++)
		body[i] = (uint8_t)(i * 7);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ipc_wr_init(&m.w, IPC_S2Q_DATA, 1);
		ipc_put_blob(&m.w, body, cases[i].n);
		if (cases[i].trailing && buf_append(&m.w.b, "x", 1) == -1)
			abort();
		T_OK(msg_frame(&m) == 0, "data: %s: frame builds", cases[i].label);
		p = NULL;
		n = 0;
		T_OK(qmgr_proto_data(&m.f, &p, &n) == cases[i].want, "data: %s",
		    cases[i].label);
		if (cases[i].want == QP_OK)
			T_OK(n == cases[i].n && p == m.f.payload + 4 &&
			    memcmp(p, body, n) == 0, "data: %s: the bytes", cases[i].label);
		ipc_wr_free(&m.w);
	}
	ipc_wr_init(&m.w, IPC_S2Q_DATA, 1);
	ipc_put_blob(&m.w, body, 10);
	T_OK(msg_frame(&m) == 0, "data: frame for truncation builds");
	for (k = 0, bad = 0; k < m.f.len; k++) {
		copy = prefix_frame(&m.f, k, &t);
		if (qmgr_proto_data(&t, &p, &n) != QP_MALFORMED)
			bad++;
		free(copy);
	}
	T_OK(bad == 0, "data: every truncation is malformed");
	ipc_wr_free(&m.w);
	free(body);
}

/* The fixed-size messages: COMMIT, ABORT, FETCH, DONE. */
static void
test_fixed(void)
{
	char hop[MOAT_NEXTHOP_MAX + 1], longhop[MOAT_NEXTHOP_MAX + 2];
	struct qmgr_proto_fetch fe;
	struct ipc_frame t;
	struct msg m;
	uint64_t v;
	uint8_t *copy;
	size_t k, bad;

	ipc_wr_init(&m.w, IPC_S2Q_COMMIT, 1);
	ipc_put_u64(&m.w, 987654321);
	T_OK(msg_frame(&m) == 0 && qmgr_proto_commit(&m.f, &v) == QP_OK && v == 987654321,
	    "commit: the total");
	for (k = 0, bad = 0; k < m.f.len; k++) {
		copy = prefix_frame(&m.f, k, &t);
		bad += qmgr_proto_commit(&t, &v) != QP_MALFORMED;
		free(copy);
	}
	T_OK(bad == 0, "commit: every truncation is malformed");
	ipc_wr_free(&m.w);
	ipc_wr_init(&m.w, IPC_S2Q_COMMIT, 1);
	ipc_put_u64(&m.w, 1);
	ipc_put_u32(&m.w, 0);
	T_OK(msg_frame(&m) == 0 && qmgr_proto_commit(&m.f, &v) == QP_MALFORMED,
	    "commit: trailing bytes");
	ipc_wr_free(&m.w);

	ipc_wr_init(&m.w, IPC_S2Q_ABORT, 1);
	T_OK(msg_frame(&m) == 0 && qmgr_proto_abort(&m.f) == QP_OK, "abort: empty");
	ipc_wr_free(&m.w);
	ipc_wr_init(&m.w, IPC_S2Q_ABORT, 1);
	ipc_put_u32(&m.w, 0);
	T_OK(msg_frame(&m) == 0 && qmgr_proto_abort(&m.f) == QP_MALFORMED,
	    "abort: with a payload");
	ipc_wr_free(&m.w);

	ipc_wr_init(&m.w, IPC_D2Q_FETCH, 1);
	ipc_put_u64(&m.w, 42);
	ipc_put_u32(&m.w, 7);
	T_OK(msg_frame(&m) == 0 && qmgr_proto_fetch(&m.f, &fe) == QP_OK &&
	    fe.job == 42 && fe.seq == 7, "fetch: job and sequence number");
	for (k = 0, bad = 0; k < m.f.len; k++) {
		copy = prefix_frame(&m.f, k, &t);
		bad += qmgr_proto_fetch(&t, &fe) != QP_MALFORMED;
		free(copy);
	}
	T_OK(bad == 0, "fetch: every truncation is malformed");
	ipc_wr_free(&m.w);
	ipc_wr_init(&m.w, IPC_D2Q_FETCH, 1);
	ipc_put_u64(&m.w, 42);
	ipc_put_u32(&m.w, 7);
	ipc_put_u32(&m.w, 7);
	T_OK(msg_frame(&m) == 0 && qmgr_proto_fetch(&m.f, &fe) == QP_MALFORMED,
	    "fetch: trailing bytes");
	ipc_wr_free(&m.w);

	ipc_wr_init(&m.w, IPC_D2Q_DONE, 1);
	ipc_put_u64(&m.w, 43);
	ipc_put_str(&m.w, "");
	T_OK(msg_frame(&m) == 0 && qmgr_proto_done(&m.f, &v, hop, sizeof(hop)) == QP_OK &&
	    v == 43 && hop[0] == '\0', "done: the job id, no cached next hop");
	ipc_wr_free(&m.w);
	ipc_wr_init(&m.w, IPC_D2Q_DONE, 1);
	ipc_put_u64(&m.w, 44);
	ipc_put_str(&m.w, "smtp:example.com:25");
	T_OK(msg_frame(&m) == 0 && qmgr_proto_done(&m.f, &v, hop, sizeof(hop)) == QP_OK &&
	    v == 44 && strcmp(hop, "smtp:example.com:25") == 0, "done: a cached next hop");
	ipc_wr_free(&m.w);
	memset(longhop, 'a', sizeof(longhop) - 1);
	longhop[sizeof(longhop) - 1] = '\0';
	ipc_wr_init(&m.w, IPC_D2Q_DONE, 1);
	ipc_put_u64(&m.w, 44);
	ipc_put_str(&m.w, longhop);
	T_OK(msg_frame(&m) == 0 && qmgr_proto_done(&m.f, &v, hop, sizeof(hop)) ==
	    QP_MALFORMED, "done: cached next hop over MOAT_NEXTHOP_MAX");
	ipc_wr_free(&m.w);
	ipc_wr_init(&m.w, IPC_D2Q_DONE, 1);
	ipc_put_u64(&m.w, 44);
	ipc_put_str(&m.w, "smtp:a.example:25\r\nsmtp:b.example:25");
	T_OK(msg_frame(&m) == 0 && qmgr_proto_done(&m.f, &v, hop, sizeof(hop)) ==
	    QP_MALFORMED, "done: cached next hop with a line break");
	ipc_wr_free(&m.w);
	ipc_wr_init(&m.w, IPC_D2Q_DONE, 1);
	ipc_put_u64(&m.w, 43);
	T_OK(msg_frame(&m) == 0 && qmgr_proto_done(&m.f, &v, hop, sizeof(hop)) ==
	    QP_MALFORMED, "done: no cached next hop field (version 2 payload)");
	ipc_wr_free(&m.w);
	ipc_wr_init(&m.w, IPC_D2Q_DONE, 1);
	ipc_put_u32(&m.w, 43);
	T_OK(msg_frame(&m) == 0 && qmgr_proto_done(&m.f, &v, hop, sizeof(hop)) ==
	    QP_MALFORMED, "done: short");
	ipc_wr_free(&m.w);
	ipc_wr_init(&m.w, IPC_D2Q_DONE, 1);
	ipc_put_u64(&m.w, 43);
	ipc_put_str(&m.w, "");
	put_raw(&m.w, "x", 1);
	T_OK(msg_frame(&m) == 0 && qmgr_proto_done(&m.f, &v, hop, sizeof(hop)) ==
	    QP_MALFORMED, "done: trailing bytes");
	ipc_wr_free(&m.w);
}

/* BEGIN's DSN fields (RFC 3461): RET, ENVID, NOTIFY, ORCPT. */
static void
test_begin_dsn(void)
{
	static const char *const two[] = { "bob@example.net", "carol@example.net", NULL };
	char envid100[101], envid101[102], orcpt500[501], orcpt501[502];
	struct {
		const char		*label;
		uint32_t		 ret;
		const char		*envid;
		uint32_t		 notify;
		const char		*orcpt;
		enum qmgr_proto_err	 want;
	} cases[] = {
		{ "none", MOAT_RET_NONE, "", 0, "", QP_OK },
		{ "RET=FULL", MOAT_RET_FULL, "", 0, "", QP_OK },
		{ "RET=HDRS", MOAT_RET_HDRS, "", 0, "", QP_OK },
		{ "RET 3", 3, "", 0, "", QP_MALFORMED },
		{ "RET 0xffffffff", 0xffffffffu, "", 0, "", QP_MALFORMED },
		{ "ENVID", 0, "QQ314159 a+b=c", 0, "", QP_OK },
		{ "ENVID of 100", 0, envid100, 0, "", QP_OK },
		{ "ENVID of 101", 0, envid101, 0, "", QP_MALFORMED },
		{ "ENVID with CR LF", 0, "a\r\nX-Injected: 1", 0, "", QP_MALFORMED },
		{ "ENVID with a tab", 0, "a\tb", 0, "", QP_MALFORMED },
		{ "ENVID 8-bit", 0, "caf\xc3\xa9", 0, "", QP_MALFORMED },
		{ "NOTIFY=NEVER", 0, "", MOAT_NOTIFY_NEVER, "", QP_OK },
		{ "NOTIFY=SUCCESS,FAILURE,DELAY", 0, "",
		  MOAT_NOTIFY_SUCCESS | MOAT_NOTIFY_FAILURE | MOAT_NOTIFY_DELAY, "", QP_OK },
		{ "NOTIFY=NEVER,DELAY", 0, "", MOAT_NOTIFY_NEVER | MOAT_NOTIFY_DELAY, "",
		  QP_MALFORMED },
		{ "NOTIFY unknown bit", 0, "", 0x10, "", QP_MALFORMED },
		{ "NOTIFY all bits", 0, "", 0xffffffffu, "", QP_MALFORMED },
		{ "ORCPT rfc822", 0, "", 0, "rfc822;orig@example.org", QP_OK },
		{ "ORCPT utf-8", 0, "", 0, "utf-8;orig@example.org", QP_OK },
		{ "ORCPT of 500", 0, "", 0, orcpt500, QP_OK },
		{ "ORCPT of 501", 0, "", 0, orcpt501, QP_MALFORMED },
		{ "ORCPT without type", 0, "", 0, "orig@example.org", QP_MALFORMED },
		{ "ORCPT unknown type", 0, "", 0, "x400;orig", QP_MALFORMED },
		{ "ORCPT upper-case type (the session folds it)", 0, "", 0, "RFC822;a@b",
		  QP_MALFORMED },
		{ "ORCPT empty address", 0, "", 0, "rfc822;", QP_MALFORMED },
		{ "ORCPT with CR LF", 0, "", 0, "rfc822;a@b\r\nX: y", QP_MALFORMED },
	};
	struct qmgr_proto_begin b;
	enum qmgr_proto_err e;
	uint32_t notify[2];
	const char *orcpt[2];
	struct msg m;
	size_t i;

	memset(envid100, 'e', 100);
	envid100[100] = '\0';
	memset(envid101, 'e', 101);
	envid101[101] = '\0';
	memcpy(orcpt500, "rfc822;", 7);
	memset(orcpt500 + 7, 'o', 493);
	orcpt500[500] = '\0';
	snprintf(orcpt501, sizeof(orcpt501), "%so", orcpt500);
	T_OK(strlen(orcpt500) == 500 && strlen(orcpt501) == 501, "dsn: test strings");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* The DSN of the second recipient is the one under test. */
		notify[0] = MOAT_NOTIFY_FAILURE;
		orcpt[0] = "rfc822;first@example.org";
		notify[1] = cases[i].notify;
		orcpt[1] = cases[i].orcpt;
		begin_build_dsn(&m, "h.example", "a@example.org", 0, 0, cases[i].ret,
		    cases[i].envid, 2, two, notify, orcpt);
		if (msg_frame(&m) == -1)
			abort();
		e = qmgr_proto_begin(&m.f, 1000, &b);
		T_OK(e == cases[i].want, "dsn: %s (got %d)", cases[i].label, (int)e);
		if (e == QP_OK)
			T_OK(b.dsn_ret == cases[i].ret && strcmp(b.dsn_envid, cases[i].envid) == 0 &&
			    b.nrcpt == 2 && b.rcpt[0].notify == MOAT_NOTIFY_FAILURE &&
			    strcmp(b.rcpt[0].orcpt, "rfc822;first@example.org") == 0 &&
			    b.rcpt[1].notify == cases[i].notify &&
			    strcmp(b.rcpt[1].orcpt, cases[i].orcpt) == 0,
			    "dsn: %s: every field decoded", cases[i].label);
		else if (cases[i].notify != 0 || cases[i].orcpt[0] != '\0')
			T_OK(b.nrcpt == 1, "dsn: %s: the recipient before it kept",
			    cases[i].label);
		qmgr_proto_begin_free(&b);
		ipc_wr_free(&m.w);
	}
}

/*
 * IPC_D2Q_RESULT; relay NOSTR leaves out the relay and what follows it,
 * tls NOSTR leaves out the TLS text; extra is appended.
 */
static void
result_build_v3(struct msg *m, uint32_t idx, uint32_t code, const char *enh,
    const char *text, const char *relay, uint32_t flags, const char *tls,
    const char *extra)
{
	ipc_wr_init(&m->w, IPC_D2Q_RESULT, 1);
	ipc_put_u64(&m->w, 9);
	ipc_put_u32(&m->w, idx);
	ipc_put_u32(&m->w, code);
	put_raw(&m->w, enh, strlen(enh));
	put_raw(&m->w, text, strlen(text));
	if (relay != NOSTR) {
		put_raw(&m->w, relay, strlen(relay));
		ipc_put_u32(&m->w, flags);
		if (tls != NOSTR)
			put_raw(&m->w, tls, strlen(tls));
	}
	if (extra != NULL)
		put_raw(&m->w, extra, strlen(extra));
	if (msg_frame(m) == -1)
		abort();
}

static void
result_build(struct msg *m, uint32_t idx, uint32_t code, const char *enh,
    const char *text, const char *relay, const char *extra)
{
	result_build_v3(m, idx, code, enh, text, relay, MOAT_RESULT_DSN_PASSED, "", extra);
}

/* RESULT's flags and TLS text. */
static void
test_result_flags(void)
{
	char tls127[128], tls128[129];
	struct {
		const char		*label;
		uint32_t		 flags;
		const char		*tls;
		enum qmgr_proto_err	 want;
	} cases[] = {
		{ "no flags, clear text", 0, "", QP_OK },
		{ "DSN passed on", MOAT_RESULT_DSN_PASSED, "TLSv1.3 TLS_AES_256_GCM_SHA384 "
		  "verified=yes", QP_OK },
		{ "final", MOAT_RESULT_FINAL, "", QP_OK },
		{ "both", MOAT_RESULT_DSN_PASSED | MOAT_RESULT_FINAL, "", QP_OK },
		{ "unknown flag", 0x04, "", QP_MALFORMED },
		{ "every flag", 0xffffffffu, "", QP_MALFORMED },
		{ "TLS of 127", 0, tls127, QP_OK },
		{ "TLS of 128", 0, tls128, QP_MALFORMED },
		{ "TLS with LF", 0, "TLSv1.3\nX", QP_MALFORMED },
		{ "TLS missing", 0, NOSTR, QP_MALFORMED },
	};
	struct qmgr_proto_result res;
	enum qmgr_proto_err e;
	struct msg m;
	size_t i;

	memset(tls127, 't', 127);
	tls127[127] = '\0';
	memset(tls128, 't', 128);
	tls128[128] = '\0';
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		result_build_v3(&m, 1, 250, "2.0.0", "Ok", "mx[192.0.2.1]:25", cases[i].flags,
		    cases[i].tls, NULL);
		e = qmgr_proto_result(&m.f, &res);
		T_OK(e == cases[i].want, "result flags: %s (got %d)", cases[i].label, (int)e);
		if (e == QP_OK)
			T_OK(res.flags == cases[i].flags && strcmp(res.tls, cases[i].tls) == 0,
			    "result flags: %s: flags and TLS read", cases[i].label);
		ipc_wr_free(&m.w);
	}
}

static void
test_result(void)
{
	char text1024[1100], text1025[1100], relay300[400], relay301[400];
	struct {
		const char		*label;
		uint32_t		 idx, code;
		const char		*enh, *text, *relay, *extra;
		enum qmgr_proto_err	 want;
	} cases[] = {
		{ "delivered", 0, 250, "2.0.0", "Ok: queued as X", "mx[192.0.2.1]:25", NULL, QP_OK },
		{ "no server answered", 0, 0, "", "connect: timed out", "", NULL, QP_OK },
		{ "code 200", 0, 200, "", "", "", NULL, QP_OK },
		{ "code 499", 0, 499, "", "", "", NULL, QP_OK },
		{ "code 599", 0, 599, "", "", "", NULL, QP_OK },
		/* Whether the index belongs to the job is the caller's check. */
		{ "any index", 123456, 550, "5.1.1", "no such user", "maildir", NULL, QP_OK },
		{ "code 1", 0, 1, "", "", "", NULL, QP_BAD_CODE },
		{ "code 99", 0, 99, "", "", "", NULL, QP_BAD_CODE },
		{ "code 199", 0, 199, "", "", "", NULL, QP_BAD_CODE },
		{ "code 354", 0, 354, "", "", "", NULL, QP_BAD_CODE },
		{ "code 600", 0, 600, "", "", "", NULL, QP_BAD_CODE },
		{ "code 0xffffffff", 0, 0xffffffffu, "", "", "", NULL, QP_BAD_CODE },
		{ "CR in the text", 0, 250, "2.0.0", "Ok\rX", "r", NULL, QP_MALFORMED },
		{ "LF in the text", 0, 250, "2.0.0", "Ok\nX", "r", NULL, QP_MALFORMED },
		{ "LF in the relay", 0, 250, "2.0.0", "Ok", "r\n", NULL, QP_MALFORMED },
		{ "CR in the enhanced code", 0, 250, "2.0\r", "Ok", "r", NULL, QP_MALFORMED },
		{ "enhanced code of 15", 0, 250, "2.000000000.000", "", "", NULL, QP_OK },
		{ "enhanced code of 16", 0, 250, "2.000000000.0000", "", "", NULL, QP_MALFORMED },
		{ "text of 1024", 0, 250, "", text1024, "", NULL, QP_OK },
		{ "text of 1025", 0, 250, "", text1025, "", NULL, QP_MALFORMED },
		{ "relay of 300", 0, 250, "", "", relay300, NULL, QP_OK },
		{ "relay of 301", 0, 250, "", "", relay301, NULL, QP_MALFORMED },
		{ "no relay", 0, 250, "", "", NOSTR, NULL, QP_MALFORMED },
		{ "trailing string", 0, 250, "", "", "", "x", QP_MALFORMED },
		{ "malformed wins over the code", 0, 99, "", "a\nb", "", NULL, QP_MALFORMED },
	};
	struct qmgr_proto_result res;
	enum qmgr_proto_err e;
	struct ipc_frame t;
	struct msg m;
	uint8_t *copy;
	size_t i, k, bad;

	memset(text1024, 't', 1024);
	text1024[1024] = '\0';
	memset(text1025, 't', 1025);
	text1025[1025] = '\0';
	memset(relay300, 'r', 300);
	relay300[300] = '\0';
	memset(relay301, 'r', 301);
	relay301[301] = '\0';
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		result_build(&m, cases[i].idx, cases[i].code, cases[i].enh, cases[i].text,
		    cases[i].relay, cases[i].extra);
		e = qmgr_proto_result(&m.f, &res);
		T_OK(e == cases[i].want, "result: %s (got %d)", cases[i].label, (int)e);
		if (e == QP_OK || e == QP_BAD_CODE)
			T_OK(res.job == 9 && res.idx == cases[i].idx &&
			    res.code == cases[i].code && strcmp(res.enh, cases[i].enh) == 0 &&
			    strcmp(res.text, cases[i].text) == 0 &&
			    strcmp(res.relay, cases[i].relay) == 0,
			    "result: %s: every field read", cases[i].label);
		ipc_wr_free(&m.w);
	}
	result_build(&m, 3, 451, "4.3.0", "try later", "mx[192.0.2.1]:25", NULL);
	for (k = 0, bad = 0; k < m.f.len; k++) {
		copy = prefix_frame(&m.f, k, &t);
		bad += qmgr_proto_result(&t, &res) != QP_MALFORMED;
		free(copy);
	}
	T_OK(bad == 0, "result: every truncation is malformed");
	ipc_wr_free(&m.w);
}

int
main(void)
{
	test_begin_roundtrip();
	test_begin_truncated();
	test_begin_trailing();
	test_begin_count();
	test_begin_strings();
	test_begin_fields();
	test_begin_dsn();
	test_data();
	test_fixed();
	test_result();
	test_result_flags();
	return t_done();
}
