/* token.c - HS256 JWTs (libjwt) and the signing key.
 *
 * A token is a standard JWT: header {"alg":"HS256","typ":"JWT"}, claims
 * sub (player id), role, iat, exp (s since the epoch) and jti (the session
 * id, 32 hex chars). Verification accepts only HS256 with our key, all
 * claims present with their types, and exp in the future; the session
 * check (Redis) is auth.c's.
 *
 * The key: the option if given (its bytes), else DATA/jwt.key (64 hex
 * chars = 32 random bytes), created on first start with mode 0600.
 */
#include <errno.h>
#include <fcntl.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "schemas/mmo_err.h"
#include "schemas/mmo_hash.h"
#include "schemas/mmo_util.h"
#include "token.h"

#define KEY_BYTES 32

static int load_file(struct gw_key *k, const char *path, char *err, size_t errlen)
{
	char hex[2 * KEY_BYTES + 8];
	struct stat st;
	ssize_t n;
	size_t binlen;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? MMO_ENOTFOUND : MMO_EIO;
	if (fstat(fd, &st) == 0 && (st.st_mode & 077))
		mmo_logf(MMO_LOG_WARN, "gateway",
		         "%s is readable by others (mode %03o): chmod 600 it", path,
		         (unsigned)(st.st_mode & 0777));
	n = read(fd, hex, sizeof(hex) - 1);
	close(fd);
	if (n < 2 * KEY_BYTES) {
		snprintf(err, errlen, "%s is too short: want %d hex chars", path, 2 * KEY_BYTES);
		return MMO_ECORRUPT;
	}
	hex[n] = 0;
	if (sodium_hex2bin(k->b, sizeof(k->b), hex, (size_t)n, " \r\n", &binlen, NULL) != 0 ||
	    binlen < KEY_BYTES) {
		snprintf(err, errlen, "%s is not hex", path);
		return MMO_ECORRUPT;
	}
	k->len = binlen;
	return MMO_OK;
}

static int create_file(struct gw_key *k, const char *path, char *err, size_t errlen)
{
	char hex[2 * KEY_BYTES + 2];
	int fd;

	randombytes_buf(k->b, KEY_BYTES);
	k->len = KEY_BYTES;
	sodium_bin2hex(hex, sizeof(hex), k->b, KEY_BYTES);
	strcat(hex, "\n");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return load_file(k, path, err, errlen); /* another process won */
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return MMO_EIO;
	}
	if (write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex) || fsync(fd) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return MMO_EIO;
	}
	close(fd);
	sodium_memzero(hex, sizeof(hex));
	mmo_logf(MMO_LOG_INFO, "gateway", "generated a new signing key in %s", path);
	return MMO_OK;
}

int gw_key_load(struct gw_key *k, const char *data_dir, const char *given, char *err, size_t errlen)
{
	char path[4200];
	int rc;

	if (given) {
		size_t n = strlen(given);

		if (n < 16 || n > sizeof(k->b)) {
			snprintf(err, errlen, "the JWT key must be 16..%zu bytes", sizeof(k->b));
			return MMO_EINVAL;
		}
		memcpy(k->b, given, n);
		k->len = n;
		return MMO_OK;
	}
	snprintf(path, sizeof(path), "%s/jwt.key", data_dir);
	rc = load_file(k, path, err, errlen);
	if (rc == MMO_ENOTFOUND)
		rc = create_file(k, path, err, errlen);
	else if (rc == MMO_EIO)
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
	return rc;
}

int gw_token_issue(const struct gw_key *k, const char *sub, const char *role, int64_t now_s,
                   int ttl_s, char jti[MMO_ID_MAX + 1], char **tok)
{
	jwt_t *j = NULL;
	char *s = NULL;
	int rc = MMO_ENOMEM;

	gw_random_hex(jti, 16);
	if (jwt_new(&j) || jwt_set_alg(j, JWT_ALG_HS256, k->b, (int)k->len) ||
	    jwt_add_grant(j, "sub", sub) || jwt_add_grant(j, "role", role) ||
	    jwt_add_grant_int(j, "iat", (long)now_s) ||
	    jwt_add_grant_int(j, "exp", (long)(now_s + ttl_s)) || jwt_add_grant(j, "jti", jti))
		goto out;
	s = jwt_encode_str(j);
	if (!s)
		goto out;
	*tok = s;
	rc = MMO_OK;
out:
	jwt_free(j);
	return rc;
}

static bool hex_id(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++) {
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	}
	return n == 32;
}

