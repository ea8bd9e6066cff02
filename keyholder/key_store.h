/*
 * key_store.h: the private keys the keyholder serves.
 *
 * Keys arrive as PEM text in a memfd from moatd (IPC_L2K_KEYS), at start
 * and at every reload.  Each load is a generation; the keys of the
 * generation before it stay usable, so that a session that loaded the
 * old certificate just before a reload can still finish its handshake.
 * Older generations are freed (OpenSSL clears private key memory as it
 * frees it).  A key is named by the SHA-256 of its DER
 * SubjectPublicKeyInfo, which the session computes from its certificate.
 */
#ifndef MOAT_KEY_STORE_H
#define MOAT_KEY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "key_request.h"

#define KEY_STORE_MAX	64		/* keys held at most (two generations) */

struct key_entry {
	struct key_info	 info;
	EVP_PKEY	*pkey;
	unsigned int	 gen;
};

struct key_store {
	struct key_entry v[KEY_STORE_MAX];
	size_t		 n;
	unsigned int	 gen;		/* the newest generation */
};

void	key_store_init(struct key_store *ks);
void	key_store_free(struct key_store *ks);

/*
 * Parse every PEM private key in pem[0..len) as a new generation and
 * drop the generations before the previous one.  All or nothing: on
 * error (-1, err) the store is unchanged.  *nkeys is the count loaded.
 */
int	key_store_load(struct key_store *ks, const char *pem, size_t len,
	    size_t *nkeys, char *err, size_t errlen);

/* The newest key with this id, or NULL. */
const struct key_entry *key_store_find(const struct key_store *ks,
	    const uint8_t id[MOAT_KEYID_LEN]);

/* SHA-256 of the DER SubjectPublicKeyInfo of pkey; 0 or -1. */
int	key_store_id(EVP_PKEY *pkey, uint8_t id[MOAT_KEYID_LEN]);

/* key_sign.c: do the private-key operation of a checked request. */
int	key_sign(const struct key_entry *k, const struct key_request *req,
	    uint8_t *out, size_t outsz, size_t *outlen, const char **why);

#endif
