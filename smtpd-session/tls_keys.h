/*
 * tls_keys.h: the session's TLS private key, held by the keyholder.
 *
 * The smtpd-session talks to strangers on the network; if one of them
 * ever ran code in it, the server's private key must not be there to
 * steal.  So the session loads only the certificate chain and hands
 * every private-key operation of the handshake to the keyholder process
 * over a SEQPACKET channel (IPC_S2K_SIGN, answered by IPC_K2S_SIGNATURE
 * or IPC_K2S_FAIL; see common/ipc_types.h).
 */
#ifndef MOAT_TLS_KEYS_H
#define MOAT_TLS_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "ipc_types.h"

/* Give ctx (which already holds the certificate chain) a private key whose operations are done by the keyholder over fd keys_fd. The key id is the SHA-256 of the leaf's DER SubjectPublicKeyInfo. RSA (PKCS#1 v1.5 and PSS via raw RSA) and ECDSA (P-256, P-384) keys. Called before the sandbox; the signing itself happens later, during the handshake, as a blocking request/answer on keys_fd (bounded by a timeout of a few seconds). 0 or -1 with err. */
int tls_keys_use(SSL_CTX *ctx, int keys_fd, char *err, size_t errlen);

/*
 * The key id of leaf's public key (MOAT_KEYID_LEN bytes): the SHA-256 of
 * its DER SubjectPublicKeyInfo as i2d_PUBKEY() writes it, which is how
 * the keyholder names its keys.  0, or -1 when it cannot be encoded.
 */
int tls_keys_id(X509 *leaf, uint8_t id[MOAT_KEYID_LEN]);

#endif
