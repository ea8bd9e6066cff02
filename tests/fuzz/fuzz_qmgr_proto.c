/* fuzz-sources: queue-manager/qmgr_proto.c queue-manager/queue_retry.c common/util/ipc.c common/mail/addr.c common/util/buf.c common/util/log.c common/util/xmalloc.c */
/*
 * fuzz_qmgr_proto.c: the queue-manager's decoders of what sessions and
 * delivery agents send (queue-manager/qmgr_proto.c), on arbitrary bytes.
 *
 * The first byte picks the decoder (its value modulo 9) and, for BEGIN,
 * the recipient cap (the value divided by 9); the remaining bytes are the
 * payload.  Choices 7 and 8 build a BEGIN or a RESULT from '\n'-separated
 * fields instead, so that the deep paths are reached without a seed, and
 * hold the decoder to an oracle: it succeeds exactly when every field is
 * valid.  The promises checked, with __builtin_trap():
 *
 *   BEGIN   every decoded recipient re-parses and its stored form is its
 *           parse formatted; nrcpt <= count and nrcpt <= cap; success
 *           means 1 <= nrcpt == count <= cap, a clean HELO, a body type
 *           of 0 or 1, a sender that is "" or a canonical mailbox, DSN
 *           fields as RFC 3461 allows (RET 0..2, ENVID and ORCPT printable
 *           within their caps, ORCPT typed rfc822 or utf-8, NOTIFY bits
 *           with NEVER alone), and a re-encoding of the same length that
 *           decodes to the same.
 *   DATA, COMMIT, ABORT, FETCH, DONE   succeed exactly when the payload
 *           has the one length and shape they allow (DONE: a job id and
 *           a one-line cached next hop within MOAT_NEXTHOP_MAX).
 *   RESULT  success or QP_BAD_CODE means every field was read: encoding
 *           them again gives the payload byte for byte; the code class
 *           (0, 2xx, 4xx, 5xx) decides between the two; texts (TLS too)
 *           are one line and within their caps; flags are known bits.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc_types.h"
#include "mail/addr.h"
#include "util/ipc.h"
#include "fuzz_frame.h"
#include "../../queue-manager/qmgr_proto.h"

#define FUZZ_FIELDS_MAX	2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t fuzz_caps[] = { 1, 2, 3, 16, 1000, 100000 };

/* s is a mailbox whose stored form is canon. */
static int
fuzz_mailbox_ok(const char *s, const char *canon)
{
	char again[ADDR_MAILBOX_MAX + 1];
	struct mailaddr a;

	if (strlen(s) > ADDR_MAILBOX_MAX ||
	    addr_parse_mailbox(s, strlen(s), &a) != ADDR_OK ||
	    addr_format(&a, again, sizeof(again)) == -1)
		return 0;
	return canon == NULL || strcmp(again, canon) == 0;
}

static int
fuzz_helo_ok(const char *h, size_t n)
{
	size_t i;

	if (n > MOAT_HELO_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)h[i] <= 0x20 || (unsigned char)h[i] >= 0x7f)
			return 0;
	return 1;
}

