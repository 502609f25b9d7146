/* sub.c - a bus subscriber that never misses or repeats an event.
 *
 * The bus (PUB/SUB) is only a fast path: it drops messages when a
 * subscriber is slow or not yet connected. Each bus message carries its seq
 * and the previous seq of its region, so a subscriber knows exactly what it
 * has missed and reads that from the log (local, or over the ingest):
 *   all events: a message whose seq is past the next expected one;
 *   per region: a message whose region-previous seq is past the last one
 *               delivered for that region.
 * When the bus is quiet, the subscriber also asks the log for its head, so a
 * lost last message is noticed too.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "evlog_int.h"
#include "schemas/mmo_prom.h"
#include "schemas/mmo_util.h"
#include "wire.h"

#define FILL_CHUNK       1024  /* records per remote read */
#define CATCHUP_PER_POLL 65536 /* records delivered from the log per poll */
#define MSGS_PER_POLL    4096  /* bus messages handled per poll */

/* The process's gap counters per subscriber role (world, views, ...),
 * summed over every subscriber that named the role, for /metrics. */
#define ROLES_MAX 8

struct role_counters {
	char name[32]; /* "" = free */
	atomic_uint_fast64_t gaps, filled;
};

static struct role_counters roles[ROLES_MAX];
static pthread_mutex_t roles_mu = PTHREAD_MUTEX_INITIALIZER;

/* The slot of role (created on first use); NULL if none or the table is full. */
static struct role_counters *role_slot(const char *role, bool create)
{
	struct role_counters *found = NULL;

	if (!role || !*role || strlen(role) >= sizeof(roles[0].name))
		return NULL;
	pthread_mutex_lock(&roles_mu);
	for (size_t i = 0; i < ROLES_MAX && !found; i++) {
		if (!strcmp(roles[i].name, role))
			found = &roles[i];
	}
	for (size_t i = 0; i < ROLES_MAX && !found && create; i++) {
		if (!roles[i].name[0]) {
			snprintf(roles[i].name, sizeof(roles[i].name), "%s", role);
			found = &roles[i];
		}
	}
	pthread_mutex_unlock(&roles_mu);
	return found;
}

struct region_state {
	char name[MMO_ID_MAX + 1];
	uint64_t last; /* last seq delivered for this region */
	bool caught_up;
};

struct evlog_sub {
	void *sock;
	evlog *log;
	evlog_client *client;
	bool all;
	uint64_t next;  /* all mode: next seq to deliver */
	bool caught_up; /* all mode */
	struct region_state *regions;
	size_t nregions, regions_cap;
	uint64_t gaps, filled;
	struct role_counters *role; /* or NULL */
};

static void count_gap(evlog_sub *s)
{
	s->gaps++;
	if (s->role)
		atomic_fetch_add(&s->role->gaps, 1);
}

static void count_filled(evlog_sub *s, uint64_t n)
{
	s->filled += n;
	if (s->role)
		atomic_fetch_add(&s->role->filled, n);
}

/* Forwards records below `until` to the user's callback. */
struct fill_ctx {
	evlog_rec_fn *fn;
	void *arg;
	uint64_t until; /* exclusive */
	uint64_t last;  /* last delivered */
	size_t count;
	size_t max;
	int stop;
};

static int fill_cb(const struct evlog_rec *rec, void *arg)
{
	struct fill_ctx *f = arg;
	int rc;

	if (rec->seq >= f->until || f->count >= f->max)
		return 0;
	rc = f->fn(rec, f->arg);
	f->last = rec->seq;
	f->count++;
	if (rc)
		f->stop = rc;
	return rc;
}

/* Deliver records of `region` (NULL = all) with from <= seq < until, at most
 * max of them. Returns MMO_OK (f->last is the last delivered, f->stop a
 * callback's stop value) or an error. */
