/*
 * test_delivery_job.c: the delivery agent's side of the queue-manager
 * channel (delivery-agent/job.c): decoding hostile IPC_Q2D_JOB and
 * IPC_Q2D_CHUNK messages, and the FETCH / RESULT / DONE exchange over a
 * real socketpair.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivery-agent/job.h"
#include "ipc_types.h"
#include "util/ipc.h"
#include "util/xmalloc.h"
#include "unit/t.h"

/* A job message, field by field, so each case can spoil one field. */
struct job_msg {
	uint32_t	 type;
	uint64_t	 id;
	const char	*qid;
	const char	*sender;
	uint64_t	 size;
	uint32_t	 body_type;
	const char	*nexthop;
	uint32_t	 ret;
	const char	*envid;
	uint32_t	 count;		/* as claimed */
	uint32_t	 nrcpt;		/* as sent */
	const uint32_t	*idx;
	const char	*const *rcpt;
	const uint32_t	*notify;	/* NULL: 0 for each */
	const char	*const *orcpt;	/* NULL: "" for each */
	int		 trailing;	/* append a stray byte */
};

static const uint32_t idx2[] = { 0, 1 };
static const uint32_t idx_dup[] = { 3, 3 };
static const char *const rcpt2[] = { "alice@example.org", "\"b ob\"@[192.0.2.1]" };

static void
build(const struct job_msg *m, struct ipc_wr *w)
{
	uint32_t i;

	ipc_wr_init(w, m->type, 0);
	ipc_put_u64(w, m->id);
	ipc_put_str(w, m->qid);
	ipc_put_str(w, m->sender);
	ipc_put_u64(w, m->size);
	ipc_put_u32(w, m->body_type);
	ipc_put_str(w, m->nexthop);
	/* envid NULL: the payload of IPC version 2, without DSN fields. */
	if (m->envid != NULL) {
		ipc_put_u32(w, m->ret);
		ipc_put_str(w, m->envid);
	}
	ipc_put_u32(w, m->count);
	for (i = 0; i < m->nrcpt; i++) {
		ipc_put_u32(w, m->idx[i]);
		ipc_put_str(w, m->rcpt[i]);
		if (m->envid == NULL)
			continue;
		ipc_put_u32(w, m->notify != NULL ? m->notify[i] : 0);
		ipc_put_str(w, m->orcpt != NULL ? m->orcpt[i] : "");
	}
	if (m->trailing)
		ipc_put_u32(w, 0);
}

/* Decode a message built from m as the agent would. */
static int
decode(const struct job_msg *m, struct job *j, int fd)
{
	struct ipc_wr w;
	struct ipc_frame f;
	const uint8_t *msg;
	const char *why;
	char err[JOB_ERR_MAX];
	size_t len;
	int r = -1;

	build(m, &w);
	if ((msg = ipc_wr_finish(&w, &len)) != NULL &&
	    ipc_frame_decode(msg, len, &f, &why) == 0) {
		f.fd = fd;
		r = job_decode(j, &f, err, sizeof(err));
	}
	ipc_wr_free(&w);
	return r;
}

static const uint32_t notify2[] = { MOAT_NOTIFY_SUCCESS | MOAT_NOTIFY_DELAY, 0 };
static const char *const orcpt2[] = { "rfc822;Alice@Example.org", "" };

static const struct job_msg good = {
	IPC_Q2D_JOB, 42, "0123456789ABCDEF", "sender@example.com", 10,
	MOAT_BODY_8BITMIME, "smtp:[127.0.0.1]:2526", MOAT_RET_HDRS, "env id+1", 2, 2,
	idx2, rcpt2, notify2, orcpt2, 0
};

static void
test_job_good(void)
{
	struct job j;
	struct job_msg m = good;

	job_init(&j, -1);
	T_OK(decode(&m, &j, -1) == 0, "valid job decodes");
	T_OK(j.id == 42 && strcmp(j.qid, "0123456789ABCDEF") == 0 &&
	    strcmp(j.sender, "sender@example.com") == 0 && j.size == 10 &&
	    j.body_type == MOAT_BODY_8BITMIME &&
	    strcmp(j.nexthop, "smtp:[127.0.0.1]:2526") == 0 && j.nrcpt == 2 &&
	    j.rcpt[1].idx == 1 && strcmp(j.rcpt[1].mailbox, rcpt2[1]) == 0 &&
	    strcmp(j.rcpt[0].addr.domain, "example.org") == 0,
	    "valid job: every field as sent");
	T_OK(j.dsn_ret == MOAT_RET_HDRS && strcmp(j.envid, "env id+1") == 0 &&
	    j.rcpt[0].notify == (MOAT_NOTIFY_SUCCESS | MOAT_NOTIFY_DELAY) &&
	    j.rcpt[1].notify == 0 && strcmp(j.rcpt[0].orcpt, orcpt2[0]) == 0 &&
	    j.rcpt[1].orcpt[0] == '\0' && j.rcpt[0].flags == 0,
	    "valid job: DSN fields as sent");
	m.sender = "";
	T_OK(decode(&m, &j, -1) == 0 && j.sender[0] == '\0', "null sender accepted");
	m.nexthop = "";
	T_OK(decode(&m, &j, -1) == 0, "empty next hop decodes (local jobs)");
	job_clear(&j);
	free(j.buf);
}

