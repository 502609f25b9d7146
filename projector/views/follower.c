/* runner.c - the `views` role: one thread per view, each following the log
 * from its store's checkpoint (bus, gaps filled from the log), in batches;
 * status, health and metrics. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "schemas/mmo_util.h"
#include "views_int.h"

#define POLL_MS  100
#define SUB_STOP 1000 /* our callback's "batch full" */

struct vthread {
	struct views_runner *r;
	struct view *v;
	struct vcore core;
	pthread_t th;
	bool started;
	int runlock;
	pthread_mutex_t mu; /* guards head */
	uint64_t head;
};

struct views_runner {
	struct views_opts o;
	char *data_dir, *bus, *ingest, *redis_url, *mongo_uri, *mongo_db;
	views_dlq *dlq;
	struct vthread t[2];
	size_t nt;
};

struct fill {
	struct vbatch *b;
	size_t max;
	int err;
};

static int on_rec(const struct evlog_rec *rec, void *arg)
{
	struct fill *f = arg;

	if (vb_add(f->b, rec) != MMO_OK) {
		f->err = MMO_ENOMEM;
		return SUB_STOP;
	}
	return f->b->n >= f->max ? SUB_STOP : 0;
}

static int sub_open(struct vthread *t, uint64_t from, evlog_sub **out)
{
	struct evlog_sub_opts so = {
	    .zctx = t->r->o.zctx,
	    .bus = t->r->bus,
	    .log = t->r->o.log,
	    .ingest = t->r->ingest,
	    .from_seq = from,
	    .role = "views",
	};

	return evlog_sub_open(&so, out);
}

static void note_head(struct vthread *t, uint64_t seen)
{
	uint64_t head = seen;

	if (t->r->o.log)
		evlog_head(t->r->o.log, &head, NULL);
	pthread_mutex_lock(&t->mu);
	if (head > t->head)
		t->head = head;
	pthread_mutex_unlock(&t->mu);
}

