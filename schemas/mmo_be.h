/* mmo_be.h - big-endian integers in byte buffers (LMDB keys, wire headers,
 * on-disk records). p must hold at least 2, 4 or 8 bytes; no alignment is
 * needed. */
#ifndef MMO_BE_H
#define MMO_BE_H

#include <stdint.h>

static inline void mmo_be16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint16_t mmo_be16_get(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline void mmo_be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t mmo_be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void mmo_be64_put(uint8_t *p, uint64_t v)
{
	mmo_be32_put(p, (uint32_t)(v >> 32));
	mmo_be32_put(p + 4, (uint32_t)v);
}

static inline uint64_t mmo_be64_get(const uint8_t *p)
{
	return (uint64_t)mmo_be32_get(p) << 32 | mmo_be32_get(p + 4);
}

#endif