/* A successful BEGIN, encoded again, decodes to the same. */
static void
fuzz_begin_again(const struct qmgr_proto_begin *b, size_t len, uint32_t cap)
{
	struct qmgr_proto_begin b2;
	struct ipc_frame f;
	struct ipc_wr w;
	uint32_t i;

	ipc_wr_init(&w, IPC_S2Q_BEGIN, 0);
	ipc_put_str(&w, b->helo);
	ipc_put_str(&w, b->sender);
	ipc_put_u32(&w, b->body_type);
	ipc_put_u64(&w, b->declared);
	ipc_put_u32(&w, b->dsn_ret);
	ipc_put_str(&w, b->dsn_envid);
	ipc_put_u32(&w, b->count);
	for (i = 0; i < b->nrcpt; i++) {
		ipc_put_str(&w, b->rcpt[i].mailbox);
		ipc_put_u32(&w, b->rcpt[i].notify);
		ipc_put_str(&w, b->rcpt[i].orcpt);
	}
	fuzz_wr_frame(&w, &f);
	/* The stored sender differs from the sent one only in case. */
	if (f.len != len)
		__builtin_trap();
	if (qmgr_proto_begin(&f, cap, &b2) != QP_OK || b2.nrcpt != b->nrcpt ||
	    strcmp(b2.helo, b->helo) != 0 || strcmp(b2.sender, b->sender) != 0 ||
	    b2.body_type != b->body_type || b2.declared != b->declared ||
	    b2.dsn_ret != b->dsn_ret || strcmp(b2.dsn_envid, b->dsn_envid) != 0)
		__builtin_trap();
	for (i = 0; i < b->nrcpt; i++)
		if (strcmp(b2.rcpt[i].mailbox, b->rcpt[i].mailbox) != 0 ||
		    strcmp(b2.rcpt[i].canon, b->rcpt[i].canon) != 0 ||
		    b2.rcpt[i].notify != b->rcpt[i].notify ||
		    strcmp(b2.rcpt[i].orcpt, b->rcpt[i].orcpt) != 0)
			__builtin_trap();
	qmgr_proto_begin_free(&b2);
	ipc_wr_free(&w);
}

/* DSN text as BEGIN promises it: printable ASCII within max. */
static int
fuzz_dsn_text_ok(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return n <= max;
}

/* A decoded recipient's NOTIFY and ORCPT (RFC 3461, as the session sends). */
static int
fuzz_dsn_rcpt_ok(const struct qmgr_proto_rcpt *r)
{
	const char *semi;

	if ((r->notify & ~0x0fu) != 0 ||
	    ((r->notify & MOAT_NOTIFY_NEVER) != 0 && r->notify != MOAT_NOTIFY_NEVER))
		return 0;
	if (r->orcpt[0] == '\0')
		return 1;
	if ((semi = strchr(r->orcpt, ';')) == NULL || semi[1] == '\0' ||
	    (strncmp(r->orcpt, "rfc822;", 7) != 0 && strncmp(r->orcpt, "utf-8;", 6) != 0))
		return 0;
	return fuzz_dsn_text_ok(r->orcpt, MOAT_ORCPT_MAX);
}

/* Decode f as BEGIN and check what the result promises; returns it. */
static enum qmgr_proto_err
fuzz_begin(const struct ipc_frame *f, uint32_t cap)
{
	struct qmgr_proto_begin b;
	enum qmgr_proto_err e;
	uint32_t i;

	e = qmgr_proto_begin(f, cap, &b);
	if (b.nrcpt > b.count || b.nrcpt > cap || (b.nrcpt > 0 && b.rcpt == NULL))
		__builtin_trap();
	for (i = 0; i < b.nrcpt; i++)
		if (!fuzz_mailbox_ok(b.rcpt[i].mailbox, b.rcpt[i].canon))
			__builtin_trap();
	switch (e) {
	case QP_OK:
		if (b.nrcpt != b.count || b.nrcpt < 1 || b.body_type > MOAT_BODY_8BITMIME ||
		    !fuzz_helo_ok(b.helo, strlen(b.helo)) ||
		    (b.sender[0] != '\0' && !fuzz_mailbox_ok(b.sender, b.sender)) ||
		    b.dsn_ret > MOAT_RET_HDRS || !fuzz_dsn_text_ok(b.dsn_envid, MOAT_ENVID_MAX))
			__builtin_trap();
		for (i = 0; i < b.nrcpt; i++)
			if (!fuzz_dsn_rcpt_ok(&b.rcpt[i]))
				__builtin_trap();
		fuzz_begin_again(&b, f->len, cap);
		break;
	case QP_RCPT_COUNT:
		if ((b.count != 0 && b.count <= cap) || b.nrcpt != 0)
			__builtin_trap();
		break;
	case QP_BAD_SENDER:
		if (b.nrcpt != 0)
			__builtin_trap();
		break;
	case QP_BAD_RCPT:
		if (fuzz_mailbox_ok(b.bad, NULL) || b.nrcpt >= b.count)
			__builtin_trap();
		break;
	case QP_MALFORMED:
		break;
	default:
		__builtin_trap();
	}
	qmgr_proto_begin_free(&b);
	if (b.rcpt != NULL || b.nrcpt != 0)
		__builtin_trap();
	return e;
}

