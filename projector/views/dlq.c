/* dlq.c - the dead-letter queue: a durable record, in its own LMDB
 * environment (DATA/views/dlq), of the events a view could not apply.
 *
 *   entries  view id (u8) ‖ seq (u64 BE) -> JSON {seq, view, status, behind,
 *            error, attempts, first_us, last_us, players}
 *   blocked  view id (u8) ‖ player id   -> count (u64 BE) ‖ last seq (u64 BE):
 *            how many entries of the view name the player (they hold its
 *            later events back)
 *   meta     "depth" ‖ view id          -> u64 BE, entries of the view
 * An entry, its blocked counts and the depth change in one transaction.
 * The event itself is not copied: the log holds it, by seq.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schemas/mmo_be.h"
#include "schemas/mmo_util.h"
#include "views_int.h"

#define DLQ_MAP_SIZE (1ull << 30)

struct views_dlq {
	MDB_env *env;
	MDB_dbi entries, blocked, meta;
	char dir[4096];
	int lockfd[3]; /* apply locks by view id */
	int lockdepth[3];
	bool readonly;
};

static int mkdir_one(const char *p)
{
	return mkdir(p, 0750) == 0 || errno == EEXIST ? 0 : -1;
}

int views_dlq_open(const char *data_dir, bool readonly, views_dlq **out, char *errmsg,
                   size_t errlen)
{
	views_dlq *q;
	MDB_txn *txn = NULL;
	struct stat st;
	char views[4096];
	int rc;

	if (!data_dir || !*data_dir || !out)
		return MMO_EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return MMO_ENOMEM;
	for (int i = 0; i < 3; i++)
		q->lockfd[i] = -1;
	q->readonly = readonly;
	snprintf(views, sizeof(views), "%s/views", data_dir);
	snprintf(q->dir, sizeof(q->dir), "%s/views/dlq", data_dir);
	if (readonly && (stat(q->dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
		free(q);
		return MMO_ENOTFOUND;
	}
	if (!readonly && (mkdir_one(data_dir) || mkdir_one(views) || mkdir_one(q->dir))) {
		if (errmsg)
			snprintf(errmsg, errlen, "cannot create %s: %s", q->dir, strerror(errno));
		free(q);
		return MMO_EIO;
	}
	rc = mdb_env_create(&q->env);
	if (!rc)
		rc = mdb_env_set_maxdbs(q->env, 4);
	if (!rc)
		rc = mdb_env_set_mapsize(q->env, DLQ_MAP_SIZE);
	if (!rc)
		rc = mdb_env_open(q->env, q->dir, MDB_NOTLS | (readonly ? MDB_RDONLY : 0), 0640);
	if (!rc)
		rc = mdb_txn_begin(q->env, NULL, readonly ? MDB_RDONLY : 0, &txn);
	if (!rc)
		rc = mdb_dbi_open(txn, "entries", readonly ? 0 : MDB_CREATE, &q->entries);
	if (!rc)
		rc = mdb_dbi_open(txn, "blocked", readonly ? 0 : MDB_CREATE, &q->blocked);
	if (!rc)
		rc = mdb_dbi_open(txn, "meta", readonly ? 0 : MDB_CREATE, &q->meta);
	if (!rc)
		rc = mdb_txn_commit(txn);
	else if (txn)
		mdb_txn_abort(txn);
	if (rc) {
		if (errmsg)
			snprintf(errmsg, errlen, "dlq %s: %s", q->dir, mdb_strerror(rc));
		mdb_env_close(q->env);
		free(q);
		return rc == MDB_NOTFOUND ? MMO_ENOTFOUND : MMO_EIO;
	}
	*out = q;
	return MMO_OK;
}

void views_dlq_close(views_dlq *q)
{
	if (!q)
		return;
	for (int i = 0; i < 3; i++) {
		if (q->lockfd[i] >= 0)
			close(q->lockfd[i]);
	}
	mdb_env_close(q->env);
	free(q);
}

/* ---------------------------------------------------------------- locks */

int views_dlq_lock(views_dlq *q, int view_id)
{
	char path[4200];

	if (view_id < 1 || view_id > 2)
		return MMO_EINVAL;
	if (q->lockfd[view_id] < 0) {
		snprintf(path, sizeof(path), "%s/%s.apply.lock", q->dir, views_view_name(view_id));
		q->lockfd[view_id] = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
		if (q->lockfd[view_id] < 0)
			return MMO_EIO;
	}
	if (q->lockdepth[view_id]++ > 0)
		return MMO_OK;
	while (flock(q->lockfd[view_id], LOCK_EX) != 0) {
		if (errno != EINTR) {
			q->lockdepth[view_id]--;
			return MMO_EIO;
		}
	}
	return MMO_OK;
}

void views_dlq_unlock(views_dlq *q, int view_id)
{
	if (view_id < 1 || view_id > 2 || q->lockfd[view_id] < 0 || q->lockdepth[view_id] == 0)
		return;
	if (--q->lockdepth[view_id] == 0)
		flock(q->lockfd[view_id], LOCK_UN);
}

int views_run_lock(const char *data_dir, const char *view, int *err)
{
	char views[4200], path[4300];
	int fd;

	snprintf(views, sizeof(views), "%s/views", data_dir);
	if (mkdir_one(data_dir) || mkdir_one(views)) {
		*err = MMO_EIO;
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s.lock", views, view);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		*err = MMO_EIO;
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		*err = errno == EWOULDBLOCK ? MMO_EBUSY : MMO_EIO;
		close(fd);
		return -1;
	}
	return fd;
}

/* ---------------------------------------------------------------- encoding */

static void entry_key(uint8_t key[9], int view_id, uint64_t seq)
{
	key[0] = (uint8_t)view_id;
	mmo_be64_put(key + 1, seq);
}

static int entry_decode(const MDB_val *k, const MDB_val *v, struct views_dlq_entry *e)
{
	json_t *j, *pl;
	json_error_t jerr;
	const char *s;

	memset(e, 0, sizeof(*e));
	if (k->mv_size != 9)
		return MMO_ECORRUPT;
	e->seq = mmo_be64_get((const uint8_t *)k->mv_data + 1);
	snprintf(e->view, sizeof(e->view), "%s", views_view_name(((const uint8_t *)k->mv_data)[0]));
	j = json_loadb(v->mv_data, v->mv_size, 0, &jerr);
	if (!j)
		return MMO_ECORRUPT;
	s = json_string_value(json_object_get(j, "status"));
	e->parked = s && !strcmp(s, "parked");
	e->behind = (uint64_t)json_integer_value(json_object_get(j, "behind"));
	s = json_string_value(json_object_get(j, "error"));
	snprintf(e->error, sizeof(e->error), "%s", s ? s : "");
	e->attempts = (uint32_t)json_integer_value(json_object_get(j, "attempts"));
	e->first_us = json_integer_value(json_object_get(j, "first_us"));
	e->last_us = json_integer_value(json_object_get(j, "last_us"));
	pl = json_object_get(j, "players");
	for (size_t i = 0; i < json_array_size(pl) && e->nplayers < 2; i++) {
		s = json_string_value(json_array_get(pl, i));
		if (s)
			snprintf(e->players[e->nplayers++], sizeof(e->players[0]), "%s", s);
	}
	json_decref(j);
	return MMO_OK;
}

static char *entry_encode(const struct views_dlq_entry *e)
{
	json_t *j = json_object(), *pl = json_array();
	char *s = NULL;

	if (!j || !pl)
		goto out;
	for (size_t i = 0; i < e->nplayers; i++)
		json_array_append_new(pl, json_string(e->players[i]));
	json_object_set_new(j, "seq", json_integer((json_int_t)e->seq));
	json_object_set_new(j, "view", json_string(e->view));
	json_object_set_new(j, "status", json_string(e->parked ? "parked" : "dead"));
	json_object_set_new(j, "behind", json_integer((json_int_t)e->behind));
	json_object_set_new(j, "error", json_string(e->error));
	json_object_set_new(j, "attempts", json_integer(e->attempts));
	json_object_set_new(j, "first_us", json_integer(e->first_us));
	json_object_set_new(j, "last_us", json_integer(e->last_us));
	json_object_set(j, "players", pl);
	s = json_dumps(j, JSON_COMPACT);
out:
	json_decref(pl);
	json_decref(j);
	return s;
}

static int put_entry(views_dlq *q, MDB_txn *txn, int view_id, const struct views_dlq_entry *e,
                     unsigned flags)
{
	uint8_t key[9];
	char *s = entry_encode(e);
	MDB_val k = {sizeof(key), key}, v;
	int rc;

	if (!s)
		return MDB_PANIC;
	entry_key(key, view_id, e->seq);
	v.mv_size = strlen(s);
	v.mv_data = s;
	rc = mdb_put(txn, q->entries, &k, &v, flags);
	free(s);
	return rc;
}

static int blocked_add(views_dlq *q, MDB_txn *txn, int view_id, const char *player, int delta,
                       uint64_t seq)
{
	uint8_t key[1 + MMO_ID_MAX], val[16];
	size_t len = strlen(player);
	MDB_val k, v;
	uint64_t count = 0, last = 0;
	int rc;

	if (len > MMO_ID_MAX)
		len = MMO_ID_MAX;
	key[0] = (uint8_t)view_id;
	memcpy(key + 1, player, len);
	k.mv_size = 1 + len;
	k.mv_data = key;
	rc = mdb_get(txn, q->blocked, &k, &v);
	if (rc == 0 && v.mv_size == 16) {
		count = mmo_be64_get(v.mv_data);
		last = mmo_be64_get((const uint8_t *)v.mv_data + 8);
	} else if (rc != MDB_NOTFOUND && rc != 0) {
		return rc;
	}
	if (delta > 0) {
		count++;
		if (seq > last)
			last = seq;
	} else if (count > 0) {
		count--;
	}
	if (count == 0) {
		rc = mdb_del(txn, q->blocked, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	mmo_be64_put(val, count);
	mmo_be64_put(val + 8, last);
	v.mv_size = sizeof(val);
	v.mv_data = val;
	return mdb_put(txn, q->blocked, &k, &v, 0);
}

static int depth_add(views_dlq *q, MDB_txn *txn, int view_id, int64_t delta)
{
	uint8_t key[6] = {'d', 'e', 'p', 't', 'h', (uint8_t)view_id}, val[8];
	MDB_val k = {sizeof(key), key}, v;
	uint64_t d = 0;
	int rc = mdb_get(txn, q->meta, &k, &v);

	if (rc == 0 && v.mv_size == 8)
		d = mmo_be64_get(v.mv_data);
	if (delta < 0 && d < (uint64_t)-delta)
		d = 0;
	else
		d = (uint64_t)((int64_t)d + delta);
	mmo_be64_put(val, d);
	v.mv_size = 8;
	v.mv_data = val;
	return mdb_put(txn, q->meta, &k, &v, 0);
}

static uint64_t depth_get(views_dlq *q, MDB_txn *txn, int view_id)
{
	uint8_t key[6] = {'d', 'e', 'p', 't', 'h', (uint8_t)view_id};
	MDB_val k = {sizeof(key), key}, v;

	if (mdb_get(txn, q->meta, &k, &v) == 0 && v.mv_size == 8)
		return mmo_be64_get(v.mv_data);
	return 0;
}

/* ---------------------------------------------------------------- queries */

uint64_t views_dlq_depth(views_dlq *q, const char *view)
{
	MDB_txn *txn;
	uint64_t d = 0;

	if (!q || mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn))
		return 0;
	for (int id = 1; id <= 2; id++) {
		if (!view || views_view_id(view) == id)
			d += depth_get(q, txn, id);
	}
	mdb_txn_abort(txn);
	return d;
}

int views_dlq_get(views_dlq *q, const char *view, uint64_t seq, struct views_dlq_entry *out)
{
	int id = views_view_id(view), rc, err;
	uint8_t key[9];
	MDB_val k = {sizeof(key), key}, v;
	MDB_txn *txn;

	if (!q || !id || !out)
		return MMO_EINVAL;
	if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn))
		return MMO_EIO;
	entry_key(key, id, seq);
	rc = mdb_get(txn, q->entries, &k, &v);
	if (rc == MDB_NOTFOUND)
		err = MMO_ENOTFOUND;
	else if (rc)
		err = MMO_EIO;
	else
		err = entry_decode(&k, &v, out);
	mdb_txn_abort(txn);
	return err;
}

int views_dlq_list(views_dlq *q, const char *view, const struct views_dlq_cursor *after,
                   struct views_dlq_entry *out, size_t cap, size_t *n, bool *more)
{
	int only = view ? views_view_id(view) : 0, rc, err = MMO_OK;
	uint8_t key[9] = {0};
	MDB_val k = {sizeof(key), key}, v;
	MDB_cursor *cur;
	MDB_txn *txn;
	size_t got = 0;
	bool has_more = false;

	if (!q || (view && !only) || !n)
		return MMO_EINVAL;
	if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn))
		return MMO_EIO;
	if (mdb_cursor_open(txn, q->entries, &cur)) {
		mdb_txn_abort(txn);
		return MMO_EIO;
	}
	if (after && after->view[0]) {
		entry_key(key, views_view_id(after->view), after->seq);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && k.mv_size == 9 && !memcmp(k.mv_data, key, 9))
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	} else {
		key[0] = (uint8_t)only;
		k.mv_size = only ? 1 : 0;
		rc = only ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
		          : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		int id = k.mv_size ? ((const uint8_t *)k.mv_data)[0] : 0;

		if (only && id < only)
			continue;
		if (only && id > only)
			break;
		if (got == cap) {
			has_more = true;
			break;
		}
		if (entry_decode(&k, &v, &out[got]) == MMO_OK)
			got++;
	}
	if (rc && rc != MDB_NOTFOUND)
		err = MMO_EIO;
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	*n = got;
	if (more)
		*more = has_more;
	return err;
}

