/* test_store.c - the LMDB journal through its direct API (log/store.c,
 * iter.c, verify.c): append and read back, per-event validation, idempotency,
 * the hash chain against tampering (through LMDB and through the file), the
 * format check, a full map, read-only handles, the indexes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log/evlog.h"
#include "schemas/mmo_be.h"
#include "testsupport.h"

/* ------------------------------------------------------------ helpers */

struct fx {
	char dir[512];
	evlog *l;
};

/* One event to build (raw protobuf, so hostile shapes are possible too). */
struct spec {
	const char *type;
	const char *id;
	const char *player;
	const char *region;
	double x;
	const char *text; /* world.reject detail / stats.update name */
	unsigned prio;
	uint64_t seq;
	int64_t ts;
};

struct evbuf {
	uint8_t b[1024];
	size_t n;
};

static size_t mk(uint8_t *buf, size_t cap, const struct spec *s)
{
	Mmo__Event ev = MMO__EVENT__INIT;
	Mmo__Vec3 pos = MMO__VEC3__INIT;
	Mmo__PlayerMove mv = MMO__PLAYER_MOVE__INIT;
	Mmo__WorldReject rj = MMO__WORLD_REJECT__INIT;
	Mmo__StatsUpdate su = MMO__STATS_UPDATE__INIT;
	Mmo__CombatAttack ca = MMO__COMBAT_ATTACK__INIT;
	size_t n;

	ev.event_id = (char *)(s->id ? s->id : "");
	ev.type = (char *)(s->type ? s->type : "");
	ev.player_id = (char *)(s->player ? s->player : "");
	ev.region_id = (char *)(s->region ? s->region : "");
	ev.priority = s->prio;
	ev.seq = s->seq;
	ev.ts = s->ts;
	if (s->type && !strcmp(s->type, "world.reject")) {
		rj.reason = "test";
		rj.detail = (char *)(s->text ? s->text : "");
		ev.body_case = MMO__EVENT__BODY_WORLD_REJECT;
		ev.world_reject = &rj;
	} else if (s->type && !strcmp(s->type, "stats.update")) {
		su.name = (char *)(s->text ? s->text : "n");
		su.value = s->x;
		ev.body_case = MMO__EVENT__BODY_STATS_UPDATE;
		ev.stats_update = &su;
	} else if (s->type && !strcmp(s->type, "combat.attack")) {
		ca.defender_id = "d1";
		ca.skill_id = "s1";
		ev.body_case = MMO__EVENT__BODY_COMBAT_ATTACK;
		ev.combat_attack = &ca;
	} else { /* player.move, and unknown types with a move body */
		pos.x = s->x;
		pos.y = 2.5;
		mv.position = &pos;
		ev.body_case = MMO__EVENT__BODY_PLAYER_MOVE;
		ev.player_move = &mv;
	}
	n = mmo__event__get_packed_size(&ev);
	assert_true(n <= cap);
	assert_int_equal(mmo__event__pack(&ev, buf), n);
	return n;
}

static void mkb(struct evbuf *e, const struct spec *s)
{
	e->n = mk(e->b, sizeof(e->b), s);
}

/* A player.move with a given id, player and region. */
static void mkmove(struct evbuf *e, const char *id, const char *player, const char *region,
                   double x)
{
	mkb(e, &(struct spec){
	           .type = "player.move", .id = id, .player = player, .region = region, .x = x});
}

static struct evlog_in in_of(const struct evbuf *e)
{
	return (struct evlog_in){e->b, e->n, 0};
}

static void open_log(struct fx *f, size_t map_size, bool nosync)
{
	struct evlog_opts o = {.dir = f->dir, .map_size = map_size, .nosync = nosync};
	char msg[256] = "";

	assert_int_equal(evlog_open(&o, &f->l, msg, sizeof(msg)), MMO_OK);
}

/* A tampered log whose tail was cut: writing is refused, reading is not. */
static void open_cut_log(struct fx *f)
{
	struct evlog_opts o = {.dir = f->dir};
	char msg[512] = "";

	assert_int_equal(evlog_open(&o, &f->l, msg, sizeof(msg)), MMO_ECORRUPT);
	assert_non_null(strstr(msg, "does not match the last record"));
	o.readonly = true;
	assert_int_equal(evlog_open(&o, &f->l, msg, sizeof(msg)), MMO_OK);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || ts_tmpdir(f->dir, sizeof(f->dir)))
		return -1;
	open_log(f, 0, true);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	evlog_close(f->l);
	ts_rmrf(f->dir);
	free(f);
	return 0;
}

static uint64_t head_of(evlog *l)
{
	uint64_t h = 99999;

	assert_int_equal(evlog_head(l, &h, NULL), MMO_OK);
	return h;
}

/* Append n player.move events "<prefix>-<i>" (i from 1), players p<i%3>,
 * regions r<i%2>, in one batch at ts. */
static void append_moves(evlog *l, const char *prefix, size_t n, int64_t ts, uint64_t first_seq)
{
	struct evbuf *e = calloc(n, sizeof(*e));
	struct evlog_in *in = calloc(n, sizeof(*in));
	struct evlog_out *out = calloc(n, sizeof(*out));
	char id[64], pl[16], rg[16];

	assert_non_null(e);
	for (size_t i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%s-%zu", prefix, i + 1);
		snprintf(pl, sizeof(pl), "p%zu", (i + 1) % 3);
		snprintf(rg, sizeof(rg), "r%zu", (i + 1) % 2);
		mkmove(&e[i], id, pl, rg, (double)i);
		in[i] = in_of(&e[i]);
	}
	assert_int_equal(evlog_append(l, in, n, ts, out), MMO_OK);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(out[i].err, MMO_OK);
		assert_int_equal(out[i].seq, first_seq + i);
		assert_false(out[i].dup);
	}
	free(e);
	free(in);
	free(out);
}

/* Raw LMDB access to a closed log's folder, to tamper with it. */
struct raw {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
};

