/* mmo_hash.h - FNV-1a 64, the project's one non-cryptographic hash.
 *
 * No per-process seed: the same input hashes the same in every process and
 * every run, so tables keyed by it iterate in the same order everywhere (the
 * world's state hash depends on that). Not for untrusted keys where flooding
 * matters.
 */
#ifndef MMO_HASH_H
#define MMO_HASH_H

#include <stddef.h>
#include <stdint.h>

#define MMO_FNV1A_INIT  14695981039346656037ULL /* the FNV-1a 64 offset basis */
#define MMO_FNV1A_PRIME 1099511628211ULL

/* FNV-1a 64 of n bytes at p (p may be NULL when n is 0). */
uint64_t mmo_fnv1a(const void *p, size_t n);

/* FNV-1a 64 of the NUL-terminated string s (without its NUL). */
uint64_t mmo_fnv1a_str(const char *s);

/* Continue hash h (MMO_FNV1A_INIT or an earlier result) over n more bytes:
 * mmo_fnv1a_more(mmo_fnv1a(a, na), b, nb) == mmo_fnv1a(a ++ b). */
uint64_t mmo_fnv1a_more(uint64_t h, const void *p, size_t n);

#endif
