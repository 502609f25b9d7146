/* mmo_sha256.c - SHA-256 over OpenSSL EVP (see mmo_sha256.h). */
#include <openssl/evp.h>
#include <string.h>

#include "schemas/mmo_err.h"
#include "schemas/mmo_sha256.h"

int mmo_sha256_init(struct mmo_sha256 *s)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (!c)
		return MMO_ENOMEM;
	if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		return MMO_EIO;
	}
	s->ctx = c;
	return MMO_OK;
}

void mmo_sha256_update(struct mmo_sha256 *s, const void *p, size_t n)
{
	if (n)
		EVP_DigestUpdate(s->ctx, p, n);
}

void mmo_sha256_final(struct mmo_sha256 *s, uint8_t out[MMO_SHA256_LEN])
{
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(s->ctx, out, &n) != 1 || n != MMO_SHA256_LEN)
		memset(out, 0, MMO_SHA256_LEN);
	EVP_MD_CTX_free(s->ctx);
	s->ctx = NULL;
}

int mmo_sha256(const void *p, size_t n, uint8_t out[MMO_SHA256_LEN])
{
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned int dn = 0;

	if (EVP_Digest(n ? p : "", n, d, &dn, EVP_sha256(), NULL) != 1 || dn != MMO_SHA256_LEN)
		return MMO_EIO;
	memcpy(out, d, MMO_SHA256_LEN);
	return MMO_OK;
}

void mmo_sha256_hex(const uint8_t d[MMO_SHA256_LEN], char out[2 * MMO_SHA256_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < MMO_SHA256_LEN; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * MMO_SHA256_LEN] = 0;
}