static int fill(evlog_sub *s, const char *region, uint64_t from, struct fill_ctx *f)
{
	f->last = from - 1;
	f->count = 0;
	f->stop = 0;
	if (s->log) {
		evlog_iter *it;
		struct evlog_rec rec;
		int err = evlog_iter_open(s->log, region ? EVLOG_BY_REGION : EVLOG_ALL, region,
		                          from, &it);

		if (err)
			return err;
		while (f->count < f->max && !f->stop &&
		       (err = evlog_iter_next(it, &rec)) == MMO_OK) {
			if (rec.seq >= f->until)
				break;
			fill_cb(&rec, f);
		}
		evlog_iter_close(it);
		return err == MMO_ENOTFOUND || err == MMO_OK ? MMO_OK : err;
	}
	for (;;) {
		uint64_t last, head, before = f->last;
		int err = evlog_client_read(s->client, f->last + 1, FILL_CHUNK, region, fill_cb, f,
		                            &last, &head);

		if (err && !f->stop)
			return err;
		if (f->stop || f->last == before || f->count >= f->max || last + 1 >= f->until ||
		    last >= head)
			return MMO_OK;
	}
}

static struct region_state *region_get(evlog_sub *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->nregions; i++) {
		if (strlen(s->regions[i].name) == len && !memcmp(s->regions[i].name, name, len))
			return &s->regions[i];
	}
	return NULL;
}

int evlog_sub_add_region(evlog_sub *s, const char *region, uint64_t from_seq)
{
	char topic[MMO_ID_MAX + 2];
	size_t len;

	if (!s || s->all || !mmo_id_valid(region))
		return MMO_EINVAL;
	len = strlen(region);
	if (region_get(s, region, len))
		return MMO_OK;
	if (s->nregions == s->regions_cap) {
		size_t cap = s->regions_cap ? s->regions_cap * 2 : 8;
		struct region_state *r = realloc(s->regions, cap * sizeof(*r));

		if (!r)
			return MMO_ENOMEM;
		s->regions = r;
		s->regions_cap = cap;
	}
	struct region_state *st = &s->regions[s->nregions++];
	memset(st, 0, sizeof(*st));
	memcpy(st->name, region, len + 1);
	st->last = from_seq ? from_seq - 1 : 0;
	memcpy(topic, region, len);
	topic[len] = WIRE_TOPIC_END;
	if (zmq_setsockopt(s->sock, ZMQ_SUBSCRIBE, topic, len + 1) != 0)
		return MMO_EIO;
	return MMO_OK;
}

int evlog_sub_remove_region(evlog_sub *s, const char *region)
{
	char topic[MMO_ID_MAX + 2];
	struct region_state *st;
	size_t len;

	if (!s || s->all || !mmo_id_valid(region))
		return MMO_EINVAL;
	len = strlen(region);
	st = region_get(s, region, len);
	if (!st)
		return MMO_ENOTFOUND;
	memcpy(topic, region, len);
	topic[len] = WIRE_TOPIC_END;
	zmq_setsockopt(s->sock, ZMQ_UNSUBSCRIBE, topic, len + 1);
	*st = s->regions[--s->nregions];
	return MMO_OK;
}

int evlog_sub_open(const struct evlog_sub_opts *o, evlog_sub **out)
{
	evlog_sub *s;
	int err, linger = 0, hwm = 100000;

	if (!o || !o->zctx || !o->bus || (!o->log && !o->ingest) || !out)
		return MMO_EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return MMO_ENOMEM;
	s->log = o->log;
	s->role = role_slot(o->role, true);
	s->all = o->regions == NULL;
	s->next = o->from_seq ? o->from_seq : 1;
	if (!s->log) {
		err = evlog_client_open(o->zctx, o->ingest, 5000, &s->client);
		if (err)
			goto out_free;
	}
	s->sock = zmq_socket(o->zctx, ZMQ_SUB);
	if (!s->sock) {
		err = MMO_EIO;
		goto out_client;
	}
	zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (zmq_connect(s->sock, o->bus) != 0) {
		err = MMO_EINVAL;
		goto out_sock;
	}
	if (s->all) {
		zmq_setsockopt(s->sock, ZMQ_SUBSCRIBE, "", 0);
	} else {
		for (size_t i = 0; i < o->nregions; i++) {
			err = evlog_sub_add_region(s, o->regions[i], o->from_seq);
			if (err)
				goto out_sock;
		}
	}
	*out = s;
	return MMO_OK;

out_sock:
	zmq_close(s->sock);
out_client:
	evlog_client_close(s->client);
out_free:
	free(s->regions);
	free(s);
	return err;
}

