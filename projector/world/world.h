/* world.h - the world: the game's authoritative state, a deterministic fold
 * of the log (docs/world.md), and its rules (docs/rules.md).
 *
 * The log holds two kinds of game events:
 *   intents   player.login, player.logout, player.move, combat.attack: what a
 *             player asked for (from the gateway);
 *   outcomes  world.spawn, world.despawn, world.update, combat.result,
 *             world.reject with cause_seq = the intent's seq and event_id
 *             "w:<cause_seq>:<k>": what the world decided.
 * plus facts applied as they come (player.register; an outcome type with
 * cause_seq 0, e.g. an operator's NPC spawn).
 *
 * State changes only by applying events: a fact at its own seq, an intent's
 * outcomes right after the intent (at the intent's seq, with the intent's ts
 * as "now"), so the state "at seq S" is the same whether the outcomes were
 * just computed (live) or read back from the log (replay). An outcome record
 * met at its own seq is skipped: it was applied with its intent.
 *
 * Determinism: randomness comes from SplitMix64 seeded with (seed, intent
 * seq); time only from event timestamps; every listing is sorted by id.
 *
 * Threads: a world belongs to one thread at a time. A world_runner owns its
 * own world and thread.
 */
#ifndef MMO_WORLD_H
#define MMO_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schemas/event.h"
#include "log/evlog.h"

#define WORLD_FORMAT       1  /* canonical state and snapshot format */
#define WORLD_SKILL_MAX    8  /* skills in the rules table, at most */
#define WORLD_OUTCOME_MAX  3  /* outcome events of one intent, at most */
#define WORLD_HASH_LEN     32 /* SHA-256 of the canonical state */
#define WORLD_DEFAULT_SEED 1  /* the seed when none is configured */

typedef struct world world;

struct world_vec {
	double x, y, z;
};

/* A player as the world sees it (a copy: see world_player_get). */
struct world_player {
	char id[MMO_ID_MAX + 1];
	char name[MMO_TEXT_MAX + 1];    /* username from player.register */
	char region_id[MMO_ID_MAX + 1]; /* as given by the last outcome */
	struct world_vec pos;
	uint32_t hp;
	bool alive;
	bool online;
	int64_t last_move_ts;                   /* µs, intent ts of the last move/login/respawn */
	int64_t died_at;                        /* µs, ts of the fatal attack; 0 if never */
	int64_t skill_used_at[WORLD_SKILL_MAX]; /* µs, 0 = never; index of world_skill_at() */
	uint64_t seq;                           /* seq of the last event that changed it */
};

/* A non-player entity (NPC, object) spawned by a world.spawn fact. */
struct world_entity {
	char id[MMO_ID_MAX + 1];
	char type[MMO_ID_MAX + 1];
	char region_id[MMO_ID_MAX + 1];
	struct world_vec pos;
	uint32_t hp;
	uint64_t seq;
};

/* ---------------------------------------------------------------- rules */

struct world_skill {
	const char *name;
	double range;        /* max distance attacker-defender */
	int64_t cooldown_us; /* min time between two uses by one player */
	uint32_t damage;     /* base damage of a hit */
	uint32_t spread;     /* a hit adds 0..spread */
};

struct world_rules {
	struct world_vec min, max; /* bounds, inclusive */
	double region_size;        /* square cells over x, y */
	struct world_vec spawn;    /* where new and respawned players appear */
	double max_speed;          /* units per second */
	double move_slack;         /* units always allowed (latency) */
	uint32_t max_hp;
	int64_t respawn_delay_us;
	uint32_t miss_bp, crit_bp; /* chances in basis points (1/10000) */
	uint32_t crit_mult;
};

/* The rules (static; never NULL). Documented in docs/rules.md. */
const struct world_rules *world_rules(void);

/* The skills, in a fixed order: NULL past the last / for an unknown name. */
const struct world_skill *world_skill_at(size_t i);
const struct world_skill *world_skill_find(const char *name, size_t *index);

/* The region of a position: "r_<gx>_<gy>" into buf (cap >= 24). Positions
 * outside the bounds are clamped to the nearest cell. */
void world_region_of(const struct world_vec *p, char *buf, size_t cap);

/* ---------------------------------------------------------------- state */

/* A new empty world at seq 0. MMO_ENOMEM. The caller owns *out. */
int world_new(uint64_t seed, world **out);
void world_free(world *w);

uint64_t world_seed(const world *w);
uint64_t world_seq(const world *w);         /* last seq folded */
void world_set_seq(world *w, uint64_t seq); /* the fold moved past seq */
size_t world_player_count(const world *w);
size_t world_entity_count(const world *w);

/* Copy of one player: MMO_OK or MMO_ENOTFOUND. */
int world_player_get(const world *w, const char *id, struct world_player *out);