static void *run(void *arg)
{
	struct vthread *t = arg;
	struct vcore *c = &t->core;
	size_t max = t->r->o.batch_max;
	struct vbatch b = {0};
	struct fill f = {&b, max, 0};
	evlog_sub *sub = NULL;
	uint64_t ck = 0, next, found = 0;
	bool reopen = false;
	int err;

	mmo_thread_name("views");
	if (vcore_locate(c, &ck) != MMO_OK)
		goto out;
	next = ck + 1;
	mmo_logf(MMO_LOG_INFO, "views", "%s: folding from seq %llu", t->v->ops->name,
	         (unsigned long long)next);
	while (!vcore_stopping(c)) {
		size_t got = 0;

		if (!sub) {
			err = sub_open(t, next, &sub);
			if (err) {
				mmo_logf(MMO_LOG_ERROR, "views", "%s: cannot follow the log: %s",
				         t->v->ops->name, mmo_strerror(err));
				usleep(200 * 1000);
				continue;
			}
		}
		f.err = 0;
		err = evlog_sub_poll(sub, POLL_MS, on_rec, &f, &got);
		while (!err && got && b.n > 0 && b.n < max && !f.err)
			err = evlog_sub_poll(sub, 0, on_rec, &f, &got);
		if (err && err != SUB_STOP) {
			if (err == MMO_ECLOSED)
				break;
			mmo_logf(MMO_LOG_WARN, "views", "%s: following the log: %s",
			         t->v->ops->name, mmo_strerror(err));
			reopen = true;
		}
		if (f.err) {
			/* Out of memory while copying: the batch is incomplete. Start
			 * again from the last checkpoint. */
			vb_clear(&b);
			reopen = true;
		}
		note_head(t, b.n ? b.last : 0);
		if (b.n) {
			err = vcore_apply(c, &b, true, false, &found);
			if (err == MMO_ECLOSED)
				break;
			if (err == MMO_EREWIND) {
				uint64_t head = 0;

				if (t->r->o.log && evlog_head(t->r->o.log, &head, NULL) == MMO_OK &&
				    found > head)
					mmo_logf(
					    MMO_LOG_ERROR, "views",
					    "%s: the store's checkpoint %llu is past the log's "
					    "head %llu: "
					    "is it the view of another log? (mmo views rebuild %s)",
					    t->v->ops->name, (unsigned long long)found,
					    (unsigned long long)head, t->v->ops->name);
				next = found + 1;
				reopen = true;
			} else {
				next = b.last + 1;
			}
			vb_clear(&b);
		}
		if (reopen) {
			evlog_sub_close(sub);
			sub = NULL;
			reopen = false;
		}
	}
	/* Stopping: the batch in hand, if the store answers at once. */
	if (b.n && vcore_apply(c, &b, true, true, &found) == MMO_OK)
		mmo_logf(MMO_LOG_INFO, "views", "%s: stopped at seq %llu", t->v->ops->name,
		         (unsigned long long)b.last);
out:
	vb_free(&b);
	evlog_sub_close(sub);
	t->v->ops->disconnect(t->v);
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static void runner_free(views_runner *r)
{
	for (size_t i = 0; i < r->nt; i++) {
		struct vthread *t = &r->t[i];

		if (t->v)
			t->v->ops->free(t->v);
		vcore_destroy(&t->core);
		pthread_mutex_destroy(&t->mu);
		if (t->runlock >= 0)
			close(t->runlock);
	}
	views_dlq_close(r->dlq);
	free(r->data_dir);
	free(r->bus);
	free(r->ingest);
	free(r->redis_url);
	free(r->mongo_uri);
	free(r->mongo_db);
	free(r);
}

int views_runner_start(const struct views_opts *o, views_runner **out, char *errmsg, size_t errlen)
{
	struct vcore_opts co;
	views_runner *r;
	int err = MMO_OK;

	if (errmsg && errlen)
		errmsg[0] = 0;
	if (!o || !out || !o->zctx || !o->bus || !o->data_dir || (!o->log && !o->ingest)) {
		if (errmsg)
			snprintf(errmsg, errlen,
			         "views: zctx, bus, data_dir and log or ingest are needed");
		return MMO_EINVAL;
	}
	if (!(o->redis_url && *o->redis_url) && !(o->mongo_uri && *o->mongo_uri)) {
		if (errmsg)
			snprintf(errmsg, errlen,
			         "views: no view enabled (no Redis URL, no Mongo URI)");
		return MMO_EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return MMO_ENOMEM;
	r->o = *o;
	r->data_dir = dup_or_null(o->data_dir);
	r->bus = dup_or_null(o->bus);
	r->ingest = dup_or_null(o->ingest);
	r->redis_url = dup_or_null(o->redis_url);
	r->mongo_uri = dup_or_null(o->mongo_uri);
	r->mongo_db = strdup(o->mongo_db && *o->mongo_db ? o->mongo_db : "mmo");
	r->o.data_dir = r->data_dir;
	r->o.bus = r->bus;
	r->o.ingest = r->ingest;
	r->o.redis_url = r->redis_url;
	r->o.mongo_uri = r->mongo_uri;
	r->o.mongo_db = r->mongo_db;
	if (!r->o.batch_max)
		r->o.batch_max = VIEWS_BATCH_DEFAULT;
	if (r->o.batch_max > VIEWS_BATCH_MAX)
		r->o.batch_max = VIEWS_BATCH_MAX;
	co.backoff_base_ms = o->backoff_base_ms;
	co.backoff_cap_ms = o->backoff_cap_ms;
	co.breaker_threshold = o->breaker_threshold;
	co.breaker_open_ms = o->breaker_open_ms;

	err = views_dlq_open(r->data_dir, false, &r->dlq, errmsg, errlen);
	if (err)
		goto fail;
	for (int id = VIEW_ID_REDIS; id <= VIEW_ID_MONGO; id++) {
		struct vthread *t;
		struct view *v = NULL;

		if (id == VIEW_ID_REDIS && !r->redis_url)
			continue;
		if (id == VIEW_ID_MONGO && !r->mongo_uri)
			continue;
		t = &r->t[r->nt];
		t->runlock = views_run_lock(r->data_dir, views_view_name(id), &err);
		if (t->runlock < 0) {
			if (errmsg)
				snprintf(errmsg, errlen,
				         err == MMO_EBUSY
				             ? "views: another projector of %s runs on %s/views"
				             : "views: cannot lock %s in %s/views",
				         views_view_name(id), r->data_dir);
			goto fail;
		}
		err = id == VIEW_ID_REDIS
		          ? redis_view_new(r->redis_url, &v, errmsg, errlen)
		          : mongo_view_new(r->mongo_uri, r->mongo_db, &v, errmsg, errlen);
		if (err) {
			close(t->runlock);
			goto fail;
		}
		t->r = r;
		t->v = v;
		pthread_mutex_init(&t->mu, NULL);
		vcore_init(&t->core, v, r->dlq, &co);
		r->nt++;
	}
	for (size_t i = 0; i < r->nt; i++) {
		if (pthread_create(&r->t[i].th, NULL, run, &r->t[i]) != 0) {
			if (errmsg)
				snprintf(errmsg, errlen, "views: cannot start a thread");
			err = MMO_EIO;
			for (size_t j = 0; j < i; j++) {
				vcore_stop(&r->t[j].core);
				pthread_join(r->t[j].th, NULL);
			}
			goto fail;
		}
		r->t[i].started = true;
	}
	*out = r;
	return MMO_OK;
fail:
	runner_free(r);
	return err ? err : MMO_EIO;
}

void views_runner_stop(views_runner *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nt; i++)
		vcore_stop(&r->t[i].core);
	for (size_t i = 0; i < r->nt; i++) {
		if (r->t[i].started)
			pthread_join(r->t[i].th, NULL);
	}
	runner_free(r);
}

static struct vthread *find(views_runner *r, const char *view)
{
	for (size_t i = 0; r && i < r->nt; i++) {
		if (!strcmp(r->t[i].v->ops->name, view))
			return &r->t[i];
	}
	return NULL;
}

int views_runner_status(views_runner *r, const char *view, struct views_status *out)
{
	struct vthread *t = view ? find(r, view) : NULL;

	if (!out)
		return MMO_EINVAL;
	memset(out, 0, sizeof(*out));
	if (!t)
		return MMO_ENOTFOUND;
	note_head(t, 0);
	vcore_status(&t->core, out);
	pthread_mutex_lock(&t->mu);
	out->head = t->head;
	pthread_mutex_unlock(&t->mu);
	if (out->head < out->checkpoint)
		out->head = out->checkpoint;
	return MMO_OK;
}

bool views_runner_healthy(views_runner *r, char *why, size_t cap)
{
	bool ok = true;
	size_t len = 0;

	if (why && cap)
		why[0] = 0;
	for (size_t i = 0; r && i < r->nt; i++) {
		struct views_status st;

		views_runner_status(r, r->t[i].v->ops->name, &st);
		if (st.connected && st.breaker == VIEWS_BREAKER_CLOSED)
			continue;
		ok = false;
		if (why && len < cap) {
			int n = snprintf(why + len, cap - len, "%s%s: %s", len ? "; " : "",
			                 r->t[i].v->ops->name,
			                 st.last_error[0] ? st.last_error : "not connected");
			if (n > 0)
				len += (size_t)n;
		}
	}
	return ok;
}

/* Age in seconds of the first event after ck (what is waiting), 0 if none. */
static double lag_seconds(views_runner *r, uint64_t ck, uint64_t head)
{
	evlog_iter *it;
	struct evlog_rec rec;
	double s = 0;

	if (!r->o.log || head <= ck)
		return 0;
	if (evlog_iter_open(r->o.log, EVLOG_ALL, NULL, ck + 1, &it) != MMO_OK)
		return 0;
	if (evlog_iter_next(it, &rec) == MMO_OK) {
		int64_t now = mmo_now_us();

		s = now > rec.ts ? (double)(now - rec.ts) / 1e6 : 0;
	}
	evlog_iter_close(it);
	return s;
}

struct snap {
	const char *name;
	char labels[48]; /* view="redis" */
	struct views_status st;
	uint64_t batch_hist[14], batch_sum;
	const struct mmo_hist *lat; /* atomic: read while rendering */
	double lag_s;
};

static void gauge(struct mmo_prom *o, const char *name, const char *type, const char *help,
                  const struct snap *s, size_t n, size_t field_off, bool is_bool)
{
	mmo_prom_head(o, name, type, help);
	for (size_t i = 0; i < n; i++) {
		const char *p = (const char *)&s[i].st + field_off;
		unsigned long long v = is_bool ? *(const bool *)p : *(const uint64_t *)p;

		mmo_prom_printf(o, "%s{%s} %llu\n", name, s[i].labels, v);
	}
}

size_t views_runner_metrics(views_runner *r, char *buf, size_t cap)
{
	struct mmo_prom o;
	struct snap s[2] = {0};
	size_t n = 0;

	if (!buf || cap == 0)
		return 0;
	mmo_prom_init(&o, buf, cap);
	for (size_t i = 0; r && i < r->nt; i++, n++) {
		struct vthread *t = &r->t[i];

		s[n].name = t->v->ops->name;
		snprintf(s[n].labels, sizeof(s[n].labels), "view=\"%s\"", s[n].name);
		views_runner_status(r, s[n].name, &s[n].st);
		pthread_mutex_lock(&t->core.mu);
		memcpy(s[n].batch_hist, t->core.batch_hist, sizeof(s[n].batch_hist));
		s[n].batch_sum = t->core.batch_events_sum;
		pthread_mutex_unlock(&t->core.mu);
		s[n].lat = &t->core.lat;
		s[n].lag_s = lag_seconds(r, s[n].st.checkpoint, s[n].st.head);
	}
#define F(x) offsetof(struct views_status, x)
	gauge(&o, "mmo_views_events_applied_total", "counter", "Events applied to the view.", s, n,
	      F(applied), false);
	gauge(&o, "mmo_views_batches_total", "counter", "Batches committed.", s, n, F(batches),
	      false);
	gauge(&o, "mmo_views_checkpoint_seq", "gauge", "Last seq applied (the view's checkpoint).",
	      s, n, F(checkpoint), false);
	gauge(&o, "mmo_views_head_seq", "gauge", "The log's head seq at the last look.", s, n,
	      F(head), false);
	mmo_prom_head(&o, "mmo_views_lag_events", "gauge",
	              "Events of the log not yet in the view.");
	for (size_t i = 0; i < n; i++)
		mmo_prom_printf(&o, "mmo_views_lag_events{%s} %llu\n", s[i].labels,
		                (unsigned long long)(s[i].st.head - s[i].st.checkpoint));
	mmo_prom_head(&o, "mmo_views_lag_seconds", "gauge",
	              "Age of the oldest event not yet in the view.");
	for (size_t i = 0; i < n; i++)
		mmo_prom_printf(&o, "mmo_views_lag_seconds{%s} %.6f\n", s[i].labels, s[i].lag_s);
	gauge(&o, "mmo_views_retries_total", "counter", "Failed attempts that were retried.", s, n,
	      F(retries), false);
	mmo_prom_head(&o, "mmo_views_breaker_state", "gauge",
	              "Circuit breaker: 0 closed, 1 open, 2 half-open.");
	for (size_t i = 0; i < n; i++)
		mmo_prom_printf(&o, "mmo_views_breaker_state{%s} %d\n", s[i].labels,
		                (int)s[i].st.breaker);
	gauge(&o, "mmo_views_breaker_opened_total", "counter", "Times the breaker opened.", s, n,
	      F(breaker_opened), false);
	gauge(&o, "mmo_views_breaker_closed_total", "counter",
	      "Times the breaker closed again after a successful probe.", s, n, F(breaker_closed),
	      false);
	gauge(&o, "mmo_views_up", "gauge", "1 when the last attempt reached the store.", s, n,
	      F(connected), true);
	gauge(&o, "mmo_views_rewinds_total", "counter",
	      "Times the store's checkpoint was not the expected one (reset store).", s, n,
	      F(rewinds), false);
	gauge(&o, "mmo_views_dead_lettered_total", "counter", "Events refused by the store.", s, n,
	      F(dead), false);
	gauge(&o, "mmo_views_parked_total", "counter",
	      "Events parked behind a dead-lettered event of the same player.", s, n, F(parked),
	      false);
	gauge(&o, "mmo_views_dlq_depth", "gauge", "Entries of the view in the dead-letter queue.",
	      s, n, F(dlq_depth), false);
#undef F
	/* A count histogram (events, powers of two), not a latency one. */
	mmo_prom_head(&o, "mmo_views_batch_events", "histogram", "Events per batch.");
	for (size_t i = 0; i < n; i++) {
		uint64_t cum = 0;

		for (int k = 0; k < 14; k++) {
			cum += s[i].batch_hist[k];
			if (k < 13)
				mmo_prom_printf(
				    &o, "mmo_views_batch_events_bucket{%s,le=\"%llu\"} %llu\n",
				    s[i].labels, 1ull << k, (unsigned long long)cum);
			else
				mmo_prom_printf(
				    &o, "mmo_views_batch_events_bucket{%s,le=\"+Inf\"} %llu\n",
				    s[i].labels, (unsigned long long)cum);
		}
		mmo_prom_printf(&o, "mmo_views_batch_events_sum{%s} %llu\n", s[i].labels,
		                (unsigned long long)s[i].batch_sum);
		mmo_prom_printf(&o, "mmo_views_batch_events_count{%s} %llu\n", s[i].labels,
		                (unsigned long long)cum);
	}
	mmo_prom_head(&o, "mmo_views_apply_seconds", "histogram",
	              "Time to apply one batch (successful attempts).");
	for (size_t i = 0; i < n; i++)
		mmo_prom_hist(&o, "mmo_views_apply_seconds", s[i].labels, s[i].lat);
	return o.len;
}
