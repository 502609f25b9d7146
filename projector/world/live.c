/* runner.c - the live world: role `world` of `mmo serve`.
 *
 * One thread. It loads the newest valid snapshot, then follows the log from
 * the next seq with a bus subscriber (which catches up from the log first
 * and fills any gap), and for each record in seq order:
 *   fact     apply it;
 *   intent   if the log already holds its outcomes (a restart after a crash,
 *            or a rebuild), apply those; else decide, apply, and queue the
 *            outcomes for the ingest;
 *   outcome  nothing (applied with its intent).
 * Queued outcomes go out in one request of up to EVLOG_REQ_MAX events at the
 * end of each delivery batch (or when the queue is full), always at priority
 * high (never refused as busy; requests stay in order). Their event ids are
 * derived from the cause, so re-sending after a timeout or a crash gets the
 * original seqs back instead of duplicates.
 *
 * A snapshot is written every snapshot_every records, only when the queue
 * is empty: a snapshot never contains an outcome the log does not hold, so
 * after a crash every intent past the snapshot is decided again and every
 * outcome is either found in the log or appended: none is lost or doubled.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schemas/mmo_util.h"
#include "world_int.h"

#define OUTBOX_BYTES  (512 * 1024)
#define OUT_EV_MAX    2048 /* an outcome event encodes to less */
#define POLL_MS       100
#define DEFAULT_EVERY 10000
#define STOP_REBUILD  (-1000) /* on_record's "stop delivering: rebuild first" */

struct outbox {
	struct evlog_in in[EVLOG_REQ_MAX];
	uint64_t seqs[EVLOG_REQ_MAX];
	uint64_t cause[EVLOG_REQ_MAX]; /* the intent each queued outcome answers */
	int errs[EVLOG_REQ_MAX];
	size_t nin;
	uint8_t *obuf;
	size_t olen;
};

struct world_runner {
	evlog *log;
	void *zctx;
	char ingest[512], bus[512], dir[4096];
	uint64_t every;
	uint64_t seed;

	pthread_t th;
	pthread_mutex_t mu; /* guards w and st */
	atomic_bool stop;
	world *w;
	struct world_runner_status st;
	world_snapdb *db;

	/* Thread-only state. */
	evlog_client *cli;
	evlog_sub *sub;
	uint64_t last_snap;
	uint8_t last_hash[EVLOG_HASH_LEN];
	atomic_bool rebuild; /* set by the sender on a conflict */
	bool live_logged;
	/* Outcomes: decided into *cur while the sender thread appends the
	 * other box (one batch in flight: deciding never waits for the last
	 * batch's fsync unless a second batch is ready before it). */
	struct outbox box[2], *cur;
	pthread_t sender;
	bool sender_started, sender_stop;
	pthread_mutex_t smu;
	pthread_cond_t scv, dcv;
	struct outbox *sending; /* NULL: the sender is idle */
	int send_err;           /* the sender gave up (stopping): sticky */

	world_decision_fn *on_decision; /* guarded by mu */
	void *decision_arg;
	long fault_exit_after; /* MMO_FAULT_WORLD_EXIT_AFTER_DECIDE (tests) */
};

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* The log holds another outcome than ours for intent cause (the rules or
 * the seed changed under a running log, or another world wrote it). The log
 * wins: if its outcomes can be read back, rebuild the state from the log
 * (the lookups then adopt them); else the state may differ from the log,
 * and only `mmo replay --verify` can say where. */
static void conflict(world_runner *r, uint64_t cause)
{
	struct world_logged lg = {0};

	if (r->log && world_logged_get(r->log, cause, &lg) == MMO_OK && lg.n > 0) {
		mmo_logf(MMO_LOG_ERROR, "world",
		         "the log holds other outcomes for seq %llu than the rules give "
		         "(rules or seed changed?): rebuilding the state from the log",
		         (unsigned long long)cause);
		r->rebuild = true;
	} else {
		mmo_logf(MMO_LOG_ERROR, "world",
		         "the log holds other outcomes for seq %llu than the rules give, and "
		         "they cannot be read back here: the state may now differ from the "
		         "log's (see mmo replay --verify)",
		         (unsigned long long)cause);
	}
	world_logged_free(&lg);
}

/* Append the outcomes of box; retry until they are acked (or, once
 * stopping, for about 5 s). Sender thread. */