/* Anomalies met while applying outcomes (an action by a dead player, an
 * outcome about an unknown player, ...): a count, and the last one's seq
 * and description (static until the next apply). */
uint64_t world_anomalies(const world *w, uint64_t *last_seq, const char **what);

/* Built-in invariants, by name (docs/world.md):
 *   hp_range      0 <= hp <= max_hp, and hp == 0 exactly when dead
 *   in_bounds     every player and entity position within the bounds
 *   region_match  a player's region is the region of its position
 *   dead_action   no move or attack was applied for a dead actor
 * world_invariant_at(i) lists them (NULL past the last). */
const char *world_invariant_at(size_t i);
bool world_invariant_known(const char *name);

/* Does invariant name ("all" for every one) hold for player or entity id
 * (NULL: for all of them)? If not, why (may be NULL) gets a one-line
 * reason naming the invariant and the id. */
bool world_invariant_holds(const world *w, const char *name, const char *id, char *why, size_t cap);

/* ---------------------------------------------------------------- fold */

enum world_kind {
	WORLD_IGNORED = 0, /* nothing to the world (security, stats, combat.defend, ...) */
	WORLD_FACT,        /* applied at its own seq */
	WORLD_INTENT,      /* answered by outcomes */
	WORLD_OUTCOME,     /* an intent's outcome (cause_seq != 0): applied with it */
};

enum world_kind world_kind(const Mmo__Event *ev);

/* The outcome events of one intent. Each ev[i].b.ev is a complete event
 * whose strings point into ev[i] itself: do not copy the struct. */
struct world_outcome_ev {
	struct mmo_ev b;
	char event_id[MMO_ID_MAX + 1];
	char player_id[MMO_ID_MAX + 1];
	char region_id[MMO_ID_MAX + 1];
	char id1[MMO_ID_MAX + 1];
	char id2[MMO_ID_MAX + 1];
	char detail[MMO_TEXT_MAX + 1];
};

struct world_outcome {
	size_t n;
	const char *reason; /* static rejection reason ("too_fast", ...), NULL if accepted */
	struct world_outcome_ev ev[WORLD_OUTCOME_MAX];
};

/* Evaluate the rules for intent (its seq and ts set, as read from the log)
 * against w, without changing w. Fills out (1..WORLD_OUTCOME_MAX events,
 * event_id "w:<seq>:<k>", cause_seq = seq). MMO_EINVAL if intent is not an
 * intent. Deterministic in (w, intent). */
int world_decide(const world *w, const Mmo__Event *intent, struct world_outcome *out);

/* Apply a fact (or an external outcome: cause_seq 0) at its own seq. */
int world_apply_fact(world *w, const Mmo__Event *ev);

/* Apply one outcome of intent (both borrowed for the call): the intent's ts
 * is "now" for the state it changes. Outcomes about unknown players are
 * counted as anomalies and otherwise ignored. */
int world_apply_outcome(world *w, const Mmo__Event *outcome, const Mmo__Event *intent);

/* The pure live fold of one event (seq and ts set): a fact is applied, an
 * intent decided and its outcomes applied (and returned in out when out is
 * not NULL; out->n = 0 otherwise), an outcome skipped. Sets the seq. */
int world_step(world *w, const Mmo__Event *ev, struct world_outcome *out);

/* The outcomes the log holds for the intent at cause_seq, in order
 * ("w:<cause>:0", ":1", ...). n = 0 if none (yet). On success the caller
 * owns the events and frees them with world_logged_free(). MMO_ECORRUPT if
 * a found event does not answer cause_seq. */
struct world_logged {
	size_t n;
	uint64_t seq[WORLD_OUTCOME_MAX];
	Mmo__Event *ev[WORLD_OUTCOME_MAX];
};
int world_logged_get(evlog *log, uint64_t cause_seq, struct world_logged *out);
void world_logged_free(struct world_logged *l);

/* ---------------------------------------------------------------- canonical */

/* The canonical state: JSON with sorted keys, one entity or player per line,
 * numbers in their shortest exact form. The same state always gives the
 * same bytes. *out is allocated (caller frees with free()). */
int world_encode(const world *w, char **out, size_t *len);

/* One player in canonical form (one line, no newline); caller frees. */
int world_player_json(const world *w, const char *id, char **out, size_t *len);

/* SHA-256 of the canonical bytes. */
int world_hash(const world *w, uint8_t hash[WORLD_HASH_LEN]);
void world_hash_hex(const uint8_t hash[WORLD_HASH_LEN], char hex[2 * WORLD_HASH_LEN + 1]);

/* Rebuild a world from canonical bytes (borrowed). MMO_EMALFORMED if they
 * do not parse or describe an invalid state, MMO_EVERSION for a newer
 * format. The caller owns *out. */
int world_decode(const char *buf, size_t len, uint64_t seed, world **out);

/* ---------------------------------------------------------------- snapshots */