static void
test_job_bad(void)
{
	static char long_qid[MOAT_QID_MAX + 2], long_hop[MOAT_NEXTHOP_MAX + 2];
	static char long_rcpt[300];
	static const char *rcpt_long[] = { long_rcpt };
	static const char *rcpt_nodomain[] = { "bob" };
	static const char *rcpt_crlf[] = { "bob@x.org\r\nRSET" };
	static const char *rcpt_brackets[] = { "<bob@x.org>" };
	static const uint32_t idx1[] = { 0 };
	static char long_envid[MOAT_ENVID_MAX + 2], long_orcpt[MOAT_ORCPT_MAX + 2];
	static const uint32_t notify_bit16[] = { 0x10, 0 };
	static const uint32_t notify_high[] = { 0x80000000u, 0 };
	static const uint32_t notify_never_too[] = {
		MOAT_NOTIFY_NEVER | MOAT_NOTIFY_FAILURE, 0 };
	static const char *orcpt_long[] = { long_orcpt, "" };
	static const char *orcpt_nosemi[] = { "rfc822:a@b.org", "" };
	static const char *orcpt_notype[] = { ";a@b.org", "" };
	static const char *orcpt_noaddr[] = { "rfc822;", "" };
	static const char *orcpt_crlf[] = { "rfc822;a@b.org\r\nRSET", "" };
	static const char *orcpt_badtype[] = { "rfc 822;a@b.org", "" };
	struct {
		const char	*label;
		struct job_msg	 m;
	} c[] = {
		{ "wrong type", good },
		{ "trailing bytes", good },
		{ "count 0", good },
		{ "count 1001", good },
		{ "count larger than sent", good },
		{ "count smaller than sent", good },
		{ "repeated recipient index", good },
		{ "empty queue id", good },
		{ "queue id with a path", good },
		{ "queue id with a dot", good },
		{ "queue id too long", good },
		{ "sender in brackets", good },
		{ "sender with CRLF", good },
		{ "sender without domain", good },
		{ "recipient without domain", good },
		{ "recipient with CRLF", good },
		{ "recipient in brackets", good },
		{ "recipient too long", good },
		{ "body type 2", good },
		{ "next hop too long", good },
		{ "DSN RET 3", good },
		{ "DSN RET huge", good },
		{ "ENVID too long", good },
		{ "ENVID with CRLF", good },
		{ "ENVID with a byte over 126", good },
		{ "NOTIFY bit 0x10", good },
		{ "NOTIFY high bit", good },
		{ "NOTIFY NEVER with FAILURE", good },
		{ "ORCPT too long", good },
		{ "ORCPT without ';'", good },
		{ "ORCPT without a type", good },
		{ "ORCPT without an address", good },
		{ "ORCPT with CRLF", good },
		{ "ORCPT type with a space", good },
		{ "old (v2) job without DSN fields", good },
	};
	struct job j;
	size_t i = 0;

	memset(long_qid, 'A', sizeof(long_qid) - 1);
	memset(long_hop, '1', sizeof(long_hop) - 1);
	memset(long_rcpt, 'a', sizeof(long_rcpt) - 1);
	memset(long_envid, 'e', sizeof(long_envid) - 1);
	memcpy(long_orcpt, "rfc822;", 7);
	memset(long_orcpt + 7, 'o', sizeof(long_orcpt) - 8);
	memcpy(long_rcpt + sizeof(long_rcpt) - 8, "@b.org", 7);
	c[i++].m.type = IPC_Q2D_CHUNK;
	c[i++].m.trailing = 1;
	c[i].m.count = 0; c[i++].m.nrcpt = 0;
	c[i++].m.count = 1001;
	c[i++].m.count = 3;
	c[i++].m.count = 1;
	c[i++].m.idx = idx_dup;
	c[i++].m.qid = "";
	c[i++].m.qid = "../../etc";
	c[i++].m.qid = "ABC.DEF";
	c[i++].m.qid = long_qid;
	c[i++].m.sender = "<a@b.org>";
	c[i++].m.sender = "a@b.org\r\nRSET";
	c[i++].m.sender = "a";
	c[i].m.rcpt = rcpt_nodomain; c[i].m.idx = idx1; c[i].m.count = 1; c[i++].m.nrcpt = 1;
	c[i].m.rcpt = rcpt_crlf; c[i].m.idx = idx1; c[i].m.count = 1; c[i++].m.nrcpt = 1;
	c[i].m.rcpt = rcpt_brackets; c[i].m.idx = idx1; c[i].m.count = 1; c[i++].m.nrcpt = 1;
	c[i].m.rcpt = rcpt_long; c[i].m.idx = idx1; c[i].m.count = 1; c[i++].m.nrcpt = 1;
	c[i++].m.body_type = 2;
	c[i++].m.nexthop = long_hop;
	c[i++].m.ret = 3;
	c[i++].m.ret = 0xffffffffu;
	c[i++].m.envid = long_envid;
	c[i++].m.envid = "id\r\nRSET";
	c[i++].m.envid = "id\xc3\xa9";
	c[i++].m.notify = notify_bit16;
	c[i++].m.notify = notify_high;
	c[i++].m.notify = notify_never_too;
	c[i++].m.orcpt = orcpt_long;
	c[i++].m.orcpt = orcpt_nosemi;
	c[i++].m.orcpt = orcpt_notype;
	c[i++].m.orcpt = orcpt_noaddr;
	c[i++].m.orcpt = orcpt_crlf;
	c[i++].m.orcpt = orcpt_badtype;
	c[i].m.ret = 0; c[i].m.envid = NULL; c[i].m.notify = NULL; c[i++].m.orcpt = NULL;

	job_init(&j, -1);
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		T_OK(decode(&c[i].m, &j, -1) == -1, "refused: %s", c[i].label);
	T_OK(decode(&good, &j, 0) == -1, "refused: a descriptor with the job");
	job_clear(&j);
	free(j.buf);
}