static int send_box(world_runner *r, struct outbox *box)
{
	int attempt = 0, err;

	while (box->nin) {
		err = evlog_client_append(r->cli, box->in, box->nin, box->seqs, box->errs);
		if (!err) {
			pthread_mutex_lock(&r->mu);
			for (size_t i = 0; i < box->nin; i++) {
				if (!box->errs[i])
					r->st.appended++;
				else if (box->errs[i] == MMO_ECONFLICT)
					r->st.conflicts++;
				else
					r->st.errors++;
			}
			pthread_mutex_unlock(&r->mu);
			for (size_t i = 0; i < box->nin; i++) {
				if (box->errs[i] == MMO_ECONFLICT)
					conflict(r, box->cause[i]);
				else if (box->errs[i])
					mmo_logf(MMO_LOG_ERROR, "world",
					         "the log refused an outcome of seq %llu: %s",
					         (unsigned long long)box->cause[i],
					         mmo_strerror(box->errs[i]));
			}
			box->nin = 0;
			box->olen = 0;
			return MMO_OK;
		}
		pthread_mutex_lock(&r->mu);
		r->st.errors++;
		pthread_mutex_unlock(&r->mu);
		if (attempt % 20 == 0)
			mmo_logf(MMO_LOG_WARN, "world",
			         "appending %zu outcomes failed: %s; retrying", box->nin,
			         mmo_strerror(err));
		if (atomic_load(&r->stop) && attempt >= 50)
			return err;
		sleep_ms(attempt < 10 ? 50 : 200);
		attempt++;
	}
	return MMO_OK;
}

static void *sender_main(void *arg)
{
	world_runner *r = arg;

	mmo_thread_name("world-sender");
	pthread_mutex_lock(&r->smu);
	for (;;) {
		struct outbox *box;
		int err;

		while (!r->sending && !r->sender_stop)
			pthread_cond_wait(&r->scv, &r->smu);
		if (!r->sending)
			break;
		box = r->sending;
		pthread_mutex_unlock(&r->smu);
		err = send_box(r, box);
		pthread_mutex_lock(&r->smu);
		if (err)
			r->send_err = err;
		box->nin = 0;
		box->olen = 0;
		r->sending = NULL;
		pthread_cond_broadcast(&r->dcv);
	}
	pthread_mutex_unlock(&r->smu);
	return NULL;
}

/* Hand the decided outcomes to the sender (waiting only for the batch
 * before them). MMO_OK, or the error the sender gave up with. */
static int flush(world_runner *r)
{
	int err;

	pthread_mutex_lock(&r->smu);
	while (r->sending)
		pthread_cond_wait(&r->dcv, &r->smu);
	err = r->send_err;
	if (!err && r->cur->nin) {
		r->sending = r->cur;
		r->cur = r->cur == &r->box[0] ? &r->box[1] : &r->box[0];
		pthread_cond_signal(&r->scv);
	}
	pthread_mutex_unlock(&r->smu);
	return err;
}

/* Every decided outcome acked by the log (before a snapshot, at a stop). */
static int flush_all(world_runner *r)
{
	int err = flush(r);

	pthread_mutex_lock(&r->smu);
	while (r->sending)
		pthread_cond_wait(&r->dcv, &r->smu);
	if (!err)
		err = r->send_err;
	pthread_mutex_unlock(&r->smu);
	return err;
}

static int snapshot(world_runner *r)
{
	int64_t t0 = mmo_mono_us();
	int err;

	if (flush_all(r))
		return MMO_EIO;
	if (r->rebuild)
		return MMO_OK; /* the state is about to be rebuilt: not worth keeping */
	pthread_mutex_lock(&r->mu);
	err = world_snapdb_put(r->db, r->w, r->last_hash);
	if (!err) {
		r->st.snapshots++;
		r->last_snap = r->w->seq;
	}
	pthread_mutex_unlock(&r->mu);
	if (err)
		mmo_logf(MMO_LOG_WARN, "world", "snapshot at seq %llu failed: %s",
		         (unsigned long long)r->w->seq, mmo_strerror(err));
	else
		mmo_logf(MMO_LOG_DEBUG, "world", "snapshot at seq %llu in %lld us",
		         (unsigned long long)r->w->seq, (long long)(mmo_mono_us() - t0));
	return err;
}

