/* views_int.h - what the files of projector/views/ share: the batch of
 * events, a view's operations (one implementation per store), the fold
 * core (retry, breaker, DLQ parking), and the player model. */
#ifndef MMO_VIEWS_INT_H
#define MMO_VIEWS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "projector/views/views.h"
#include "schemas/mmo_prom.h"

#define VIEW_ID_REDIS 1
#define VIEW_ID_MONGO 2

/* ---------------------------------------------------------------- retry */

struct views_backoff {
	unsigned base_ms, cap_ms;
	uint64_t rng; /* xorshift state, never 0 */
};

/* Full jitter: a delay drawn uniformly from [0, min(cap, base * 2^attempt)]
 * ms (attempt 0 is the first retry). */
unsigned views_backoff_delay(struct views_backoff *b, unsigned attempt);
void views_backoff_init(struct views_backoff *b, unsigned base_ms, unsigned cap_ms, uint64_t seed);

struct views_breaker {
	unsigned threshold; /* consecutive failures that open it */
	unsigned open_ms;   /* how long it stays open before a probe */
	enum views_breaker_state state;
	unsigned failures;       /* consecutive */
	int64_t open_until_us;   /* monotonic */
	uint64_t opened, closed; /* transitions, for the metrics */
};

void views_breaker_init(struct views_breaker *br, unsigned threshold, unsigned open_ms);
/* May an attempt be made now? Open and the time is up: goes half-open
 * (the attempt is the probe). *wait_ms receives how long to wait when not. */
bool views_breaker_allow(struct views_breaker *br, int64_t now_us, unsigned *wait_ms);
void views_breaker_success(struct views_breaker *br);
void views_breaker_failure(struct views_breaker *br, int64_t now_us);

/* ---------------------------------------------------------------- batch */

enum vev_state {
	VEV_APPLY = 0, /* to apply */
	VEV_INDLQ,     /* already in the DLQ (a previous attempt put it there) */
	VEV_DEAD,      /* refused for good in this attempt */
	VEV_PARKED,    /* waits behind an earlier event of one of its players */
};

/* One event of a batch. */
struct vev {
	uint64_t seq;
	int64_t ts;
	Mmo__Event *ev; /* owned; NULL when the record does not decode */
	enum vev_state state;
	bool to_dlq;     /* dead or parked in this attempt, not yet written */
	uint64_t behind; /* parked: the seq it waits behind */
	char err[VIEWS_ERROR_MAX + 1];
	size_t nkeys;
	const char *keys[2]; /* the players whose view it writes (into ev) */
};

struct vbatch;
/* Called by a view's apply once it knows which events are dead or parked,
 * before the batch (and its checkpoint) is committed. Non-zero aborts the
 * commit (the attempt fails and is retried). */
typedef int vb_hook_fn(struct vbatch *b, void *arg);

struct vbatch {
	struct vev *ev;
	size_t n, cap;
	uint64_t first, last; /* seqs covered; the checkpoint after it is last */
	vb_hook_fn *hook;
	void *hook_arg;
};

/* Add a record (decoded and copied: rec is borrowed for the call). */
int vb_add(struct vbatch *b, const struct evlog_rec *rec);
void vb_clear(struct vbatch *b);
void vb_free(struct vbatch *b);

/* Mark every applicable event that shares a player with an earlier dead,
 * parked or dead-lettered one as parked (to_dlq). Idempotent. */
void vb_cascade(struct vbatch *b);

/* Mark e dead with a reason (printf-style). */
void vb_dead(struct vev *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The players whose view ev writes (see docs/views.md). */
size_t views_event_keys(const Mmo__Event *ev, const char *keys[2]);

/* Is this body about a player (entity_type "" or "player")? */
bool views_is_player_entity(const char *entity_type);

/* Print a double in its shortest form that reads back exactly. */
int views_fmt_double(char *buf, size_t cap, double v);

/* p (an array of *cap elements of elem bytes) grown to hold need: the
 * capacity doubles from 64. The new array (*cap updated), p itself when it
 * was large enough, or NULL (out of memory: p is still valid). */
static inline void *views_grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t c = *cap ? *cap : 64;
	void *np;

	if (need <= *cap)
		return p;
	while (c < need)
		c *= 2;
	np = realloc(p, c * elem);
	if (np)
		*cap = c;
	return np;
}

/* ---------------------------------------------------------------- views */

struct view;

