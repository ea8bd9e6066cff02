/* fuzz-sources: keyholder/key_request.c common/util/ipc.c common/util/buf.c common/util/log.c common/util/xmalloc.c */
/*
 * fuzz_keyholder.c: the keyholder's request decoder and checker
 * (keyholder/key_request.c) on arbitrary bytes.
 *
 * The first byte chooses the key the request is checked against (none,
 * EC, or RSA of 128, 256, 512 or 1024 bytes) and whether the rest is a
 * whole datagram (header included, through ipc_frame_decode) or the
 * payload of an IPC_S2K_SIGN frame.  Promises checked with
 * __builtin_trap():
 *   - a request that decodes has a 32-byte key id, an operation and
 *     padding the protocol knows, 1..MOAT_KEYOP_IN_MAX bytes of input
 *     (at most 64 for ECDSA), and encoding its fields again gives the
 *     payload byte for byte;
 *   - a request that passes the check fits its key: raw RSA input is
 *     exactly the modulus size, PKCS#1 input leaves 11 bytes for the
 *     padding, the operation matches the key type, an unknown key never
 *     passes.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "fuzz_frame.h"
#include "ipc_types.h"
#include "../../keyholder/key_request.h"
#include "util/ipc.h"

static const size_t fuzz_rsa_sizes[] = { 128, 256, 512, 1024 };

/* The same fields, encoded again, must give the payload back. */
static void
fuzz_reencode(const struct ipc_frame *f, const struct key_request *req)
{
	struct ipc_wr w;
	const uint8_t *m;
	size_t len;

	ipc_wr_init(&w, IPC_S2K_SIGN, req->reqid);
	if (ipc_put_blob(&w, req->keyid, MOAT_KEYID_LEN) == -1 ||
	    ipc_put_u32(&w, req->op) == -1 || ipc_put_u32(&w, req->padding) == -1 ||
	    ipc_put_blob(&w, req->in, req->inlen) == -1 ||
	    (m = ipc_wr_finish(&w, &len)) == NULL || len - IPC_HDR_LEN != f->len ||
	    memcmp(m + IPC_HDR_LEN, f->payload, f->len) != 0)
		__builtin_trap();
	ipc_wr_free(&w);
}

static void
fuzz_decoded(const struct ipc_frame *f, const struct key_request *req)
{
	if (req->inlen == 0 || req->inlen > MOAT_KEYOP_IN_MAX)
		__builtin_trap();
	if (req->op == MOAT_KEYOP_RSA_PRIVATE) {
		if (req->padding != KEY_RSA_NO_PADDING &&
		    req->padding != KEY_RSA_PKCS1_PADDING)
			__builtin_trap();
	} else if (req->op == MOAT_KEYOP_ECDSA_SIGN) {
		if (req->padding != 0 || req->inlen > KEY_ECDSA_DIGEST_MAX)
			__builtin_trap();
	} else
		__builtin_trap();
	fuzz_reencode(f, req);
}

static void
fuzz_checked(const struct key_request *req, const struct key_info *ki)
{
	if (ki == NULL)
		__builtin_trap();
	if (req->op == MOAT_KEYOP_ECDSA_SIGN && ki->type != KEY_TYPE_EC)
		__builtin_trap();
	if (req->op == MOAT_KEYOP_RSA_PRIVATE) {
		if (ki->type != KEY_TYPE_RSA)
			__builtin_trap();
		if (req->padding == KEY_RSA_NO_PADDING && req->inlen != ki->rsa_size)
			__builtin_trap();
		if (req->padding == KEY_RSA_PKCS1_PADDING &&
		    req->inlen + KEY_RSA_PKCS1_OVERHEAD > ki->rsa_size)
			__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct key_request req;
	struct key_info ki, *kp = &ki;
	struct ipc_frame f;
	const char *why = "";
	unsigned int choice;

	if (size < 1)
		return 0;
	choice = data[0];
	data++;
	size--;
	memset(&ki, 0, sizeof(ki));
	switch (choice % 6) {
	case 0:
		kp = NULL;
		break;
	case 1:
		ki.type = KEY_TYPE_EC;
		break;
	default:
		ki.type = KEY_TYPE_RSA;
		ki.rsa_size = fuzz_rsa_sizes[choice % 6 - 2];
	}
	if ((choice / 6) % 2 == 0) {
		if (ipc_frame_decode(data, size, &f, &why) == -1)
			return 0;
		f.fd = -1;
	} else
		fuzz_frame(&f, IPC_S2K_SIGN, data, size);
	if (key_request_decode(&f, &req, &why) != KEYREQ_OK)
		return 0;
	fuzz_decoded(&f, &req);
	if (kp != NULL)
		memcpy(ki.id, req.keyid, MOAT_KEYID_LEN);
	if (key_request_check(&req, kp, &why) == KEYREQ_OK)
		fuzz_checked(&req, kp);
	return 0;
}
