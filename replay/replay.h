/* replay.h - rebuild the world from a log: at any seq, with a player's
 * timeline, verifying the rules, or bisecting an invariant (docs/world.md).
 *
 * Replay applies the outcomes the log holds, never re-deciding them, so it
 * shows what happened even if the rules have changed since; --verify also
 * re-decides every intent and compares. The log may be a read-only copy.
 */
#ifndef MMO_REPLAY_H
#define MMO_REPLAY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "log/evlog.h"
#include "projector/world/world.h"

/* Progress: records done of total, rate, called about once a second. */
typedef void replay_progress_fn(uint64_t done, uint64_t total, double per_s, void *arg);

struct replay_opts {
	evlog *log;                   /* borrowed, open (read-only is fine) */
	world_snapdb *snaps;          /* borrowed, may be NULL (no snapshots) */
	uint64_t seed;                /* the world seed (for --verify) */
	uint64_t to_seq;              /* stop after this seq; 0 = the head */
	bool from_snapshot;           /* start at the newest valid snapshot <= to_seq */
	bool verify;                  /* re-decide every intent, compare, check snapshots */
	const char *player;           /* timeline of this player ... */
	FILE *timeline;               /* ... one JSON line per event, written here */
	replay_progress_fn *progress; /* may be NULL */
	void *progress_arg;
};

struct replay_result {
	uint64_t seq;               /* the state's seq */
	uint64_t head;              /* the log's head when the replay started */
	uint64_t start_seq;         /* seq of the state it started from (a snapshot or 0) */
	uint64_t records;           /* records read */
	uint64_t intents;           /* intents answered from the log */
	uint64_t pending_seq;       /* first intent with no outcome in the log yet (0: none):
	                             * the state stops just before it */
	uint64_t snapshots_checked; /* --verify: snapshot hashes compared */
	bool diverged;              /* --verify: a difference was found ... */
	uint64_t bad_seq;           /* ... at this seq (also: --bisect's first violation) */
	char what[1024];            /* ... described on one line */
	double seconds;
};

/* Replay up to o->to_seq. On success (MMO_OK, even when --verify found a
 * divergence: see res->diverged) *out (may be NULL) receives the state,
 * owned by the caller. Errors: MMO_EINVAL, MMO_ECORRUPT (a record or an
 * outcome that cannot be read), MMO_EIO, MMO_ENOMEM. */
int replay_run(const struct replay_opts *o, world **out, struct replay_result *res);

/* The first seq at which invariant (a world_invariant_at() name, or "all")
 * fails, in res->bad_seq (0: it holds up to o->to_seq) with res->what.
 * Checks the snapshots first, in order, then replays from the last one
 * where the invariant holds, checking every player an event touches.
 * dead_action is about history, not state: it replays from the start.
 * An unknown invariant is MMO_EINVAL with res->what listing the known ones. */
int replay_bisect(const struct replay_opts *o, const char *invariant, struct replay_result *res);

#endif