/* ---------------------------------------------------------------- changes */

static int remove_in(views_dlq *q, MDB_txn *txn, int view_id, uint64_t seq, bool *found)
{
	struct views_dlq_entry e;
	uint8_t key[9];
	MDB_val k = {sizeof(key), key}, v;
	int rc;

	*found = false;
	entry_key(key, view_id, seq);
	rc = mdb_get(txn, q->entries, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (entry_decode(&k, &v, &e) == MMO_OK) {
		for (size_t i = 0; i < e.nplayers; i++) {
			rc = blocked_add(q, txn, view_id, e.players[i], -1, 0);
			if (rc)
				return rc;
		}
	}
	rc = mdb_del(txn, q->entries, &k, NULL);
	if (rc)
		return rc;
	*found = true;
	return depth_add(q, txn, view_id, -1);
}

int views_dlq_drop(views_dlq *q, const char *view, uint64_t seq, uint64_t *removed)
{
	int only = view ? views_view_id(view) : 0, rc = 0;
	MDB_txn *txn;
	uint64_t n = 0;

	if (!q || (view && !only) || q->readonly)
		return MMO_EINVAL;
	if (mdb_txn_begin(q->env, NULL, 0, &txn))
		return MMO_EIO;
	for (int id = 1; id <= 2 && !rc; id++) {
		if (only && id != only)
			continue;
		if (seq) {
			bool found;

			rc = remove_in(q, txn, id, seq, &found);
			n += found;
			continue;
		}
		/* Every entry of the view: collect seqs first (no cursor over a
		 * table being changed). */
		for (;;) {
			MDB_cursor *cur;
			uint8_t key[1] = {(uint8_t)id};
			MDB_val k = {1, key}, v;
			uint64_t seqs[256];
			size_t m = 0;

			if ((rc = mdb_cursor_open(txn, q->entries, &cur)))
				break;
			rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
			while (rc == 0 && m < 256 && k.mv_size == 9 &&
			       ((const uint8_t *)k.mv_data)[0] == id) {
				seqs[m++] = mmo_be64_get((const uint8_t *)k.mv_data + 1);
				rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			}
			mdb_cursor_close(cur);
			rc = rc == MDB_NOTFOUND ? 0 : rc;
			if (rc || m == 0)
				break;
			for (size_t i = 0; i < m && !rc; i++) {
				bool found;

				rc = remove_in(q, txn, id, seqs[i], &found);
				n += found;
			}
			if (rc)
				break;
		}
	}
	if (rc || (rc = mdb_txn_commit(txn))) {
		if (rc)
			mdb_txn_abort(txn);
		return MMO_EIO;
	}
	if (removed)
		*removed = n;
	return MMO_OK;
}

int views_dlq_prepare(views_dlq *q, int view_id, struct vbatch *b)
{
	MDB_txn *txn = NULL;
	bool check;

	for (size_t i = 0; i < b->n; i++) {
		struct vev *e = &b->ev[i];

		e->state = VEV_APPLY;
		e->to_dlq = false;
		e->behind = 0;
		e->err[0] = 0;
	}
	check = q && mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn) == 0;
	if (check && depth_get(q, txn, view_id) == 0)
		check = false;
	for (size_t i = 0; i < b->n; i++) {
		struct vev *e = &b->ev[i];

		if (check) {
			uint8_t key[9];
			MDB_val k = {sizeof(key), key}, v;

			entry_key(key, view_id, e->seq);
			if (mdb_get(txn, q->entries, &k, &v) == 0) {
				e->state = VEV_INDLQ;
				continue;
			}
		}
		if (!e->ev) {
			vb_dead(e, "decode: the record is not a valid event");
			continue;
		}
		for (size_t j = 0; check && j < e->nkeys; j++) {
			uint8_t key[1 + MMO_ID_MAX];
			size_t len = strlen(e->keys[j]);
			MDB_val k, v;

			if (len > MMO_ID_MAX)
				len = MMO_ID_MAX;
			key[0] = (uint8_t)view_id;
			memcpy(key + 1, e->keys[j], len);
			k.mv_size = 1 + len;
			k.mv_data = key;
			if (mdb_get(txn, q->blocked, &k, &v) == 0 && v.mv_size == 16 &&
			    mmo_be64_get(v.mv_data) > 0) {
				e->state = VEV_PARKED;
				e->to_dlq = true;
				e->behind = mmo_be64_get((const uint8_t *)v.mv_data + 8);
				snprintf(e->err, sizeof(e->err), "parked behind seq %llu",
				         (unsigned long long)e->behind);
				break;
			}
		}
	}
	if (txn)
		mdb_txn_abort(txn);
	vb_cascade(b);
	return MMO_OK;
}

