/* mmo_hash.c - FNV-1a 64 (see mmo_hash.h). */
#include "schemas/mmo_hash.h"

uint64_t mmo_fnv1a_more(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * MMO_FNV1A_PRIME;
	return h;
}

uint64_t mmo_fnv1a(const void *p, size_t n)
{
	return mmo_fnv1a_more(MMO_FNV1A_INIT, p, n);
}

uint64_t mmo_fnv1a_str(const char *s)
{
	uint64_t h = MMO_FNV1A_INIT;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * MMO_FNV1A_PRIME;
	return h;
}
