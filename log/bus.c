/* bus.c - the log's PUB side: after a commit, each new event goes out as
 * topic "region|", seq and the region's previous seq (both BE8), and the
 * stored record; subscribers (sub.c) find gaps per region from that
 * previous seq (docs/protocol.md). The last seq per region is kept in an
 * open-addressing table, seeded from the region index on first sight. */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "evlog_int.h"
#include "schemas/mmo_hash.h"
#include "wire.h"

static struct evlog_bus_region *region_find(struct evlog_bus *s, const char *name)
{
	size_t mask = s->regions_cap - 1;

	for (size_t i = mmo_fnv1a_str(name) & mask;; i = (i + 1) & mask) {
		if (!s->regions[i].name || !strcmp(s->regions[i].name, name))
			return &s->regions[i];
	}
}

static int regions_grow(struct evlog_bus *s)
{
	struct evlog_bus_region *old = s->regions;
	size_t oldcap = s->regions_cap;
	size_t cap = oldcap ? oldcap * 2 : 256;

	s->regions = calloc(cap, sizeof(*s->regions));
	if (!s->regions) {
		s->regions = old;
		return MMO_ENOMEM;
	}
	s->regions_cap = cap;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].name)
			*region_find(s, old[i].name) = old[i];
	}
	free(old);
	return MMO_OK;
}

/* The seq of the previous event of `region` before `seq` (0 if none). */
static uint64_t region_prev_from_log(struct evlog_bus *s, const char *region, uint64_t seq)
{
	uint64_t prev = 0;

	if (evlog_region_prev(s->log, region, seq, &prev) != MMO_OK)
		return 0;
	return prev;
}

/* Remember seq as the region's newest; return the one before it. */
static uint64_t region_advance(struct evlog_bus *s, const char *region, uint64_t seq)
{
	struct evlog_bus_region *slot;
	uint64_t prev;

	if (!*region)
		return 0;
	if ((s->nregions + 1) * 2 > s->regions_cap && regions_grow(s))
		return region_prev_from_log(s, region, seq);
	slot = region_find(s, region);
	if (!slot->name) {
		slot->name = strdup(region);
		if (!slot->name)
			return region_prev_from_log(s, region, seq);
		slot->last = region_prev_from_log(s, region, seq);
		s->nregions++;
	}
	prev = slot->last;
	slot->last = seq;
	return prev;
}

int evlog_bus_init(struct evlog_bus *b, evlog *log)
{
	b->log = log;
	return regions_grow(b);
}

void evlog_bus_free(struct evlog_bus *b)
{
	for (size_t i = 0; i < b->regions_cap; i++)
		free(b->regions[i].name);
	free(b->regions);
	b->regions = NULL;
	b->regions_cap = b->nregions = 0;
}

void evlog_bus_publish(struct evlog_bus *s, const struct evlog_in *in, const struct evlog_out *o)
{
	char topic[MMO_ID_MAX + 2];
	uint8_t meta[16];
	size_t tl = strlen(o->region_id);
	zmq_msg_t rec;

	memcpy(topic, o->region_id, tl);
	topic[tl++] = WIRE_TOPIC_END;
	mmo_be64_put(meta, o->seq);
	mmo_be64_put(meta + 8, region_advance(s, o->region_id, o->seq));
	if (!s->pub)
		return;
	if (zmq_msg_init_size(&rec, EVLOG_HDR_LEN + in->len))
		return;
	uint8_t *p = zmq_msg_data(&rec);
	memcpy(p, o->hash, EVLOG_HASH_LEN);
	mmo_be64_put(p + EVLOG_HASH_LEN, (uint64_t)o->ts);
	p[EVLOG_HASH_LEN + 8] = (uint8_t)o->priority;
	memset(p + EVLOG_HASH_LEN + 9, 0, 3);
	memcpy(p + EVLOG_HDR_LEN, in->buf, in->len);
	zmq_send(s->pub, topic, tl, ZMQ_SNDMORE);
	zmq_send(s->pub, meta, sizeof(meta), ZMQ_SNDMORE);
	if (zmq_msg_send(&rec, s->pub, 0) < 0)
		zmq_msg_close(&rec);
}
