/* log_check.h - whole-log checks shared by the world's tests. */
#ifndef MMO_LOG_CHECK_H
#define MMO_LOG_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/evlog.h"
#include "projector/world/world.h"

struct outcome_census {
	uint64_t intents;          /* intents in the log */
	uint64_t answered;         /* intents with outcomes */
	uint64_t outcomes;         /* outcome records */
	uint64_t last_answered;    /* seq of the last answered intent */
	uint64_t first_unanswered; /* 0 if none */
};

/* Every outcome answers an intent before it, with id w:<cause>:<k>, k
 * counting 0, 1, ... per cause (so none is doubled), and every intent up to
 * the last answered one is answered (none missing). Returns 0, or -1 with
 * why filled. */
static inline int check_outcomes(evlog *log, struct outcome_census *c, char *why, size_t cap)
{
	uint64_t head = 0;
	uint8_t *kind = NULL, *next_k = NULL;
	struct evlog_rec rec;
	evlog_iter *it;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	evlog_head(log, &head, NULL);
	kind = calloc(head + 2, 1);
	next_k = calloc(head + 2, 1);
	if (!kind || !next_k || evlog_iter_open(log, EVLOG_ALL, NULL, 1, &it)) {
		snprintf(why, cap, "setup failed");
		free(kind);
		free(next_k);
		return -1;
	}
	while (rc == 0 && evlog_iter_next(it, &rec) == MMO_OK) {
		Mmo__Event *ev;
		char want[64];

		if (evlog_rec_decode(&rec, &ev)) {
			snprintf(why, cap, "seq %llu does not decode", (unsigned long long)rec.seq);
			rc = -1;
			break;
		}
		switch (world_kind(ev)) {
		case WORLD_INTENT:
			kind[rec.seq] = 1;
			c->intents++;
			break;
		case WORLD_OUTCOME:
			c->outcomes++;
			if (ev->cause_seq >= rec.seq || kind[ev->cause_seq] != 1) {
				snprintf(
				    why, cap, "seq %llu answers seq %llu, not an earlier intent",
				    (unsigned long long)rec.seq, (unsigned long long)ev->cause_seq);
				rc = -1;
				break;
			}
			snprintf(want, sizeof(want), "w:%llu:%u", (unsigned long long)ev->cause_seq,
			         next_k[ev->cause_seq]);
			if (strcmp(ev->event_id, want)) {
				snprintf(why, cap,
				         "seq %llu has id %s, expected %s (doubled or missing)",
				         (unsigned long long)rec.seq, ev->event_id, want);
				rc = -1;
				break;
			}
			if (next_k[ev->cause_seq]++ == 0) {
				c->answered++;
				if (ev->cause_seq > c->last_answered)
					c->last_answered = ev->cause_seq;
			}
			break;
		default: break;
		}
		mmo_event_free(ev);
	}
	evlog_iter_close(it);
	for (uint64_t s = 1; rc == 0 && s <= head; s++) {
		if (kind[s] == 1 && !next_k[s]) {
			if (!c->first_unanswered)
				c->first_unanswered = s;
			if (s < c->last_answered) {
				snprintf(why, cap,
				         "intent at seq %llu has no outcome, but seq %llu does",
				         (unsigned long long)s,
				         (unsigned long long)c->last_answered);
				rc = -1;
			}
		}
	}
	free(kind);
	free(next_k);
	return rc;
}

#endif
