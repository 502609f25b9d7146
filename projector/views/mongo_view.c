/* mongo_view.c - the MongoDB view (libmongoc, pooled client).
 *
 * Collections of the database (default "mmo"):
 *   players      _id = player id: username region_id position{x,y,z} hp online
 *                seq updated_at (the REST player plus seq)
 *   combat       _id = seq of the combat.result: seq ts attacker_id defender_id
 *                skill_id result damage defender_hp region_id
 *   checkpoints  {_id: "mongo", seq, updated_at}
 * Indexes, created when the view connects: players.region_id; combat
 * attacker_id, defender_id, ts.
 *
 * A batch is: read the checkpoint (a store reset or moved makes it rewind),
 * one unordered bulk into combat (upserts of $setOnInsert: a second insert
 * of the same seq changes nothing), one unordered bulk into players with one
 * update per player (the batch's changes of that player folded together),
 * then the checkpoint. Each player update is an upsert filtered on
 * {_id, seq: {$lt: last}}: a document already as new or newer does not
 * match, the upsert then collides with its _id (error 11000), and that is a
 * skip, not an error. So older never replaces newer, and a batch applied
 * twice (a crash before its checkpoint) changes nothing the second time.
 * A write error other than 11000 or a transient code refuses that player's
 * events of the batch (dead, the later ones parked) and the rest goes on.
 */
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/mmo_util.h"
#include "views_int.h"

#define CK_ID "mongo"

enum { F_USERNAME = 1, F_REGION = 2, F_POS = 4, F_HP = 8, F_ONLINE = 16 };

struct mpl {
	const char *id;
	unsigned set, ins; /* fields to $set / to $setOnInsert */
	const char *username, *region;
	double x, y, z;
	uint32_t hp;
	bool online;
	uint64_t last;
	int64_t last_ts;
	bool failed;
};

struct mview {
	struct view base;
	char db[128];
	mongoc_uri_t *uri;
	mongoc_client_pool_t *pool;
	mongoc_client_t *client;
	bool indexes_done;
	struct mpl *pl;
	size_t npl, plcap;
	size_t *opmap; /* bulk op index -> player index / event index */
	size_t opcap;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* The driver's own messages: warnings and worse to our log, the rest
 * dropped (its default handler prints debug lines to stderr). */
static void driver_log(mongoc_log_level_t level, const char *domain, const char *message, void *arg)
{
	(void)arg;
	if (level > MONGOC_LOG_LEVEL_WARNING)
		return;
	mmo_logf(level == MONGOC_LOG_LEVEL_WARNING ? MMO_LOG_WARN : MMO_LOG_ERROR, "mongoc",
	         "%s: %s", domain, message);
}

static void init_driver(void)
{
	mongoc_init();
	mongoc_log_set_handler(driver_log, NULL);
}

static void set_err(struct mview *mv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct mview *mv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(mv->base.err, sizeof(mv->base.err), fmt, ap);
	va_end(ap);
}

/* Server error codes worth retrying (not primary, shutting down, network,
 * time limits, write conflicts). */
static bool transient_code(int64_t code)
{
	static const int64_t codes[] = {6,     7,     89,    91,    112,   189, 262, 9001,
	                                10107, 11600, 11602, 13435, 13436, 50,  134, 10058};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		if (codes[i] == code)
			return true;
	}
	return false;
}

/* ---------------------------------------------------------------- connection */

static void m_disconnect(struct view *v)
{
	struct mview *mv = (struct mview *)v;

	if (mv->client)
		mongoc_client_pool_push(mv->pool, mv->client);
	mv->client = NULL;
}