/* The payload's leading u32, as the cursor reads it (host order). */
static uint32_t
fuzz_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* DATA, COMMIT, ABORT, FETCH, DONE against the one shape each allows. */
static void
fuzz_simple(unsigned int kind, const struct ipc_frame *f)
{
	char hop[MOAT_NEXTHOP_MAX + 1];
	struct qmgr_proto_fetch fe;
	const uint8_t *p = NULL;
	size_t n = 0, len = f->len;
	uint64_t v;
	int ok, want;

	switch (kind) {
	case 1:
		ok = qmgr_proto_data(f, &p, &n) == QP_OK;
		want = len > 4 && fuzz_u32(f->payload) == len - 4 &&
		    len - 4 <= IPC_DATA_CHUNK;
		if (ok && (p != f->payload + 4 || n != len - 4))
			__builtin_trap();
		break;
	case 2:
		ok = qmgr_proto_commit(f, &v) == QP_OK;
		want = len == 8;
		break;
	case 3:
		ok = qmgr_proto_abort(f) == QP_OK;
		want = len == 0;
		break;
	case 4:
		ok = qmgr_proto_fetch(f, &fe) == QP_OK;
		want = len == 12;
		break;
	default:
		ok = qmgr_proto_done(f, &v, hop, sizeof(hop)) == QP_OK;
		want = len >= 12 && fuzz_u32(f->payload + 8) == len - 12 &&
		    len - 12 <= MOAT_NEXTHOP_MAX &&
		    memchr(f->payload + 12, '\0', len - 12) == NULL &&
		    memchr(f->payload + 12, '\r', len - 12) == NULL &&
		    memchr(f->payload + 12, '\n', len - 12) == NULL;
		if (ok && (strlen(hop) != len - 12 ||
		    memcmp(hop, f->payload + 12, len - 12) != 0))
			__builtin_trap();
		break;
	}
	if (ok != want)
		__builtin_trap();
}

static int
fuzz_one_line(const char *s)
{
	return strchr(s, '\r') == NULL && strchr(s, '\n') == NULL;
}

/* RESULT: what it read, encoded again, is the payload itself. */
static enum qmgr_proto_err
fuzz_result(const struct ipc_frame *f)
{
	struct qmgr_proto_result res;
	enum qmgr_proto_err e;
	struct ipc_frame f2;
	struct ipc_wr w;
	int valid;

	e = qmgr_proto_result(f, &res);
	if (e == QP_MALFORMED)
		return e;
	if (e != QP_OK && e != QP_BAD_CODE)
		__builtin_trap();
	valid = res.code == 0 || (res.code >= 200 && res.code <= 299) ||
	    (res.code >= 400 && res.code <= 599);
	if (valid != (e == QP_OK) || !fuzz_one_line(res.enh) ||
	    !fuzz_one_line(res.text) || !fuzz_one_line(res.relay) ||
	    strlen(res.enh) > QMGR_PROTO_ENH_MAX || strlen(res.text) > MOAT_TEXT_MAX ||
	    strlen(res.relay) > MOAT_NEXTHOP_MAX || !fuzz_one_line(res.tls) ||
	    strlen(res.tls) > QMGR_PROTO_TLS_MAX ||
	    (res.flags & ~(uint32_t)(MOAT_RESULT_DSN_PASSED | MOAT_RESULT_FINAL)) != 0)
		__builtin_trap();
	ipc_wr_init(&w, IPC_D2Q_RESULT, 0);
	ipc_put_u64(&w, res.job);
	ipc_put_u32(&w, res.idx);
	ipc_put_u32(&w, res.code);
	ipc_put_str(&w, res.enh);
	ipc_put_str(&w, res.text);
	ipc_put_str(&w, res.relay);
	ipc_put_u32(&w, res.flags);
	ipc_put_str(&w, res.tls);
	fuzz_wr_frame(&w, &f2);
	if (f2.len != f->len || memcmp(f2.payload, f->payload, f->len) != 0)
		__builtin_trap();
	ipc_wr_free(&w);
	return e;
}

