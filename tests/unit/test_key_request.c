/*
 * test_key_request.c: the keyholder's request decoder and checker
 * (keyholder/key_request.c) against well-formed and hostile frames, and
 * its key store (keyholder/key_store.c): PEM parsing, refused key
 * types, generations kept across reloads.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ipc_types.h"
#include "keyholder/key_request.h"
#include "keyholder/key_store.h"
#include "t.h"
#include "util/ipc.h"

/* How a test request is built: which fields, and what they hold. */
struct req_case {
	const char	*label;
	uint32_t	 type;
	int		 pass_fd;
	size_t		 idlen;		/* 0: field missing */
	int		 has_op, has_pad;
	uint32_t	 op, padding;
	int		 has_in;
	size_t		 inlen;
	int		 trailing;	/* one more byte after the last field */
	enum key_verdict decode;	/* expected from key_request_decode */
	/* then, if it decoded: */
	int		 keytype;	/* 0: unknown key */
	size_t		 rsa_size;
	enum key_verdict check;
};

#define RSA_OP	MOAT_KEYOP_RSA_PRIVATE
#define EC_OP	MOAT_KEYOP_ECDSA_SIGN
#define RAW	KEY_RSA_NO_PADDING
#define PKCS1	KEY_RSA_PKCS1_PADDING