static bool create_indexes(struct mview *mv)
{
	static const struct {
		const char *coll, *field;
	} idx[] = {{"players", "region_id"},
	           {"combat", "attacker_id"},
	           {"combat", "defender_id"},
	           {"combat", "ts"}};
	mongoc_database_t *db = mongoc_client_get_database(mv->client, mv->db);
	bool ok = true;

	for (size_t i = 0; ok && i < sizeof(idx) / sizeof(idx[0]); i++) {
		bson_t cmd = BSON_INITIALIZER, arr, one, key, reply;
		bson_error_t error;
		char name[64];

		snprintf(name, sizeof(name), "%s_1", idx[i].field);
		BSON_APPEND_UTF8(&cmd, "createIndexes", idx[i].coll);
		BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
		BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &one);
		BSON_APPEND_DOCUMENT_BEGIN(&one, "key", &key);
		BSON_APPEND_INT32(&key, idx[i].field, 1);
		bson_append_document_end(&one, &key);
		BSON_APPEND_UTF8(&one, "name", name);
		bson_append_document_end(&arr, &one);
		bson_append_array_end(&cmd, &arr);
		ok = mongoc_database_write_command_with_opts(db, &cmd, NULL, &reply, &error);
		if (!ok)
			set_err(mv, "mongo createIndexes %s.%s: %s", idx[i].coll, idx[i].field,
			        error.message);
		bson_destroy(&reply);
		bson_destroy(&cmd);
	}
	mongoc_database_destroy(db);
	return ok;
}

static int m_connect(struct view *v)
{
	struct mview *mv = (struct mview *)v;
	bson_t ping = BSON_INITIALIZER, reply;
	bson_error_t error;
	bool ok;

	if (mv->client)
		return MMO_OK;
	mv->client = mongoc_client_pool_pop(mv->pool);
	if (!mv->client) {
		set_err(mv, "mongo: no client");
		return MMO_EUNAVAIL;
	}
	BSON_APPEND_INT32(&ping, "ping", 1);
	ok = mongoc_client_command_simple(mv->client, mv->db, &ping, NULL, &reply, &error);
	bson_destroy(&ping);
	bson_destroy(&reply);
	if (!ok) {
		set_err(mv, "mongo: %s", error.message);
		m_disconnect(v);
		return MMO_EUNAVAIL;
	}
	if (!mv->indexes_done) {
		if (!create_indexes(mv)) {
			m_disconnect(v);
			return MMO_EUNAVAIL;
		}
		mv->indexes_done = true;
	}
	return MMO_OK;
}

static int m_checkpoint(struct view *v, uint64_t *seq)
{
	struct mview *mv = (struct mview *)v;
	mongoc_collection_t *coll;
	mongoc_cursor_t *cur;
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
	const bson_t *doc;
	bson_error_t error;
	bson_iter_t it;
	int err = MMO_OK;

	if (!mv->client)
		return MMO_EUNAVAIL;
	coll = mongoc_client_get_collection(mv->client, mv->db, "checkpoints");
	BSON_APPEND_UTF8(&filter, "_id", CK_ID);
	BSON_APPEND_INT64(&opts, "limit", 1);
	cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
	*seq = 0;
	if (mongoc_cursor_next(cur, &doc)) {
		if (bson_iter_init_find(&it, doc, "seq") && BSON_ITER_HOLDS_NUMBER(&it))
			*seq = (uint64_t)bson_iter_as_int64(&it);
	}
	if (mongoc_cursor_error(cur, &error)) {
		set_err(mv, "mongo: reading the checkpoint: %s", error.message);
		err = MMO_EUNAVAIL;
	}
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(coll);
	bson_destroy(&filter);
	bson_destroy(&opts);
	return err;
}

/* ---------------------------------------------------------------- the fold */

static struct mpl *pl_get(struct mview *mv, const char *id)
{
	struct mpl *p;

	for (size_t i = 0; i < mv->npl; i++) {
		if (!strcmp(mv->pl[i].id, id))
			return &mv->pl[i];
	}
	if (mv->npl == mv->plcap) {
		size_t cap = mv->plcap ? mv->plcap * 2 : 64;

		p = realloc(mv->pl, cap * sizeof(*p));
		if (!p)
			return NULL;
		mv->pl = p;
		mv->plcap = cap;
	}
	p = &mv->pl[mv->npl++];
	memset(p, 0, sizeof(*p));
	p->id = id;
	return p;
}

