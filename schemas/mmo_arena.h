/* mmo_arena.h - decoding events into a bump arena: no malloc per event on
 * the hot paths that decode every record (the log's indexer, replay). */
#ifndef MMO_ARENA_H
#define MMO_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "schemas/event.h"

#define MMO_ARENA_CAP (512 * 1024) /* enough for one event of up to MMO_RECORD_MAX */

/* Memory for one decoded event at a time. buf is owned by the arena from
 * mmo_arena_init() to mmo_arena_release(). */
struct mmo_arena {
	uint8_t *buf;
	size_t cap;
	size_t used;
};

/* Allocate cap bytes (0: MMO_ARENA_CAP). MMO_OK or MMO_ENOMEM (then a->buf
 * is NULL and release is still safe). */
int mmo_arena_init(struct mmo_arena *a, size_t cap);

/* Free the memory; the arena is then empty (init again to reuse). */
void mmo_arena_release(struct mmo_arena *a);

/* Decode the len bytes at buf into a, reset first: *out and everything it
 * points to lives in the arena until its next decode or release (never pass
 * it to mmo__event__free_unpacked). buf is borrowed for the call. MMO_OK,
 * MMO_ETOOBIG (len > MMO_RECORD_MAX), MMO_EMALFORMED (len 0, bytes that do
 * not decode, or an event too large for the arena); *out untouched on
 * failure. */
int mmo_event_decode_arena(struct mmo_arena *a, const uint8_t *buf, size_t len, Mmo__Event **out);

#endif
