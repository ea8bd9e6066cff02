/* fuzz-sources: queue-manager/qmgr_ctlproto.c common/util/ipc.c common/util/buf.c common/util/log.c common/util/xmalloc.c */
/*
 * fuzz_qmgr_ctlproto.c: the queue-manager's decoders of moatctl's
 * requests (queue-manager/qmgr_ctlproto.c), on arbitrary bytes.
 *
 * The first byte picks the decoder: even IPC_C2Q_REQUEST, odd
 * IPC_C2Q_SHOW; the rest is the payload.  The promises checked, with
 * __builtin_trap():
 *
 *   REQUEST  success means a command within MOAT_CTL_WORD_MAX, at most
 *            MOAT_CTL_ARGS_MAX pairs, every key within MOAT_CTL_WORD_MAX
 *            and value within MOAT_TEXT_MAX, lookups finding the first
 *            pair with a key, and a re-encoding equal to the payload byte
 *            for byte.  Success or not, the request is released
 *            (LeakSanitizer finds what is not).
 *   SHOW     success means an id within MOAT_QID_MAX whose re-encoding
 *            is the payload byte for byte.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc_types.h"
#include "util/ipc.h"
#include "fuzz_frame.h"
#include "../../queue-manager/qmgr_ctlproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* w's payload equals p[0..n). */
static int
fuzz_same(struct ipc_wr *w, const uint8_t *p, size_t n)
{
	const uint8_t *m;
	size_t len;

	if ((m = ipc_wr_finish(w, &len)) == NULL || len < IPC_HDR_LEN)
		return 0;
	return len - IPC_HDR_LEN == n && memcmp(m + IPC_HDR_LEN, p, n) == 0;
}

static void
fuzz_request(const uint8_t *p, size_t n)
{
	struct ipc_frame f;
	struct qmgr_ctl_req q;
	struct ipc_wr w;
	uint32_t i, k;

	fuzz_frame(&f, IPC_C2Q_REQUEST, p, n);
	if (qmgr_ctlproto_request(&f, &q) == -1) {
		qmgr_ctlproto_request_free(&q);
		return;
	}
	if (strnlen(q.cmd, sizeof(q.cmd)) > MOAT_CTL_WORD_MAX ||
	    q.n > MOAT_CTL_ARGS_MAX)
		__builtin_trap();
	ipc_wr_init(&w, IPC_C2Q_REQUEST, 0);
	ipc_put_str(&w, q.cmd);
	ipc_put_u32(&w, q.n);
	for (i = 0; i < q.n; i++) {
		if (q.key[i] == NULL || q.val[i] == NULL ||
		    strlen(q.key[i]) > MOAT_CTL_WORD_MAX ||
		    strlen(q.val[i]) > MOAT_TEXT_MAX)
			__builtin_trap();
		for (k = 0; k < i; k++)
			if (strcmp(q.key[k], q.key[i]) == 0)
				break;
		if (qmgr_ctlproto_get(&q, q.key[i]) != q.val[k])
			__builtin_trap();
		ipc_put_str(&w, q.key[i]);
		ipc_put_str(&w, q.val[i]);
	}
	if (!fuzz_same(&w, p, n))
		__builtin_trap();
	ipc_wr_free(&w);
	qmgr_ctlproto_request_free(&q);
}

static void
fuzz_show(const uint8_t *p, size_t n)
{
	char id[MOAT_QID_MAX + 1];
	struct ipc_frame f;
	struct ipc_wr w;

	fuzz_frame(&f, IPC_C2Q_SHOW, p, n);
	if (qmgr_ctlproto_show(&f, id, sizeof(id)) == -1)
		return;
	if (strnlen(id, sizeof(id)) > MOAT_QID_MAX)
		__builtin_trap();
	ipc_wr_init(&w, IPC_C2Q_SHOW, 0);
	ipc_put_str(&w, id);
	if (!fuzz_same(&w, p, n))
		__builtin_trap();
	ipc_wr_free(&w);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_show(data + 1, size - 1);
	else
		fuzz_request(data + 1, size - 1);
	return 0;
}