static void touch(struct mpl *p, const struct vev *e)
{
	p->last = e->seq;
	p->last_ts = e->ts;
}

/* Fold one event's changes into the batch's player updates. */
static int fold_event(struct mview *mv, const struct vev *e)
{
	const Mmo__Event *ev = e->ev;
	struct mpl *p = NULL, *q;
	const Mmo__Vec3 *pos = NULL;

	if (e->nkeys == 0)
		return MMO_OK;
	if (!(p = pl_get(mv, e->keys[0])))
		return MMO_ENOMEM;
	switch (ev->body_case) {
	case MMO__EVENT__BODY_PLAYER_REGISTER:
		p->ins |= F_USERNAME | F_REGION | F_POS | F_HP | F_ONLINE;
		p->username = ev->player_register->username ? ev->player_register->username : "";
		touch(p, e);
		break;
	case MMO__EVENT__BODY_WORLD_SPAWN:
		pos = ev->world_spawn->position;
		p->set |= F_POS | F_HP | F_ONLINE;
		p->hp = ev->world_spawn->hp;
		p->online = true;
		if (ev->region_id && *ev->region_id) {
			p->set |= F_REGION;
			p->region = ev->region_id;
		}
		break;
	case MMO__EVENT__BODY_WORLD_UPDATE:
		pos = ev->world_update->position;
		p->set |= F_POS;
		if (ev->region_id && *ev->region_id) {
			p->set |= F_REGION;
			p->region = ev->region_id;
		}
		break;
	case MMO__EVENT__BODY_WORLD_DESPAWN:
		if (ev->world_despawn->reason && !strcmp(ev->world_despawn->reason, "death")) {
			p->set |= F_HP;
			p->hp = 0;
		} else {
			p->set |= F_ONLINE;
			p->online = false;
		}
		break;
	case MMO__EVENT__BODY_COMBAT_RESULT:
		if (e->nkeys > 1) {
			/* the attacker (its seq), then the defender again: pl_get may
			 * move the table */
			if (!(q = pl_get(mv, e->keys[1])))
				return MMO_ENOMEM;
			touch(q, e);
			p = pl_get(mv, e->keys[0]);
		}
		p->set |= F_HP;
		p->hp = ev->combat_result->defender_hp;
		break;
	default: break;
	}
	if (pos) {
		p->x = pos->x;
		p->y = pos->y;
		p->z = pos->z;
	}
	touch(p, e);
	return MMO_OK;
}

static void append_fields(bson_t *doc, const struct mpl *p, unsigned fields, bool insert)
{
	if (fields & F_USERNAME)
		BSON_APPEND_UTF8(doc, "username", p->username ? p->username : "");
	if (fields & F_REGION)
		BSON_APPEND_UTF8(doc, "region_id", insert ? "" : p->region);
	if (fields & F_POS) {
		bson_t sub;

		BSON_APPEND_DOCUMENT_BEGIN(doc, "position", &sub);
		BSON_APPEND_DOUBLE(&sub, "x", insert ? 0 : p->x);
		BSON_APPEND_DOUBLE(&sub, "y", insert ? 0 : p->y);
		BSON_APPEND_DOUBLE(&sub, "z", insert ? 0 : p->z);
		bson_append_document_end(doc, &sub);
	}
	if (fields & F_HP)
		BSON_APPEND_INT64(doc, "hp", insert ? 0 : p->hp);
	if (fields & F_ONLINE)
		BSON_APPEND_BOOL(doc, "online", insert ? false : p->online);
}

static bool grow_opmap(struct mview *mv, size_t n)
{
	if (n <= mv->opcap)
		return true;
	size_t *m = realloc(mv->opmap, n * sizeof(*m));

	if (!m)
		return false;
	mv->opmap = m;
	mv->opcap = n;
	return true;
}

/* Execute a bulk and sort its errors: 11000 is a skip, a transient code
 * fails the batch, any other refuses op i (refused[i] set, why filled).
 * Returns MMO_OK or MMO_EUNAVAIL. */
