/*
 * qmgr_ctlproto.c: decode moatctl's requests to the queue-manager (see
 * qmgr_ctlproto.h).  moatctl runs as any member of admin_group, so its
 * bytes are checked like any other peer's before qmgr_control.c acts.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ipc_types.h"
#include "qmgr_ctlproto.h"
#include "util/ipc.h"
#include "util/xmalloc.h"

int
qmgr_ctlproto_request(const struct ipc_frame *f, struct qmgr_ctl_req *q)
{
	struct ipc_rd r;
	uint32_t i, n;

	memset(q, 0, sizeof(*q));
	ipc_rd_init(&r, f);
	if (ipc_get_str(&r, q->cmd, sizeof(q->cmd)) == -1)
		return -1;
	n = ipc_get_u32(&r);
	if (r.err || n > MOAT_CTL_ARGS_MAX)
		return -1;
	q->key = xcalloc(n + 1, sizeof(char *));
	q->val = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		q->key[i] = ipc_get_strdup(&r, MOAT_CTL_WORD_MAX);
		q->val[i] = ipc_get_strdup(&r, MOAT_TEXT_MAX);
		if (q->key[i] == NULL || q->val[i] == NULL) {
			free(q->key[i]);
			free(q->val[i]);
			q->n = i;
			return -1;
		}
		q->n = i + 1;
	}
	return ipc_rd_end(&r);
}

void
qmgr_ctlproto_request_free(struct qmgr_ctl_req *q)
{
	uint32_t i;

	for (i = 0; i < q->n; i++) {
		free(q->key[i]);
		free(q->val[i]);
	}
	free(q->key);
	free(q->val);
}

const char *
qmgr_ctlproto_get(const struct qmgr_ctl_req *q, const char *key)
{
	uint32_t i;

	for (i = 0; i < q->n; i++)
		if (strcmp(q->key[i], key) == 0)
			return q->val[i];
	return NULL;
}

int
qmgr_ctlproto_show(const struct ipc_frame *f, char *id, size_t idsz)
{
	struct ipc_rd r;

	ipc_rd_init(&r, f);
	if (ipc_get_str(&r, id, idsz) == -1 || ipc_rd_end(&r) == -1)
		return -1;
	return 0;
}
