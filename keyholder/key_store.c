/*
 * key_store.c: parsing the PEM keys moatd hands over, and finding them.
 *
 * The PEM text never touches a file here: moatd read the key files as
 * root and sent them in a sealed memfd, which keyholder.c reads into a
 * buffer that it wipes after this parse.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "key_store.h"

void
key_store_init(struct key_store *ks)
{
	memset(ks, 0, sizeof(*ks));
}

void
key_store_free(struct key_store *ks)
{
	size_t i;

	for (i = 0; i < ks->n; i++)
		EVP_PKEY_free(ks->v[i].pkey);
	memset(ks, 0, sizeof(*ks));
}

int
key_store_id(EVP_PKEY *pkey, uint8_t id[MOAT_KEYID_LEN])
{
	unsigned char *der = NULL;
	unsigned int mdlen = 0;
	int len, ok;

	if ((len = i2d_PUBKEY(pkey, &der)) <= 0)
		return -1;
	ok = EVP_Digest(der, (size_t)len, id, &mdlen, EVP_sha256(), NULL) == 1 &&
	    mdlen == MOAT_KEYID_LEN;
	OPENSSL_free(der);
	return ok ? 0 : -1;
}

/* An encrypted PEM key would otherwise ask for a pass phrase on a terminal. */
static int
key_store_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Only the key types the session side can drive: RSA, ECDSA on NIST curves. */
static int
key_store_describe(EVP_PKEY *pkey, struct key_info *ki, char *err, size_t errlen)
{
	char curve[64];
	int bits;

	memset(ki, 0, sizeof(*ki));
	if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
		bits = EVP_PKEY_get_bits(pkey);
		if (bits < 2048 || bits > MOAT_KEYOP_IN_MAX * 8) {
			snprintf(err, errlen, "RSA key of %d bits (2048 to %d allowed)",
			    bits, MOAT_KEYOP_IN_MAX * 8);
			return -1;
		}
		ki->type = KEY_TYPE_RSA;
		ki->rsa_size = (size_t)EVP_PKEY_get_size(pkey);
	} else if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC) {
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
		    curve, sizeof(curve), NULL) != 1 ||
		    (strcmp(curve, "prime256v1") != 0 &&
		    strcmp(curve, "secp384r1") != 0 &&
		    strcmp(curve, "secp521r1") != 0)) {
			snprintf(err, errlen, "EC key not on P-256, P-384 or P-521");
			return -1;
		}
		ki->type = KEY_TYPE_EC;
	} else {
		snprintf(err, errlen, "key type %s not supported (RSA and ECDSA only)",
		    OBJ_nid2sn(EVP_PKEY_get_base_id(pkey)));
		return -1;
	}
	if (key_store_id(pkey, ki->id) == -1) {
		snprintf(err, errlen, "cannot encode the public key");
		return -1;
	}
	return 0;
}

/* Does the text left in bio hold another PEM private key? */
static int
key_store_more(BIO *bio)
{
	char *rest;
	long left = BIO_get_mem_data(bio, &rest);

	return left > 0 && memmem(rest, (size_t)left, "PRIVATE KEY-----", 16) != NULL;
}

/*
 * Read every key of the PEM text into pk[]; the count, or -1 with err.
 * Other PEM blocks (EC PARAMETERS, a certificate kept in the same file)
 * are skipped; a private key block that does not parse is an error.
 */
static int
key_store_parse(const char *pem, size_t len, EVP_PKEY **pk, size_t max,
    char *err, size_t errlen)
{
	unsigned long e;
	size_t n = 0;
	EVP_PKEY *p;
	BIO *bio;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		snprintf(err, errlen, "cannot read the key text");
		return -1;
	}
	ERR_clear_error();
	while (key_store_more(bio)) {
		if ((p = PEM_read_bio_PrivateKey(bio, NULL, key_store_no_passphrase,
		    NULL)) == NULL) {
			e = ERR_peek_last_error();
			snprintf(err, errlen, "key %zu: %s", n + 1, e != 0 ?
			    ERR_reason_error_string(e) : "not a PEM private key");
			goto fail;
		}
		if (n == max) {
			EVP_PKEY_free(p);
			snprintf(err, errlen, "more than %zu keys", max);
			goto fail;
		}
		pk[n++] = p;
	}
	if (n == 0) {
		snprintf(err, errlen, "no PEM private key in the key files");
		goto fail;
	}
	ERR_clear_error();
	BIO_free(bio);
	return (int)n;
fail:
	ERR_clear_error();
	BIO_free(bio);
	while (n > 0)
		EVP_PKEY_free(pk[--n]);
	return -1;
}

/* Drop generations older than the previous one, keeping the order. */
static void
key_store_expire(struct key_store *ks)
{
	size_t i, j = 0;

	for (i = 0; i < ks->n; i++) {
		if (ks->v[i].gen + 1 < ks->gen)
			EVP_PKEY_free(ks->v[i].pkey);
		else
			ks->v[j++] = ks->v[i];
	}
	memset(&ks->v[j], 0, (ks->n - j) * sizeof(ks->v[0]));
	ks->n = j;
}

int
key_store_load(struct key_store *ks, const char *pem, size_t len,
    size_t *nkeys, char *err, size_t errlen)
{
	EVP_PKEY *pk[KEY_STORE_MAX / 2];
	struct key_info ki[KEY_STORE_MAX / 2];
	size_t i, n;
	int r;

	if ((r = key_store_parse(pem, len, pk, KEY_STORE_MAX / 2, err, errlen)) == -1)
		return -1;
	n = (size_t)r;
	for (i = 0; i < n; i++) {
		char why[160];

		if (key_store_describe(pk[i], &ki[i], why, sizeof(why)) == -1) {
			snprintf(err, errlen, "key %zu: %s", i + 1, why);
			while (n > 0)
				EVP_PKEY_free(pk[--n]);
			return -1;
		}
	}
	ks->gen++;
	key_store_expire(ks);
	for (i = 0; i < n; i++) {
		/* Room is certain: at most one older generation of at most
		 * KEY_STORE_MAX / 2 keys is left. */
		ks->v[ks->n].info = ki[i];
		ks->v[ks->n].pkey = pk[i];
		ks->v[ks->n].gen = ks->gen;
		ks->n++;
	}
	*nkeys = n;
	return 0;
}

const struct key_entry *
key_store_find(const struct key_store *ks, const uint8_t id[MOAT_KEYID_LEN])
{
	size_t i;

	for (i = ks->n; i > 0; i--)
		if (memcmp(ks->v[i - 1].info.id, id, MOAT_KEYID_LEN) == 0)
			return &ks->v[i - 1];
	return NULL;
}