/* Split p[0..n) at '\n' into at most max fields; returns how many. */
static size_t
fuzz_split(const uint8_t *p, size_t n, const uint8_t **field, size_t *flen, size_t max)
{
	size_t nf = 0, i, start = 0;

	for (i = 0; i <= n && nf < max; i++) {
		if (i == n || p[i] == '\n') {
			field[nf] = p + start;
			flen[nf++] = i - start;
			start = i + 1;
		}
	}
	return nf;
}

/* A text field that may stand in a RESULT: one line, no NUL, within max. */
static int
fuzz_field_line(const uint8_t *s, size_t n, size_t max)
{
	return n <= max && memchr(s, '\0', n) == NULL && memchr(s, '\r', n) == NULL &&
	    memchr(s, '\n', n) == NULL;
}

/*
 * A RESULT from a u16 reply code, a u16 index and '\n'-separated fields
 * (enhanced code, text, relay, TLS; more fields are sent as trailing
 * strings); the flags (0..4, 4 being unknown) come from the index's
 * high byte.
 */
static void
fuzz_result_fields(const uint8_t *p, size_t n)
{
	const uint8_t *field[8];
	size_t flen[8], nf, i;
	struct ipc_frame f;
	struct ipc_wr w;
	uint32_t code, flags;
	int valid, good_code;

	if (n < 4 || n > IPC_MAX_PAYLOAD / 2)
		return;
	code = (uint32_t)p[0] | (uint32_t)p[1] << 8;
	flags = p[3] % 5;
	nf = fuzz_split(p + 4, n - 4, field, flen, 8);
	ipc_wr_init(&w, IPC_D2Q_RESULT, 0);
	ipc_put_u64(&w, 7);
	ipc_put_u32(&w, (uint32_t)p[2] | (uint32_t)p[3] << 8);
	ipc_put_u32(&w, code);
	for (i = 0; i < nf; i++) {
		ipc_put_blob(&w, field[i], flen[i]);
		if (i == 2)
			ipc_put_u32(&w, flags);
	}
	fuzz_wr_frame(&w, &f);
	valid = nf == 4 && fuzz_field_line(field[0], flen[0], QMGR_PROTO_ENH_MAX) &&
	    fuzz_field_line(field[1], flen[1], MOAT_TEXT_MAX) &&
	    fuzz_field_line(field[2], flen[2], MOAT_NEXTHOP_MAX) &&
	    fuzz_field_line(field[3], flen[3], QMGR_PROTO_TLS_MAX) && flags <= 3;
	good_code = code == 0 || (code >= 200 && code <= 299) ||
	    (code >= 400 && code <= 599);
	if (fuzz_result(&f) != (!valid ? QP_MALFORMED : good_code ? QP_OK : QP_BAD_CODE))
		__builtin_trap();
	ipc_wr_free(&w);
}

/* May s[0..n) stand as BEGIN's sender (sender) or a recipient? */
static int
fuzz_field_mailbox(const uint8_t *s, size_t n, int sender)
{
	char tmp[ADDR_MAILBOX_MAX + 1];

	if (n > ADDR_MAILBOX_MAX || memchr(s, '\0', n) != NULL)
		return 0;
	if (n == 0)
		return sender;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return fuzz_mailbox_ok(tmp, NULL);
}

