/*
 * key_sign.c: the private-key operations the keyholder does for sessions.
 *
 * Only what a TLS server's handshake needs: an RSA private-key operation
 * on one block (raw, for RSA-PSS padded by the session, or with PKCS#1
 * v1.5 signature padding added here), and an ECDSA signature of a
 * digest, DER-encoded.  No decryption: moat offers only ECDHE key
 * exchange, so no session ever needs one.  The request was decoded and
 * checked against the key (key_request.c) before it gets here.
 */
#include "config.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "key_store.h"

int
key_sign(const struct key_entry *k, const struct key_request *req,
    uint8_t *out, size_t outsz, size_t *outlen, const char **why)
{
	EVP_PKEY_CTX *c;
	size_t len = outsz;
	int ok;

	if ((c = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	ok = EVP_PKEY_sign_init(c) == 1;
	if (ok && req->op == MOAT_KEYOP_RSA_PRIVATE)
		ok = EVP_PKEY_CTX_set_rsa_padding(c, req->padding ==
		    KEY_RSA_NO_PADDING ? RSA_NO_PADDING : RSA_PKCS1_PADDING) == 1;
	if (ok)
		ok = EVP_PKEY_sign(c, out, &len, req->in, req->inlen) == 1;
	EVP_PKEY_CTX_free(c);
	ERR_clear_error();
	if (!ok) {
		*why = "signing failed";
		return -1;
	}
	if (req->op == MOAT_KEYOP_RSA_PRIVATE && len != k->info.rsa_size) {
		*why = "RSA result not the modulus size";
		return -1;
	}
	*outlen = len;
	return 0;
}