struct view_ops {
	const char *name;
	int id;
	/* Connect (or check the connection): MMO_OK or MMO_EUNAVAIL. */
	int (*connect)(struct view *v);
	void (*disconnect)(struct view *v);
	/* The stored checkpoint (0 if none): MMO_OK or MMO_EUNAVAIL. */
	int (*checkpoint)(struct view *v, uint64_t *seq);
	/* Apply the events of b in state VEV_APPLY, each player's part only if
	 * the store's seq for that player is older (the seq guard). An event
	 * the store refuses for good is marked dead (vb_dead + vb_cascade) and
	 * b->hook is called before the commit. With write_ck the checkpoint
	 * becomes b->last in the same commit, and expect_ck is checked first:
	 * MMO_EREWIND with *found when it differs. Returns MMO_OK,
	 * MMO_EREWIND, MMO_ERACE, MMO_EUNAVAIL (retry) or MMO_EIO (the
	 * hook failed). */
	int (*apply)(struct view *v, struct vbatch *b, bool write_ck, uint64_t expect_ck,
	             uint64_t *found);
	/* Remove the view's data, checkpoint included. */
	int (*drop)(struct view *v, views_progress_fn *progress, void *arg);
	void (*free)(struct view *v);
};

struct view {
	const struct view_ops *ops;
	char err[160]; /* the last failure */
};

int redis_view_new(const char *url, struct view **out, char *errmsg, size_t errlen);
int mongo_view_new(const char *uri, const char *db, struct view **out, char *errmsg, size_t errlen);

/* The view's id from its name: VIEW_ID_*, or 0. */
int views_view_id(const char *name);
const char *views_view_name(int id);

/* ---------------------------------------------------------------- DLQ (internal) */

/* Prepare an attempt: reset the states, mark events already in the DLQ,
 * those that do not decode (dead), and those of a player with an entry in
 * the DLQ (parked), then cascade. */
int views_dlq_prepare(views_dlq *q, int view_id, struct vbatch *b);

/* Write the batch's to_dlq events (one transaction, durable) and clear
 * their flags. *dead and *parked (may be NULL) receive the counts. */
int views_dlq_write(views_dlq *q, int view_id, struct vbatch *b, uint64_t *dead, uint64_t *parked);

/* Remove one entry (applied or dropped): MMO_OK or MMO_ENOTFOUND. */
int views_dlq_remove(views_dlq *q, int view_id, uint64_t seq);

/* Record another refusal of an entry (attempts + 1, last failure, error). */
int views_dlq_refused(views_dlq *q, int view_id, uint64_t seq, const char *error);

/* Take / release the apply lock of a view (an flock on
 * DATA/views/dlq/<view>.apply.lock): held by a projector around each batch
 * and by a retry for its whole run. */
int views_dlq_lock(views_dlq *q, int view_id);
void views_dlq_unlock(views_dlq *q, int view_id);

/* The run lock of a view (DATA/views/<view>.lock), non-blocking: a file
 * descriptor, or -1 with MMO_EBUSY / MMO_EIO in *err. */
int views_run_lock(const char *data_dir, const char *view, int *err);

/* ---------------------------------------------------------------- core */

/* A view with its retry state and metrics: what a projector thread, a
 * rebuild and a DLQ retry share. */
struct vcore {
	struct view *v;
	int view_id;
	views_dlq *dlq; /* borrowed; NULL: no DLQ (refused events are an error) */
	struct views_backoff bo;
	struct views_breaker br;
	bool connected;
	int stop;           /* atomic: stop retrying */
	pthread_mutex_t mu; /* guards what follows, and the wake-up */
	pthread_cond_t cv;
	struct views_status st;
	uint64_t batch_hist[14]; /* events per batch: <= 2^i, last = +Inf */
	uint64_t batch_events_sum;
	struct mmo_hist lat; /* apply latency (atomic: not under mu) */
	int64_t lag_us;      /* age of the oldest event not yet applied */
};

struct vcore_opts {
	unsigned backoff_base_ms, backoff_cap_ms, breaker_threshold, breaker_open_ms;
};

void vcore_init(struct vcore *c, struct view *v, views_dlq *dlq, const struct vcore_opts *o);
void vcore_destroy(struct vcore *c);

/* Ask the core to stop retrying (thread-safe). */
void vcore_stop(struct vcore *c);
bool vcore_stopping(struct vcore *c);

/* The store's checkpoint, retrying until it answers: MMO_OK or MMO_ECLOSED
 * (stopped). */
int vcore_locate(struct vcore *c, uint64_t *ck);

/* Apply b (with its checkpoint when write_ck), retrying transient failures
 * with backoff behind the breaker, parking and dead-lettering through the
 * DLQ. once: a single attempt. Returns MMO_OK, MMO_EREWIND (*found = the
 * store's checkpoint), MMO_ECLOSED (stopped) or, with once, the failure. */
int vcore_apply(struct vcore *c, struct vbatch *b, bool write_ck, bool once, uint64_t *found);

/* Copy of the status (with breaker fields filled in). */
void vcore_status(struct vcore *c, struct views_status *st);

#endif
