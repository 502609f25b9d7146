/* mmo_arena.c - bump-arena event decoding (see mmo_arena.h). */
#include <stdlib.h>

#include "schemas/mmo_arena.h"
#include "schemas/mmo_err.h"

int mmo_arena_init(struct mmo_arena *a, size_t cap)
{
	a->cap = cap ? cap : MMO_ARENA_CAP;
	a->used = 0;
	a->buf = malloc(a->cap);
	if (!a->buf) {
		a->cap = 0;
		return MMO_ENOMEM;
	}
	return MMO_OK;
}

void mmo_arena_release(struct mmo_arena *a)
{
	free(a->buf);
	a->buf = NULL;
	a->cap = a->used = 0;
}

static void *arena_alloc(void *data, size_t size)
{
	struct mmo_arena *a = data;
	size_t off = (a->used + 15) & ~(size_t)15;

	if (off > a->cap || size > a->cap - off)
		return NULL;
	a->used = off + size;
	return a->buf + off;
}

static void arena_free(void *data, void *ptr)
{
	(void)data;
	(void)ptr; /* everything goes at the next reset */
}

int mmo_event_decode_arena(struct mmo_arena *a, const uint8_t *buf, size_t len, Mmo__Event **out)
{
	ProtobufCAllocator alloc = {arena_alloc, arena_free, a};
	Mmo__Event *ev;

	if (len > MMO_RECORD_MAX)
		return MMO_ETOOBIG;
	/* As mmo_event_decode(): zero bytes would decode as an all-default
	 * message, but an empty record is a framing error. */
	if (len == 0)
		return MMO_EMALFORMED;
	a->used = 0;
	ev = mmo__event__unpack(&alloc, len, buf);
	if (!ev)
		return MMO_EMALFORMED;
	*out = ev;
	return MMO_OK;
}