static void raw_begin(struct raw *r, const char *dir, const char *table)
{
	bool idx = strncmp(table, "idx_", 4) == 0;
	unsigned flags = idx ? MDB_DUPSORT | MDB_DUPFIXED : 0;
	char path[4200];

	/* The secondary indexes live in their own environment, DIR/index. */
	snprintf(path, sizeof(path), "%s%s", dir, idx ? "/index" : "");
	assert_int_equal(mdb_env_create(&r->env), 0);
	assert_int_equal(mdb_env_set_maxdbs(r->env, 16), 0);
	assert_int_equal(mdb_env_open(r->env, path, 0, 0640), 0);
	assert_int_equal(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
	assert_int_equal(mdb_dbi_open(r->txn, table, flags, &r->dbi), 0);
}

static void raw_commit(struct raw *r)
{
	assert_int_equal(mdb_txn_commit(r->txn), 0);
	mdb_env_close(r->env);
}

/* Replace the stored value of seq with len bytes of val. */
static void raw_put_seq(const char *dir, uint64_t seq, const void *val, size_t len)
{
	struct raw r;
	uint8_t sk[8];
	MDB_val k = {8, sk}, v = {len, (void *)val};

	mmo_be64_put(sk, seq);
	raw_begin(&r, dir, "events");
	assert_int_equal(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	raw_commit(&r);
}

static size_t raw_get_seq(const char *dir, uint64_t seq, uint8_t *buf, size_t cap)
{
	struct raw r;
	uint8_t sk[8];
	MDB_val k = {8, sk}, v;

	mmo_be64_put(sk, seq);
	raw_begin(&r, dir, "events");
	assert_int_equal(mdb_get(r.txn, r.dbi, &k, &v), 0);
	assert_true(v.mv_size <= cap);
	memcpy(buf, v.mv_data, v.mv_size);
	raw_commit(&r);
	return v.mv_size;
}

static int verify_all(evlog *l, bool indexes, struct evlog_verify_result *res)
{
	return evlog_verify(l, 0, 0, NULL, indexes, NULL, NULL, res);
}

/* Close the log and open it again. */
static void reopen(struct fx *f)
{
	evlog_close(f->l);
	f->l = NULL;
	open_log(f, 0, true);
}

/* ------------------------------------------------------------ append & read */

static void append_then_iterate_returns_identical_records(void **state)
{
	struct fx *f = *state;
	struct evbuf e[10];
	struct evlog_in in[10];
	struct evlog_out out[10];
	struct evlog_rec rec;
	evlog_iter *it;
	uint8_t prev[EVLOG_HASH_LEN] = {0}, h[EVLOG_HASH_LEN];
	int64_t last_ts = 0;
	char id[32];

	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "ev-%d", i + 1);
		mkb(&e[i], &(struct spec){.type = "player.move",
		                          .id = id,
		                          .player = "p1",
		                          .region = "r1",
		                          .x = i,
		                          .prio = i == 3 ? 1 : 0});
		in[i] = in_of(&e[i]);
	}
	/* Two batches; the second one's clock goes back: ts must not. */
	assert_int_equal(evlog_append(f->l, in, 6, 5000, out), MMO_OK);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(out[i].err, MMO_OK);
		assert_int_equal(out[i].seq, i + 1);
		assert_int_equal(out[i].ts, 5000);
		assert_string_equal(out[i].region_id, "r1");
	}
	assert_int_equal(out[3].priority, 1);
	assert_int_equal(out[0].priority, MMO_PRIO_MEDIUM); /* player.move's default */
	assert_int_equal(evlog_append(f->l, in + 6, 4, 4000, out + 6), MMO_OK);
	for (int i = 6; i < 10; i++) {
		assert_int_equal(out[i].seq, i + 1);
		assert_int_equal(out[i].ts, 5000);
	}
	assert_int_equal(head_of(f->l), 10);

	assert_int_equal(evlog_iter_open(f->l, EVLOG_ALL, NULL, 1, &it), MMO_OK);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(evlog_iter_next(it, &rec), MMO_OK);
		assert_int_equal(rec.seq, i + 1);
		assert_true(rec.ts >= last_ts);
		last_ts = rec.ts;
		assert_int_equal(rec.ts, 5000);
		assert_int_equal(rec.priority, i == 3 ? 1 : 3);
		assert_int_equal(rec.event_len, e[i].n);
		assert_memory_equal(rec.event, e[i].b, e[i].n);
		assert_int_equal(rec.raw_len, EVLOG_HDR_LEN + e[i].n);
		assert_ptr_equal(rec.hash, rec.raw);
		assert_memory_equal(rec.hash, out[i].hash, EVLOG_HASH_LEN);
		evlog_chain_hash(prev, rec.seq, rec.raw + EVLOG_HASH_LEN,
		                 rec.raw_len - EVLOG_HASH_LEN, h);
		assert_memory_equal(h, rec.hash, EVLOG_HASH_LEN);
		memcpy(prev, h, EVLOG_HASH_LEN);
		/* the 3 pad bytes are zero */
		assert_int_equal(rec.raw[EVLOG_HASH_LEN + 9] | rec.raw[EVLOG_HASH_LEN + 10] |
		                     rec.raw[EVLOG_HASH_LEN + 11],
		                 0);
	}
	assert_int_equal(evlog_iter_next(it, &rec), MMO_ENOTFOUND);
	assert_int_equal(evlog_iter_next(it, &rec), MMO_ENOTFOUND);
	evlog_iter_close(it);

	/* From the middle. */
	assert_int_equal(evlog_iter_open(f->l, EVLOG_ALL, NULL, 7, &it), MMO_OK);
	for (int i = 6; i < 10; i++) {
		assert_int_equal(evlog_iter_next(it, &rec), MMO_OK);
		assert_int_equal(rec.seq, i + 1);
		assert_memory_equal(rec.event, e[i].b, e[i].n);
	}
	assert_int_equal(evlog_iter_next(it, &rec), MMO_ENOTFOUND);
	evlog_iter_close(it);

	/* The head hash is the last record's. */
	uint64_t hs;
	assert_int_equal(evlog_head(f->l, &hs, h), MMO_OK);
	assert_int_equal(hs, 10);
	assert_memory_equal(h, out[9].hash, EVLOG_HASH_LEN);
}

static void rec_decode_fills_seq_and_ts_from_the_record(void **state)
{
	struct fx *f = *state;
	struct evbuf e;
	struct evlog_in in;
	struct evlog_out out;
	struct evlog_rec rec;
	Mmo__Event *ev;
	evlog_iter *it;

	mkmove(&e, "dec-1", "p9", "r9", 3.25);
	in = in_of(&e);
	assert_int_equal(evlog_append(f->l, &in, 1, 777, &out), MMO_OK);
	assert_int_equal(evlog_iter_open(f->l, EVLOG_ALL, NULL, 0, &it), MMO_OK);
	assert_int_equal(evlog_iter_next(it, &rec), MMO_OK);
	assert_int_equal(evlog_rec_decode(&rec, &ev), MMO_OK);
	assert_int_equal(ev->seq, 1);
	assert_int_equal(ev->ts, 777);
	assert_string_equal(ev->event_id, "dec-1");
	assert_string_equal(ev->player_id, "p9");
	assert_int_equal(ev->body_case, MMO__EVENT__BODY_PLAYER_MOVE);
	assert_true(ev->player_move->position->x == 3.25);
	mmo_event_free(ev);
	evlog_iter_close(it);

	uint8_t shortrec[EVLOG_HDR_LEN - 1] = {0};
	assert_int_equal(evlog_rec_parse(1, shortrec, sizeof(shortrec), &rec), MMO_ECORRUPT);
}

