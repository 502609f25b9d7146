/* mmo_utf8.c - UTF-8 validation (see mmo_utf8.h). */
#include "schemas/mmo_utf8.h"

/* Sequence length announced by lead byte c and the range allowed for the
 * second byte (it excludes overlongs, surrogates and > U+10FFFF); 0 when c
 * cannot start a sequence. */
static size_t lead(unsigned char c, unsigned char *lo, unsigned char *hi)
{
	*lo = 0x80;
	*hi = 0xbf;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return 2;
	if (c == 0xe0)
		*lo = 0xa0;
	else if (c == 0xed)
		*hi = 0x9f;
	else if (c == 0xf0)
		*lo = 0x90;
	else if (c == 0xf4)
		*hi = 0x8f;
	if (c >= 0xe0 && c <= 0xef)
		return 3;
	if (c >= 0xf0 && c <= 0xf4)
		return 4;
	return 0;
}

size_t mmo_utf8_len(const unsigned char *p)
{
	unsigned char lo, hi;
	size_t n = lead(p[0], &lo, &hi), i;

	if (n <= 1)
		return n;
	if (p[1] < lo || p[1] > hi)
		return 0;
	/* a NUL terminator fails this test, so we never read past it */
	for (i = 2; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	}
	return n;
}

bool mmo_utf8_valid(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0;

	while (i < n) {
		unsigned char lo, hi;
		size_t k = lead(s[i], &lo, &hi);

		if (k == 0 || k > n - i)
			return false;
		if (k > 1 && (s[i + 1] < lo || s[i + 1] > hi))
			return false;
		for (size_t j = 2; j < k; j++) {
			if (s[i + j] < 0x80 || s[i + j] > 0xbf)
				return false;
		}
		i += k;
	}
	return true;
}