/* 1000 recipients is the most a job may carry. */
static void
test_job_max(void)
{
	static uint32_t idx[JOB_RCPT_MAX];
	static char names[JOB_RCPT_MAX][32];
	static const char *rcpt[JOB_RCPT_MAX];
	struct job_msg m = good;
	struct job j;
	size_t i;

	for (i = 0; i < JOB_RCPT_MAX; i++) {
		idx[i] = (uint32_t)(JOB_RCPT_MAX - i);
		snprintf(names[i], sizeof(names[i]), "u%zu@example.net", i);
		rcpt[i] = names[i];
	}
	m.idx = idx;
	m.rcpt = rcpt;
	m.notify = NULL;
	m.orcpt = NULL;
	m.count = m.nrcpt = JOB_RCPT_MAX;
	job_init(&j, -1);
	T_OK(decode(&m, &j, -1) == 0 && j.nrcpt == JOB_RCPT_MAX,
	    "job with %d recipients accepted", JOB_RCPT_MAX);
	job_clear(&j);
	free(j.buf);
}

struct chunk_msg {
	uint32_t	 type;
	uint64_t	 id;
	uint32_t	 seq;
	uint32_t	 last;
	const char	*data;
	size_t		 len;
	int		 trailing;
};

static void
build_chunk(const struct chunk_msg *m, struct ipc_wr *w)
{
	ipc_wr_init(w, m->type, 0);
	ipc_put_u64(w, m->id);
	ipc_put_u32(w, m->seq);
	ipc_put_u32(w, m->last);
	ipc_put_blob(w, m->data, m->len);
	if (m->trailing)
		ipc_put_u32(w, 0);
}

static int
decode_chunk(struct job *j, const struct chunk_msg *m, size_t *n)
{
	struct ipc_wr w;
	struct ipc_frame f;
	const uint8_t *msg, *p;
	const char *why;
	char err[JOB_ERR_MAX];
	size_t len;
	int r = -1;

	build_chunk(m, &w);
	if ((msg = ipc_wr_finish(&w, &len)) != NULL &&
	    ipc_frame_decode(msg, len, &f, &why) == 0) {
		f.fd = -1;
		r = job_chunk_decode(j, &f, &p, n, err, sizeof(err));
	}
	ipc_wr_free(&w);
	return r;
}

