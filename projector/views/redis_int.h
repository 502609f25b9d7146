/* redis_int.h - what the Redis view's files share: its handle and the
 * per-batch player and region state. Internal to projector/views. */
#ifndef MMO_VIEWS_REDIS_INT_H
#define MMO_VIEWS_REDIS_INT_H

#include <hiredis/hiredis.h>

#include "resp.h"
#include "schemas/mmo_redis_url.h"
#include "views_int.h"

struct pl {
	const char *id; /* points into an event of the batch */
	bool exists, online, poisoned, dead_marked;
	uint64_t seq, events;
	char region[MMO_ID_MAX + 1];
	/* as the batch changes it (phase 2) */
	bool s_exists, s_online;
	uint64_t s_seq, s_events;
	char s_region[MMO_ID_MAX + 1];
};

struct rg {
	char id[MMO_ID_MAX + 1];
	bool poisoned;
};

/* A string index: open addressing over positions in an array, rebuilt per
 * batch (no allocation once warm). */
struct sidx {
	uint32_t *slot; /* position + 1, 0 = empty */
	size_t cap;     /* power of two */
};

struct rview {
	struct view base;
	struct mmo_redis_url url;
	redisContext *c;
	struct resp cmds;
	struct pl *pl;
	size_t npl, plcap;
	struct sidx plx;
	struct rg *rg;
	size_t nrg, rgcap;
	struct sidx rgx;
	redisReply **rep;
	size_t repcap;
	char *json;
	size_t jsoncap;
};

/* ---------------------------------------------------------------- redis_cmds.c */

/* Ready the index x for up to n entries (emptied). MMO_OK or MMO_ENOMEM. */
int rv_sidx_reset(struct sidx *x, size_t n);

/* The batch's players: reset for up to n, add (an id that points into an
 * event of the batch, borrowed until the next reset), find (NULL if not
 * added). */
int rv_pl_reset(struct rview *rv, size_t n);
int rv_pl_add(struct rview *rv, const char *id);
struct pl *rv_pl_find(struct rview *rv, const char *id);

/* The region id of the batch (added if new; NULL when the table is full or
 * out of memory). */
struct rg *rv_rg_get(struct rview *rv, const char *id);

/* "mmo:player:{id}" into buf. */
void rv_key_player(char *buf, size_t cap, const char *id);

/* Append to c the writes of event e (index i of the batch), json being its
 * rendering (jlen bytes). *skipped: every player part was already in the
 * store (nothing written, nothing published). MMO_OK or MMO_ENOMEM. */
int rv_event_cmds(struct rview *rv, struct resp *c, int i, const struct vev *e, const char *json,
                  size_t jlen, bool *skipped);

#endif
