/* mmo_redis_url.c - Redis URLs (see mmo_redis_url.h). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "schemas/mmo_err.h"
#include "schemas/mmo_redis_url.h"

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return MMO_EINVAL;
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

/* Percent-decode n bytes at s into out (cap bytes with the NUL). */
static bool decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
				return false;
			c = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			if (!c)
				return false;
			i += 2;
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = c;
	}
	out[o] = 0;
	return true;
}

/* A decimal number of 1..10 digits spanning exactly [s, e), in lo..hi. */
static bool number(const char *s, const char *e, long lo, long hi, int *out)
{
	long v = 0;

	if (s == e || e - s > 10)
		return false;
	for (const char *p = s; p < e; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (*p - '0');
	}
	if (v < lo || v > hi)
		return false;
	*out = (int)v;
	return true;
}

int mmo_redis_url_parse(const char *url, struct mmo_redis_url *out, char *err, size_t errlen)
{
	struct mmo_redis_url u = {.port = MMO_REDIS_PORT, .db = 0};
	const char *p = url, *end, *at, *colon;
	size_t hl;

	if (!url || !*url)
		return fail(err, errlen, "empty redis URL");
	if (!strncmp(p, "redis://", 8))
		p += 8;
	else if (strstr(p, "://"))
		return fail(err, errlen, "redis URL must start with redis://: '%.200s'", url);
	end = p + strcspn(p, "/");
	/* the last '@' before the path: a password may hold a raw '@' */
	at = NULL;
	for (const char *q = p; q < end; q++) {
		if (*q == '@')
			at = q;
	}
	if (at) {
		/* "USER:PASSWORD@", ":PASSWORD@" or "PASSWORD@" */
		const char *pw = p;

		colon = memchr(p, ':', (size_t)(at - p));
		if (colon)
			pw = colon + 1;
		if ((colon && !decode(p, (size_t)(colon - p), u.user, sizeof(u.user))) ||
		    !decode(pw, (size_t)(at - pw), u.password, sizeof(u.password)))
			return fail(err, errlen, "bad user or password in redis URL '%.200s'", url);
		p = at + 1;
	}
	colon = memchr(p, ':', (size_t)(end - p));
	hl = (size_t)((colon ? colon : end) - p);
	if (hl == 0 || hl >= sizeof(u.host))
		return fail(err, errlen, "bad host in redis URL '%.200s'", url);
	memcpy(u.host, p, hl);
	u.host[hl] = 0;
	if (colon && !number(colon + 1, end, 1, 65535, &u.port))
		return fail(err, errlen, "bad port in redis URL '%.200s'", url);
	if (*end == '/' && end[1] &&
	    !number(end + 1, end + strlen(end), 0, MMO_REDIS_DB_MAX, &u.db))
		return fail(err, errlen, "bad database in redis URL '%.200s'", url);
	*out = u;
	return MMO_OK;
}