static void
test_chunks(void)
{
	static char big[IPC_DATA_CHUNK + 1];
	static const struct {
		const char	*label;
		struct chunk_msg m;
	} bad[] = {
		{ "wrong job id", { IPC_Q2D_CHUNK, 8, 0, 0, "hello", 5, 0 } },
		{ "wrong sequence", { IPC_Q2D_CHUNK, 7, 1, 0, "hello", 5, 0 } },
		{ "last flag 2", { IPC_Q2D_CHUNK, 7, 0, 2, "hello", 5, 0 } },
		{ "empty chunk, not last", { IPC_Q2D_CHUNK, 7, 0, 0, "", 0, 0 } },
		{ "more than the body size", { IPC_Q2D_CHUNK, 7, 0, 0, "hello world", 11, 0 } },
		{ "last, but short of the size", { IPC_Q2D_CHUNK, 7, 0, 1, "hello", 5, 0 } },
		{ "trailing bytes", { IPC_Q2D_CHUNK, 7, 0, 0, "hello", 5, 1 } },
		{ "wrong type", { IPC_Q2D_JOB, 7, 0, 0, "hello", 5, 0 } },
		{ "over IPC_DATA_CHUNK", { IPC_Q2D_CHUNK, 7, 0, 0, big, sizeof(big), 0 } },
	};
	struct chunk_msg ok1 = { IPC_Q2D_CHUNK, 7, 0, 0, "hello", 5, 0 };
	struct chunk_msg ok2 = { IPC_Q2D_CHUNK, 7, 1, 1, "world", 5, 0 };
	struct chunk_msg empty_last = { IPC_Q2D_CHUNK, 9, 0, 1, "", 0, 0 };
	struct job j;
	size_t i, n;

	memset(&j, 0, sizeof(j));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j.id = 7;
		j.size = 10;
		j.seq = 0;
		j.got = 0;
		T_OK(decode_chunk(&j, &bad[i].m, &n) == -1 && j.got == 0 && j.seq == 0,
		    "chunk refused: %s", bad[i].label);
	}
	j.id = 7;
	j.size = 10;
	T_OK(decode_chunk(&j, &ok1, &n) == 0 && n == 5 && j.seq == 1 && !j.eof,
	    "chunk 0 accepted");
	T_OK(decode_chunk(&j, &ok1, &n) == -1, "chunk 0 again refused");
	T_OK(decode_chunk(&j, &ok2, &n) == 0 && j.eof && j.got == 10,
	    "last chunk accepted");
	memset(&j, 0, sizeof(j));
	j.id = 9;
	T_OK(decode_chunk(&j, &empty_last, &n) == 0 && n == 0 && j.eof,
	    "empty last chunk of an empty body accepted");
}

/* Queue a message on the queue-manager's end of the socketpair. */
static void
qmgr_send_chunk(int fd, uint64_t id, uint32_t seq, uint32_t last, const char *s)
{
	struct chunk_msg m = { IPC_Q2D_CHUNK, id, seq, last, s, strlen(s), 0 };
	struct ipc_wr w;

	build_chunk(&m, &w);
	(void)ipc_send(fd, &w, -1);
	ipc_wr_free(&w);
}