/* Decide one intent whose outcomes are not in the log; apply and queue. */
static void decide(world_runner *r, const Mmo__Event *ev)
{
	struct world_outcome out;
	int err = world_decide(r->w, ev, &out);

	if (err) {
		r->st.errors++;
		return;
	}
	r->st.intents++;
	if (r->on_decision && out.n) {
		const Mmo__Event *evs[WORLD_OUTCOME_MAX];

		for (size_t i = 0; i < out.n; i++)
			evs[i] = &out.ev[i].b.ev;
		r->on_decision(r->decision_arg, ev, evs, out.n);
		if (r->fault_exit_after > 0 && --r->fault_exit_after == 0) {
			/* Tests: die in the window between a decision handed out and
			 * its outcome's commit, as kill -9 would. */
			sleep_ms(300);
			raise(SIGKILL);
		}
	}
	for (size_t i = 0; i < out.n; i++) {
		size_t len;

		world_apply_outcome(r->w, &out.ev[i].b.ev, ev);
		err = mmo_event_encode(&out.ev[i].b.ev, r->cur->obuf + r->cur->olen,
		                       OUTBOX_BYTES - r->cur->olen, &len);
		if (err) {
			r->st.errors++;
			mmo_logf(MMO_LOG_ERROR, "world", "outcome %s does not encode: %s",
			         out.ev[i].event_id, mmo_strerror(err));
			continue;
		}
		r->cur->in[r->cur->nin].buf = r->cur->obuf + r->cur->olen;
		r->cur->in[r->cur->nin].len = len;
		r->cur->in[r->cur->nin].priority = MMO_PRIO_HIGH;
		r->cur->cause[r->cur->nin] = ev->seq;
		r->cur->nin++;
		r->cur->olen += len;
	}
}

static void fold_intent(world_runner *r, const Mmo__Event *ev)
{
	struct world_logged lg;
	int err;

	if (r->log) {
		err = world_logged_get(r->log, ev->seq, &lg);
		if (!err && lg.n) {
			for (size_t i = 0; i < lg.n; i++)
				world_apply_outcome(r->w, lg.ev[i], ev);
			world_logged_free(&lg);
			r->st.reused++;
			return;
		}
		if (err) {
			r->st.errors++;
			mmo_logf(MMO_LOG_ERROR, "world", "reading the outcomes of seq %llu: %s",
			         (unsigned long long)ev->seq, mmo_strerror(err));
		}
	}
	decide(r, ev);
}

static int on_record(const struct evlog_rec *rec, void *arg)
{
	world_runner *r = arg;
	Mmo__Event *ev = NULL;
	int err = evlog_rec_decode(rec, &ev);

	pthread_mutex_lock(&r->mu);
	if (err) {
		r->st.errors++;
		mmo_logf(MMO_LOG_ERROR, "world", "seq %llu does not decode (%s): skipped",
		         (unsigned long long)rec->seq, mmo_strerror(err));
	} else {
		switch (world_kind(ev)) {
		case WORLD_FACT: world_apply_fact(r->w, ev); break;
		case WORLD_INTENT: fold_intent(r, ev); break;
		default: break;
		}
	}
	world_set_seq(r->w, rec->seq);
	memcpy(r->last_hash, rec->hash, EVLOG_HASH_LEN);
	pthread_mutex_unlock(&r->mu);
	mmo_event_free(ev);

	if (r->cur->nin + WORLD_OUTCOME_MAX > EVLOG_REQ_MAX ||
	    r->cur->olen + WORLD_OUTCOME_MAX * OUT_EV_MAX > OUTBOX_BYTES) {
		if (flush(r))
			return MMO_ECLOSED;
	}
	if (rec->seq - r->last_snap >= r->every)
		snapshot(r);
	if (atomic_load(&r->stop))
		return MMO_ECLOSED;
	return r->rebuild ? STOP_REBUILD : 0;
}

/* Load the newest snapshot that fits the log (or start empty). */
static int load(world_runner *r, char *msg, size_t msglen)
{
	uint64_t head = 0, skipped = 0;
	world *w = NULL;
	int err = MMO_ENOTFOUND;

	if (r->log)
		evlog_head(r->log, &head, NULL);
	if (!r->log || head > 0)
		err = world_snapdb_load(r->db, r->log, head, &w, &skipped);
	if (err == MMO_ENOTFOUND) {
		err = world_new(r->seed, &w);
		if (err) {
			snprintf(msg, msglen, "out of memory");
			return err;
		}
		mmo_logf(MMO_LOG_INFO, "world", "no usable snapshot: folding the log from seq 1");
	} else if (err) {
		snprintf(msg, msglen, "cannot read the world's snapshots: %s", mmo_errdesc(err));
		return err;
	} else {
		w->seed = r->seed;
		mmo_logf(MMO_LOG_INFO, "world",
		         "loaded snapshot at seq %llu (%zu players, %zu entities); log head %llu",
		         (unsigned long long)w->seq, w->npl, w->nen, (unsigned long long)head);
	}
	pthread_mutex_lock(&r->mu);
	world_free(r->w);
	r->w = w;
	r->last_snap = w->seq;
	pthread_mutex_unlock(&r->mu);
	return MMO_OK;
}