static int run_bulk(struct mview *mv, mongoc_bulk_operation_t *bulk, size_t nops, bool *refused,
                    char (*why)[VIEWS_ERROR_MAX + 1], const char *what)
{
	bson_t reply;
	bson_error_t error;
	bson_iter_t it, arr;
	bool ok, had_write_errors = false;
	int err = MMO_OK;

	ok = mongoc_bulk_operation_execute(bulk, &reply, &error) != 0;
	if (!ok && bson_iter_init_find(&it, &reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
	    bson_iter_recurse(&it, &arr)) {
		while (bson_iter_next(&arr)) {
			bson_iter_t d;
			int64_t idx = -1, code = 0;
			const char *msg = "";

			if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &d))
				continue;
			had_write_errors = true;
			while (bson_iter_next(&d)) {
				const char *k = bson_iter_key(&d);

				if (!strcmp(k, "index") && BSON_ITER_HOLDS_NUMBER(&d))
					idx = bson_iter_as_int64(&d);
				else if (!strcmp(k, "code") && BSON_ITER_HOLDS_NUMBER(&d))
					code = bson_iter_as_int64(&d);
				else if (!strcmp(k, "errmsg") && BSON_ITER_HOLDS_UTF8(&d))
					msg = bson_iter_utf8(&d, NULL);
			}
			if (code == 11000)
				continue; /* already as new or newer: a skip */
			if (transient_code(code) || idx < 0 || (size_t)idx >= nops) {
				set_err(mv, "mongo %s: %s (code %lld)", what, msg, (long long)code);
				err = MMO_EUNAVAIL;
				continue;
			}
			refused[idx] = true;
			snprintf(why[idx], VIEWS_ERROR_MAX + 1, "mongo %s refused (code %lld): %s",
			         what, (long long)code, msg);
		}
	}
	if (!ok && !had_write_errors) {
		set_err(mv, "mongo %s: %s", what, error.message);
		err = MMO_EUNAVAIL;
	}
	if (ok || had_write_errors) {
		if (bson_iter_init_find(&it, &reply, "writeConcernErrors") &&
		    BSON_ITER_HOLDS_ARRAY(&it)) {
			uint32_t len;
			const uint8_t *data;

			bson_iter_array(&it, &len, &data);
			if (len > 5) {
				set_err(mv, "mongo %s: write concern error", what);
				err = MMO_EUNAVAIL;
			}
		}
	}
	bson_destroy(&reply);
	return err;
}

