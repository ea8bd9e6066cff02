/* fuzz-sources: delivery-agent/job.c common/ipc_types.c common/util/ipc.c common/mail/addr.c common/util/buf.c common/util/log.c common/util/xmalloc.c */
/*
 * fuzz_delivery_job.c: the delivery agent's decoders of what the
 * queue-manager sends (job_decode and job_chunk_decode in
 * delivery-agent/job.c), on arbitrary bytes.
 *
 * The first byte picks the mode.  Even: the next two bytes (little
 * endian) give the length of an IPC_Q2D_JOB payload taken raw from the
 * input; the rest is a sequence of IPC_Q2D_CHUNK payloads, each preceded
 * by a two-byte length.  Odd: the job is built from '\n'-separated fields
 * (queue id, sender, next hop, DSN ENVID, recipients) up to a 0 byte, so
 * that the recipient paths are reached without a seed (a recipient field
 * "mailbox\tNorcpt" also carries NOTIFY bits N - '0', any value, and an
 * ORCPT; the RET value comes from the size bytes), and each following chunk is
 * built from a control byte (last flag, wrong id, sequence offset) and a
 * one-byte length, and held to an oracle: it is accepted exactly when it
 * names this job, is the next in sequence, has a valid last flag and fits
 * the declared size.  The promises checked, with __builtin_trap():
 *
 *   JOB     success means 1 <= nrcpt <= JOB_RCPT_MAX, every recipient NUL
 *           terminated within ADDR_MAILBOX_MAX bytes and a mailbox, indices
 *           unique, a valid body type, and the chunk state reset; DSN RET
 *           0..2, an ENVID of printable ASCII within MOAT_ENVID_MAX, NOTIFY
 *           of the four defined bits with NEVER alone, an ORCPT that is
 *           empty or "type;address" without control bytes, within
 *           MOAT_ORCPT_MAX; no result flags yet.
 *   CHUNK   success only for the next sequence number and this job's id,
 *           the sequence then advances by one, the body never exceeds its
 *           declared size, and the last chunk completes it exactly.  No
 *           chunk is fed once the last one has arrived, as in the agent.
 *   Memory  what the decoder allocates is freed by job_clear (LeakSanitizer).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../delivery-agent/job.h"
#include "ipc_types.h"
#include "mail/addr.h"
#include "util/ipc.h"
#include "fuzz_frame.h"

#define FUZZ_JOB_ID	0x0123456789abcdefULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An ORCPT job_decode accepted: "" or "type;address", no control bytes. */
static void
fuzz_check_orcpt(const char *o)
{
	const char *semi;
	size_t len = strnlen(o, MOAT_ORCPT_MAX + 1);

	if (len > MOAT_ORCPT_MAX)
		__builtin_trap();
	if (len == 0)
		return;
	if ((semi = strchr(o, ';')) == NULL || semi == o || semi[1] == '\0')
		__builtin_trap();
	for (; *o != '\0'; o++)
		if ((unsigned char)*o < 0x20 || (unsigned char)*o == 0x7f)
			__builtin_trap();
}

/* The promises of a successful job_decode. */
static void
fuzz_check_job(const struct job *j)
{
	const uint32_t notify_all = MOAT_NOTIFY_NEVER | MOAT_NOTIFY_SUCCESS |
	    MOAT_NOTIFY_FAILURE | MOAT_NOTIFY_DELAY;
	struct mailaddr a;
	size_t i, k, len;

	if (j->nrcpt < 1 || j->nrcpt > JOB_RCPT_MAX || j->rcpt == NULL)
		__builtin_trap();
	if (j->body_type != MOAT_BODY_7BIT && j->body_type != MOAT_BODY_8BITMIME)
		__builtin_trap();
	if (j->seq != 0 || j->got != 0 || j->eof != 0)
		__builtin_trap();
	if (strnlen(j->qid, sizeof(j->qid)) == sizeof(j->qid) ||
	    j->qid[0] == '\0')
		__builtin_trap();
	if (j->dsn_ret > MOAT_RET_HDRS ||
	    strnlen(j->envid, sizeof(j->envid)) > MOAT_ENVID_MAX)
		__builtin_trap();
	for (k = 0; j->envid[k] != '\0'; k++)
		if ((unsigned char)j->envid[k] < 0x20 || (unsigned char)j->envid[k] > 0x7e)
			__builtin_trap();
	for (i = 0; i < j->nrcpt; i++) {
		const struct job_rcpt *rc = &j->rcpt[i];

		if ((rc->notify & ~notify_all) != 0 || rc->flags != 0 ||
		    ((rc->notify & MOAT_NOTIFY_NEVER) && rc->notify != MOAT_NOTIFY_NEVER))
			__builtin_trap();
		fuzz_check_orcpt(rc->orcpt);

		len = strnlen(rc->mailbox, sizeof(rc->mailbox));
		if (len == sizeof(rc->mailbox) || len > ADDR_MAILBOX_MAX ||
		    len == 0)
			__builtin_trap();
		if (addr_parse_mailbox(rc->mailbox, len, &a) != ADDR_OK)
			__builtin_trap();
		for (k = i + 1; k < j->nrcpt; k++)
			if (rc->idx == j->rcpt[k].idx)
				__builtin_trap();
	}
}