static int follow_open(world_runner *r)
{
	struct evlog_sub_opts so = {0};

	so.zctx = r->zctx;
	so.bus = r->bus;
	so.log = r->log;
	so.ingest = r->ingest;
	so.from_seq = r->w->seq + 1;
	so.role = "world";
	return evlog_sub_open(&so, &r->sub);
}

static void *run(void *arg)
{
	world_runner *r = arg;
	char msg[256];
	int err;

	mmo_thread_name("world");
	err = evlog_client_open(r->zctx, r->ingest, 5000, &r->cli);
	if (!err && pthread_create(&r->sender, NULL, sender_main, r))
		err = MMO_EIO;
	else if (!err)
		r->sender_started = true;
	if (!err)
		err = follow_open(r);
	if (err) {
		mmo_logf(MMO_LOG_ERROR, "world", "cannot follow the log (%s, %s): %s", r->ingest,
		         r->bus, mmo_strerror(err));
		goto out;
	}
	while (!atomic_load(&r->stop)) {
		size_t n = 0;

		err = evlog_sub_poll(r->sub, POLL_MS, on_record, r, &n);
		if (err == STOP_REBUILD)
			err = MMO_OK;
		if (!err && flush(r) == MMO_OK && !n && !r->live_logged) {
			r->live_logged = true;
			mmo_logf(MMO_LOG_INFO, "world", "live at seq %llu",
			         (unsigned long long)r->w->seq);
		}
		if (err == MMO_ECLOSED)
			break;
		if (err) {
			pthread_mutex_lock(&r->mu);
			r->st.errors++;
			pthread_mutex_unlock(&r->mu);
			mmo_logf(MMO_LOG_WARN, "world", "following the log: %s; retrying",
			         mmo_strerror(err));
			sleep_ms(200);
		}
		if (r->rebuild) {
			/* The log holds other outcomes than ours: rebuild from it. */
			flush_all(r); /* nothing of the old state in flight */
			r->rebuild = false;
			pthread_mutex_lock(&r->mu);
			r->st.rebuilds++;
			pthread_mutex_unlock(&r->mu);
			evlog_sub_close(r->sub);
			r->sub = NULL;
			if (load(r, msg, sizeof(msg)) || follow_open(r)) {
				mmo_logf(MMO_LOG_ERROR, "world",
				         "rebuild failed: stopping the world");
				goto out;
			}
		}
	}
out:
	/* Drain: send what was decided, then a last snapshot if all is logged. */
	if (r->cli && r->sender_started && flush_all(r) == MMO_OK && !r->rebuild &&
	    r->w->seq > r->last_snap)
		snapshot(r);
	if (r->sender_started) {
		pthread_mutex_lock(&r->smu);
		r->sender_stop = true;
		pthread_cond_signal(&r->scv);
		pthread_mutex_unlock(&r->smu);
		pthread_join(r->sender, NULL);
		r->sender_started = false;
	}
	evlog_sub_close(r->sub);
	r->sub = NULL;
	evlog_client_close(r->cli);
	r->cli = NULL;
	return NULL;
}

static int copy(char *dst, size_t cap, const char *src)
{
	if (!src || strlen(src) >= cap)
		return MMO_EINVAL;
	memcpy(dst, src, strlen(src) + 1);
	return MMO_OK;
}