static void batch_refuses_each_bad_event_with_its_code_and_appends_the_good(void **state)
{
	struct fx *f = *state;
	static uint8_t big[MMO_RECORD_MAX + 4096];
	static char bigtext[MMO_RECORD_MAX + 100];
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x99};
	struct evbuf e[12];
	struct evlog_in in[16];
	struct evlog_out out[16];
	size_t bign;
	int want[16];
	uint64_t wantseq[16];
	struct evlog_rec rec;
	evlog_iter *it;
	uint64_t seq;

	memset(bigtext, 'x', sizeof(bigtext) - 1);
	bigtext[sizeof(bigtext) - 1] = 0;
	bign = mk(
	    big, sizeof(big),
	    &(struct spec){.type = "world.reject", .id = "big-1", .player = "p1", .text = bigtext});
	assert_true(bign > MMO_RECORD_MAX);

	mkmove(&e[0], "good-1", "p1", "r1", 1);
	mkmove(&e[1], "unk-1", "p1", "r1", 1);
	mkb(&e[1], &(struct spec){.type = "no.such.type", .id = "unk-1", .player = "p1"});
	mkmove(&e[2], NULL, "p1", "r1", 1);      /* no event_id */
	mkmove(&e[3], "bad id!", "p1", "r1", 1); /* bad id chars */
	mkmove(&e[4], "nan-1", "p1", "r1", NAN); /* NaN coordinate */
	mkb(&e[5], &(struct spec){.type = "player.move",
	                          .id = "seq-1",
	                          .player = "p1",
	                          .seq = 5}); /* seq set by the client */
	mkb(&e[6], &(struct spec){.type = "player.move",
	                          .id = "ts-1",
	                          .player = "p1",
	                          .ts = 5}); /* ts set by the client */
	mkmove(&e[7], "good-2", "p2", "r2", 2);
	mkmove(&e[8], "inf-1", "p1", "r1", INFINITY);
	mkmove(&e[9], "bad:player", "bad player", "r1", 1); /* bad player id */
	mkmove(&e[10], "good-3", "p3", NULL, 3);
	mkb(&e[11], &(struct spec){.type = "player.move",
	                           .id = "prio-9",
	                           .player = "p1",
	                           .prio = 9}); /* priority out of range */

	size_t n = 0;
	in[n] = in_of(&e[0]), want[n] = MMO_OK, wantseq[n++] = 1;
	in[n] = (struct evlog_in){garbage, sizeof(garbage), 0}, want[n] = MMO_EMALFORMED,
	wantseq[n++] = 0;
	in[n] = in_of(&e[1]), want[n] = MMO_EBADTYPE, wantseq[n++] = 0;
	in[n] = in_of(&e[2]), want[n] = MMO_EMISSING, wantseq[n++] = 0;
	in[n] = in_of(&e[3]), want[n] = MMO_EBADID, wantseq[n++] = 0;
	in[n] = in_of(&e[4]), want[n] = MMO_ENONFINITE, wantseq[n++] = 0;
	in[n] = (struct evlog_in){big, bign, 0}, want[n] = MMO_ETOOBIG, wantseq[n++] = 0;
	in[n] = in_of(&e[5]), want[n] = MMO_EINVAL, wantseq[n++] = 0;
	in[n] = in_of(&e[6]), want[n] = MMO_EINVAL, wantseq[n++] = 0;
	in[n] = in_of(&e[7]), want[n] = MMO_OK, wantseq[n++] = 2;
	in[n] = in_of(&e[8]), want[n] = MMO_ENONFINITE, wantseq[n++] = 0;
	in[n] = in_of(&e[9]), want[n] = MMO_EBADID, wantseq[n++] = 0;
	in[n] = (struct evlog_in){garbage, 0, 0}, want[n] = MMO_EMALFORMED, wantseq[n++] = 0;
	in[n] = in_of(&e[11]), want[n] = MMO_EPRIORITY, wantseq[n++] = 0;
	in[n] = in_of(&e[10]), want[n] = MMO_OK, wantseq[n++] = 3;

	assert_int_equal(evlog_append(f->l, in, n, 1000, out), MMO_OK);
	for (size_t i = 0; i < n; i++) {
		print_message("event %zu: err %d (%s) seq %llu\n", i, out[i].err,
		              mmo_strerror(out[i].err), (unsigned long long)out[i].seq);
		assert_int_equal(out[i].err, want[i]);
		assert_int_equal(out[i].seq, wantseq[i]);
		assert_false(out[i].dup);
	}
	assert_int_equal(head_of(f->l), 3);

	/* Exactly the good ones are stored, in order. */
	const struct evbuf *good[3] = {&e[0], &e[7], &e[10]};
	assert_int_equal(evlog_iter_open(f->l, EVLOG_ALL, NULL, 1, &it), MMO_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(evlog_iter_next(it, &rec), MMO_OK);
		assert_int_equal(rec.seq, i + 1);
		assert_int_equal(rec.event_len, good[i]->n);
		assert_memory_equal(rec.event, good[i]->b, good[i]->n);
	}
	assert_int_equal(evlog_iter_next(it, &rec), MMO_ENOTFOUND);
	evlog_iter_close(it);
	assert_int_equal(evlog_find_id(f->l, "nan-1", &seq), MMO_ENOTFOUND);
	assert_int_equal(evlog_find_id(f->l, "seq-1", &seq), MMO_ENOTFOUND);
	assert_int_equal(evlog_find_id(f->l, "big-1", &seq), MMO_ENOTFOUND);
	assert_int_equal(evlog_find_id(f->l, "unk-1", &seq), MMO_ENOTFOUND);

	struct evlog_verify_result res;
	assert_int_equal(verify_all(f->l, true, &res), MMO_OK);
	assert_int_equal(res.checked, 3);
}

static void batch_of_only_bad_events_commits_nothing(void **state)
{
	struct fx *f = *state;
	static const uint8_t garbage[] = {0x0a, 0xff};
	struct evlog_in in[2] = {{garbage, sizeof(garbage), 0}, {garbage, 1, 0}};
	struct evlog_out out[2];
	uint8_t h[EVLOG_HASH_LEN], zero[EVLOG_HASH_LEN] = {0};
	uint64_t hs;

	assert_int_equal(evlog_append(f->l, in, 2, 1000, out), MMO_OK);
	assert_int_equal(out[0].err, MMO_EMALFORMED);
	assert_int_equal(out[1].err, MMO_EMALFORMED);
	assert_int_equal(evlog_head(f->l, &hs, h), MMO_OK);
	assert_int_equal(hs, 0);
	assert_memory_equal(h, zero, EVLOG_HASH_LEN);
	struct evlog_verify_result res;
	assert_int_equal(verify_all(f->l, true, &res), MMO_OK);
	assert_int_equal(res.checked, 0);
}

/* ------------------------------------------------------------ idempotency */

static void same_bytes_again_return_the_original_seq_as_duplicate(void **state)
{
	struct fx *f = *state;
	struct evbuf a, b;
	struct evlog_in in[2];
	struct evlog_out out[2];

	mkmove(&a, "dup-a", "p1", "r1", 1);
	mkmove(&b, "dup-b", "p1", "r1", 2);
	in[0] = in_of(&a);
	in[1] = in_of(&b);
	assert_int_equal(evlog_append(f->l, in, 2, 1000, out), MMO_OK);
	assert_int_equal(out[0].seq, 1);
	assert_int_equal(out[1].seq, 2);

	assert_int_equal(evlog_append(f->l, in, 1, 2000, out), MMO_OK);
	assert_int_equal(out[0].err, MMO_OK);
	assert_int_equal(out[0].seq, 1);
	assert_true(out[0].dup);
	assert_int_equal(head_of(f->l), 2);
}

static void same_id_with_other_bytes_is_a_conflict(void **state)
{
	struct fx *f = *state;
	struct evbuf a, a2;
	struct evlog_in in;
	struct evlog_out out;
	uint8_t h0[EVLOG_HASH_LEN], h1[EVLOG_HASH_LEN];
	uint64_t s;

	mkmove(&a, "conf-a", "p1", "r1", 1);
	mkmove(&a2, "conf-a", "p1", "r1", 99);
	in = in_of(&a);
	assert_int_equal(evlog_append(f->l, &in, 1, 1000, &out), MMO_OK);
	assert_int_equal(evlog_head(f->l, &s, h0), MMO_OK);
	in = in_of(&a2);
	assert_int_equal(evlog_append(f->l, &in, 1, 2000, &out), MMO_OK);
	assert_int_equal(out.err, MMO_ECONFLICT);
	assert_int_equal(out.seq, 0);
	assert_false(out.dup);
	assert_int_equal(evlog_head(f->l, &s, h1), MMO_OK);
	assert_int_equal(s, 1);
	assert_memory_equal(h0, h1, EVLOG_HASH_LEN);
}

static void duplicates_inside_one_batch_get_the_first_seq(void **state)
{
	struct fx *f = *state;
	struct evbuf a, a2, b;
	struct evlog_in in[5];
	struct evlog_out out[5];

	mkmove(&a, "in-a", "p1", "r1", 1);
	mkmove(&a2, "in-a", "p1", "r1", 2);
	mkmove(&b, "in-b", "p1", "r1", 3);
	in[0] = in_of(&a);
	in[1] = in_of(&a);
	in[2] = in_of(&a2);
	in[3] = in_of(&b);
	in[4] = in_of(&a);
	assert_int_equal(evlog_append(f->l, in, 5, 1000, out), MMO_OK);
	assert_int_equal(out[0].err, MMO_OK);
	assert_int_equal(out[0].seq, 1);
	assert_false(out[0].dup);
	assert_int_equal(out[1].err, MMO_OK);
	assert_int_equal(out[1].seq, 1);
	assert_true(out[1].dup);
	assert_int_equal(out[2].err, MMO_ECONFLICT);
	assert_int_equal(out[2].seq, 0);
	assert_int_equal(out[3].err, MMO_OK);
	assert_int_equal(out[3].seq, 2);
	assert_false(out[3].dup);
	assert_int_equal(out[4].seq, 1);
	assert_true(out[4].dup);
	assert_int_equal(head_of(f->l), 2);
	struct evlog_verify_result res;
	assert_int_equal(verify_all(f->l, true, &res), MMO_OK);
	assert_int_equal(res.checked, 2);
}