/* The combat documents of the batch. */
static int write_combat(struct mview *mv, struct vbatch *b, bool *any_dead)
{
	mongoc_collection_t *coll = mongoc_client_get_collection(mv->client, mv->db, "combat");
	bson_t bopts = BSON_INITIALIZER, uopts = BSON_INITIALIZER;
	mongoc_bulk_operation_t *bulk;
	bool *refused = NULL;
	char(*why)[VIEWS_ERROR_MAX + 1] = NULL;
	size_t nops = 0;
	int err = MMO_OK;

	BSON_APPEND_BOOL(&bopts, "ordered", false);
	BSON_APPEND_BOOL(&uopts, "upsert", true);
	bulk = mongoc_collection_create_bulk_operation_with_opts(coll, &bopts);
	for (size_t i = 0; i < b->n; i++) {
		const struct vev *e = &b->ev[i];
		const Mmo__CombatResult *c;
		bson_t sel = BSON_INITIALIZER, upd = BSON_INITIALIZER, soi;
		bson_error_t error;

		if (e->state != VEV_APPLY || e->ev->body_case != MMO__EVENT__BODY_COMBAT_RESULT)
			continue;
		c = e->ev->combat_result;
		if (!grow_opmap(mv, nops + 1)) {
			err = MMO_ENOMEM;
			break;
		}
		BSON_APPEND_INT64(&sel, "_id", (int64_t)e->seq);
		BSON_APPEND_DOCUMENT_BEGIN(&upd, "$setOnInsert", &soi);
		BSON_APPEND_INT64(&soi, "seq", (int64_t)e->seq);
		BSON_APPEND_DATE_TIME(&soi, "ts", e->ts / 1000);
		BSON_APPEND_UTF8(&soi, "attacker_id", c->attacker_id ? c->attacker_id : "");
		BSON_APPEND_UTF8(&soi, "defender_id", c->defender_id ? c->defender_id : "");
		BSON_APPEND_UTF8(&soi, "skill_id", c->skill_id ? c->skill_id : "");
		BSON_APPEND_UTF8(&soi, "result", c->result ? c->result : "");
		BSON_APPEND_INT64(&soi, "damage", c->damage);
		BSON_APPEND_INT64(&soi, "defender_hp", c->defender_hp);
		BSON_APPEND_UTF8(&soi, "region_id", e->ev->region_id ? e->ev->region_id : "");
		bson_append_document_end(&upd, &soi);
		if (!mongoc_bulk_operation_update_one_with_opts(bulk, &sel, &upd, &uopts, &error)) {
			set_err(mv, "mongo combat: %s", error.message);
			err = MMO_EUNAVAIL;
		}
		bson_destroy(&sel);
		bson_destroy(&upd);
		if (err)
			break;
		mv->opmap[nops++] = i;
	}
	if (!err && nops) {
		refused = calloc(nops, sizeof(*refused));
		why = calloc(nops, sizeof(*why));
		if (!refused || !why)
			err = MMO_ENOMEM;
		else
			err = run_bulk(mv, bulk, nops, refused, why, "combat");
		for (size_t k = 0; !err && k < nops; k++) {
			if (refused[k]) {
				vb_dead(&b->ev[mv->opmap[k]], "%s", why[k]);
				*any_dead = true;
			}
		}
	}
	free(refused);
	free(why);
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(&bopts);
	bson_destroy(&uopts);
	mongoc_collection_destroy(coll);
	return err == MMO_ENOMEM ? MMO_EUNAVAIL : err;
}

static int write_players(struct mview *mv, struct vbatch *b, bool *any_dead)
{
	mongoc_collection_t *coll;
	bson_t bopts = BSON_INITIALIZER, uopts = BSON_INITIALIZER;
	mongoc_bulk_operation_t *bulk = NULL;
	bool *refused = NULL;
	char(*why)[VIEWS_ERROR_MAX + 1] = NULL;
	size_t nops = 0;
	int err = MMO_OK;

	mv->npl = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (b->ev[i].state == VEV_APPLY && (err = fold_event(mv, &b->ev[i])))
			return MMO_EUNAVAIL;
	}
	if (mv->npl == 0)
		return MMO_OK;
	coll = mongoc_client_get_collection(mv->client, mv->db, "players");
	BSON_APPEND_BOOL(&bopts, "ordered", false);
	BSON_APPEND_BOOL(&uopts, "upsert", true);
	bulk = mongoc_collection_create_bulk_operation_with_opts(coll, &bopts);
	for (size_t i = 0; i < mv->npl; i++) {
		const struct mpl *p = &mv->pl[i];
		bson_t sel = BSON_INITIALIZER, upd = BSON_INITIALIZER, lt, set, soi;
		bson_error_t error;
		unsigned ins = p->ins & ~p->set;

		if (!grow_opmap(mv, nops + 1)) {
			err = MMO_ENOMEM;
			break;
		}
		BSON_APPEND_UTF8(&sel, "_id", p->id);
		BSON_APPEND_DOCUMENT_BEGIN(&sel, "seq", &lt);
		BSON_APPEND_INT64(&lt, "$lt", (int64_t)p->last);
		bson_append_document_end(&sel, &lt);
		BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
		append_fields(&set, p, p->set, false);
		BSON_APPEND_INT64(&set, "seq", (int64_t)p->last);
		BSON_APPEND_DATE_TIME(&set, "updated_at", p->last_ts / 1000);
		bson_append_document_end(&upd, &set);
		if (ins) {
			BSON_APPEND_DOCUMENT_BEGIN(&upd, "$setOnInsert", &soi);
			append_fields(&soi, p, ins, true);
			bson_append_document_end(&upd, &soi);
		}
		if (!mongoc_bulk_operation_update_one_with_opts(bulk, &sel, &upd, &uopts, &error)) {
			set_err(mv, "mongo players: %s", error.message);
			err = MMO_EUNAVAIL;
		}
		bson_destroy(&sel);
		bson_destroy(&upd);
		if (err)
			break;
		mv->opmap[nops++] = i;
	}
	if (!err) {
		refused = calloc(nops, sizeof(*refused));
		why = calloc(nops, sizeof(*why));
		if (!refused || !why)
			err = MMO_ENOMEM;
		else
			err = run_bulk(mv, bulk, nops, refused, why, "players");
	}
	/* A refused player: its first event of the batch is dead; the cascade
	 * parks the rest. */
	for (size_t k = 0; !err && k < nops; k++) {
		const char *id;

		if (!refused[k])
			continue;
		id = mv->pl[mv->opmap[k]].id;
		for (size_t i = 0; i < b->n; i++) {
			struct vev *e = &b->ev[i];
			bool mine = false;

			for (size_t j = 0; j < e->nkeys; j++)
				mine |= !strcmp(e->keys[j], id);
			if (e->state == VEV_APPLY && mine) {
				vb_dead(e, "%s", why[k]);
				*any_dead = true;
				break;
			}
		}
	}
	free(refused);
	free(why);
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(&bopts);
	bson_destroy(&uopts);
	mongoc_collection_destroy(coll);
	return err == MMO_ENOMEM ? MMO_EUNAVAIL : err;
}

