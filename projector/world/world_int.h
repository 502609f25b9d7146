/* world_int.h - internals shared by the world's files. Not for other modules. */
#ifndef MMO_WORLD_INT_H
#define MMO_WORLD_INT_H

#include "projector/world/world.h"

/* An open-addressing index from id to position in an array (linear
 * probing, FNV-1a: no per-process seed, so the same everywhere; iteration
 * never goes through it). */
struct idmap {
	uint32_t *slot; /* position + 1, 0 = empty */
	size_t cap;     /* power of two */
	size_t n;
};

struct world {
	uint64_t seed;
	uint64_t seq;

	struct world_player *pl;
	size_t npl, cappl;
	struct idmap plmap;

	struct world_entity *en;
	size_t nen, capen;
	struct idmap enmap;

	uint64_t dead_actions; /* moves/attacks applied for a dead actor (not in the state) */
	uint64_t anomalies;
	uint64_t anomaly_seq;
	char anomaly[192];
};

/* Look up a player / entity (NULL if absent). The pointer is valid until
 * the next insertion. */
struct world_player *world_pl_find(const world *w, const char *id);
struct world_entity *world_en_find(const world *w, const char *id);

/* Insert a player with this id (must be absent), at its defaults. */
struct world_player *world_pl_add(world *w, const char *id);
struct world_entity *world_en_add(world *w, const char *id);
void world_en_remove(world *w, const char *id);

/* Pointers to the players / entities sorted by id (NULL: no memory);
 * valid until the next insertion; the caller frees the array. */
const struct world_player **world_pl_sorted(const world *w);
const struct world_entity **world_en_sorted(const world *w);

/* The numbers of the game (tuning.c); world_rules() returns its address. */
extern const struct world_rules world_tuning;

/* Bounded copy (always terminated). */
void world_strlcpy(char *dst, const char *src, size_t cap);

/* SHA-256 of canonical bytes. */
int world_canon_hash(const char *buf, size_t len, uint8_t hash[WORLD_HASH_LEN]);

/* -0.0 -> 0.0, so the canonical form has one spelling per value. */
static inline double world_norm(double v)
{
	return v == 0 ? 0.0 : v;
}

#endif
