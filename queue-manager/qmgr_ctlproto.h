/*
 * qmgr_ctlproto.h: decoding what moatctl sends the queue-manager.
 *
 * IPC_C2Q_REQUEST (a command and key/value arguments) and IPC_C2Q_SHOW
 * (one queue id) are turned into structs here, with every check the
 * bytes alone can answer: the command and key caps (MOAT_CTL_WORD_MAX),
 * the value cap (MOAT_TEXT_MAX), the argument count (MOAT_CTL_ARGS_MAX),
 * no NUL inside a string, and that the payload ends exactly where
 * decoding ends.  Nothing here touches the database or the event loop,
 * so it is unit-tested and fuzzed alone.  Which commands exist, who may
 * run them and what the arguments mean stays in qmgr_control.c.
 */
#ifndef MOAT_QMGR_CTLPROTO_H
#define MOAT_QMGR_CTLPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "ipc_types.h"
#include "util/ipc.h"

/* A decoded IPC_C2Q_REQUEST. */
struct qmgr_ctl_req {
	char		 cmd[MOAT_CTL_WORD_MAX + 1];
	uint32_t	 n;		/* pairs in key[0 .. n), val[0 .. n) */
	char		**key;
	char		**val;
};

/*
 * Decode an IPC_C2Q_REQUEST payload into *q; 0, or -1 when malformed.
 * Either way *q must be released with qmgr_ctlproto_request_free().
 */
int	qmgr_ctlproto_request(const struct ipc_frame *f, struct qmgr_ctl_req *q);
void	qmgr_ctlproto_request_free(struct qmgr_ctl_req *q);
/* The value of key (the first one), or NULL. */
const char *qmgr_ctlproto_get(const struct qmgr_ctl_req *q, const char *key);

/*
 * Decode an IPC_C2Q_SHOW payload: one string of at most idsz - 1 bytes
 * into id.  0, or -1 when malformed.  Whether it is a queue id is the
 * caller's question.
 */
int	qmgr_ctlproto_show(const struct ipc_frame *f, char *id, size_t idsz);

#endif