/* Check the HS256 signature before any JSON of the token is parsed (libjwt
 * parses header and claims first, with recursion a hostile token could make
 * deep). */
static bool signature_ok(const struct gw_key *k, const char *tok)
{
	const char *dot1 = strchr(tok, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	unsigned char mac[crypto_auth_hmacsha256_BYTES], sig[64];
	crypto_auth_hmacsha256_state st;
	size_t siglen = 0;
	const char *end;

	if (!dot2 || strchr(dot2 + 1, '.'))
		return false;
	if (sodium_base642bin(sig, sizeof(sig), dot2 + 1, strlen(dot2 + 1), NULL, &siglen, &end,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    *end || siglen != sizeof(mac))
		return false;
	crypto_auth_hmacsha256_init(&st, k->b, k->len);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)tok, (size_t)(dot2 - tok));
	crypto_auth_hmacsha256_final(&st, mac);
	return sodium_memcmp(mac, sig, sizeof(mac)) == 0;
}

int gw_token_verify(const struct gw_key *k, const char *tok, int64_t now_s, struct gw_auth *a)
{
	jwt_t *j = NULL;
	const char *sub, *role, *jti;
	long exp, iat;
	int rc = MMO_EINVAL;

	if (!tok || strlen(tok) > GW_TOKEN_MAX || !signature_ok(k, tok))
		return MMO_EINVAL;
	if (jwt_decode(&j, tok, k->b, (int)k->len) != 0 || !j)
		return MMO_EINVAL;
	if (jwt_get_alg(j) != JWT_ALG_HS256)
		goto out;
	sub = jwt_get_grant(j, "sub");
	role = jwt_get_grant(j, "role");
	jti = jwt_get_grant(j, "jti");
	errno = 0;
	exp = jwt_get_grant_int(j, "exp");
	if (errno)
		goto out;
	iat = jwt_get_grant_int(j, "iat");
	if (errno)
		goto out;
	if (!sub || !mmo_id_valid(sub) || !gw_role_valid(role) || !jti || !hex_id(jti) || iat <= 0)
		goto out;
	if (exp <= now_s) {
		rc = MMO_ETIMEOUT;
		goto out;
	}
	strcpy(a->sub, sub);
	strcpy(a->role, role);
	strcpy(a->jti, jti);
	a->exp = exp;
	rc = MMO_OK;
out:
	jwt_free(j);
	return rc;
}

/* ---------------------------------------------------------------- verified tokens */

struct tok_slot {
	uint64_t h;
	size_t len;
	char *tok; /* NULL: empty */
	struct gw_auth a;
};

struct gw_tokcache {
	struct tok_slot *s;
	size_t mask;
};

int gw_tokcache_new(size_t slots, struct gw_tokcache **out)
{
	struct gw_tokcache *tc = calloc(1, sizeof(*tc));

	while (slots & (slots - 1))
		slots &= slots - 1;
	if (!slots)
		slots = 1;
	if (!tc || !(tc->s = calloc(slots, sizeof(*tc->s)))) {
		free(tc);
		return MMO_ENOMEM;
	}
	tc->mask = slots - 1;
	*out = tc;
	return MMO_OK;
}

void gw_tokcache_free(struct gw_tokcache *tc)
{
	if (!tc)
		return;
	for (size_t i = 0; i <= tc->mask; i++)
		free(tc->s[i].tok);
	free(tc->s);
	free(tc);
}

int gw_token_verify_cached(struct gw_tokcache *tc, const struct gw_key *k, const char *tok,
                           int64_t now_s, struct gw_auth *a)
{
	size_t len = tok ? strnlen(tok, GW_TOKEN_MAX + 1) : 0;
	uint64_t h;
	struct tok_slot *e;
	char *copy;
	int rc;

	if (!tc || !tok || len > GW_TOKEN_MAX)
		return gw_token_verify(k, tok, now_s, a);
	h = mmo_fnv1a(tok, len);
	e = &tc->s[h & tc->mask];
	if (e->tok && e->h == h && e->len == len && !memcmp(e->tok, tok, len)) {
		if (e->a.exp <= now_s)
			return MMO_ETIMEOUT;
		*a = e->a;
		return MMO_OK;
	}
	rc = gw_token_verify(k, tok, now_s, a);
	if (rc == MMO_OK && (copy = malloc(len))) {
		memcpy(copy, tok, len);
		free(e->tok);
		e->tok = copy;
		e->h = h;
		e->len = len;
		e->a = *a;
	}
	return rc;
}
