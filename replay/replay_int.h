/* replay_int.h - the replay engine shared by replay.c and bisect.c. */
#ifndef MMO_REPLAY_INT_H
#define MMO_REPLAY_INT_H

#include "replay/replay.h"

/* Called after each record is folded (w at that seq; lg the outcomes
 * applied with it if it is an intent, else NULL). Non-zero stops. */
typedef int replay_after_fn(const world *w, const Mmo__Event *ev, const struct world_logged *lg,
                            void *arg);

/* Fold the records from world_seq(w)+1 to `to` into w with the options'
 * verify/timeline behaviour; after (may be NULL) is called per record.
 * res accumulates. */
int replay_fold(const struct replay_opts *o, world *w, uint64_t to, replay_after_fn *after,
                void *arg, struct replay_result *res);

/* The ids an event (and its outcomes) touch: player_id and body ids.
 * Calls fn for each (may repeat). */
void replay_touched(const Mmo__Event *ev, const struct world_logged *lg,
                    void (*fn)(const char *id, void *arg), void *arg);

#endif