/*
 * Feed one chunk frame; oracle is 1 or 0 when the outcome is known, -1
 * when not.  Returns 1 when the caller may go on (accepted, not last).
 */
static int
fuzz_chunk(struct job *j, const struct ipc_frame *f, int oracle)
{
	struct ipc_rd r;
	const uint8_t *p = NULL;
	char err[JOB_ERR_MAX];
	uint64_t id, got = j->got;
	uint32_t seq, last, want = j->seq;
	size_t n = 0;
	int ok;

	ok = job_chunk_decode(j, f, &p, &n, err, sizeof(err)) == 0;
	if (oracle != -1 && ok != oracle)
		__builtin_trap();
	if (!ok) {
		if (j->seq != want || j->got != got)
			__builtin_trap();
		if (strnlen(err, sizeof(err)) == sizeof(err))
			__builtin_trap();
		return 0;
	}
	/* Read the claimed fields independently of the decoder. */
	ipc_rd_init(&r, f);
	id = ipc_get_u64(&r);
	seq = ipc_get_u32(&r);
	last = ipc_get_u32(&r);
	if (r.err || id != j->id || seq != want || j->seq != want + 1)
		__builtin_trap();
	if (last > 1 || (n == 0 && !last) || n > IPC_DATA_CHUNK)
		__builtin_trap();
	if (n > 0 && (p < f->payload || p + n > f->payload + f->len))
		__builtin_trap();
	if (j->got != got + n || j->got > j->size)
		__builtin_trap();
	if ((int)last != j->eof || (last && j->got != j->size))
		__builtin_trap();
	return !last;
}

/* Even mode: job and chunks raw from the input. */
static void
fuzz_raw(struct job *j, const uint8_t *data, size_t size)
{
	struct ipc_frame f;
	char err[JOB_ERR_MAX];
	size_t len;

	if (size < 2)
		return;
	len = (size_t)data[0] | (size_t)data[1] << 8;
	data += 2;
	size -= 2;
	if (len > size)
		len = size;
	fuzz_frame(&f, IPC_Q2D_JOB, data, len);
	if (job_decode(j, &f, err, sizeof(err)) == -1)
		return;
	fuzz_check_job(j);
	data += len;
	size -= len;
	while (size >= 2) {
		len = (size_t)data[0] | (size_t)data[1] << 8;
		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		fuzz_frame(&f, IPC_Q2D_CHUNK, data, len);
		if (!fuzz_chunk(j, &f, -1))
			return;
		data += len;
		size -= len;
	}
}

/* The next '\n'-terminated field of [*pp, end) as a string in dst. */
static void
fuzz_field(const uint8_t **pp, const uint8_t *end, char *dst, size_t dstsz)
{
	const uint8_t *p = *pp, *nl;
	size_t n;

	nl = memchr(p, '\n', (size_t)(end - p));
	n = (nl != NULL ? nl : end) - p;
	if (n >= dstsz)
		n = dstsz - 1;
	memcpy(dst, p, n);
	dst[n] = '\0';
	*pp = nl != NULL ? nl + 1 : end;
}