static void idempotency_and_chain_survive_close_and_reopen(void **state)
{
	struct fx *f = *state;
	struct evbuf a, a2, c;
	struct evlog_in in;
	struct evlog_out out;
	struct evlog_verify_result res;

	append_moves(f->l, "pre", 5, 1000, 1);
	mkmove(&a, "pre-3", "p0", "r1", 2); /* the bytes append_moves made for pre-3 */
	reopen(f);
	assert_int_equal(head_of(f->l), 5);

	in = in_of(&a);
	assert_int_equal(evlog_append(f->l, &in, 1, 500, &out), MMO_OK);
	assert_int_equal(out.err, MMO_OK);
	assert_int_equal(out.seq, 3);
	assert_true(out.dup);

	mkmove(&a2, "pre-3", "p0", "r1", 42);
	in = in_of(&a2);
	assert_int_equal(evlog_append(f->l, &in, 1, 500, &out), MMO_OK);
	assert_int_equal(out.err, MMO_ECONFLICT);

	/* A new event continues the chain after the reopen, with ts >= the last. */
	mkmove(&c, "post-1", "p1", "r1", 1);
	in = in_of(&c);
	assert_int_equal(evlog_append(f->l, &in, 1, 500, &out), MMO_OK);
	assert_int_equal(out.seq, 6);
	assert_int_equal(out.ts, 1000);
	assert_int_equal(verify_all(f->l, true, &res), MMO_OK);
	assert_int_equal(res.checked, 6);
}

/* ------------------------------------------------------------ hash chain */

static int progress_calls;
static uint64_t progress_done, progress_total;

static void on_progress(uint64_t done, uint64_t total, void *arg)
{
	(void)arg;
	progress_calls++;
	progress_done = done;
	progress_total = total;
}

static void verify_passes_on_a_good_log(void **state)
{
	struct fx *f = *state;
	struct evlog_verify_result res;

	append_moves(f->l, "g", 30, 1000, 1);
	append_moves(f->l, "h", 20, 2000, 31);
	progress_calls = 0;
	assert_int_equal(evlog_verify(f->l, 0, 0, NULL, true, on_progress, NULL, &res), MMO_OK);
	assert_int_equal(res.checked, 50);
	assert_int_equal(res.bad_seq, 0);
	assert_true(progress_calls >= 1);
	assert_int_equal(progress_done, 50);
	assert_int_equal(progress_total, 50);
	assert_int_equal(verify_all(f->l, false, &res), MMO_OK);
	assert_int_equal(res.checked, 50);
}

static void verify_on_an_empty_log_passes(void **state)
{
	struct fx *f = *state;
	struct evlog_verify_result res;

	assert_int_equal(verify_all(f->l, true, &res), MMO_OK);
	assert_int_equal(res.checked, 0);
	assert_int_equal(res.bad_seq, 0);
}

static void flipped_byte_via_lmdb_is_found_at_its_seq(void **state)
{
	struct fx *f = *state;
	struct evlog_verify_result res;
	uint8_t v[2048];
	size_t n;

	append_moves(f->l, "t", 20, 1000, 1);
	evlog_close(f->l);
	f->l = NULL;
	n = raw_get_seq(f->dir, 7, v, sizeof(v));
	v[n - 3] ^= 0x01; /* inside the event bytes */
	raw_put_seq(f->dir, 7, v, n);
	open_log(f, 0, true);
	assert_int_equal(verify_all(f->l, false, &res), MMO_ECORRUPT);
	assert_int_equal(res.bad_seq, 7);
	assert_int_equal(res.checked, 6);
	assert_non_null(strstr(res.what, "hash"));
}

static void altered_timestamp_is_found_at_its_seq(void **state)
{
	struct fx *f = *state;
	struct evlog_verify_result res;
	uint8_t v[2048];
	size_t n;

	append_moves(f->l, "t", 10, 1000, 1);
	evlog_close(f->l);
	f->l = NULL;
	n = raw_get_seq(f->dir, 4, v, sizeof(v));
	v[EVLOG_HASH_LEN + 7] ^= 0x10; /* ts, low byte */
	raw_put_seq(f->dir, 4, v, n);
	open_log(f, 0, true);
	assert_int_equal(verify_all(f->l, false, &res), MMO_ECORRUPT);
	assert_int_equal(res.bad_seq, 4);
}

