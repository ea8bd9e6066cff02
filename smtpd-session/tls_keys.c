/*
 * tls_keys.c: a private key that lives in the keyholder (see tls_keys.h).
 *
 * The session holds the certificate, hence the public key, and builds
 * from it a key object whose private operations are callbacks: an RSA
 * key with its own RSA_METHOD and an EC key with its own EC_KEY_METHOD.
 * Each callback sends the block to sign to the keyholder
 * (IPC_S2K_SIGN) and waits, a bounded time, for the answer.  OpenSSL
 * 3.0 calls such a key "foreign" and drives it through its legacy code
 * path, which is how an ENGINE-held key works too:
 *
 *   TLS 1.2 RSA PKCS#1 v1.5   RSA_sign() -> priv_enc(DigestInfo, PKCS1)
 *   TLS 1.2/1.3 RSA-PSS       PSS padding here -> priv_enc(block, none)
 *   ECDSA                     ECDSA_sign() -> sign / sign_sig (digest)
 *
 * RSA decryption (priv_dec) is refused: moat's ciphers all use ECDHE,
 * so a server never decrypts with its key.  Ed25519 and Ed448 keys
 * cannot work this way: they sign the whole handshake transcript, not
 * a digest, and OpenSSL has no method hook for them.
 *
 * RSA_METHOD, EC_KEY_METHOD and the legacy key setters are deprecated
 * in OpenSSL 3.0 in favour of providers; a provider would have to be
 * loaded from a module file or built in as a whole key manager and
 * signature implementation, for the same two callbacks.  The legacy
 * methods are still fully supported in 3.x, so the deprecation warnings
 * are silenced for this file alone, before any OpenSSL header.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "ipc_types.h"
#include "tls_keys.h"
#include "util/ipc.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define TLS_KEYS_TIMEOUT_MS	5000	/* one signature, request to answer */
#define TLS_KEYS_SIG_MAX	(MOAT_KEYOP_IN_MAX + 256)

/* What a key's callbacks need: where the keyholder is, which key. */
struct tls_keys_ref {
	int	 fd;
	uint8_t	 id[MOAT_KEYID_LEN];
};

static int tls_keys_rsa_idx = -1;
static int tls_keys_ec_idx = -1;
static RSA_METHOD *tls_keys_rsa_meth;
static EC_KEY_METHOD *tls_keys_ec_meth;
static uint32_t tls_keys_reqid;
static uint8_t *tls_keys_msg;		/* IPC_MAX_MSG bytes, for answers */

static long long
tls_keys_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until deadline; 1 ready, 0 timeout or error. */
static int
tls_keys_wait(int fd, short events, long long deadline)
{
	struct pollfd p;
	long long left;
	int r;

	for (;;) {
		if ((left = deadline - tls_keys_now_ms()) <= 0)
			return 0;
		p.fd = fd;
		p.events = events;
		p.revents = 0;
		if ((r = poll(&p, 1, (int)left)) == -1 && errno == EINTR)
			continue;
		return r == 1 && (p.revents & events) != 0;
	}
}

/* Read the answer to request reqid; its length in *outlen, or -1. */
static int
tls_keys_answer(const struct tls_keys_ref *ref, uint32_t reqid, uint8_t *out,
    size_t outsz, size_t *outlen, long long deadline)
{
	struct ipc_frame f;
	struct ipc_rd r;
	const uint8_t *p;
	const char *why = "";
	char text[MOAT_TEXT_MAX + 1], clean[MOAT_TEXT_MAX + 1];
	size_t n;
	int rc;

	for (;;) {
		if (!tls_keys_wait(ref->fd, POLLIN, deadline)) {
			log_warn("tls=keyholder error=\"no answer within %d ms\"",
			    TLS_KEYS_TIMEOUT_MS);
			return -1;
		}
		if ((rc = ipc_recv(ref->fd, tls_keys_msg, &f, &why)) == -1 &&
		    errno == EINTR)
			continue;
		if (rc != 1) {
			log_warn("tls=keyholder error=\"%s\"", rc == 0 ?
			    "channel closed" : errno == EPROTO ? why : strerror(errno));
			return -1;
		}
		if (f.fd != -1) {
			close(f.fd);
			log_warn("tls=keyholder error=\"descriptor in an answer\"");
			return -1;
		}
		if (f.hdr.reqid == reqid)
			break;
		/* The late answer to a request that timed out: skip it. */
	}
	ipc_rd_init(&r, &f);
	if (f.hdr.type == IPC_K2S_SIGNATURE &&
	    ipc_get_blob(&r, &p, &n, outsz) == 0 && ipc_rd_end(&r) == 0 && n > 0) {
		memcpy(out, p, n);
		*outlen = n;
		return 0;
	}
	if (f.hdr.type == IPC_K2S_FAIL && ipc_get_str(&r, text, sizeof(text)) == 0 &&
	    ipc_rd_end(&r) == 0)
		log_warn("tls=keyholder refused=\"%s\"", log_sanitize(clean,
		    sizeof(clean), text, strlen(text)));
	else
		log_warn("tls=keyholder error=\"malformed answer type=%s\"",
		    ipc_type_name(f.hdr.type));
	return -1;
}