void evlog_sub_close(evlog_sub *s)
{
	if (!s)
		return;
	zmq_close(s->sock);
	evlog_client_close(s->client);
	free(s->regions);
	free(s);
}

void evlog_sub_counters(evlog_sub *s, uint64_t *gaps, uint64_t *filled)
{
	*gaps = s->gaps;
	*filled = s->filled;
}

/* Deliver what the log has from s->next on (all mode), bounded. */
static int catch_up_all(evlog_sub *s, uint64_t until, evlog_rec_fn *fn, void *arg, size_t *n)
{
	struct fill_ctx f = {fn, arg, until, 0, 0, CATCHUP_PER_POLL, 0};
	int err = fill(s, NULL, s->next, &f);

	if (f.count) {
		s->next = f.last + 1;
		*n += f.count;
	}
	if (err)
		return err;
	if (f.count < CATCHUP_PER_POLL && !f.stop)
		s->caught_up = true;
	return f.stop;
}

static int catch_up_region(evlog_sub *s, struct region_state *st, uint64_t until, evlog_rec_fn *fn,
                           void *arg, size_t *n)
{
	struct fill_ctx f = {fn, arg, until, 0, 0, CATCHUP_PER_POLL, 0};
	int err = fill(s, st->name, st->last + 1, &f);

	if (f.count) {
		st->last = f.last;
		*n += f.count;
	}
	if (err)
		return err;
	if (f.count < CATCHUP_PER_POLL && !f.stop)
		st->caught_up = true;
	return f.stop;
}

static int log_head(evlog_sub *s, uint64_t *head)
{
	if (s->log)
		return evlog_head(s->log, head, NULL);
	return evlog_client_head(s->client, head);
}

/* One bus message: frames topic, meta (seq, region prev), record. */
static int on_message(evlog_sub *s, zmq_msg_t *f, evlog_rec_fn *fn, void *arg, size_t *n)
{
	const uint8_t *meta = zmq_msg_data(&f[1]);
	uint64_t seq = mmo_be64_get(meta), prev = mmo_be64_get(meta + 8);
	struct evlog_rec rec;
	int rc;

	if (evlog_rec_parse(seq, zmq_msg_data(&f[2]), zmq_msg_size(&f[2]), &rec))
		return MMO_OK; /* not ours to judge: the gap logic reads it from the log */
	if (s->all) {
		if (seq < s->next)
			return MMO_OK; /* already delivered (from the log) */
		if (seq > s->next) {
			struct fill_ctx fc = {fn, arg, seq, 0, 0, (size_t)-1, 0};

			count_gap(s);
			rc = fill(s, NULL, s->next, &fc);
			count_filled(s, fc.count);
			*n += fc.count;
			if (fc.count)
				s->next = fc.last + 1;
			if (rc)
				return rc;
			if (fc.stop)
				return fc.stop;
			if (s->next != seq)
				return MMO_EIO; /* the log does not have what the bus announced */
		}
		rc = fn(&rec, arg);
		s->next = seq + 1;
		(*n)++;
		return rc;
	}

	const char *topic = zmq_msg_data(&f[0]);
	size_t tl = zmq_msg_size(&f[0]);
	struct region_state *st;

	if (tl < 2 || topic[tl - 1] != WIRE_TOPIC_END)
		return MMO_OK;
	st = region_get(s, topic, tl - 1);
	if (!st || seq <= st->last)
		return MMO_OK;
	if (prev > st->last) {
		struct fill_ctx fc = {fn, arg, seq, 0, 0, (size_t)-1, 0};

		count_gap(s);
		rc = fill(s, st->name, st->last + 1, &fc);
		count_filled(s, fc.count);
		*n += fc.count;
		if (fc.count)
			st->last = fc.last;
		if (rc)
			return rc;
		if (fc.stop)
			return fc.stop;
	}
	rc = fn(&rec, arg);
	st->last = seq;
	(*n)++;
	return rc;
}