int world_runner_start(const struct world_runner_opts *o, world_runner **out, char *errmsg,
                       size_t errlen)
{
	char dir[4200], msg[512] = "";
	world_runner *r;
	uint64_t stored;
	int err;

	if (!o || !o->zctx || !o->bus || !o->ingest || !o->data_dir || !out) {
		if (errmsg)
			snprintf(errmsg, errlen,
			         "world: missing option (zctx, ingest, bus, data_dir)");
		return MMO_EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return MMO_ENOMEM;
	pthread_mutex_init(&r->mu, NULL);
	r->log = o->log;
	r->zctx = o->zctx;
	{
		const char *f = getenv("MMO_FAULT_WORLD_EXIT_AFTER_DECIDE");

		r->fault_exit_after = f ? atol(f) : 0;
	}
	r->every = o->snapshot_every ? o->snapshot_every : DEFAULT_EVERY;
	snprintf(dir, sizeof(dir), "%s/world", o->data_dir);
	if (copy(r->ingest, sizeof(r->ingest), o->ingest) || copy(r->bus, sizeof(r->bus), o->bus) ||
	    copy(r->dir, sizeof(r->dir), dir)) {
		snprintf(msg, sizeof(msg), "world: an endpoint or folder name is too long");
		err = MMO_EINVAL;
		goto fail;
	}
	pthread_mutex_init(&r->smu, NULL);
	pthread_cond_init(&r->scv, NULL);
	pthread_cond_init(&r->dcv, NULL);
	r->cur = &r->box[0];
	r->box[0].obuf = malloc(OUTBOX_BYTES);
	r->box[1].obuf = malloc(OUTBOX_BYTES);
	if (!r->box[0].obuf || !r->box[1].obuf) {
		err = MMO_ENOMEM;
		goto fail;
	}
	err = world_snapdb_open(r->dir, false, &r->db, msg, sizeof(msg));
	if (err)
		goto fail;
	err = world_snapdb_seed(r->db, &stored);
	if (err == MMO_OK) {
		if (o->seed && o->seed != stored) {
			snprintf(msg, sizeof(msg),
			         "world seed %llu differs from the seed %llu this log was played "
			         "with (in %.200s)",
			         (unsigned long long)o->seed, (unsigned long long)stored, r->dir);
			err = MMO_EINVAL;
			goto fail;
		}
		r->seed = stored;
	} else if (err == MMO_ENOTFOUND) {
		r->seed = o->seed ? o->seed : WORLD_DEFAULT_SEED;
		err = world_snapdb_set_seed(r->db, r->seed);
		if (err) {
			snprintf(msg, sizeof(msg), "cannot store the world seed: %s",
			         mmo_errdesc(err));
			goto fail;
		}
	} else {
		snprintf(msg, sizeof(msg), "cannot read the world seed: %s", mmo_errdesc(err));
		goto fail;
	}
	err = load(r, msg, sizeof(msg));
	if (err)
		goto fail;
	if (pthread_create(&r->th, NULL, run, r) != 0) {
		snprintf(msg, sizeof(msg), "cannot start the world thread");
		err = MMO_EIO;
		goto fail;
	}
	*out = r;
	return MMO_OK;

fail:
	if (errmsg)
		snprintf(errmsg, errlen, "%s", msg[0] ? msg : mmo_errdesc(err));
	world_snapdb_close(r->db);
	world_free(r->w);
	free(r->box[0].obuf);
	free(r->box[1].obuf);
	pthread_cond_destroy(&r->scv);
	pthread_cond_destroy(&r->dcv);
	pthread_mutex_destroy(&r->smu);
	pthread_mutex_destroy(&r->mu);
	free(r);
	return err;
}

void world_runner_set_decision_hook(world_runner *r, world_decision_fn *fn, void *arg)
{
	pthread_mutex_lock(&r->mu);
	r->on_decision = fn;
	r->decision_arg = arg;
	pthread_mutex_unlock(&r->mu);
}

void world_runner_stop(world_runner *r)
{
	if (!r)
		return;
	atomic_store(&r->stop, true);
	pthread_join(r->th, NULL);
	mmo_logf(MMO_LOG_INFO, "world",
	         "stopped at seq %llu: %llu intents decided, %llu found in the log, %llu "
	         "outcomes sent, %llu snapshots",
	         (unsigned long long)r->w->seq, (unsigned long long)r->st.intents,
	         (unsigned long long)r->st.reused, (unsigned long long)r->st.appended,
	         (unsigned long long)r->st.snapshots);
	world_snapdb_close(r->db);
	world_free(r->w);
	free(r->box[0].obuf);
	free(r->box[1].obuf);
	pthread_cond_destroy(&r->scv);
	pthread_cond_destroy(&r->dcv);
	pthread_mutex_destroy(&r->smu);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

void world_runner_status(world_runner *r, bool with_hash, struct world_runner_status *st)
{
	pthread_mutex_lock(&r->mu);
	*st = r->st;
	st->seq = r->w->seq;
	if (with_hash && world_hash(r->w, st->hash))
		memset(st->hash, 0, sizeof(st->hash));
	pthread_mutex_unlock(&r->mu);
}
