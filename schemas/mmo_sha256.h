/* mmo_sha256.h - SHA-256, the project's one cryptographic digest (OpenSSL
 * EVP underneath): the log's hash chain, the world's state hash, audit
 * exports. */
#ifndef MMO_SHA256_H
#define MMO_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define MMO_SHA256_LEN 32

/* A running digest. Plain struct so it can live on the stack; the context it
 * holds is owned by it from a successful mmo_sha256_init() until
 * mmo_sha256_final(). */
struct evp_md_ctx_st; /* OpenSSL's EVP_MD_CTX: callers need no OpenSSL headers */

struct mmo_sha256 {
	struct evp_md_ctx_st *ctx;
};

/* Start a digest. MMO_OK, MMO_ENOMEM, or MMO_EIO when OpenSSL refuses; on
 * failure nothing is held and s must not be used. */
int mmo_sha256_init(struct mmo_sha256 *s);

/* Add n bytes at p (borrowed for the call; p may be NULL when n is 0). */
void mmo_sha256_update(struct mmo_sha256 *s, const void *p, size_t n);

/* Write the digest to out and free the context: s must be initialised again
 * before any further use. */
void mmo_sha256_final(struct mmo_sha256 *s, uint8_t out[MMO_SHA256_LEN]);

/* One shot: the digest of n bytes at p. MMO_OK or MMO_EIO/MMO_ENOMEM (out is
 * then untouched). */
int mmo_sha256(const void *p, size_t n, uint8_t out[MMO_SHA256_LEN]);

/* Lowercase hex of a digest, NUL-terminated. */
void mmo_sha256_hex(const uint8_t d[MMO_SHA256_LEN], char out[2 * MMO_SHA256_LEN + 1]);

#endif