static void
test_exchange(void)
{
	uint8_t *buf = malloc(IPC_MAX_MSG);
	struct job_msg m = good;
	struct ipc_frame f;
	struct ipc_rd r;
	const uint8_t *p;
	const char *why;
	char text[64], relay[64], tls[64], hop[64];
	struct job j;
	size_t n;
	int sv[2], ok;

	if (ipc_socketpair(sv) == -1) {
		T_OK(0, "socketpair");
		return;
	}
	job_init(&j, sv[0]);
	m.size = 11;
	T_OK(decode(&m, &j, -1) == 0, "exchange: job decoded");
	qmgr_send_chunk(sv[1], 42, 0, 0, "hello ");
	qmgr_send_chunk(sv[1], 42, 1, 1, "world");
	T_OK(job_body_next(&j, &p, &n) == 1 && n == 6 && memcmp(p, "hello ", 6) == 0,
	    "exchange: first chunk");
	T_OK(job_body_next(&j, &p, &n) == 1 && n == 5, "exchange: second chunk");
	T_OK(job_body_next(&j, &p, &n) == 0, "exchange: end of body, no more fetches");
	ok = ipc_recv(sv[1], buf, &f, &why) == 1 && f.hdr.type == IPC_D2Q_FETCH;
	ipc_rd_init(&r, &f);
	ok = ok && ipc_get_u64(&r) == 42 && ipc_get_u32(&r) == 0 && ipc_rd_end(&r) == 0;
	T_OK(ok, "exchange: FETCH 0 sent");
	ok = ipc_recv(sv[1], buf, &f, &why) == 1 && f.hdr.type == IPC_D2Q_FETCH;
	ipc_rd_init(&r, &f);
	ok = ok && ipc_get_u64(&r) == 42 && ipc_get_u32(&r) == 1 && ipc_rd_end(&r) == 0;
	T_OK(ok, "exchange: FETCH 1 sent");

	strlcpy_m(j.relay, "mx[192.0.2.1]:25", sizeof(j.relay));
	strlcpy_m(j.tls, "TLSv1.3 TLS_AES_256_GCM_SHA384 verified=no", sizeof(j.tls));
	j.rcpt[0].flags = MOAT_RESULT_DSN_PASSED | MOAT_RESULT_FINAL;
	job_result(&j, 1, 550, "5.1.1", "no such\r\nuser\x01", "in reply to RCPT TO command");
	job_result(&j, 1, 250, "2.0.0", "overwritten?", NULL);
	T_OK(job_pending(&j), "exchange: one recipient still open");
	job_result_rest(&j, 250, "2.0.0", "Ok: queued as X", NULL);
	T_OK(!job_pending(&j) && j.rcpt[1].code == 550 &&
	    strcmp(j.rcpt[1].text, "no such??user?") == 0,
	    "exchange: first result kept, control bytes replaced");
	T_OK(job_finish(&j, "smtp:[192.0.2.1]:25") == 0, "exchange: results sent");
	for (n = 0; n < 2; n++) {
		ok = ipc_recv(sv[1], buf, &f, &why) == 1 && f.hdr.type == IPC_D2Q_RESULT;
		ipc_rd_init(&r, &f);
		ok = ok && ipc_get_u64(&r) == 42 && ipc_get_u32(&r) == n;
		ok = ok && ipc_get_u32(&r) == (n == 0 ? 250 : 550);
		ok = ok && ipc_get_str(&r, text, sizeof(text)) == 0 &&
		    strcmp(text, n == 0 ? "2.0.0" : "5.1.1") == 0;
		ok = ok && ipc_get_str(&r, text, sizeof(text)) == 0;
		ok = ok && ipc_get_str(&r, relay, sizeof(relay)) == 0 &&
		    strcmp(relay, "mx[192.0.2.1]:25") == 0;
		ok = ok && ipc_get_u32(&r) == (n == 0 ?
		    (MOAT_RESULT_DSN_PASSED | MOAT_RESULT_FINAL) : 0);
		ok = ok && ipc_get_str(&r, tls, sizeof(tls)) == 0 &&
		    strcmp(tls, "TLSv1.3 TLS_AES_256_GCM_SHA384 verified=no") == 0 &&
		    ipc_rd_end(&r) == 0;
		T_OK(ok, "exchange: RESULT for recipient %zu", n);
	}
	ok = ipc_recv(sv[1], buf, &f, &why) == 1 && f.hdr.type == IPC_D2Q_DONE;
	ipc_rd_init(&r, &f);
	T_OK(ok && ipc_get_u64(&r) == 42 && ipc_get_str(&r, hop, sizeof(hop)) == 0 &&
	    strcmp(hop, "smtp:[192.0.2.1]:25") == 0 && ipc_rd_end(&r) == 0,
	    "exchange: DONE with the cached next hop");
	T_OK(job_uncached(&j) == 0, "exchange: UNCACHED sent");
	ok = ipc_recv(sv[1], buf, &f, &why) == 1 && f.hdr.type == IPC_D2Q_UNCACHED;
	ipc_rd_init(&r, &f);
	T_OK(ok && ipc_rd_end(&r) == 0, "exchange: UNCACHED is empty");

	/* A chunk for another job ends the exchange with an error. */
	j.eof = 0;
	j.seq = 0;
	j.got = 0;
	qmgr_send_chunk(sv[1], 41, 0, 1, "hello world");
	T_OK(job_body_next(&j, &p, &n) == -1 && j.err[0] != '\0',
	    "exchange: chunk of another job refused (%s)", j.err);
	close(sv[1]);
	j.eof = 0;
	T_OK(job_body_next(&j, &p, &n) == -1, "exchange: closed channel is an error");
	T_OK(job_recv(&j) == 0, "exchange: closed channel ends job_recv");
	job_clear(&j);
	close(sv[0]);
	free(j.buf);
	free(buf);
}

int
main(void)
{
	test_job_good();
	test_job_bad();
	test_job_max();
	test_chunks();
	test_exchange();
	return t_done();
}
