/*
 * key_serve.c: one request from a session in, one answer out.
 */
#include "config.h"

#include "ipc_types.h"
#include "keyholder.h"

enum key_verdict
keyholder_answer(const struct key_store *ks, const struct ipc_frame *f,
    struct ipc_wr *w, uint8_t *sig, size_t sigsz, size_t *siglen,
    const char **why)
{
	struct key_request req;
	const struct key_entry *k;
	enum key_verdict v;

	*siglen = 0;
	if ((v = key_request_decode(f, &req, why)) != KEYREQ_OK)
		return v;
	k = key_store_find(ks, req.keyid);
	v = key_request_check(&req, k != NULL ? &k->info : NULL, why);
	if (v == KEYREQ_OK && key_sign(k, &req, sig, sigsz, siglen, why) == -1)
		v = KEYREQ_FAIL;
	if (v == KEYREQ_MALFORMED)
		return v;
	if (v == KEYREQ_OK) {
		ipc_wr_init(w, IPC_K2S_SIGNATURE, req.reqid);
		if (ipc_put_blob(w, sig, *siglen) == 0)
			return KEYREQ_OK;
		ipc_wr_free(w);
		*why = "answer too large";
	}
	ipc_wr_init(w, IPC_K2S_FAIL, req.reqid);
	(void)ipc_put_str(w, *why);
	return KEYREQ_FAIL;
}