static const struct req_case req_cases[] = {
	{ "RSA raw, 256-byte block, 2048-bit key", IPC_S2K_SIGN, 0, 32, 1, 1, RSA_OP, RAW, 1, 256, 0,
	  KEYREQ_OK, KEY_TYPE_RSA, 256, KEYREQ_OK },
	{ "RSA PKCS#1, 51-byte DigestInfo", IPC_S2K_SIGN, 0, 32, 1, 1, RSA_OP, PKCS1, 1, 51, 0,
	  KEYREQ_OK, KEY_TYPE_RSA, 256, KEYREQ_OK },
	{ "RSA PKCS#1, input = size - 11 (largest)", IPC_S2K_SIGN, 0, 32, 1, 1, RSA_OP, PKCS1, 1, 245, 0,
	  KEYREQ_OK, KEY_TYPE_RSA, 256, KEYREQ_OK },
	{ "RSA PKCS#1, input = size - 10 (no room to pad)", IPC_S2K_SIGN, 0, 32, 1, 1, RSA_OP, PKCS1, 1, 246, 0,
	  KEYREQ_OK, KEY_TYPE_RSA, 256, KEYREQ_MALFORMED },
	{ "RSA raw, block one byte short", IPC_S2K_SIGN, 0, 32, 1, 1, RSA_OP, RAW, 1, 255, 0,
	  KEYREQ_OK, KEY_TYPE_RSA, 256, KEYREQ_MALFORMED },
	{ "RSA raw, block one byte long", IPC_S2K_SIGN, 0, 32, 1, 1, RSA_OP, RAW, 1, 257, 0,
	  KEYREQ_OK, KEY_TYPE_RSA, 256, KEYREQ_MALFORMED },
	{ "RSA raw, 8192-bit block (1024 bytes)", IPC_S2K_SIGN, 0, 32, 1, 1, RSA_OP, RAW, 1, 1024, 0,
	  KEYREQ_OK, KEY_TYPE_RSA, 1024, KEYREQ_OK },
	{ "ECDSA, SHA-256 digest", IPC_S2K_SIGN, 0, 32, 1, 1, EC_OP, 0, 1, 32, 0,
	  KEYREQ_OK, KEY_TYPE_EC, 0, KEYREQ_OK },
	{ "ECDSA, 64-byte digest (largest)", IPC_S2K_SIGN, 0, 32, 1, 1, EC_OP, 0, 1, 64, 0,
	  KEYREQ_OK, KEY_TYPE_EC, 0, KEYREQ_OK },
	{ "unknown key id", IPC_S2K_SIGN, 0, 32, 1, 1, EC_OP, 0, 1, 32, 0,
	  KEYREQ_OK, 0, 0, KEYREQ_FAIL },
	{ "RSA operation on an EC key", IPC_S2K_SIGN, 0, 32, 1, 1, RSA_OP, RAW, 1, 256, 0,
	  KEYREQ_OK, KEY_TYPE_EC, 0, KEYREQ_FAIL },
	{ "ECDSA operation on an RSA key", IPC_S2K_SIGN, 0, 32, 1, 1, EC_OP, 0, 1, 32, 0,
	  KEYREQ_OK, KEY_TYPE_RSA, 256, KEYREQ_FAIL },
	/* hostile frames: the channel is dropped */
	{ "wrong message type (K2S_SIGNATURE)", IPC_K2S_SIGNATURE, 0, 32, 1, 1, EC_OP, 0, 1, 32, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "wrong message type (L2K_KEYS)", IPC_L2K_KEYS, 0, 32, 1, 1, EC_OP, 0, 1, 32, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "descriptor passed with a request", IPC_S2K_SIGN, 1, 32, 1, 1, EC_OP, 0, 1, 32, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "key id of 31 bytes", IPC_S2K_SIGN, 0, 31, 1, 1, EC_OP, 0, 1, 32, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "key id of 33 bytes", IPC_S2K_SIGN, 0, 33, 1, 1, EC_OP, 0, 1, 32, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "empty payload", IPC_S2K_SIGN, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "truncated after the key id", IPC_S2K_SIGN, 0, 32, 0, 0, 0, 0, 0, 0, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "truncated after the operation", IPC_S2K_SIGN, 0, 32, 1, 0, EC_OP, 0, 0, 0, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "truncated before the input", IPC_S2K_SIGN, 0, 32, 1, 1, EC_OP, 0, 0, 0, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "trailing byte", IPC_S2K_SIGN, 0, 32, 1, 1, EC_OP, 0, 1, 32, 1,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "empty input", IPC_S2K_SIGN, 0, 32, 1, 1, EC_OP, 0, 1, 0, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "input over MOAT_KEYOP_IN_MAX", IPC_S2K_SIGN, 0, 32, 1, 1, RSA_OP, RAW, 1, 1025, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "operation 0", IPC_S2K_SIGN, 0, 32, 1, 1, 0, 0, 1, 32, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "operation 3", IPC_S2K_SIGN, 0, 32, 1, 1, 3, 0, 1, 32, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "operation 0xffffffff", IPC_S2K_SIGN, 0, 32, 1, 1, 0xffffffffu, 0, 1, 32, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "RSA with OAEP padding (4)", IPC_S2K_SIGN, 0, 32, 1, 1, RSA_OP, 4, 1, 256, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "RSA with padding 0", IPC_S2K_SIGN, 0, 32, 1, 1, RSA_OP, 0, 1, 256, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "ECDSA with a padding", IPC_S2K_SIGN, 0, 32, 1, 1, EC_OP, PKCS1, 1, 32, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
	{ "ECDSA digest of 65 bytes", IPC_S2K_SIGN, 0, 32, 1, 1, EC_OP, 0, 1, 65, 0,
	  KEYREQ_MALFORMED, 0, 0, 0 },
};

/* Build the frame a case describes; the bytes stay in w. */
static int
req_frame(const struct req_case *c, struct ipc_wr *w, struct ipc_frame *f)
{
	static uint8_t id[64], in[MOAT_KEYOP_IN_MAX + 8];
	const uint8_t *m;
	const char *why;
	size_t len;

	memset(id, 0xab, sizeof(id));
	memset(in, 0x5a, sizeof(in));
	ipc_wr_init(w, c->type, 77);
	if (c->idlen > 0)
		(void)ipc_put_blob(w, id, c->idlen);
	if (c->has_op)
		(void)ipc_put_u32(w, c->op);
	if (c->has_pad)
		(void)ipc_put_u32(w, c->padding);
	if (c->has_in)
		(void)ipc_put_blob(w, in, c->inlen);
	if (c->trailing)
		(void)ipc_put_u32(w, 0);	/* then cut to one byte below */
	if ((m = ipc_wr_finish(w, &len)) == NULL)
		return -1;
	if (c->trailing) {
		/* Keep exactly one byte of the extra field. */
		len -= 3;
		((uint32_t *)(void *)w->b.data)[1] = (uint32_t)(len - IPC_HDR_LEN);
	}
	if (ipc_frame_decode(w->b.data, len, f, &why) == -1)
		return -1;
	f->fd = c->pass_fd ? 9 : -1;
	return 0;
}

static void
test_requests(void)
{
	size_t i;

	for (i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
		const struct req_case *c = &req_cases[i];
		struct key_request req;
		struct key_info ki;
		struct ipc_frame f;
		struct ipc_wr w;
		const char *why = "";
		enum key_verdict v;

		if (req_frame(c, &w, &f) == -1) {
			T_OK(0, "%s: frame built", c->label);
			ipc_wr_free(&w);
			continue;
		}
		v = key_request_decode(&f, &req, &why);
		T_OK(v == c->decode, "decode: %s (got %d: %s)", c->label, (int)v, why);
		if (v == KEYREQ_OK && c->decode == KEYREQ_OK) {
			T_OK(req.reqid == 77 && req.inlen == c->inlen &&
			    req.op == c->op && req.padding == c->padding,
			    "decode: %s: fields as sent", c->label);
			memset(&ki, 0, sizeof(ki));
			memset(ki.id, 0xab, sizeof(ki.id));
			ki.type = c->keytype;
			ki.rsa_size = c->rsa_size;
			v = key_request_check(&req, c->keytype ? &ki : NULL, &why);
			T_OK(v == c->check, "check: %s (got %d: %s)", c->label, (int)v, why);
		}
		ipc_wr_free(&w);
	}
}

/* PEM text of a fresh key of this algorithm, appended to *text. */
static EVP_PKEY *
gen_pem(const char *alg, const char *param, size_t bits, char **text, size_t *len)
{
	EVP_PKEY *k;
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	if (strcmp(alg, "RSA") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
	else if (param != NULL)
		k = EVP_PKEY_Q_keygen(NULL, NULL, alg, param);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, alg);
	if (k == NULL || PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1)
		abort();
	n = BIO_get_mem_data(b, &p);
	*text = realloc(*text, *len + (size_t)n + 1);
	memcpy(*text + *len, p, (size_t)n);
	*len += (size_t)n;
	(*text)[*len] = '\0';
	BIO_free(b);
	return k;
}

static void
test_store(void)
{
	struct key_store ks;
	EVP_PKEY *rsa, *ec, *ec2, *k;
	uint8_t id_rsa[MOAT_KEYID_LEN], id_ec[MOAT_KEYID_LEN], id_ec2[MOAT_KEYID_LEN];
	char *text = NULL, err[256];
	size_t len = 0, n = 0;
	const struct key_entry *e;
	BIO *b;
	char *p;
	long pn;

	key_store_init(&ks);
	rsa = gen_pem("RSA", NULL, 2048, &text, &len);
	ec = gen_pem("EC", "P-256", 0, &text, &len);
	T_OK(key_store_load(&ks, text, len, &n, err, sizeof(err)) == 0 && n == 2,
	    "store: RSA + EC PEM loads two keys (%s)", err);
	T_OK(key_store_id(rsa, id_rsa) == 0 && key_store_id(ec, id_ec) == 0,
	    "store: key ids computed");
	e = key_store_find(&ks, id_rsa);
	T_OK(e != NULL && e->info.type == KEY_TYPE_RSA && e->info.rsa_size == 256,
	    "store: RSA key found with its size");
	e = key_store_find(&ks, id_ec);
	T_OK(e != NULL && e->info.type == KEY_TYPE_EC, "store: EC key found");

	/* A reload: the previous generation stays, the one before goes. */
	free(text);
	text = NULL;
	len = 0;
	ec2 = gen_pem("EC", "P-384", 0, &text, &len);
	T_OK(key_store_load(&ks, text, len, &n, err, sizeof(err)) == 0 && n == 1,
	    "store: second generation loads (%s)", err);
	T_OK(key_store_id(ec2, id_ec2) == 0 && key_store_find(&ks, id_ec2) != NULL &&
	    key_store_find(&ks, id_rsa) != NULL && key_store_find(&ks, id_ec) != NULL,
	    "store: new key and previous generation both held");
	T_OK(key_store_load(&ks, text, len, &n, err, sizeof(err)) == 0,
	    "store: third generation loads");
	T_OK(key_store_find(&ks, id_rsa) == NULL && key_store_find(&ks, id_ec) == NULL &&
	    key_store_find(&ks, id_ec2) != NULL,
	    "store: the first generation is gone after two reloads");

	/* Refusals leave the store as it was. */
	n = ks.n;
	T_OK(key_store_load(&ks, "garbage\n", 8, &len, err, sizeof(err)) == -1 &&
	    ks.n == n, "store: text without a key refused (%s)", err);
	T_OK(key_store_load(&ks, text, len > 40 ? 40 : len, &len, err, sizeof(err)) == -1 &&
	    ks.n == n, "store: truncated PEM refused (%s)", err);
	free(text);

	text = NULL;
	len = 0;
	k = gen_pem("ED25519", NULL, 0, &text, &len);
	T_OK(key_store_load(&ks, text, len, &n, err, sizeof(err)) == -1 &&
	    strstr(err, "not supported") != NULL, "store: Ed25519 refused (%s)", err);
	EVP_PKEY_free(k);
	free(text);

	text = NULL;
	len = 0;
	k = gen_pem("RSA", NULL, 1024, &text, &len);
	T_OK(key_store_load(&ks, text, len, &n, err, sizeof(err)) == -1,
	    "store: 1024-bit RSA refused (%s)", err);
	EVP_PKEY_free(k);
	free(text);

	/* An encrypted key must not prompt for a pass phrase. */
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, ec, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)"secret");
	pn = BIO_get_mem_data(b, &p);
	T_OK(key_store_load(&ks, p, (size_t)pn, &n, err, sizeof(err)) == -1,
	    "store: encrypted key refused without a prompt (%s)", err);
	BIO_free(b);

	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ec2);
	key_store_free(&ks);
}

int
main(void)
{
	test_requests();
	test_store();
	return t_done();
}
