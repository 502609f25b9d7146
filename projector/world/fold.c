/* fold.c - reading an intent's outcomes back from the log.
 *
 * The world appends the outcomes of intent C with event ids "w:C:0",
 * "w:C:1", ... in one request, which the log commits in one transaction:
 * either all of them are in the log or none is. So the outcomes of C are
 * found by looking the ids up in order until one is missing.
 */
#include <stdio.h>
#include <string.h>

#include "world_int.h"

int world_logged_get(evlog *log, uint64_t cause_seq, struct world_logged *out)
{
	int err = MMO_OK;

	if (!log || !out)
		return MMO_EINVAL;
	out->n = 0;
	for (size_t k = 0; k < WORLD_OUTCOME_MAX; k++) {
		char id[MMO_ID_MAX + 1];
		struct evlog_rec rec;
		evlog_iter *it;
		uint64_t seq;
		Mmo__Event *ev = NULL;

		snprintf(id, sizeof(id), "w:%llu:%zu", (unsigned long long)cause_seq, k);
		err = evlog_find_id(log, id, &seq);
		if (err == MMO_ENOTFOUND) {
			err = MMO_OK;
			break;
		}
		if (err)
			break;
		err = evlog_iter_open(log, EVLOG_ALL, NULL, seq, &it);
		if (err)
			break;
		err = evlog_iter_next(it, &rec);
		if (!err && rec.seq != seq)
			err = MMO_ECORRUPT;
		if (!err)
			err = evlog_rec_decode(&rec, &ev);
		evlog_iter_close(it);
		if (err == MMO_ENOTFOUND)
			err = MMO_ECORRUPT; /* the ids map points at nothing */
		if (err)
			break;
		if (ev->cause_seq != cause_seq || world_kind(ev) != WORLD_OUTCOME) {
			mmo_event_free(ev);
			err = MMO_ECORRUPT;
			break;
		}
		out->seq[out->n] = seq;
		out->ev[out->n++] = ev;
	}
	if (err)
		world_logged_free(out);
	return err;
}

void world_logged_free(struct world_logged *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		mmo_event_free(l->ev[i]);
	l->n = 0;
}