/* Snapshots live in their own LMDB environment (DATA/world):
 *   snaps  seq (u64 BE) -> "MWS1" ‖ format u32 BE ‖ seed u64 BE ‖ hash[32] ‖
 *                          log_hash[32] ‖ canonical bytes
 *   meta   "seed" -> u64 BE
 * Only the newest WORLD_SNAP_KEEP are kept. */
#define WORLD_SNAP_KEEP 64

typedef struct world_snapdb world_snapdb;

struct world_snapinfo {
	uint64_t seq;
	uint8_t hash[WORLD_HASH_LEN];     /* state hash, as stored */
	uint8_t log_hash[EVLOG_HASH_LEN]; /* the log's record hash at seq (zeros: unknown) */
	bool valid;                       /* stored hash matches the bytes, format known */
};

/* Open (rw: create) the snapshot store in dir. errmsg gets a reason. The
 * caller owns *out. MMO_EIO, MMO_ENOTFOUND (readonly and absent). */
int world_snapdb_open(const char *dir, bool readonly, world_snapdb **out, char *errmsg,
                      size_t errlen);
void world_snapdb_close(world_snapdb *db);

/* The stored world seed: MMO_OK or MMO_ENOTFOUND. */
int world_snapdb_seed(world_snapdb *db, uint64_t *seed);
int world_snapdb_set_seed(world_snapdb *db, uint64_t seed);

/* Write a snapshot of w at world_seq(w), then prune old ones. log_hash
 * (may be NULL) is the log's hash of the record at that seq: it ties the
 * snapshot to this log. */
int world_snapdb_put(world_snapdb *db, const world *w, const uint8_t log_hash[EVLOG_HASH_LEN]);

/* Snapshots in seq order (up to cap; *n receives how many were written). */
int world_snapdb_list(world_snapdb *db, struct world_snapinfo *out, size_t cap, size_t *n);

/* Load the snapshot at seq, checking its hash and that it re-encodes to the
 * same bytes: MMO_OK, MMO_ENOTFOUND, MMO_ECORRUPT, MMO_EVERSION. */
int world_snapdb_get(world_snapdb *db, uint64_t seq, world **out);

/* The newest valid snapshot with seq <= max_seq (0: any). With log (may be
 * NULL), a snapshot must also match it: its seq within the log and its
 * log_hash equal to the record's. Others are skipped with a warning and
 * counted in *skipped (may be NULL). MMO_ENOTFOUND when there is none. */
int world_snapdb_load(world_snapdb *db, evlog *log, uint64_t max_seq, world **out,
                      uint64_t *skipped);

/* ---------------------------------------------------------------- runner */

/* The live world (role `world` of `mmo serve`): a thread that loads the
 * newest snapshot, folds the log from there in seq order (catch-up from
 * the local log, then the bus, gaps filled), decides each intent not yet
 * answered in the log, appends the outcomes through the ingest (idempotent:
 * the event ids are derived from the cause), and snapshots every
 * snapshot_every events into DATA/world. */
struct world_runner_opts {
	evlog *log;              /* borrowed, open, outlives the runner; may be NULL (remote) */
	void *zctx;              /* borrowed ZeroMQ context */
	const char *ingest;      /* the log's ingest endpoint (outcomes are appended there) */
	const char *bus;         /* the log's bus endpoint */
	const char *data_dir;    /* DATA: snapshots go to DATA/world */
	uint64_t snapshot_every; /* events between snapshots; 0 = 10000 */
	uint64_t seed;           /* 0: the seed stored in DATA/world (WORLD_DEFAULT_SEED for a
	                          * new world); else it must equal the stored one */
};

typedef struct world_runner world_runner;

/* Open the snapshot store, load the newest valid snapshot, start the
 * thread. Errors: MMO_EINVAL, MMO_EIO (errmsg says why). The caller owns
 * *out and stops it with world_runner_stop(). */
int world_runner_start(const struct world_runner_opts *o, world_runner **out, char *errmsg,
                       size_t errlen);

/* Stop: flush the outcomes decided so far, write a last snapshot, join. */
void world_runner_stop(world_runner *r);

struct world_runner_status {
	uint64_t seq;                 /* last seq folded */
	uint64_t intents;             /* intents decided by this runner */
	uint64_t reused;              /* intents whose outcomes were already in the log */
	uint64_t appended;            /* outcome events sent (new or duplicate) */
	uint64_t conflicts;           /* outcomes the log holds with other bytes */
	uint64_t rebuilds;            /* state rebuilt from the log after a conflict */
	uint64_t snapshots;           /* snapshots written */
	uint64_t errors;              /* append or fold errors (retried) */
	uint8_t hash[WORLD_HASH_LEN]; /* state hash at seq (if with_hash) */
};

/* A consistent status; with_hash also hashes the state (costs an encode). */
void world_runner_status(world_runner *r, bool with_hash, struct world_runner_status *st);

#endif