int views_dlq_write(views_dlq *q, int view_id, struct vbatch *b, uint64_t *dead, uint64_t *parked)
{
	MDB_txn *txn;
	uint64_t nd = 0, np = 0;
	int64_t now = mmo_now_us();
	int rc = 0;
	bool any = false;

	for (size_t i = 0; i < b->n; i++)
		any |= b->ev[i].to_dlq;
	if (!any)
		goto done;
	if (!q)
		return MMO_EIO;
	if (mdb_txn_begin(q->env, NULL, 0, &txn))
		return MMO_EIO;
	for (size_t i = 0; i < b->n && !rc; i++) {
		struct vev *e = &b->ev[i];
		struct views_dlq_entry en = {0};

		if (!e->to_dlq)
			continue;
		en.seq = e->seq;
		snprintf(en.view, sizeof(en.view), "%s", views_view_name(view_id));
		en.parked = e->state == VEV_PARKED;
		en.behind = e->behind;
		snprintf(en.error, sizeof(en.error), "%s", e->err);
		en.attempts = en.parked ? 0 : 1;
		en.first_us = en.last_us = now;
		en.nplayers = e->nkeys;
		for (size_t k = 0; k < e->nkeys; k++)
			snprintf(en.players[k], sizeof(en.players[k]), "%s", e->keys[k]);
		rc = put_entry(q, txn, view_id, &en, MDB_NOOVERWRITE);
		if (rc == MDB_KEYEXIST) {
			e->to_dlq = false; /* already recorded (an earlier attempt) */
			rc = 0;
			continue;
		}
		for (size_t k = 0; k < e->nkeys && !rc; k++)
			rc = blocked_add(q, txn, view_id, e->keys[k], 1, e->seq);
		if (!rc)
			rc = depth_add(q, txn, view_id, 1);
		if (en.parked)
			np++;
		else
			nd++;
	}
	if (rc) {
		mdb_txn_abort(txn);
		mmo_logf(MMO_LOG_ERROR, "views", "dlq write: %s", mdb_strerror(rc));
		return MMO_EIO;
	}
	if ((rc = mdb_txn_commit(txn))) {
		mmo_logf(MMO_LOG_ERROR, "views", "dlq commit: %s", mdb_strerror(rc));
		return MMO_EIO;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct vev *e = &b->ev[i];

		if (!e->to_dlq)
			continue;
		e->to_dlq = false;
		if (e->state != VEV_PARKED)
			mmo_logf(MMO_LOG_WARN, "views", "%s: seq %llu dead-lettered: %s",
			         views_view_name(view_id), (unsigned long long)e->seq, e->err);
	}
	if (np)
		mmo_logf(MMO_LOG_INFO, "views", "%s: %llu events parked behind dead-lettered ones",
		         views_view_name(view_id), (unsigned long long)np);
done:
	if (dead)
		*dead = nd;
	if (parked)
		*parked = np;
	return MMO_OK;
}

