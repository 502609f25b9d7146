/* ops.c - the operators' commands on a view: retry dead-lettered events,
 * rebuild a view from seq 1. Both run outside the projector (the `mmo dlq`
 * and `mmo views` commands), through the same view code. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "schemas/mmo_util.h"
#include "views_int.h"

static void say(char *errmsg, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *errmsg, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errmsg || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(errmsg, errlen, fmt, ap);
	va_end(ap);
}

static int view_open(int id, const char *redis_url, const char *mongo_uri, const char *mongo_db,
                     struct view **v, char *errmsg, size_t errlen)
{
	if (id == VIEW_ID_REDIS) {
		if (!redis_url || !*redis_url) {
			say(errmsg, errlen, "no Redis URL");
			return MMO_EINVAL;
		}
		return redis_view_new(redis_url, v, errmsg, errlen);
	}
	if (!mongo_uri || !*mongo_uri) {
		say(errmsg, errlen, "no Mongo URI: the Mongo view is off");
		return MMO_EINVAL;
	}
	return mongo_view_new(mongo_uri, mongo_db && *mongo_db ? mongo_db : "mmo", v, errmsg,
	                      errlen);
}

/* ---------------------------------------------------------------- retry */

/* Read the record at seq from the log into a one-event batch. */
static int load_one(evlog *log, uint64_t seq, struct vbatch *b)
{
	evlog_iter *it;
	struct evlog_rec rec;
	int err = evlog_iter_open(log, EVLOG_ALL, NULL, seq, &it);

	if (err)
		return err;
	err = evlog_iter_next(it, &rec);
	if (err == MMO_OK && rec.seq != seq)
		err = MMO_ENOTFOUND;
	if (err == MMO_OK)
		err = vb_add(b, &rec);
	evlog_iter_close(it);
	return err;
}

static bool shares_player(const struct views_dlq_entry *a, const struct views_dlq_entry *b)
{
	for (size_t i = 0; i < a->nplayers; i++) {
		for (size_t j = 0; j < b->nplayers; j++) {
			if (!strcmp(a->players[i], b->players[j]))
				return true;
		}
	}
	return false;
}

static int no_hook(struct vbatch *b, void *arg)
{
	(void)b;
	(void)arg;
	return MMO_OK;
}

