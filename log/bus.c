/* bus.c - the log's PUB side: after a commit, each new event goes out as
 * topic "region|", seq and the region's previous seq (both BE8), and the
 * stored record; subscribers (sub.c) find gaps per region from that
 * previous seq (docs/protocol.md).
 *
 * The last seq per region is kept in a table of at most regions_max
 * entries (region ids come from clients: unbounded, it would let them grow
 * the log's memory at will). Past the cap the least recently used region
 * is evicted; a region not in the table is seeded from the region index on
 * its next event, so the previous seq on the bus is the same with or
 * without eviction (docs/log.md). The table is a chained hash over a fixed
 * array of nodes that also form the LRU list, all indexes (no pointers). */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "evlog_int.h"
#include "schemas/mmo_hash.h"
#include "wire.h"

#define NIL UINT32_MAX

static uint32_t *bucket_of(struct evlog_bus *s, const char *name)
{
	return &s->buckets[mmo_fnv1a_str(name) & (s->nbuckets - 1)];
}

static struct evlog_bus_region *region_find(struct evlog_bus *s, const char *name)
{
	for (uint32_t i = *bucket_of(s, name); i != NIL; i = s->regions[i].hnext) {
		if (!strcmp(s->regions[i].name, name))
			return &s->regions[i];
	}
	return NULL;
}

static void lru_unlink(struct evlog_bus *s, uint32_t i)
{
	struct evlog_bus_region *r = &s->regions[i];

	if (r->prev != NIL)
		s->regions[r->prev].next = r->next;
	else
		s->lru_head = r->next;
	if (r->next != NIL)
		s->regions[r->next].prev = r->prev;
	else
		s->lru_tail = r->prev;
}

/* Most recently used at the head. */
static void lru_push(struct evlog_bus *s, uint32_t i)
{
	struct evlog_bus_region *r = &s->regions[i];

	r->prev = NIL;
	r->next = s->lru_head;
	if (s->lru_head != NIL)
		s->regions[s->lru_head].prev = i;
	s->lru_head = i;
	if (s->lru_tail == NIL)
		s->lru_tail = i;
}

static void hash_unlink(struct evlog_bus *s, uint32_t i)
{
	uint32_t *p = bucket_of(s, s->regions[i].name);

	while (*p != i)
		p = &s->regions[*p].hnext;
	*p = s->regions[i].hnext;
}

/* Drop the least recently used region; its node is returned for reuse. */
static uint32_t evict_lru(struct evlog_bus *s)
{
	uint32_t i = s->lru_tail;

	lru_unlink(s, i);
	hash_unlink(s, i);
	if (s->regions[i].last > s->evicted_last)
		s->evicted_last = s->regions[i].last;
	s->nregions--;
	s->evicted++;
	return i;
}

/* The seq of the previous event of `region` before `seq` (0 if none), for a
 * region not in the table. Its previous event is either older than the
 * bus's first seq or was evicted (and is at most evicted_last): the
 * unindexed tail above both cannot hold it, so the scan skips it. */
static uint64_t region_prev_from_log(struct evlog_bus *s, const char *region, uint64_t seq)
{
	uint64_t prev = 0, tail_max = s->first_seq ? s->first_seq - 1 : seq - 1;

	if (s->evicted_last > tail_max)
		tail_max = s->evicted_last;
	if (evlog_region_prev_upto(s->log, region, seq, tail_max, &prev) != MMO_OK)
		return 0;
	return prev;
}

/* Remember seq as the region's newest; return the one before it. */
static uint64_t region_advance(struct evlog_bus *s, const char *region, uint64_t seq)
{
	struct evlog_bus_region *r;
	uint32_t i;
	uint64_t prev;
	size_t len;

	if (!s->first_seq)
		s->first_seq = seq;
	if (!*region)
		return 0;
	r = region_find(s, region);
	if (r) {
		i = (uint32_t)(r - s->regions);
		lru_unlink(s, i);
		lru_push(s, i);
		prev = r->last;
		r->last = seq;
		return prev;
	}
	prev = region_prev_from_log(s, region, seq);
	len = strlen(region);
	if (len > MMO_ID_MAX) {
		/* Not kept: count it as evicted so the next lookup scans for it. */
		s->evicted_last = seq;
		return prev;
	}
	/* Nodes 0..nregions-1 are in use until the table is first full; from
	 * then on it stays full and each new region takes the evicted node. */
	i = s->nregions < s->regions_max ? (uint32_t)s->nregions : evict_lru(s);
	r = &s->regions[i];
	memcpy(r->name, region, len + 1);
	r->last = seq;
	r->hnext = *bucket_of(s, region);
	*bucket_of(s, region) = i;
	lru_push(s, i);
	s->nregions++;
	return prev;
}

int evlog_bus_init(struct evlog_bus *b, evlog *log, size_t regions_max)
{
	b->log = log;
	b->regions_max = regions_max ? regions_max : EVLOG_BUS_REGIONS_MAX;
	if (b->regions_max > NIL - 1)
		b->regions_max = NIL - 1;
	b->nbuckets = 16;
	while (b->nbuckets < b->regions_max * 2)
		b->nbuckets *= 2;
	b->regions = calloc(b->regions_max, sizeof(*b->regions));
	b->buckets = malloc(b->nbuckets * sizeof(*b->buckets));
	if (!b->regions || !b->buckets) {
		evlog_bus_free(b);
		return MMO_ENOMEM;
	}
	memset(b->buckets, 0xff, b->nbuckets * sizeof(*b->buckets));
	b->lru_head = b->lru_tail = NIL;
	return MMO_OK;
}

void evlog_bus_free(struct evlog_bus *b)
{
	free(b->regions);
	free(b->buckets);
	b->regions = NULL;
	b->buckets = NULL;
	b->nregions = b->nbuckets = 0;
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