static void flipped_byte_in_the_data_file_is_found_at_its_seq(void **state)
{
	struct fx *f = *state;
	struct evlog_verify_result res;
	static const char marker[] = "MARKER-q7Zx-unique-text-of-seq-12";
	struct evbuf e;
	struct evlog_in in;
	struct evlog_out out;
	char path[600];
	uint8_t *data;
	struct stat st;
	size_t hits = 0;
	int fd;

	append_moves(f->l, "a", 11, 1000, 1);
	mkb(&e,
	    &(struct spec){.type = "world.reject", .id = "marked", .player = "p1", .text = marker});
	in = in_of(&e);
	assert_int_equal(evlog_append(f->l, &in, 1, 2000, &out), MMO_OK);
	assert_int_equal(out.seq, 12);
	append_moves(f->l, "b", 8, 3000, 13);
	evlog_close(f->l);
	f->l = NULL;

	/* Flip one byte of every copy of the marker (stale page copies are harmless). */
	snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	data = malloc((size_t)st.st_size);
	assert_non_null(data);
	assert_int_equal(pread(fd, data, (size_t)st.st_size, 0), st.st_size);
	for (uint8_t *p = data, *end = data + st.st_size;
	     (p = memmem(p, (size_t)(end - p), marker, sizeof(marker) - 1)) != NULL; p++) {
		p[10] ^= 0x20;
		hits++;
	}
	assert_true(hits >= 1);
	assert_int_equal(pwrite(fd, data, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	free(data);

	open_log(f, 0, true);
	assert_int_equal(verify_all(f->l, true, &res), MMO_ECORRUPT);
	assert_int_equal(res.bad_seq, 12);
	assert_int_equal(res.checked, 11);
}

static void deleted_record_is_reported_missing_at_its_seq(void **state)
{
	struct fx *f = *state;
	struct evlog_verify_result res;
	struct raw r;
	uint8_t sk[8];
	MDB_val k = {8, sk};

	append_moves(f->l, "d", 20, 1000, 1);
	evlog_close(f->l);
	f->l = NULL;
	mmo_be64_put(sk, 9);
	raw_begin(&r, f->dir, "events");
	assert_int_equal(mdb_del(r.txn, r.dbi, &k, NULL), 0);
	raw_commit(&r);
	open_log(f, 0, true);
	assert_int_equal(verify_all(f->l, false, &res), MMO_ECORRUPT);
	assert_int_equal(res.bad_seq, 9);
	assert_non_null(strstr(res.what, "missing"));
	assert_int_equal(res.checked, 8);
}

static void deleted_last_record_is_reported_missing_at_its_seq(void **state)
{
	struct fx *f = *state;
	struct evlog_verify_result res;
	struct raw r;
	uint8_t sk[8];
	MDB_val k = {8, sk};

	append_moves(f->l, "d", 20, 1000, 1);
	evlog_close(f->l);
	f->l = NULL;
	mmo_be64_put(sk, 20);
	raw_begin(&r, f->dir, "events");
	assert_int_equal(mdb_del(r.txn, r.dbi, &k, NULL), 0);
	raw_commit(&r);
	open_cut_log(f);
	assert_int_equal(verify_all(f->l, false, &res), MMO_ECORRUPT);
	assert_int_equal(res.bad_seq, 20);
	assert_non_null(strstr(res.what, "missing"));
}

static void undecodable_event_with_a_valid_hash_is_found_without_index_check(void **state)
{
	struct fx *f = *state;
	struct evlog_verify_result res;
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	uint8_t v[2048], hv[8 + EVLOG_HASH_LEN], sk[8];
	MDB_val k = {8, sk}, val, mk = {4, "head"}, mv = {sizeof(hv), hv};
	MDB_dbi meta;
	struct raw r;

	append_moves(f->l, "u", 5, 1000, 1);
	evlog_close(f->l);
	f->l = NULL;
	/* Record 5 becomes header + garbage, with its hash and the meta head
	 * recomputed: only decoding the event can tell. */
	raw_begin(&r, f->dir, "events");
	assert_int_equal(mdb_dbi_open(r.txn, "meta", 0, &meta), 0);
	mmo_be64_put(sk, 4);
	assert_int_equal(mdb_get(r.txn, r.dbi, &k, &val), 0);
	memcpy(hv + 8, val.mv_data, EVLOG_HASH_LEN); /* hash of 4 */
	mmo_be64_put(sk, 5);
	assert_int_equal(mdb_get(r.txn, r.dbi, &k, &val), 0);
	memcpy(v, val.mv_data, EVLOG_HDR_LEN);
	memcpy(v + EVLOG_HDR_LEN, garbage, sizeof(garbage));
	evlog_chain_hash(hv + 8, 5, v + EVLOG_HASH_LEN,
	                 EVLOG_HDR_LEN - EVLOG_HASH_LEN + sizeof(garbage), v);
	val.mv_size = EVLOG_HDR_LEN + sizeof(garbage);
	val.mv_data = v;
	assert_int_equal(mdb_put(r.txn, r.dbi, &k, &val, 0), 0);
	mmo_be64_put(hv, 5);
	memcpy(hv + 8, v, EVLOG_HASH_LEN);
	assert_int_equal(mdb_put(r.txn, meta, &mk, &mv, 0), 0);
	raw_commit(&r);
	open_log(f, 0, true);
	assert_int_equal(verify_all(f->l, false, &res), MMO_ECORRUPT);
	assert_int_equal(res.bad_seq, 5);
	assert_non_null(strstr(res.what, "decode"));
	assert_int_equal(verify_all(f->l, true, &res), MMO_ECORRUPT);
	assert_int_equal(res.bad_seq, 5);
}

static void emptied_events_table_is_reported_missing_from_seq_1(void **state)
{
	struct fx *f = *state;
	struct evlog_verify_result res;
	struct raw r;

	append_moves(f->l, "d", 5, 1000, 1);
	evlog_close(f->l);
	f->l = NULL;
	raw_begin(&r, f->dir, "events");
	assert_int_equal(mdb_drop(r.txn, r.dbi, 0), 0);
	raw_commit(&r);
	open_cut_log(f);
	assert_int_equal(verify_all(f->l, false, &res), MMO_ECORRUPT);
	assert_int_equal(res.bad_seq, 1);
	assert_non_null(strstr(res.what, "missing"));
}

static void swapped_records_are_found_at_the_first(void **state)
{
	struct fx *f = *state;
	struct evlog_verify_result res;
	uint8_t v5[2048], v8[2048];
	size_t n5, n8;

	append_moves(f->l, "s", 12, 1000, 1);
	evlog_close(f->l);
	f->l = NULL;
	n5 = raw_get_seq(f->dir, 5, v5, sizeof(v5));
	n8 = raw_get_seq(f->dir, 8, v8, sizeof(v8));
	raw_put_seq(f->dir, 5, v8, n8);
	raw_put_seq(f->dir, 8, v5, n5);
	open_log(f, 0, true);
	assert_int_equal(verify_all(f->l, false, &res), MMO_ECORRUPT);
	assert_int_equal(res.bad_seq, 5);
	assert_int_equal(res.checked, 4);
}

/* Delete the (key, seq) entry of an index table; verify finds it at seq. */
static void delete_entry_and_expect(struct fx *f, const char *table, const void *key, size_t klen,
                                    uint64_t seq, const char *what)
{
	struct evlog_verify_result res;
	struct raw r;
	uint8_t sk[8];
	MDB_val k = {klen, (void *)key}, v = {8, sk};
	uint64_t indexed = 0;

	assert_int_equal(evlog_index_sync(f->l, 0, &indexed), MMO_OK);
	assert_int_equal(indexed, 12);
	evlog_close(f->l);
	f->l = NULL;
	mmo_be64_put(sk, seq);
	raw_begin(&r, f->dir, table);
	assert_int_equal(mdb_del(r.txn, r.dbi, &k, strcmp(table, "ids") ? &v : NULL), 0);
	raw_commit(&r);
	open_log(f, 0, true);
	/* The chain alone is intact ... */
	assert_int_equal(verify_all(f->l, false, &res), MMO_OK);
	/* ... the index check is not. */
	assert_int_equal(verify_all(f->l, true, &res), MMO_ECORRUPT);
	assert_int_equal(res.bad_seq, seq);
	assert_non_null(strstr(res.what, what));
}

static void deleted_player_index_entry_is_found(void **state)
{
	struct fx *f = *state;

	append_moves(f->l, "i", 12, 1000, 1);
	delete_entry_and_expect(f, "idx_player", "p1", 2, 4, "player index");
}

static void deleted_type_index_entry_is_found(void **state)
{
	struct fx *f = *state;

	append_moves(f->l, "i", 12, 1000, 1);
	delete_entry_and_expect(f, "idx_type", "player.move", 11, 6, "type index");
}

static void deleted_region_index_entry_is_found(void **state)
{
	struct fx *f = *state;

	append_moves(f->l, "i", 12, 1000, 1);
	delete_entry_and_expect(f, "idx_region", "r0", 2, 10, "region index");
}

static void unreadable_index_is_rebuilt_from_seq_1(void **state)
{
	struct fx *f = *state;
	struct evlog_verify_result res;
	char path[4200];
	uint64_t indexed = 0;
	FILE *fp;

	append_moves(f->l, "i", 12, 1000, 1);
	assert_int_equal(evlog_index_sync(f->l, 0, &indexed), MMO_OK);
	assert_int_equal(indexed, 12);
	evlog_close(f->l);
	f->l = NULL;
	/* Garbage over the index environment's data file. */
	snprintf(path, sizeof(path), "%s/index/data.mdb", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite("not an lmdb file, not at all", 1, 28, fp), 28);
	fclose(fp);
	open_log(f, 0, true);
	/* Reopened from scratch: nothing indexed, the tail serves the readers. */
	assert_int_equal(verify_all(f->l, true, &res), MMO_OK);
	assert_int_equal(evlog_index_sync(f->l, 0, &indexed), MMO_OK);
	assert_int_equal(indexed, 12);
	assert_int_equal(verify_all(f->l, true, &res), MMO_OK);
	assert_int_equal(res.checked, 12);
}

static void deleted_id_entry_is_found(void **state)
{
	struct fx *f = *state;

	append_moves(f->l, "i", 12, 1000, 1);
	delete_entry_and_expect(f, "ids", "i-3", 3, 3, "ids map");
}

static void stray_index_entry_is_found_by_count(void **state)
{
	struct fx *f = *state;
	struct evlog_verify_result res;
	struct raw r;
	uint8_t sk[8];
	MDB_val k = {5, "ghost"}, v = {8, sk};

	append_moves(f->l, "x", 12, 1000, 1);
	assert_int_equal(evlog_index_sync(f->l, 0, NULL), MMO_OK);
	evlog_close(f->l);
	f->l = NULL;
	mmo_be64_put(sk, 3);
	raw_begin(&r, f->dir, "idx_player");
	assert_int_equal(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	raw_commit(&r);
	open_log(f, 0, true);
	assert_int_equal(verify_all(f->l, false, &res), MMO_OK);
	assert_int_equal(verify_all(f->l, true, &res), MMO_ECORRUPT);
	assert_int_equal(res.bad_seq, 12);
	assert_non_null(strstr(res.what, "player index has 13 entries"));
}

static void stray_id_entry_is_found_by_count(void **state)
{
	struct fx *f = *state;
	struct evlog_verify_result res;
	struct raw r;
	uint8_t sk[8];
	MDB_val k = {5, "ghost"}, v = {8, sk};

	append_moves(f->l, "x", 12, 1000, 1);
	evlog_close(f->l);
	f->l = NULL;
	mmo_be64_put(sk, 99);
	raw_begin(&r, f->dir, "ids");
	assert_int_equal(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	raw_commit(&r);
	open_log(f, 0, true);
	assert_int_equal(verify_all(f->l, true, &res), MMO_ECORRUPT);
	assert_non_null(strstr(res.what, "ids map has 13 entries"));
}

static void anchor_verifies_a_sub_range(void **state)
{
	struct fx *f = *state;
	struct evlog_verify_result res;
	uint8_t raw9[2048], anchor[EVLOG_HASH_LEN], v[2048];
	size_t n;

	append_moves(f->l, "r", 20, 1000, 1);
	assert_int_equal(evlog_get(f->l, 9, raw9, sizeof(raw9), &n), MMO_OK);
	memcpy(anchor, raw9, EVLOG_HASH_LEN);

	assert_int_equal(evlog_verify(f->l, 10, 15, anchor, false, NULL, NULL, &res), MMO_OK);
	assert_int_equal(res.checked, 6);
	assert_int_equal(evlog_verify(f->l, 10, 15, NULL, true, NULL, NULL, &res), MMO_OK);
	assert_int_equal(res.checked, 6);
	/* A wrong anchor fails at the first record of the range. */
	anchor[0] ^= 1;
	assert_int_equal(evlog_verify(f->l, 10, 15, anchor, false, NULL, NULL, &res), MMO_ECORRUPT);
	assert_int_equal(res.bad_seq, 10);
	assert_int_equal(res.checked, 0);
	/* from = 1 with the zero anchor is the whole chain. */
	uint8_t zero[EVLOG_HASH_LEN] = {0};
	assert_int_equal(evlog_verify(f->l, 1, 0, zero, false, NULL, NULL, &res), MMO_OK);
	assert_int_equal(res.checked, 20);

	/* Damage outside the range does not matter to it; a range over it fails. */
	evlog_close(f->l);
	f->l = NULL;
	n = raw_get_seq(f->dir, 17, v, sizeof(v));
	v[n - 1] ^= 0x40;
	raw_put_seq(f->dir, 17, v, n);
	open_log(f, 0, true);
	anchor[0] ^= 1;
	assert_int_equal(evlog_verify(f->l, 10, 15, anchor, false, NULL, NULL, &res), MMO_OK);
	assert_int_equal(evlog_verify(f->l, 10, 0, anchor, false, NULL, NULL, &res), MMO_ECORRUPT);
	assert_int_equal(res.bad_seq, 17);
	assert_int_equal(res.checked, 7);
	/* A range past the head is refused. */
	assert_int_equal(evlog_verify(f->l, 30, 40, NULL, false, NULL, NULL, &res), MMO_EINVAL);
}

/* ------------------------------------------------------------ format, map */

static void newer_format_is_refused_naming_both_versions(void **state)
{
	struct fx *f = *state;
	struct evlog_opts o = {.dir = f->dir};
	struct raw r;
	uint8_t fmt[4] = {0, 0, 0, 2};
	MDB_val k = {6, "format"}, v = {4, fmt};
	char msg[256] = "";
	evlog *l = (evlog *)0x1;

	append_moves(f->l, "f", 3, 1000, 1);
	evlog_close(f->l);
	f->l = NULL;
	raw_begin(&r, f->dir, "meta");
	assert_int_equal(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	raw_commit(&r);

	assert_int_equal(evlog_open(&o, &l, msg, sizeof(msg)), MMO_EVERSION);
	assert_ptr_equal(l, (evlog *)0x1); /* untouched on failure */
	print_message("message: %s\n", msg);
	assert_non_null(strstr(msg, "format 2"));
	assert_non_null(strstr(msg, "(1)"));
	o.readonly = true;
	assert_int_equal(evlog_open(&o, &l, msg, sizeof(msg)), MMO_EVERSION);

	/* Back to format 1: opens again. */
	fmt[3] = 1;
	raw_begin(&r, f->dir, "meta");
	assert_int_equal(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	raw_commit(&r);
	open_log(f, 0, true);
	assert_int_equal(head_of(f->l), 3);
}

static void corrupt_format_record_is_refused(void **state)
{
	struct fx *f = *state;
	struct evlog_opts o = {.dir = f->dir};
	struct raw r;
	MDB_val k = {6, "format"}, v = {3, "abc"};
	char msg[256] = "";
	evlog *l;

	evlog_close(f->l);
	f->l = NULL;
	raw_begin(&r, f->dir, "meta");
	assert_int_equal(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	raw_commit(&r);
	assert_int_equal(evlog_open(&o, &l, msg, sizeof(msg)), MMO_ECORRUPT);
	assert_true(strlen(msg) > 0);
	/* Put it back so that teardown can reopen nothing: restore format 1. */
	uint8_t fmt[4] = {0, 0, 0, 1};
	v.mv_size = 4;
	v.mv_data = fmt;
	raw_begin(&r, f->dir, "meta");
	assert_int_equal(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	raw_commit(&r);
	open_log(f, 0, true);
}

static void open_refuses_bad_arguments_and_missing_folders(void **state)
{
	struct fx *f = *state;
	struct evlog_opts o = {0};
	char msg[256] = "", path[600];
	evlog *l;

	assert_int_equal(evlog_open(NULL, &l, msg, sizeof(msg)), MMO_EINVAL);
	assert_int_equal(evlog_open(&o, &l, msg, sizeof(msg)), MMO_EINVAL);
	o.dir = "";
	assert_int_equal(evlog_open(&o, &l, NULL, 0), MMO_EINVAL);
	snprintf(path, sizeof(path), "%s/no/such/dir", f->dir);
	o.dir = path;
	assert_int_equal(evlog_open(&o, &l, msg, sizeof(msg)), MMO_EIO);
	assert_non_null(strstr(msg, path));
	o.readonly = true;
	assert_int_equal(evlog_open(&o, &l, msg, sizeof(msg)), MMO_ENOTFOUND);
}

static void full_map_refuses_the_batch_and_keeps_the_log_intact(void **state)
{
	struct fx *f = *state;
	enum { B = 50 };
	struct evbuf *e = calloc(B, sizeof(*e));
	struct evlog_in in[B];
	struct evlog_out out[B];
	struct evlog_verify_result res;
	uint8_t h0[EVLOG_HASH_LEN], h1[EVLOG_HASH_LEN];
	uint64_t head0 = 0, head1, expect = 1;
	char id[64], pl[16];
	int rc = MMO_OK, batches = 0;

	assert_non_null(e);
	evlog_close(f->l);
	f->l = NULL;
	ts_rmrf(f->dir);
	open_log(f, 1 << 20, true);
	while (batches < 10000) {
		for (int i = 0; i < B; i++) {
			snprintf(id, sizeof(id), "full-%d-%d", batches, i);
			snprintf(pl, sizeof(pl), "p%d", (batches * B + i) % 97);
			mkmove(&e[i], id, pl, "r1", i);
			in[i] = in_of(&e[i]);
		}
		assert_int_equal(evlog_head(f->l, &head0, h0), MMO_OK);
		rc = evlog_append(f->l, in, B, 1000 + batches, out);
		if (rc != MMO_OK)
			break;
		for (int i = 0; i < B; i++)
			assert_int_equal(out[i].seq, expect++);
		batches++;
	}
	print_message("map full after %d batches (%llu events)\n", batches,
	              (unsigned long long)head0);
	assert_int_equal(rc, MMO_EFULL);
	assert_true(batches > 0);
	for (int i = 0; i < B; i++) {
		assert_int_equal(out[i].err, MMO_EFULL);
		assert_int_equal(out[i].seq, 0);
	}
	assert_int_equal(evlog_head(f->l, &head1, h1), MMO_OK);
	assert_int_equal(head1, head0);
	assert_memory_equal(h0, h1, EVLOG_HASH_LEN);
	assert_int_equal(verify_all(f->l, true, &res), MMO_OK);
	assert_int_equal(res.checked, head0);
	/* Still full on a retry, and still intact. */
	assert_int_equal(evlog_append(f->l, in, B, 999999, out), MMO_EFULL);
	assert_int_equal(head_of(f->l), head0);

	/* A bigger map: the same batch goes in, the chain goes on. */
	evlog_close(f->l);
	f->l = NULL;
	open_log(f, 16 << 20, true);
	assert_int_equal(head_of(f->l), head0);
	assert_int_equal(evlog_append(f->l, in, B, 5000, out), MMO_OK);
	for (int i = 0; i < B; i++) {
		assert_int_equal(out[i].err, MMO_OK);
		assert_int_equal(out[i].seq, head0 + 1 + (uint64_t)i);
	}
	assert_int_equal(verify_all(f->l, true, &res), MMO_OK);
	assert_int_equal(res.checked, head0 + B);
	free(e);
}

/* ------------------------------------------------------------ read-only */

/* A reader in another process (LMDB forbids opening one environment twice in
 * one process): on each byte from cmd it answers head and record count. */
static void reader_child(const char *dir, int cmd, int ans)
{
	struct evlog_opts o = {.dir = dir, .readonly = true};
	evlog *l;
	char c;
	uint64_t reply[3];

	if (evlog_open(&o, &l, NULL, 0) != MMO_OK)
		_exit(2);
	while (read(cmd, &c, 1) == 1 && c != 'q') {
		struct evlog_rec rec;
		evlog_iter *it;
		struct evbuf e;
		struct evlog_in in;
		struct evlog_out out;

		reply[0] = reply[1] = 0;
		if (evlog_head(l, &reply[0], NULL))
			_exit(3);
		if (evlog_iter_open(l, EVLOG_ALL, NULL, 1, &it))
			_exit(4);
		while (evlog_iter_next(it, &rec) == MMO_OK)
			reply[1]++;
		evlog_iter_close(it);
		e.n = 0;
		in = (struct evlog_in){e.b, 0, 0};
		reply[2] = (uint64_t)evlog_append(l, &in, 1, 1, &out);
		if (write(ans, reply, sizeof(reply)) != sizeof(reply))
			_exit(5);
	}
	evlog_close(l);
	_exit(0);
}

static void ask_reader(int cmd, int ans, uint64_t *head, uint64_t *count, int *append_err)
{
	uint64_t reply[3];

	assert_int_equal(write(cmd, "?", 1), 1);
	assert_int_equal(read(ans, reply, sizeof(reply)), sizeof(reply));
	*head = reply[0];
	*count = reply[1];
	*append_err = (int)reply[2];
}

static void readonly_reader_sees_new_commits_of_the_writer(void **state)
{
	struct fx *f = *state;
	int cmd[2], ans[2], status, aerr;
	uint64_t head, count;
	pid_t pid;

	append_moves(f->l, "ro", 3, 1000, 1);
	assert_int_equal(pipe(cmd), 0);
	assert_int_equal(pipe(ans), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(cmd[1]);
		close(ans[0]);
		reader_child(f->dir, cmd[0], ans[1]);
	}
	close(cmd[0]);
	close(ans[1]);
	ask_reader(cmd[1], ans[0], &head, &count, &aerr);
	assert_int_equal(head, 3);
	assert_int_equal(count, 3);
	assert_int_equal(aerr, MMO_EINVAL); /* a read-only handle cannot append */

	append_moves(f->l, "ro2", 4, 2000, 4);
	ask_reader(cmd[1], ans[0], &head, &count, &aerr);
	assert_int_equal(head, 7);
	assert_int_equal(count, 7);
	append_moves(f->l, "ro3", 200, 3000, 8);
	ask_reader(cmd[1], ans[0], &head, &count, &aerr);
	assert_int_equal(head, 207);
	assert_int_equal(count, 207);

	assert_int_equal(write(cmd[1], "q", 1), 1);
	close(cmd[1]);
	close(ans[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void iterator_is_a_snapshot_taken_at_open(void **state)
{
	struct fx *f = *state;
	struct evlog_rec rec;
	evlog_iter *it;
	int n = 0;

	append_moves(f->l, "snap", 5, 1000, 1);
	assert_int_equal(evlog_iter_open(f->l, EVLOG_ALL, NULL, 1, &it), MMO_OK);
	append_moves(f->l, "snap2", 5, 1000, 6);
	while (evlog_iter_next(it, &rec) == MMO_OK)
		n++;
	evlog_iter_close(it);
	assert_int_equal(n, 5);
}

/* ------------------------------------------------------------ indexes */

static void expect_seqs(evlog_iter *it, const uint64_t *want, size_t n)
{
	struct evlog_rec rec;

	for (size_t i = 0; i < n; i++) {
		assert_int_equal(evlog_iter_next(it, &rec), MMO_OK);
		assert_int_equal(rec.seq, want[i]);
	}
	assert_int_equal(evlog_iter_next(it, &rec), MMO_ENOTFOUND);
	evlog_iter_close(it);
}

static void index_iterators_return_exactly_the_expected_seqs(void **state)
{
	struct fx *f = *state;
	enum { N = 30 };
	struct evbuf e[N];
	struct evlog_in in[N];
	struct evlog_out out[N];
	uint64_t want[N];
	size_t nw;
	evlog_iter *it;
	char id[32], pl[8], rg[8];

	/* seq i: player p<i%3>, region r<i%2> except every 5th (none), type
	 * combat.attack for multiples of 4, else player.move. */
	for (int i = 1; i <= N; i++) {
		snprintf(id, sizeof(id), "ix-%d", i);
		snprintf(pl, sizeof(pl), "p%d", i % 3);
		snprintf(rg, sizeof(rg), "r%d", i % 2);
		mkb(&e[i - 1], &(struct spec){.type = i % 4 ? "player.move" : "combat.attack",
		                              .id = id,
		                              .player = pl,
		                              .region = i % 5 ? rg : NULL,
		                              .x = i});
		in[i - 1] = in_of(&e[i - 1]);
	}
	assert_int_equal(evlog_append(f->l, in, N, 1000, out), MMO_OK);
	for (int i = 0; i < N; i++)
		assert_int_equal(out[i].err, MMO_OK);

	/* The same answers whatever the indexer has reached: nothing (all read
	 * from the tail), half (index, then tail), everything (index only). */
	for (int mode = 0; mode < 3; mode++) {
		uint64_t indexed = 0;

		if (mode == 1)
			assert_int_equal(evlog_index_sync(f->l, 13, &indexed), MMO_OK);
		if (mode == 2)
			assert_int_equal(evlog_index_sync(f->l, 0, &indexed), MMO_OK);
		assert_int_equal(indexed, mode == 0 ? 0 : mode == 1 ? 13 : N);
		/* By player p1, from the start and from 10. */
		nw = 0;
		for (uint64_t s = 1; s <= N; s++)
			if (s % 3 == 1)
				want[nw++] = s;
		assert_int_equal(evlog_iter_open(f->l, EVLOG_BY_PLAYER, "p1", 1, &it), MMO_OK);
		expect_seqs(it, want, nw);
		nw = 0;
		for (uint64_t s = 10; s <= N; s++)
			if (s % 3 == 1)
				want[nw++] = s;
		assert_int_equal(evlog_iter_open(f->l, EVLOG_BY_PLAYER, "p1", 10, &it), MMO_OK);
		expect_seqs(it, want, nw); /* 10 itself is p1 */
		nw = 0;
		for (uint64_t s = 11; s <= N; s++)
			if (s % 3 == 1)
				want[nw++] = s;
		assert_int_equal(evlog_iter_open(f->l, EVLOG_BY_PLAYER, "p1", 11, &it), MMO_OK);
		expect_seqs(it, want, nw);

		/* By type. */
		nw = 0;
		for (uint64_t s = 1; s <= N; s++)
			if (s % 4 == 0)
				want[nw++] = s;
		assert_int_equal(evlog_iter_open(f->l, EVLOG_BY_TYPE, "combat.attack", 0, &it),
		                 MMO_OK);
		expect_seqs(it, want, nw);

		/* By region: r1 (odd, not multiple of 5), r0 (even, not multiple of 5). */
		nw = 0;
		for (uint64_t s = 1; s <= N; s++)
			if (s % 5 && s % 2 == 1)
				want[nw++] = s;
		assert_int_equal(evlog_iter_open(f->l, EVLOG_BY_REGION, "r1", 1, &it), MMO_OK);
		expect_seqs(it, want, nw);
		nw = 0;
		for (uint64_t s = 17; s <= N; s++)
			if (s % 5 && s % 2 == 0)
				want[nw++] = s;
		assert_int_equal(evlog_iter_open(f->l, EVLOG_BY_REGION, "r0", 17, &it), MMO_OK);
		expect_seqs(it, want, nw);

		/* A key nobody has, a key that is a prefix of others, past the end. */
		assert_int_equal(evlog_iter_open(f->l, EVLOG_BY_PLAYER, "nobody", 1, &it), MMO_OK);
		expect_seqs(it, NULL, 0);
		assert_int_equal(evlog_iter_open(f->l, EVLOG_BY_REGION, "r", 1, &it), MMO_OK);
		expect_seqs(it, NULL, 0);
		assert_int_equal(evlog_iter_open(f->l, EVLOG_BY_PLAYER, "p1", 29, &it), MMO_OK);
		expect_seqs(it, NULL, 0);
		assert_int_equal(evlog_iter_open(f->l, EVLOG_ALL, NULL, 31, &it), MMO_OK);
		expect_seqs(it, NULL, 0);
		want[0] = 30;
		assert_int_equal(evlog_iter_open(f->l, EVLOG_ALL, "ignored", 30, &it), MMO_OK);
		expect_seqs(it, want, 1);
	}

	/* Bad arguments. */
	assert_int_equal(evlog_iter_open(f->l, EVLOG_BY_PLAYER, NULL, 1, &it), MMO_EINVAL);
	assert_int_equal(evlog_iter_open(f->l, EVLOG_BY_PLAYER, "", 1, &it), MMO_EINVAL);
	assert_int_equal(evlog_iter_open(f->l, (enum evlog_index)9, "p1", 1, &it), MMO_EINVAL);
}

static void time_iterator_returns_the_events_in_the_window(void **state)
{
	struct fx *f = *state;
	uint64_t want[16];
	evlog_iter *it;

	for (int k = 1; k <= 5; k++) {
		char prefix[16];

		snprintf(prefix, sizeof(prefix), "tb%d", k);
		append_moves(f->l, prefix, 3, 1000 * k, (uint64_t)(k - 1) * 3 + 1);
	}
	for (int i = 0; i < 6; i++)
		want[i] = 4 + (uint64_t)i;
	assert_int_equal(evlog_iter_open_time(f->l, 2000, 4000, &it), MMO_OK);
	expect_seqs(it, want, 6);
	for (int i = 0; i < 3; i++)
		want[i] = 1 + (uint64_t)i;
	assert_int_equal(evlog_iter_open_time(f->l, 1000, 1001, &it), MMO_OK);
	expect_seqs(it, want, 3);
	assert_int_equal(evlog_iter_open_time(f->l, 1500, 2500, &it), MMO_OK);
	for (int i = 0; i < 3; i++)
		want[i] = 4 + (uint64_t)i;
	expect_seqs(it, want, 3);
	for (int i = 0; i < 15; i++)
		want[i] = 1 + (uint64_t)i;
	assert_int_equal(evlog_iter_open_time(f->l, INT64_MIN, INT64_MAX, &it), MMO_OK);
	expect_seqs(it, want, 15);
	assert_int_equal(evlog_iter_open_time(f->l, 0, 1000, &it), MMO_OK);
	expect_seqs(it, NULL, 0);
	assert_int_equal(evlog_iter_open_time(f->l, 3000, 3000, &it), MMO_OK);
	expect_seqs(it, NULL, 0);
	assert_int_equal(evlog_iter_open_time(f->l, 5001, 9000, &it), MMO_OK);
	expect_seqs(it, NULL, 0);
	assert_int_equal(evlog_iter_open_time(f->l, 3000, 2000, &it), MMO_EINVAL);
}

static void get_and_find_id_return_the_stored_record(void **state)
{
	struct fx *f = *state;
	uint8_t buf[2048];
	size_t len = 12345;
	uint64_t seq = 777;
	struct evlog_rec rec;
	evlog_iter *it;

	append_moves(f->l, "gf", 6, 1000, 1);
	assert_int_equal(evlog_get(f->l, 4, buf, sizeof(buf), &len), MMO_OK);
	assert_int_equal(evlog_iter_open(f->l, EVLOG_ALL, NULL, 4, &it), MMO_OK);
	assert_int_equal(evlog_iter_next(it, &rec), MMO_OK);
	assert_int_equal(len, rec.raw_len);
	assert_memory_equal(buf, rec.raw, len);
	evlog_iter_close(it);

	size_t len2 = 999;
	assert_int_equal(evlog_get(f->l, 4, buf, len - 1, &len2), MMO_ETOOBIG);
	assert_int_equal(len2, 999);
	assert_int_equal(evlog_get(f->l, 4, buf, len, &len2), MMO_OK);
	assert_int_equal(evlog_get(f->l, 7, buf, sizeof(buf), &len2), MMO_ENOTFOUND);
	assert_int_equal(evlog_get(f->l, 0, buf, sizeof(buf), &len2), MMO_ENOTFOUND);

	assert_int_equal(evlog_find_id(f->l, "gf-5", &seq), MMO_OK);
	assert_int_equal(seq, 5);
	seq = 777;
	assert_int_equal(evlog_find_id(f->l, "gf-7", &seq), MMO_ENOTFOUND);
	assert_int_equal(seq, 777);
	assert_int_equal(evlog_find_id(f->l, "bad id", &seq), MMO_EBADID);
	assert_int_equal(evlog_find_id(f->l, "", &seq), MMO_EBADID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(append_then_iterate_returns_identical_records),
	    T(rec_decode_fills_seq_and_ts_from_the_record),
	    T(batch_refuses_each_bad_event_with_its_code_and_appends_the_good),
	    T(batch_of_only_bad_events_commits_nothing),
	    T(same_bytes_again_return_the_original_seq_as_duplicate),
	    T(same_id_with_other_bytes_is_a_conflict),
	    T(duplicates_inside_one_batch_get_the_first_seq),
	    T(idempotency_and_chain_survive_close_and_reopen),
	    T(verify_passes_on_a_good_log),
	    T(verify_on_an_empty_log_passes),
	    T(flipped_byte_via_lmdb_is_found_at_its_seq),
	    T(altered_timestamp_is_found_at_its_seq),
	    T(flipped_byte_in_the_data_file_is_found_at_its_seq),
	    T(deleted_record_is_reported_missing_at_its_seq),
	    T(deleted_last_record_is_reported_missing_at_its_seq),
	    T(undecodable_event_with_a_valid_hash_is_found_without_index_check),
	    T(emptied_events_table_is_reported_missing_from_seq_1),
	    T(swapped_records_are_found_at_the_first),
	    T(deleted_player_index_entry_is_found),
	    T(deleted_type_index_entry_is_found),
	    T(deleted_region_index_entry_is_found),
	    T(unreadable_index_is_rebuilt_from_seq_1),
	    T(deleted_id_entry_is_found),
	    T(stray_index_entry_is_found_by_count),
	    T(stray_id_entry_is_found_by_count),
	    T(anchor_verifies_a_sub_range),
	    T(newer_format_is_refused_naming_both_versions),
	    T(corrupt_format_record_is_refused),
	    T(open_refuses_bad_arguments_and_missing_folders),
	    T(full_map_refuses_the_batch_and_keeps_the_log_intact),
	    T(readonly_reader_sees_new_commits_of_the_writer),
	    T(iterator_is_a_snapshot_taken_at_open),
	    T(index_iterators_return_exactly_the_expected_seqs),
	    T(time_iterator_returns_the_events_in_the_window),
	    T(get_and_find_id_return_the_stored_record),
#undef T
	};

	if (getenv("TEST_FILTER")) /* run some cases only: TEST_FILTER='*read*' */
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