int views_dlq_refused(views_dlq *q, int view_id, uint64_t seq, const char *error)
{
	struct views_dlq_entry e;
	uint8_t key[9];
	MDB_val k = {sizeof(key), key}, v;
	MDB_txn *txn;
	int rc;

	if (mdb_txn_begin(q->env, NULL, 0, &txn))
		return MMO_EIO;
	entry_key(key, view_id, seq);
	rc = mdb_get(txn, q->entries, &k, &v);
	if (rc || entry_decode(&k, &v, &e) != MMO_OK) {
		mdb_txn_abort(txn);
		return rc == MDB_NOTFOUND ? MMO_ENOTFOUND : MMO_EIO;
	}
	e.parked = false;
	e.behind = 0;
	e.attempts++;
	e.last_us = mmo_now_us();
	snprintf(e.error, sizeof(e.error), "%s", error);
	rc = put_entry(q, txn, view_id, &e, 0);
	if (rc || mdb_txn_commit(txn)) {
		if (rc)
			mdb_txn_abort(txn);
		return MMO_EIO;
	}
	return MMO_OK;
}

int views_dlq_remove(views_dlq *q, int view_id, uint64_t seq)
{
	MDB_txn *txn;
	bool found;
	int rc;

	if (mdb_txn_begin(q->env, NULL, 0, &txn))
		return MMO_EIO;
	rc = remove_in(q, txn, view_id, seq, &found);
	if (rc) {
		mdb_txn_abort(txn);
		return MMO_EIO;
	}
	if (mdb_txn_commit(txn))
		return MMO_EIO;
	return found ? MMO_OK : MMO_ENOTFOUND;
}
