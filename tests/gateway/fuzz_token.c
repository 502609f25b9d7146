/* fuzz_token.c - libFuzzer target for bearer tokens (gw_token_verify and
 * the loop's cache in front of it, gw_token_verify_cached).
 *
 * The input is used twice: as a raw token (anything a client may send),
 * and as the claims of a token signed with the key, so that the claims'
 * parser (libjwt, jansson) is reached past the signature check. A token
 * accepted must carry valid claims (sub an id, role a role, jti 32 hex).
 *
 * In ctest it runs through tests/support/fuzz_replay.c over
 * tests/gateway/corpus_token plus mutations.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char KEY[] = "fuzz-signing-key-0123456789abcdef";

static void check(const struct gw_key *k, struct gw_tokcache *tc, const char *tok)
{
	struct gw_auth a, b;
	int rc = gw_token_verify(k, tok, 1700000000, &a);
	int rc2 = gw_token_verify_cached(tc, k, tok, 1700000000, &b);

	if (rc != rc2)
		abort(); /* the cache answers as the verifier does */
	if (rc == MMO_OK && (!mmo_id_valid(a.sub) || !gw_role_valid(a.role) ||
	                     strlen(a.jti) != 32 || strcmp(a.sub, b.sub) || strcmp(a.jti, b.jti)))
		abort();
	if (rc != MMO_OK && rc != MMO_EINVAL && rc != MMO_ETIMEOUT)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gw_tokcache *tc;
	static const char head[] =
	    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"; /* {"alg":"HS256","typ":"JWT"} */
	struct gw_key k;
	char *raw, *tok;
	size_t b64 = sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	size_t hl = sizeof(head) - 1, cap;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];

	if (size > 8192)
		return 0;
	if (!tc && (sodium_init() < 0 || gw_tokcache_new(64, &tc)))
		abort();
	memcpy(k.b, KEY, sizeof(KEY) - 1);
	k.len = sizeof(KEY) - 1;
	/* As a raw token. */
	raw = malloc(size + 1);
	memcpy(raw, data, size);
	raw[size] = 0;
	check(&k, tc, raw);
	free(raw);
	/* As the claims of a correctly signed token. */
	cap = hl + 1 + b64 + 1 + 64;
	tok = malloc(cap);
	memcpy(tok, head, hl);
	tok[hl] = '.';
	sodium_bin2base64(tok + hl + 1, b64, data, size, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	{
		crypto_auth_hmacsha256_state st;

		crypto_auth_hmacsha256_init(&st, k.b, k.len);
		crypto_auth_hmacsha256_update(&st, (const unsigned char *)tok, strlen(tok));
		crypto_auth_hmacsha256_final(&st, mac);
	}
	{
		size_t n = strlen(tok);

		tok[n] = '.';
		sodium_bin2base64(tok + n + 1, cap - n - 1, mac, sizeof(mac),
		                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	}
	check(&k, tc, tok);
	free(tok);
	return 0;
}