int views_dlq_retry(const struct views_retry_opts *o, struct views_retry_result *res, char *errmsg,
                    size_t errlen)
{
	struct views_retry_result rr = {0};
	struct views_dlq_entry *all = NULL;
	struct views_dlq_cursor cur = {"", 0};
	size_t n = 0, cap = 0;
	bool *gone = NULL, more = true, started = false;
	struct view *v = NULL;
	views_dlq *q = NULL;
	int id, err;

	if (!o || !o->data_dir || !o->log || !res) {
		say(errmsg, errlen, "retry: data_dir and log are needed");
		return MMO_EINVAL;
	}
	id = views_view_id(o->view);
	if (!id) {
		say(errmsg, errlen, "unknown view '%s' (redis or mongo)", o->view ? o->view : "");
		return MMO_EINVAL;
	}
	err = views_dlq_open(o->data_dir, o->dry_run, &q, errmsg, errlen);
	if (err == MMO_ENOTFOUND) {
		*res = rr;
		return MMO_OK; /* no DLQ: nothing to retry */
	}
	if (err)
		return err;
	/* Everything of the view, in seq order. */
	while (more) {
		size_t got;

		if (n + 256 > cap) {
			size_t nc = cap ? cap * 2 : 512;
			struct views_dlq_entry *na = realloc(all, nc * sizeof(*na));

			if (!na) {
				err = MMO_ENOMEM;
				goto out;
			}
			all = na;
			cap = nc;
		}
		err = views_dlq_list(q, o->view, &cur, all + n, 256, &got, &more);
		if (err)
			goto out;
		n += got;
		if (got) {
			snprintf(cur.view, sizeof(cur.view), "%s", all[n - 1].view);
			cur.seq = all[n - 1].seq;
		}
		if (!got)
			break;
	}
	gone = calloc(n ? n : 1, sizeof(*gone));
	if (!gone) {
		err = MMO_ENOMEM;
		goto out;
	}
	if (o->seq) {
		bool found = false;

		for (size_t i = 0; i < n; i++)
			found |= all[i].seq == o->seq;
		if (!found) {
			say(errmsg, errlen, "no %s entry at seq %llu in the DLQ", o->view,
			    (unsigned long long)o->seq);
			err = MMO_ENOTFOUND;
			goto out;
		}
	}
	if (!o->dry_run) {
		err = view_open(id, o->redis_url, o->mongo_uri, o->mongo_db, &v, errmsg, errlen);
		if (err)
			goto out;
		if (v->ops->connect(v) != MMO_OK) {
			say(errmsg, errlen, "%s", v->err);
			err = MMO_EUNAVAIL;
			goto out;
		}
		if ((err = views_dlq_lock(q, id))) {
			say(errmsg, errlen, "cannot take the DLQ lock");
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct views_dlq_entry *e = &all[i];
		struct vbatch b = {0};
		bool blocked = false;

		if (o->seq) {
			if (e->seq < o->seq)
				continue;
			if (e->seq == o->seq)
				started = true;
			else if (!e->parked || !started)
				continue;
		}
		for (size_t j = 0; j < i && !blocked; j++)
			blocked = !gone[j] && shares_player(&all[j], e);
		if (blocked) {
			if (e->parked)
				rr.left_parked++;
			if (o->out)
				fprintf(
				    o->out,
				    "seq %llu: left %s (an earlier entry of its player stays)\n",
				    (unsigned long long)e->seq, e->parked ? "parked" : "dead");
			continue;
		}
		rr.tried++;
		if (o->dry_run) {
			gone[i] = true;
			if (o->out)
				fprintf(o->out, "seq %llu: would retry (%s: %s)\n",
				        (unsigned long long)e->seq, e->parked ? "parked" : "dead",
				        e->error);
			continue;
		}
		err = load_one(o->log, e->seq, &b);
		if (err == MMO_OK && !b.ev[0].ev)
			err = MMO_EMALFORMED;
		if (err) {
			char why[VIEWS_ERROR_MAX + 1];

			snprintf(why, sizeof(why), "retry: the log's record cannot be read: %s",
			         mmo_strerror(err));
			views_dlq_refused(q, id, e->seq, why);
			rr.failed++;
			if (o->out)
				fprintf(o->out, "seq %llu: refused again: %s\n",
				        (unsigned long long)e->seq, why);
			vb_free(&b);
			err = MMO_OK;
			continue;
		}
		b.hook = no_hook;
		for (int tries = 0;; tries++) {
			uint64_t found = 0;

			b.ev[0].state = VEV_APPLY;
			b.ev[0].to_dlq = false;
			err = v->ops->apply(v, &b, false, 0, &found);
			if (err != MMO_ERACE || tries > 16)
				break;
		}
		if (err) {
			say(errmsg, errlen, "%s: %s", o->view,
			    v->err[0] ? v->err : mmo_strerror(err));
			vb_free(&b);
			err = MMO_EUNAVAIL;
			goto out;
		}
		if (b.ev[0].state == VEV_DEAD) {
			views_dlq_refused(q, id, e->seq, b.ev[0].err);
			rr.failed++;
			if (o->out)
				fprintf(o->out, "seq %llu: refused again: %s\n",
				        (unsigned long long)e->seq, b.ev[0].err);
		} else {
			views_dlq_remove(q, id, e->seq);
			gone[i] = true;
			rr.applied++;
			if (o->out)
				fprintf(o->out, "seq %llu: applied\n", (unsigned long long)e->seq);
		}
		vb_free(&b);
	}
	err = MMO_OK;
out:
	if (q && !o->dry_run)
		views_dlq_unlock(q, id);
	if (v)
		v->ops->free(v);
	views_dlq_close(q);
	free(all);
	free(gone);
	if (!err)
		*res = rr;
	return err;
}

/* ---------------------------------------------------------------- rebuild */

int views_rebuild(const struct views_rebuild_opts *o, uint64_t *applied, char *errmsg,
                  size_t errlen)
{
	size_t max = o && o->batch_max ? o->batch_max : VIEWS_BATCH_DEFAULT;
	struct vbatch b = {0};
	struct vcore core;
	struct vcore_opts co = {20, 1000, 3, 1000};
	struct view *v = NULL;
	views_dlq *q = NULL;
	evlog_iter *it = NULL;
	struct evlog_rec rec;
	uint64_t head = 0, done = 0, found = 0;
	int64_t last_report = 0;
	int id, lockfd = -1, err;
	bool core_ready = false;

	if (!o || !o->data_dir || !o->log) {
		say(errmsg, errlen, "rebuild: data_dir and log are needed");
		return MMO_EINVAL;
	}
	id = views_view_id(o->view);
	if (!id) {
		say(errmsg, errlen, "unknown view '%s' (redis or mongo)", o->view ? o->view : "");
		return MMO_EINVAL;
	}
	if (max > VIEWS_BATCH_MAX)
		max = VIEWS_BATCH_MAX;
	lockfd = views_run_lock(o->data_dir, o->view, &err);
	if (lockfd < 0) {
		say(errmsg, errlen,
		    err == MMO_EBUSY ? "a projector of %s runs on %s: stop its views role first"
		                     : "cannot lock the %s view in %s/views",
		    o->view, o->data_dir);
		return err;
	}
	if ((err = views_dlq_open(o->data_dir, false, &q, errmsg, errlen)))
		goto out;
	if ((err = view_open(id, o->redis_url, o->mongo_uri, o->mongo_db, &v, errmsg, errlen)))
		goto out;
	if (v->ops->connect(v) != MMO_OK) {
		say(errmsg, errlen, "%s", v->err);
		err = MMO_EUNAVAIL;
		goto out;
	}
	if (o->progress)
		o->progress("drop", 0, 0, o->arg);
	if ((err = v->ops->drop(v, o->progress, o->arg))) {
		say(errmsg, errlen, "drop: %s", v->err);
		goto out;
	}
	if ((err = views_dlq_drop(q, o->view, 0, NULL))) {
		say(errmsg, errlen, "cannot clear the view's DLQ entries");
		goto out;
	}
	evlog_head(o->log, &head, NULL);
	vcore_init(&core, v, q, &co);
	core_ready = true;
	if ((err = evlog_iter_open(o->log, EVLOG_ALL, NULL, 1, &it)))
		goto out;
	for (;;) {
		int ierr = MMO_OK;

		while (b.n < max && (ierr = evlog_iter_next(it, &rec)) == MMO_OK) {
			if (rec.seq > head)
				break;
			if ((err = vb_add(&b, &rec)))
				goto out;
		}
		if (ierr != MMO_OK && ierr != MMO_ENOTFOUND) {
			err = ierr;
			say(errmsg, errlen, "reading the log: %s", mmo_strerror(err));
			goto out;
		}
		if (b.n == 0)
			break;
		err = vcore_apply(&core, &b, true, true, &found);
		if (err == MMO_EREWIND) {
			say(errmsg, errlen,
			    "the %s checkpoint moved under the rebuild (another writer?)", o->view);
			err = MMO_EBUSY;
			goto out;
		}
		if (err) {
			say(errmsg, errlen, "%s: %s", o->view,
			    v->err[0] ? v->err : mmo_strerror(err));
			goto out;
		}
		done = b.last;
		vb_clear(&b);
		if (o->progress && mmo_mono_us() - last_report >= 1000000) {
			o->progress("fold", done, head, o->arg);
			last_report = mmo_mono_us();
		}
		if (ierr == MMO_ENOTFOUND || done >= head)
			break;
	}
	if (o->progress)
		o->progress("fold", done, head, o->arg);
	if (applied) {
		struct views_status st;

		vcore_status(&core, &st);
		*applied = st.applied;
	}
	err = MMO_OK;
out:
	if (it)
		evlog_iter_close(it);
	vb_free(&b);
	if (core_ready)
		vcore_destroy(&core);
	if (v)
		v->ops->free(v);
	views_dlq_close(q);
	if (lockfd >= 0)
		close(lockfd);
	return err;
}