/* One request to the keyholder and its answer; 0 or -1 (logged). */
static int
tls_keys_call(const struct tls_keys_ref *ref, uint32_t op, uint32_t padding,
    const uint8_t *in, size_t inlen, uint8_t *out, size_t outsz, size_t *outlen)
{
	long long deadline = tls_keys_now_ms() + TLS_KEYS_TIMEOUT_MS;
	struct ipc_wr w;
	uint32_t reqid = ++tls_keys_reqid;
	int r;

	if (inlen == 0 || inlen > MOAT_KEYOP_IN_MAX)
		return -1;
	ipc_wr_init(&w, IPC_S2K_SIGN, reqid);
	if (ipc_put_blob(&w, ref->id, MOAT_KEYID_LEN) == -1 ||
	    ipc_put_u32(&w, op) == -1 || ipc_put_u32(&w, padding) == -1 ||
	    ipc_put_blob(&w, in, inlen) == -1) {
		ipc_wr_free(&w);
		return -1;
	}
	if (!tls_keys_wait(ref->fd, POLLOUT, deadline)) {
		ipc_wr_free(&w);
		log_warn("tls=keyholder error=\"channel not writable\"");
		return -1;
	}
	r = ipc_send(ref->fd, &w, -1);
	ipc_wr_free(&w);
	if (r == -1) {
		log_warn("tls=keyholder error=\"send: %s\"", strerror(errno));
		return -1;
	}
	return tls_keys_answer(ref, reqid, out, outsz, outlen, deadline);
}

/* RSA private "encryption", i.e. signing, done by the keyholder. */
static int
tls_keys_rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	const struct tls_keys_ref *ref = RSA_get_ex_data(rsa, tls_keys_rsa_idx);
	uint8_t sig[TLS_KEYS_SIG_MAX];
	size_t len = 0;
	int size = RSA_size(rsa);

	if (ref == NULL || flen <= 0 || size <= 0 ||
	    (padding != RSA_PKCS1_PADDING && padding != RSA_NO_PADDING))
		return -1;
	if (tls_keys_call(ref, MOAT_KEYOP_RSA_PRIVATE, (uint32_t)padding, from,
	    (size_t)flen, sig, sizeof(sig), &len) == -1 || len != (size_t)size)
		return -1;
	memcpy(to, sig, len);
	return size;
}

/* No RSA key exchange in moat: a server never decrypts with its key. */
static int
tls_keys_rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	(void)flen;
	(void)from;
	(void)to;
	(void)rsa;
	(void)padding;
	return -1;
}

/* ECDSA signature of a digest, DER-encoded, by the keyholder. */
static int
tls_keys_ec_sign(int type, const unsigned char *dgst, int dlen,
    unsigned char *sig, unsigned int *siglen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *eckey)
{
	const struct tls_keys_ref *ref = EC_KEY_get_ex_data(eckey, tls_keys_ec_idx);
	uint8_t der[TLS_KEYS_SIG_MAX];
	size_t len = 0;
	int max = ECDSA_size(eckey);

	(void)type;
	if (ref == NULL || kinv != NULL || r != NULL || dlen <= 0 || max <= 0)
		return 0;
	if (tls_keys_call(ref, MOAT_KEYOP_ECDSA_SIGN, 0, dgst, (size_t)dlen, der,
	    sizeof(der), &len) == -1 || len > (size_t)max)
		return 0;
	memcpy(sig, der, len);
	*siglen = (unsigned int)len;
	return 1;
}

/* The same, as an ECDSA_SIG (ECDSA_do_sign). */
static ECDSA_SIG *
tls_keys_ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *eckey)
{
	unsigned char der[TLS_KEYS_SIG_MAX];
	const unsigned char *p = der;
	unsigned int len = 0;

	if (ECDSA_size(eckey) > (int)sizeof(der) ||
	    tls_keys_ec_sign(0, dgst, dlen, der, &len, kinv, r, eckey) != 1)
		return NULL;
	return d2i_ECDSA_SIG(NULL, &p, (long)len);
}