static int write_checkpoint(struct mview *mv, const struct vbatch *b)
{
	mongoc_collection_t *coll = mongoc_client_get_collection(mv->client, mv->db, "checkpoints");
	bson_t sel = BSON_INITIALIZER, upd = BSON_INITIALIZER, set, opts = BSON_INITIALIZER;
	bson_error_t error;
	bool ok;

	BSON_APPEND_UTF8(&sel, "_id", CK_ID);
	BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
	BSON_APPEND_INT64(&set, "seq", (int64_t)b->last);
	BSON_APPEND_DATE_TIME(&set, "updated_at", mmo_now_us() / 1000);
	bson_append_document_end(&upd, &set);
	BSON_APPEND_BOOL(&opts, "upsert", true);
	ok = mongoc_collection_update_one(coll, &sel, &upd, &opts, NULL, &error);
	if (!ok)
		set_err(mv, "mongo checkpoint: %s", error.message);
	bson_destroy(&sel);
	bson_destroy(&upd);
	bson_destroy(&opts);
	mongoc_collection_destroy(coll);
	return ok ? MMO_OK : MMO_EUNAVAIL;
}

static int m_apply(struct view *v, struct vbatch *b, bool write_ck, uint64_t expect,
                   uint64_t *found)
{
	struct mview *mv = (struct mview *)v;
	bool any_dead = false;
	int err;

	if (!mv->client) {
		set_err(mv, "mongo: not connected");
		return MMO_EUNAVAIL;
	}
	if (write_ck) {
		uint64_t ck;

		if ((err = m_checkpoint(v, &ck)))
			return err;
		if (ck != expect) {
			*found = ck;
			return MMO_EREWIND;
		}
	}
	if ((err = write_combat(mv, b, &any_dead)))
		return err;
	if (any_dead)
		vb_cascade(b);
	if ((err = write_players(mv, b, &any_dead)))
		return err;
	if (any_dead)
		vb_cascade(b);
	/* What was refused is durable before the checkpoint passes it. */
	if (b->hook && b->hook(b, b->hook_arg)) {
		set_err(mv, "dlq: cannot record the refused events");
		return MMO_EIO;
	}
	return write_ck ? write_checkpoint(mv, b) : MMO_OK;
}

/* ---------------------------------------------------------------- drop */

