/* token.h - HS256 JWTs (libjwt) and the signing key (a leaf). */
#ifndef MMO_GW_TOKEN_H
#define MMO_GW_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "accounts.h"

#define GW_TOKEN_MAX 4096 /* bearer tokens, bytes */

struct gw_auth {
	char sub[MMO_ID_MAX + 1];
	char role[GW_ROLE_MAX + 1];
	char jti[MMO_ID_MAX + 1];
	int64_t exp; /* s since the epoch */
};

/* The HS256 signing key. */
struct gw_key {
	uint8_t b[512];
	size_t len;
};

/* Load the key: given (>= 16 bytes) if not NULL, else DATA/jwt.key, else
 * generate one there (mode 0600). */
int gw_key_load(struct gw_key *k, const char *data_dir, const char *given, char *err,
                size_t errlen);
/* A signed token for sub/role valid ttl_s from now_s; *tok is malloc'ed. */
int gw_token_issue(const struct gw_key *k, const char *sub, const char *role, int64_t now_s,
                   int ttl_s, char jti[MMO_ID_MAX + 1], char **tok);
/* MMO_OK (a filled), MMO_EINVAL (malformed, bad signature, wrong alg or
 * claims), MMO_ETIMEOUT (expired). */
int gw_token_verify(const struct gw_key *k, const char *tok, int64_t now_s, struct gw_auth *a);

/* Tokens verified before, for one thread (no lock): the same bytes carry
 * the same valid signature, so a token found here skips the HMAC and the
 * JSON; its expiry is still checked on every use. */
struct gw_tokcache;
int gw_tokcache_new(size_t slots, struct gw_tokcache **out);
void gw_tokcache_free(struct gw_tokcache *tc);
/* gw_token_verify, through tc. */
int gw_token_verify_cached(struct gw_tokcache *tc, const struct gw_key *k, const char *tok,
                           int64_t now_s, struct gw_auth *a);

#endif