/* Odd mode: a job from fields, then chunks with an oracle. */
static void
fuzz_built(struct job *j, const uint8_t *data, size_t size)
{
	static char field[ADDR_MAILBOX_MAX * 2 + 2];
	struct ipc_wr w;
	struct ipc_frame f;
	char err[JOB_ERR_MAX];
	const uint8_t *p, *end, *zero, *limit;
	uint32_t nrcpt = 0, i;
	uint64_t bsize;
	int ok;

	if (size < 2)
		return;
	bsize = (uint64_t)data[0] | (uint64_t)data[1] << 8;
	data += 2;
	size -= 2;
	limit = data + size;
	zero = memchr(data, '\0', size);
	end = zero != NULL ? zero : data + size;

	/* Count the recipients: the fields after the first four. */
	for (p = data, i = 0; p < end; i++) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));

		p = nl != NULL ? nl + 1 : end;
	}
	nrcpt = i > 4 ? i - 4 : 0;

	ipc_wr_init(&w, IPC_Q2D_JOB, 0);
	ipc_put_u64(&w, FUZZ_JOB_ID);
	p = data;
	for (i = 0; i < 4; i++) {
		fuzz_field(&p, end, field, sizeof(field));
		if (i == 1) {
			ipc_put_str(&w, field);
			ipc_put_u64(&w, bsize);
			ipc_put_u32(&w, MOAT_BODY_8BITMIME);
		} else if (i == 3) {
			/* RET from the size bytes: 0..3, 3 being invalid. */
			ipc_put_u32(&w, (uint32_t)(bsize >> 8) & 3);
			ipc_put_str(&w, field);
		} else
			ipc_put_str(&w, field);
	}
	ipc_put_u32(&w, nrcpt);
	for (i = 0; i < nrcpt; i++) {
		char *tab;

		fuzz_field(&p, end, field, sizeof(field));
		ipc_put_u32(&w, i);
		if ((tab = strchr(field, '\t')) == NULL) {
			ipc_put_str(&w, field);
			ipc_put_u32(&w, 0);
			ipc_put_str(&w, "");
			continue;
		}
		*tab = '\0';
		ipc_put_str(&w, field);
		ipc_put_u32(&w, tab[1] == '\0' ? 0 : (uint32_t)(unsigned char)tab[1] - '0');
		ipc_put_str(&w, tab[1] == '\0' ? "" : tab + 2);
	}
	fuzz_wr_frame(&w, &f);
	ok = job_decode(j, &f, err, sizeof(err)) == 0;
	ipc_wr_free(&w);
	if (!ok)
		return;
	fuzz_check_job(j);
	if (j->id != FUZZ_JOB_ID || j->size != bsize || j->nrcpt != nrcpt)
		__builtin_trap();

	/* Chunks: control byte, length byte, then that many bytes. */
	p = zero != NULL ? zero + 1 : limit;
	while (limit - p >= 2) {
		uint8_t ctl = p[0];
		size_t n = p[1], got = (size_t)j->got;
		uint32_t seq = j->seq, last = ctl & 1;
		uint64_t id = FUZZ_JOB_ID;
		int oracle;

		p += 2;
		if (n > (size_t)(limit - p))
			n = (size_t)(limit - p);
		if (ctl & 2)
			id ^= 1;
		if (ctl & 4)
			last = 2;
		switch ((ctl >> 3) & 3) {
		case 1: seq++; break;
		case 2: seq--; break;
		case 3: seq += 0x80000000U; break;
		}
		ipc_wr_init(&w, IPC_Q2D_CHUNK, 0);
		ipc_put_u64(&w, id);
		ipc_put_u32(&w, seq);
		ipc_put_u32(&w, last);
		ipc_put_blob(&w, p, n);
		fuzz_wr_frame(&w, &f);
		oracle = id == j->id && seq == j->seq && last <= 1 &&
		    (n > 0 || last) && n <= j->size - got &&
		    (!last || got + n == j->size);
		ok = fuzz_chunk(j, &f, oracle);
		ipc_wr_free(&w);
		if (!ok)
			return;
		p += n;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct job j;

	if (size < 1)
		return 0;
	memset(&j, 0, sizeof(j));
	j.fd = -1;
	if (data[0] & 1)
		fuzz_built(&j, data + 1, size - 1);
	else
		fuzz_raw(&j, data + 1, size - 1);
	job_clear(&j);
	return 0;
}