static int m_drop(struct view *v, views_progress_fn *progress, void *arg)
{
	struct mview *mv = (struct mview *)v;
	static const char *colls[] = {"players", "combat"};
	mongoc_collection_t *coll;
	bson_t sel = BSON_INITIALIZER;
	bson_error_t error;
	bool ok;

	if (!mv->client)
		return MMO_EUNAVAIL;
	coll = mongoc_client_get_collection(mv->client, mv->db, "checkpoints");
	BSON_APPEND_UTF8(&sel, "_id", CK_ID);
	ok = mongoc_collection_delete_one(coll, &sel, NULL, NULL, &error);
	bson_destroy(&sel);
	mongoc_collection_destroy(coll);
	if (!ok) {
		set_err(mv, "mongo: deleting the checkpoint: %s", error.message);
		return MMO_EUNAVAIL;
	}
	for (size_t i = 0; i < 2; i++) {
		coll = mongoc_client_get_collection(mv->client, mv->db, colls[i]);
		ok = mongoc_collection_drop_with_opts(coll, NULL, &error);
		mongoc_collection_destroy(coll);
		if (!ok && error.code != 26 && !strstr(error.message, "ns not found")) {
			set_err(mv, "mongo: dropping %s: %s", colls[i], error.message);
			return MMO_EUNAVAIL;
		}
		if (progress)
			progress("drop", i + 1, 2, arg);
	}
	mv->indexes_done = false;
	return create_indexes(mv) ? MMO_OK : MMO_EUNAVAIL;
}

/* ---------------------------------------------------------------- setup */

static void m_free(struct view *v)
{
	struct mview *mv = (struct mview *)v;

	if (!mv)
		return;
	m_disconnect(v);
	if (mv->pool)
		mongoc_client_pool_destroy(mv->pool);
	if (mv->uri)
		mongoc_uri_destroy(mv->uri);
	free(mv->pl);
	free(mv->opmap);
	free(mv);
}

static const struct view_ops mongo_ops = {
    .name = "mongo",
    .id = VIEW_ID_MONGO,
    .connect = m_connect,
    .disconnect = m_disconnect,
    .checkpoint = m_checkpoint,
    .apply = m_apply,
    .drop = m_drop,
    .free = m_free,
};

static void default_ms(mongoc_uri_t *uri, const char *opt, int32_t ms)
{
	if (!mongoc_uri_has_option(uri, opt))
		mongoc_uri_set_option_as_int32(uri, opt, ms);
}

int mongo_view_new(const char *uri, const char *db, struct view **out, char *errmsg, size_t errlen)
{
	struct mview *mv;
	bson_error_t error;

	pthread_once(&init_once, init_driver);
	mv = calloc(1, sizeof(*mv));
	if (!mv)
		return MMO_ENOMEM;
	mv->base.ops = &mongo_ops;
	snprintf(mv->db, sizeof(mv->db), "%s", db && *db ? db : "mmo");
	mv->uri = mongoc_uri_new_with_error(uri, &error);
	if (!mv->uri) {
		if (errmsg)
			snprintf(errmsg, errlen, "bad Mongo URI: %s", error.message);
		free(mv);
		return MMO_EINVAL;
	}
	default_ms(mv->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 2000);
	default_ms(mv->uri, MONGOC_URI_CONNECTTIMEOUTMS, 1000);
	default_ms(mv->uri, MONGOC_URI_SOCKETTIMEOUTMS, 10000);
	default_ms(mv->uri, MONGOC_URI_HEARTBEATFREQUENCYMS, 1000);
	mv->pool = mongoc_client_pool_new(mv->uri);
	if (!mv->pool) {
		if (errmsg)
			snprintf(errmsg, errlen, "cannot create a Mongo client pool for %s", uri);
		mongoc_uri_destroy(mv->uri);
		free(mv);
		return MMO_EINVAL;
	}
	mongoc_client_pool_set_error_api(mv->pool, MONGOC_ERROR_API_VERSION_2);
	mongoc_client_pool_set_appname(mv->pool, "mmo-views");
	*out = &mv->base;
	return MMO_OK;
}
