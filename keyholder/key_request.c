/*
 * key_request.c: decoding and checking IPC_S2K_SIGN (see key_request.h).
 *
 * Everything a session says is hostile until proven otherwise: every
 * field is read with the checking cursor of util/ipc.h, the payload must
 * end exactly after the last field, and the input must have the one
 * length the named key can take, so the signing code never sees a
 * block it was not built for.
 */
#include "config.h"

#include <string.h>

#include "key_request.h"

enum key_verdict
key_request_decode(const struct ipc_frame *f, struct key_request *req,
    const char **why)
{
	struct ipc_rd r;
	const uint8_t *keyid;
	size_t idlen;

	memset(req, 0, sizeof(*req));
	if (f->hdr.type != IPC_S2K_SIGN) {
		*why = "message type not allowed from a session";
		return KEYREQ_MALFORMED;
	}
	if (f->fd != -1) {
		*why = "descriptor passed with a request";
		return KEYREQ_MALFORMED;
	}
	req->reqid = f->hdr.reqid;
	ipc_rd_init(&r, f);
	if (ipc_get_blob(&r, &keyid, &idlen, MOAT_KEYID_LEN) == -1 ||
	    idlen != MOAT_KEYID_LEN) {
		*why = "bad key id";
		return KEYREQ_MALFORMED;
	}
	req->keyid = keyid;
	req->op = ipc_get_u32(&r);
	req->padding = ipc_get_u32(&r);
	if (ipc_get_blob(&r, &req->in, &req->inlen, MOAT_KEYOP_IN_MAX) == -1 ||
	    ipc_rd_end(&r) == -1) {
		*why = "truncated request or trailing bytes";
		return KEYREQ_MALFORMED;
	}
	if (req->inlen == 0) {
		*why = "empty input";
		return KEYREQ_MALFORMED;
	}
	switch (req->op) {
	case MOAT_KEYOP_RSA_PRIVATE:
		if (req->padding != KEY_RSA_PKCS1_PADDING &&
		    req->padding != KEY_RSA_NO_PADDING) {
			*why = "unknown RSA padding";
			return KEYREQ_MALFORMED;
		}
		break;
	case MOAT_KEYOP_ECDSA_SIGN:
		if (req->padding != 0) {
			*why = "padding given for ECDSA";
			return KEYREQ_MALFORMED;
		}
		if (req->inlen > KEY_ECDSA_DIGEST_MAX) {
			*why = "ECDSA digest longer than 64 bytes";
			return KEYREQ_MALFORMED;
		}
		break;
	default:
		*why = "unknown operation";
		return KEYREQ_MALFORMED;
	}
	return KEYREQ_OK;
}

/* The input lengths an RSA key of this size takes with this padding. */
static enum key_verdict
key_request_check_rsa(const struct key_request *req, const struct key_info *ki,
    const char **why)
{
	if (ki->rsa_size == 0 || ki->rsa_size > MOAT_KEYOP_IN_MAX) {
		*why = "RSA key size out of range";
		return KEYREQ_FAIL;
	}
	/* Raw RSA (PSS, padded by the session) is exactly one block. */
	if (req->padding == KEY_RSA_NO_PADDING && req->inlen != ki->rsa_size) {
		*why = "raw RSA input is not the modulus size";
		return KEYREQ_MALFORMED;
	}
	/* PKCS#1 v1.5: the keyholder pads, so room must remain for it. */
	if (req->padding == KEY_RSA_PKCS1_PADDING &&
	    req->inlen + KEY_RSA_PKCS1_OVERHEAD > ki->rsa_size) {
		*why = "PKCS#1 input too long for the key";
		return KEYREQ_MALFORMED;
	}
	return KEYREQ_OK;
}

enum key_verdict
key_request_check(const struct key_request *req, const struct key_info *ki,
    const char **why)
{
	if (ki == NULL) {
		*why = "unknown key";
		return KEYREQ_FAIL;
	}
	if (req->op == MOAT_KEYOP_RSA_PRIVATE && ki->type != KEY_TYPE_RSA) {
		*why = "RSA operation on a key that is not RSA";
		return KEYREQ_FAIL;
	}
	if (req->op == MOAT_KEYOP_ECDSA_SIGN && ki->type != KEY_TYPE_EC) {
		*why = "ECDSA operation on a key that is not EC";
		return KEYREQ_FAIL;
	}
	if (req->op == MOAT_KEYOP_RSA_PRIVATE)
		return key_request_check_rsa(req, ki, why);
	return KEYREQ_OK;
}