int evlog_sub_poll(evlog_sub *s, int timeout_ms, evlog_rec_fn *fn, void *arg, size_t *delivered)
{
	zmq_pollitem_t pi = {NULL, 0, ZMQ_POLLIN, 0};
	size_t n = 0;
	int rc = MMO_OK;

	if (!s || !fn)
		return MMO_EINVAL;
	pi.socket = s->sock;
	/* Catch up from the log before trusting the bus. */
	if (s->all && !s->caught_up) {
		rc = catch_up_all(s, UINT64_MAX, fn, arg, &n);
		goto out;
	}
	for (size_t i = 0; i < s->nregions; i++) {
		if (!s->regions[i].caught_up) {
			rc = catch_up_region(s, &s->regions[i], UINT64_MAX, fn, arg, &n);
			goto out;
		}
	}

	if (zmq_poll(&pi, 1, timeout_ms) < 0) {
		rc = errno == ETERM ? MMO_ECLOSED : MMO_OK;
		goto out;
	}
	if (!(pi.revents & ZMQ_POLLIN)) {
		/* Quiet bus: make sure nothing was lost at the tail. */
		uint64_t head;

		if (log_head(s, &head) == MMO_OK) {
			if (s->all && head >= s->next) {
				count_gap(s);
				size_t before = n;
				rc = catch_up_all(s, head + 1, fn, arg, &n);
				count_filled(s, n - before);
			} else if (!s->all) {
				for (size_t i = 0; i < s->nregions && !rc; i++) {
					if (head > s->regions[i].last) {
						size_t before = n;

						rc = catch_up_region(s, &s->regions[i], head + 1,
						                     fn, arg, &n);
						if (n > before) {
							count_gap(s);
							count_filled(s, n - before);
						}
					}
				}
			}
		}
		goto out;
	}
	for (int i = 0; i < MSGS_PER_POLL && !rc; i++) {
		zmq_msg_t f[3];
		int nf = 0, more = 1;

		while (more) {
			zmq_msg_t m;

			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, s->sock, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&m);
				break;
			}
			more = zmq_msg_more(&m);
			if (nf < 3)
				f[nf++] = m;
			else
				zmq_msg_close(&m);
		}
		if (nf == 0)
			break;
		if (nf == 3 && zmq_msg_size(&f[1]) == 16)
			rc = on_message(s, f, fn, arg, &n);
		for (int j = 0; j < nf; j++)
			zmq_msg_close(&f[j]);
	}
out:
	if (delivered)
		*delivered = n;
	return rc;
}

void evlog_sub_role_counters(const char *role, uint64_t *gaps, uint64_t *filled)
{
	struct role_counters *r = role_slot(role, false);

	*gaps = r ? atomic_load(&r->gaps) : 0;
	*filled = r ? atomic_load(&r->filled) : 0;
}

size_t evlog_sub_metrics_format(const char *const *role, size_t nroles, char *buf, size_t cap)
{
	static const char *const what[2][2] = {
	    {"mmo_bus_gaps_total", "gaps in the bus a subscriber noticed"},
	    {"mmo_bus_gap_events_filled_total",
	     "events a subscriber read from the log to fill gaps"}};
	struct mmo_prom p;

	mmo_prom_init(&p, buf, cap);
	for (int k = 0; k < 2; k++) {
		mmo_prom_head(&p, what[k][0], "counter", what[k][1]);
		for (size_t i = 0; i < nroles; i++) {
			uint64_t gaps, filled;

			evlog_sub_role_counters(role[i], &gaps, &filled);
			mmo_prom_printf(&p, "%s{role=\"%s\"} %llu\n", what[k][0], role[i],
			                (unsigned long long)(k ? filled : gaps));
		}
	}
	return p.len;
}
