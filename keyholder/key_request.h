/*
 * key_request.h: what a session may ask the keyholder, decoded and checked.
 *
 * Pure: no OpenSSL, no I/O, no logging, so that the unit tests and the
 * fuzz harness can feed it anything.  A session may send IPC_S2K_SIGN
 * only (common/ipc_types.h); key_request_decode() checks the frame's
 * shape, key_request_check() the request against the key it names.
 */
#ifndef MOAT_KEY_REQUEST_H
#define MOAT_KEY_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "ipc_types.h"
#include "util/ipc.h"

#define KEY_TYPE_RSA	1
#define KEY_TYPE_EC	2

/* OpenSSL's values (openssl/rsa.h), kept here so this file needs no OpenSSL. */
#define KEY_RSA_PKCS1_PADDING	1
#define KEY_RSA_NO_PADDING	3
#define KEY_RSA_PKCS1_OVERHEAD	11	/* 00 01 FF..FF (8 at least) 00 */
#define KEY_ECDSA_DIGEST_MAX	64	/* SHA-512 */

/* What the request checker needs to know of a key. */
struct key_info {
	uint8_t		 id[MOAT_KEYID_LEN];
	int		 type;		/* KEY_TYPE_* */
	size_t		 rsa_size;	/* RSA: modulus length in bytes */
};

struct key_request {
	uint32_t	 reqid;		/* echoed in the answer */
	const uint8_t	*keyid;		/* MOAT_KEYID_LEN bytes, into the frame */
	uint32_t	 op;		/* MOAT_KEYOP_* */
	uint32_t	 padding;	/* KEY_RSA_*_PADDING, 0 for ECDSA */
	const uint8_t	*in;		/* into the frame */
	size_t		 inlen;		/* 1 .. MOAT_KEYOP_IN_MAX */
};

enum key_verdict {
	KEYREQ_OK,
	KEYREQ_FAIL,		/* well-formed but not servable: answer K2S_FAIL */
	KEYREQ_MALFORMED	/* drop the channel */
};

/* Decode an IPC_S2K_SIGN frame; anything else is MALFORMED (*why says why). */
enum key_verdict key_request_decode(const struct ipc_frame *f,
	    struct key_request *req, const char **why);

/*
 * Check a decoded request against the key it names (NULL: not held, a
 * FAIL).  An operation that does not fit the key's type is a FAIL; an
 * input whose length the key cannot take is MALFORMED, since a session
 * that really holds this certificate never sends one.
 */
enum key_verdict key_request_check(const struct key_request *req,
	    const struct key_info *ki, const char **why);

#endif