/* A key's reference is freed with the key. */
static void
tls_keys_ref_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

/* The two methods and their ex_data slots, made once. */
static int
tls_keys_methods(void)
{
	if (tls_keys_rsa_meth != NULL)
		return 0;
	tls_keys_rsa_idx = RSA_get_ex_new_index(0, NULL, NULL, NULL,
	    tls_keys_ref_free);
	tls_keys_ec_idx = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL,
	    tls_keys_ref_free);
	if (tls_keys_rsa_idx < 0 || tls_keys_ec_idx < 0)
		return -1;
	if ((tls_keys_ec_meth = EC_KEY_METHOD_new(EC_KEY_get_default_method())) == NULL)
		return -1;
	EC_KEY_METHOD_set_sign(tls_keys_ec_meth, tls_keys_ec_sign, NULL,
	    tls_keys_ec_sign_sig);
	if ((tls_keys_rsa_meth = RSA_meth_dup(RSA_PKCS1_OpenSSL())) == NULL ||
	    RSA_meth_set1_name(tls_keys_rsa_meth, "moat keyholder") != 1 ||
	    RSA_meth_set_flags(tls_keys_rsa_meth,
	    RSA_meth_get_flags(tls_keys_rsa_meth) | RSA_FLAG_EXT_PKEY) != 1 ||
	    RSA_meth_set_priv_enc(tls_keys_rsa_meth, tls_keys_rsa_priv_enc) != 1 ||
	    RSA_meth_set_priv_dec(tls_keys_rsa_meth, tls_keys_rsa_priv_dec) != 1) {
		RSA_meth_free(tls_keys_rsa_meth);
		tls_keys_rsa_meth = NULL;
		return -1;
	}
	tls_keys_msg = xmalloc(IPC_MAX_MSG);
	return 0;
}

/* An RSA key with the certificate's n and e whose private side is remote. */
static EVP_PKEY *
tls_keys_rsa(EVP_PKEY *pub, struct tls_keys_ref *ref)
{
	const RSA *cr = EVP_PKEY_get0_RSA(pub);
	const BIGNUM *n, *e;
	BIGNUM *n2 = NULL, *e2 = NULL;
	EVP_PKEY *pk = NULL;
	RSA *rsa;

	if (cr == NULL || (rsa = RSA_new()) == NULL)
		return NULL;
	RSA_get0_key(cr, &n, &e, NULL);
	if (RSA_set_method(rsa, tls_keys_rsa_meth) != 1 ||
	    (n2 = BN_dup(n)) == NULL || (e2 = BN_dup(e)) == NULL ||
	    RSA_set0_key(rsa, n2, e2, NULL) != 1) {
		BN_free(n2);
		BN_free(e2);
		RSA_free(rsa);
		return NULL;
	}
	if (RSA_set_ex_data(rsa, tls_keys_rsa_idx, ref) != 1 ||
	    (pk = EVP_PKEY_new()) == NULL || EVP_PKEY_assign_RSA(pk, rsa) != 1) {
		/* ref is freed by the caller: detach it first. */
		RSA_set_ex_data(rsa, tls_keys_rsa_idx, NULL);
		RSA_free(rsa);
		EVP_PKEY_free(pk);
		return NULL;
	}
	return pk;
}

/* An EC key on the certificate's curve and point whose signing is remote. */
static EVP_PKEY *
tls_keys_ec(EVP_PKEY *pub, struct tls_keys_ref *ref)
{
	const EC_KEY *ce = EVP_PKEY_get0_EC_KEY(pub);
	EVP_PKEY *pk = NULL;
	EC_KEY *ec;

	if (ce == NULL || (ec = EC_KEY_new()) == NULL)
		return NULL;
	if (EC_KEY_set_method(ec, tls_keys_ec_meth) != 1 ||
	    EC_KEY_set_group(ec, EC_KEY_get0_group(ce)) != 1 ||
	    EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(ce)) != 1 ||
	    EC_KEY_set_ex_data(ec, tls_keys_ec_idx, ref) != 1 ||
	    (pk = EVP_PKEY_new()) == NULL || EVP_PKEY_assign_EC_KEY(pk, ec) != 1) {
		EC_KEY_set_ex_data(ec, tls_keys_ec_idx, NULL);
		EC_KEY_free(ec);
		EVP_PKEY_free(pk);
		return NULL;
	}
	return pk;
}

