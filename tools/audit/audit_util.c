/* audit_util.c - the leaf helpers of the audit files: hex, file hashes,
 * the canonical JSON a manifest's signature covers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "schemas/mmo_err.h"
#include "schemas/mmo_sha256.h"

int audit_msg(int err, char *msg, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (msg && cap) {
		va_start(ap, fmt);
		vsnprintf(msg, cap, fmt, ap);
		va_end(ap);
	}
	return err;
}

void audit_hex(const uint8_t *in, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = x[in[i] >> 4];
		out[2 * i + 1] = x[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool audit_unhex(const char *s, uint8_t *out, size_t n)
{
	if (!s || strlen(s) != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int a = hexval(s[2 * i]), b = hexval(s[2 * i + 1]);

		if (a < 0 || b < 0)
			return false;
		out[i] = (uint8_t)(a << 4 | b);
	}
	return true;
}

int audit_hash_file(const char *path, char hex[65], uint64_t *size)
{
	struct mmo_sha256 st;
	uint8_t buf[1 << 16], h[MMO_SHA256_LEN];
	uint64_t n = 0;
	size_t got;
	int err;
	FILE *f = fopen(path, "rb");

	if (!f)
		return MMO_EIO;
	err = mmo_sha256_init(&st);
	if (err) {
		fclose(f);
		return err;
	}
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
		mmo_sha256_update(&st, buf, got);
		n += got;
	}
	mmo_sha256_final(&st, h);
	if (ferror(f)) {
		fclose(f);
		return MMO_EIO;
	}
	fclose(f);
	mmo_sha256_hex(h, hex);
	*size = n;
	return MMO_OK;
}

char *audit_canonical(json_t *manifest)
{
	json_t *m = json_copy(manifest);
	char *s;

	if (!m)
		return NULL;
	json_object_del(m, "signature");
	s = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_decref(m);
	return s;
}