/*
 * A BEGIN made of '\n'-separated fields: helo, sender, recipients.  The
 * byte after the selector gives the body type (0..2), how the count
 * differs from the recipients sent (-1, 0, +1) and every recipient's
 * NOTIFY (none, NEVER, SUCCESS+DELAY, or the invalid NEVER+FAILURE);
 * RET is none, ENVID and ORCPT empty.
 */
static void
fuzz_begin_fields(const uint8_t *p, size_t n, uint32_t cap)
{
	const uint8_t *field[FUZZ_FIELDS_MAX];
	size_t flen[FUZZ_FIELDS_MAX], nf, i;
	static const uint32_t notifies[] = {
		0, MOAT_NOTIFY_NEVER, MOAT_NOTIFY_SUCCESS | MOAT_NOTIFY_DELAY,
		MOAT_NOTIFY_NEVER | MOAT_NOTIFY_FAILURE,
	};
	uint32_t body, count, notify;
	struct ipc_frame f;
	struct ipc_wr w;
	int valid;

	if (n < 1 || n > IPC_MAX_PAYLOAD / 2)
		return;
	body = p[0] % 3;
	notify = notifies[(p[0] / 9) % 4];
	nf = fuzz_split(p + 1, n - 1, field, flen, FUZZ_FIELDS_MAX);
	if (nf < 2)
		return;
	count = (uint32_t)(nf - 2);
	if ((p[0] / 3) % 3 == 0 && count > 0)
		count--;
	else if ((p[0] / 3) % 3 == 2)
		count++;
	ipc_wr_init(&w, IPC_S2Q_BEGIN, 0);
	for (i = 0; i < nf; i++) {
		ipc_put_blob(&w, field[i], flen[i]);
		if (i == 1) {
			ipc_put_u32(&w, body);
			ipc_put_u64(&w, 0);
			ipc_put_u32(&w, MOAT_RET_NONE);
			ipc_put_str(&w, "");
			ipc_put_u32(&w, count);
		} else if (i > 1) {
			ipc_put_u32(&w, notify);
			ipc_put_str(&w, "");
		}
	}
	fuzz_wr_frame(&w, &f);
	valid = fuzz_helo_ok((const char *)field[0], flen[0]) &&
	    fuzz_field_mailbox(field[1], flen[1], 1) && body <= MOAT_BODY_8BITMIME &&
	    count == nf - 2 && count >= 1 && count <= cap && notify != notifies[3];
	for (i = 2; valid && i < nf; i++)
		valid = fuzz_field_mailbox(field[i], flen[i], 0);
	if ((fuzz_begin(&f, cap) == QP_OK) != valid)
		__builtin_trap();
	ipc_wr_free(&w);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t types[] = {
		IPC_S2Q_BEGIN, IPC_S2Q_DATA, IPC_S2Q_COMMIT, IPC_S2Q_ABORT,
		IPC_D2Q_FETCH, IPC_D2Q_RESULT, IPC_D2Q_DONE,
	};
	struct ipc_frame f;
	unsigned int kind;
	uint32_t cap;
	uint8_t *copy;
	size_t n;

	if (size < 1 || size - 1 > IPC_MAX_PAYLOAD)
		return 0;
	kind = data[0] % 9;
	cap = fuzz_caps[(data[0] / 9) % (sizeof(fuzz_caps) / sizeof(fuzz_caps[0]))];
	if (kind == 7) {
		fuzz_begin_fields(data + 1, size - 1, cap);
		return 0;
	}
	if (kind == 8) {
		fuzz_result_fields(data + 1, size - 1);
		return 0;
	}
	/* An exact-size copy, so reading one byte past the payload is caught. */
	n = size - 1;
	if ((copy = malloc(n > 0 ? n : 1)) == NULL)
		return 0;
	memcpy(copy, data + 1, n);
	fuzz_frame(&f, types[kind], copy, n);
	if (kind == 0)
		(void)fuzz_begin(&f, cap);
	else if (kind == 5)
		(void)fuzz_result(&f);
	else
		fuzz_simple(kind, &f);
	free(copy);
	return 0;
}