/*
 * Is the certificate's own SubjectPublicKeyInfo byte for byte what
 * i2d_PUBKEY() would write for its key?  So for RSA with the NULL
 * parameters RFC 3279 requires, and for EC with a named curve and an
 * uncompressed point, the forms i2d_PUBKEY() writes; anything else is
 * re-encoded by i2d_PUBKEY() as before.
 */
static int
tls_keys_spki_canonical(X509_PUBKEY *xpk)
{
	const unsigned char *pk;
	const ASN1_OBJECT *oid;
	const void *pval;
	X509_ALGOR *alg;
	int pklen, ptype;

	if (X509_PUBKEY_get0_param(NULL, &pk, &pklen, &alg, xpk) != 1 || alg == NULL)
		return 0;
	X509_ALGOR_get0(&oid, &ptype, &pval, alg);
	switch (OBJ_obj2nid(oid)) {
	case NID_rsaEncryption:
		return ptype == V_ASN1_NULL;
	case NID_X9_62_id_ecPublicKey:
		return ptype == V_ASN1_OBJECT && pklen > 0 && pk[0] == 0x04;
	default:
		return 0;
	}
}

/*
 * SHA-256 of the leaf's DER SubjectPublicKeyInfo: the key's name, as the
 * keyholder computes it from the private key with i2d_PUBKEY()
 * (keyholder/key_store.c).  Where the certificate already holds those
 * bytes they are taken as they are (i2d_X509_PUBKEY): i2d_PUBKEY() goes
 * through OpenSSL's encoders, whose start-up cost a tenth of a TLS
 * session's CPU.
 */
int
tls_keys_id(X509 *leaf, uint8_t id[MOAT_KEYID_LEN])
{
	X509_PUBKEY *xpk = X509_get_X509_PUBKEY(leaf);
	unsigned char *der = NULL;
	unsigned int mdlen = 0;
	int len, ok;

	if (xpk != NULL && tls_keys_spki_canonical(xpk))
		len = i2d_X509_PUBKEY(xpk, &der);
	else
		len = i2d_PUBKEY(X509_get0_pubkey(leaf), &der);
	if (len <= 0)
		return -1;
	ok = EVP_Digest(der, (size_t)len, id, &mdlen, EVP_sha256(), NULL) == 1 &&
	    mdlen == MOAT_KEYID_LEN;
	OPENSSL_free(der);
	return ok ? 0 : -1;
}

int
tls_keys_use(SSL_CTX *ctx, int keys_fd, char *err, size_t errlen)
{
	struct tls_keys_ref *ref;
	EVP_PKEY *pub, *pk;
	X509 *leaf;
	int type;

	/* Whether keys_fd is open was checked before the sandbox
	 * (smtp_tls_setup()); this may run inside it, where fcntl is not. */
	if (keys_fd < 0) {
		snprintf(err, errlen, "no channel to the keyholder (descriptor %d)",
		    keys_fd);
		return -1;
	}
	if ((leaf = SSL_CTX_get0_certificate(ctx)) == NULL ||
	    (pub = X509_get0_pubkey(leaf)) == NULL) {
		snprintf(err, errlen, "no certificate loaded");
		return -1;
	}
	type = EVP_PKEY_get_base_id(pub);
	if (type != EVP_PKEY_RSA && type != EVP_PKEY_EC) {
		snprintf(err, errlen, "certificate key type %s: only RSA and ECDSA "
		    "keys can be held by the keyholder", OBJ_nid2sn(type));
		return -1;
	}
	if (tls_keys_methods() == -1) {
		snprintf(err, errlen, "cannot set up the key methods");
		return -1;
	}
	ref = xcalloc(1, sizeof(*ref));
	ref->fd = keys_fd;
	if (tls_keys_id(leaf, ref->id) == -1) {
		free(ref);
		snprintf(err, errlen, "cannot encode the certificate's public key");
		return -1;
	}
	pk = type == EVP_PKEY_RSA ? tls_keys_rsa(pub, ref) : tls_keys_ec(pub, ref);
	if (pk == NULL) {
		free(ref);
		snprintf(err, errlen, "cannot build the remote key");
		return -1;
	}
	/* From here the key owns ref. */
	if (SSL_CTX_use_PrivateKey(ctx, pk) != 1) {
		EVP_PKEY_free(pk);
		snprintf(err, errlen, "the certificate does not take the key");
		return -1;
	}
	EVP_PKEY_free(pk);
	return 0;
}
