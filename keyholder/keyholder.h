/*
 * keyholder.h: the keyholder's pieces, shared by its files and tests.
 *
 * keyholder.c    main(): start-up, the poll() loop over moatd and sessions
 * key_request.c  decoding and checking IPC_S2K_SIGN (pure, fuzzed)
 * key_store.c    the keys, parsed from the PEM text moatd sends
 * key_sign.c     the RSA and ECDSA private-key operations
 * key_serve.c    one request in, one answer out
 * sandbox.c      the seccomp table
 */
#ifndef MOAT_KEYHOLDER_H
#define MOAT_KEYHOLDER_H

#include <stddef.h>
#include <stdint.h>

#include "key_request.h"
#include "key_store.h"
#include "util/ipc.h"

/*
 * Answer one frame from a session.  KEYREQ_OK: *w holds
 * IPC_K2S_SIGNATURE (the signature is also in sig[0..*siglen), which the
 * caller wipes); KEYREQ_FAIL: *w holds IPC_K2S_FAIL; both echo the
 * request id and must be freed with ipc_wr_free().  KEYREQ_MALFORMED: *w
 * is untouched and the channel must be dropped.  *why says why not.
 */
enum key_verdict keyholder_answer(const struct key_store *ks,
	    const struct ipc_frame *f, struct ipc_wr *w, uint8_t *sig,
	    size_t sigsz, size_t *siglen, const char **why);

/* sandbox.c */
int	keyholder_sandbox_apply(char *err, size_t errlen);

#endif
