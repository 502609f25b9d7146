/* api.c - the game endpoints: intents (move, attack), reads of the current
 * state (from the Redis view), and the auditors' event query.
 *
 * An intent is answered once its outcome is known: 200 with the accepted
 * result, 422 with the world's rejection reason, or 202 with its seq when
 * the outcome does not come within outcome_timeout_ms (the intent is in the
 * log and will be decided; the client may look it up later). The intent is
 * durable before the world sees it, so its outcome is fixed once decided:
 * a world in this process answers at its decision (before the outcome's
 * own commit), a remote one through the committed outcome on the bus.
 */
#include <ctype.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "schemas/event_json.h"
#include "schemas/mmo_time.h"
#include "schemas/mmo_util.h"
#include "tools/audit/audit.h"

#define REGION_PLAYERS_MAX   1000
#define EVENTS_LIMIT_DEFAULT 100
#define EVENTS_LIMIT_MAX     1000

/* ---------------------------------------------------------------- intents
 * One path for REST and WebSocket: gw_intent_from_json / _prepare validate,
 * rate-limit and encode; the intent is appended and waited for either here
 * on a civetweb worker (blocking) or on the event loop (inflight.c, no
 * thread waits); gw_intent_answer describes the answer (status + body) and
 * the transports only render it. */

static void answer(struct gw_answer *ans, int status, json_t *body, int retry_s)
{
	ans->status = status;
	ans->body = body;
	ans->retry_s = retry_s;
}

static void answer_err(struct gw_answer *ans, int status, const char *code, const char *msg,
                       int retry_s)
{
	answer(ans, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg),
	       retry_s);
}

/* Per-player rate of a priority class: true when allowed, else the 429. */
static bool limit(gw *g, const struct gw_auth *a, const char *cls, double rate,
                  struct gw_answer *ans)
{
	char key[MMO_ID_MAX + 16], msg[96];
	int64_t retry = 0;

	snprintf(key, sizeof(key), "%s:%s", cls, a->sub);
	if (gw_rl_take(g->rl_player, key, rate, 2 * rate, 1, mmo_mono_us(), &retry))
		return true;
	atomic_fetch_add(&g->m.rate_limited, 1);
	snprintf(msg, sizeof(msg), "too many %s actions; slow down", cls);
	answer_err(ans, 429, "rate_limited", msg, (int)((retry + 999999) / 1000000));
	return false;
}

static void new_event_id(char eid[MMO_ID_MAX + 1])
{
	strcpy(eid, "gw:");
	gw_random_hex(eid + 3, 12);
}

/* Encode the intent's event b into ev. */
static bool encode(const struct mmo_ev *b, struct gw_intent *in, struct gw_intent_ev *ev,
                   struct gw_answer *ans)
{
	if (mmo_event_encode(&b->ev, ev->buf, sizeof(ev->buf), &ev->len)) {
		answer_err(ans, 500, "internal", "the intent cannot be encoded", 0);
		return false;
	}
	ev->prio = mmo_event_priority(&b->ev);
	in->t0 = mmo_mono_us();
	return true;
}

bool gw_intent_move_prepare(gw *g, const struct gw_auth *a, double x, double y, double z,
                            struct gw_intent *in, struct gw_intent_ev *ev, struct gw_answer *ans)
{
	struct mmo_ev b;

	if (!limit(g, a, "movement", g->o.rate_medium, ans))
		return false;
	memset(in, 0, sizeof(*in));
	in->kind = GW_INTENT_MOVE;
	new_event_id(in->eid);
	mmo_ev_init(&b, "player.move", in->eid, a->sub, NULL);
	mmo_ev_set_pos(&b, x, y, z);
	return encode(&b, in, ev, ans);
}

bool gw_intent_attack_prepare(gw *g, const struct gw_auth *a, const char *def, const char *skill,
                              struct gw_intent *in, struct gw_intent_ev *ev, struct gw_answer *ans)
{
	struct mmo_ev b;

	if (!limit(g, a, "combat", g->o.rate_high, ans))
		return false;
	memset(in, 0, sizeof(*in));
	in->kind = GW_INTENT_ATTACK;
	new_event_id(in->eid);
	snprintf(in->defender, sizeof(in->defender), "%s", def);
	mmo_ev_init(&b, "combat.attack", in->eid, a->sub, NULL);
	b.body.combat_attack.defender_id = (char *)def;
	b.body.combat_attack.skill_id = (char *)skill;
	return encode(&b, in, ev, ans);
}

/* outcome_event_id always; outcome_seq once the outcome is committed (a
 * world in this process answers before that). */
static json_t *with_outcome(json_t *o, const struct gw_outcome *oc)
{
	if (!o)
		return NULL;
	json_object_set_new(o, "outcome_event_id", json_string(oc->event_id));
	if (oc->seq)
		json_object_set_new(o, "outcome_seq", json_integer((json_int_t)oc->seq));
	return o;
}

void gw_intent_answer(gw *g, const struct gw_intent *in, int append_rc, uint64_t seq, int wait_rc,
                      const struct gw_outcome *o, struct gw_answer *ans)
{
	const char *want = in->kind == GW_INTENT_MOVE ? "world.update" : "combat.result";

	if (append_rc) {
		gw_metrics_error(&g->m, GW_F_INTENT);
		return answer_err(ans, 503, "unavailable", "the event log is unavailable", 1);
	}
	if (wait_rc) {
		atomic_fetch_add(&g->m.outcome_timeouts, 1);
		return answer(ans, 202,
		              json_pack("{s:s,s:I,s:s}", "event_id", in->eid, "seq",
		                        (json_int_t)seq, "status", "pending"),
		              0);
	}
	mmo_hist_observe(&g->m.stage[GW_S_OUTCOME], mmo_mono_us() - in->t0);
	if (!strcmp(o->type, "world.reject"))
		return answer(ans, 422,
		              json_pack("{s:{s:s,s:s},s:s,s:I,s:s}", "error", "code",
		                        o->reason[0] ? o->reason : "rejected", "message", o->detail,
		                        "event_id", in->eid, "seq", (json_int_t)seq, "reason",
		                        o->reason),
		              0);
	if (strcmp(o->type, want))
		return answer_err(ans, 500, "internal", "unexpected outcome", 0);
	if (in->kind == GW_INTENT_MOVE)
		answer(ans, 200,
		       with_outcome(json_pack("{s:s,s:I,s:{s:f,s:f,s:f},s:s}", "event_id", in->eid,
		                              "seq", (json_int_t)seq, "position", "x", o->x, "y",
		                              o->y, "z", o->z, "region_id", o->region_id),
		                    o),
		       0);
	else
		answer(
		    ans, 200,
		    with_outcome(json_pack("{s:s,s:I,s:s,s:I,s:I,s:s}", "event_id", in->eid, "seq",
		                           (json_int_t)seq, "result", o->result, "damage",
		                           (json_int_t)o->damage, "defender_hp",
		                           (json_int_t)o->defender_hp, "defender_id", in->defender),
		                 o),
		    0);
}

size_t gw_intent_schema(enum gw_intent_kind k, double coord_max, struct gw_field *f)
{
	if (k == GW_INTENT_MOVE) {
		f[0] = (struct gw_field){"x", GW_FT_NUMBER, -coord_max, coord_max, 0, 0};
		f[1] = (struct gw_field){"y", GW_FT_NUMBER, -coord_max, coord_max, 0, 0};
		f[2] = (struct gw_field){"z", GW_FT_NUMBER, -coord_max, coord_max, 0, 0};
		return 3;
	}
	f[0] = (struct gw_field){"defender_id", GW_FT_ID, 0, 0, 0, 0};
	f[1] = (struct gw_field){"skill_id", GW_FT_ID, 0, 0, 0, 0};
	return 2;
}

bool gw_intent_from_json(gw *g, const struct gw_auth *a, enum gw_intent_kind k, json_t *body,
                         struct gw_intent *in, struct gw_intent_ev *ev, struct gw_answer *ans)
{
	struct gw_field f[3];
	struct gw_bad bad;
	size_t n = gw_intent_schema(k, g->o.coord_max, f);

	if (!gw_fields_check(body, f, n, &bad)) {
		gw_answer_err(ans, 400, 0, bad.code, bad.field, "%s", bad.message);
		return false;
	}
	if (k == GW_INTENT_MOVE)
		return gw_intent_move_prepare(g, a, json_number_value(json_object_get(body, "x")),
		                              json_number_value(json_object_get(body, "y")),
		                              json_number_value(json_object_get(body, "z")), in, ev,
		                              ans);
	return gw_intent_attack_prepare(
	    g, a, json_string_value(json_object_get(body, "defender_id")),
	    json_string_value(json_object_get(body, "skill_id")), in, ev, ans);
}

/* The blocking path (civetweb's workers): append, wait, answer. */
static void intent_run(gw *g, const struct gw_intent *in, const struct gw_intent_ev *ev,
                       struct gw_answer *ans)
{
	struct gw_outcome o;
	uint64_t seq = 0;
	int rc, wait_rc = MMO_OK;

	rc = gw_log_append_raw(g, ev->buf, ev->len, ev->prio,
	                       in->kind == GW_INTENT_MOVE ? "player.move" : "combat.attack", &seq);
	if (!rc) {
		mmo_hist_observe(&g->m.stage[GW_S_COMMIT], mmo_mono_us() - in->t0);
		wait_rc = gw_outcome_wait(g, seq, g->o.outcome_timeout_ms, &o);
	}
	gw_intent_answer(g, in, rc, seq, wait_rc, &o, ans);
}

/* POST /api/players/move and /api/combat/attack, on a civetweb worker (the
 * event loop serves the plain ones itself: rest.c). */
static int h_intent(struct gw_req *r, enum gw_intent_kind k)
{
	struct gw_answer ans = {0};
	struct gw_intent in;
	struct gw_intent_ev ev;
	struct gw_auth a;
	json_t *body;
	int rc;

	if ((rc = gw_require_auth(r, &a)) || (rc = gw_read_json(r, &body)))
		return rc;
	if (gw_intent_from_json(r->g, &a, k, body, &in, &ev, &ans))
		intent_run(r->g, &in, &ev, &ans);
	json_decref(body);
	return gw_reply_answer(r, &ans);
}

int gw_h_move(struct gw_req *r)
{
	return h_intent(r, GW_INTENT_MOVE);
}

int gw_h_attack(struct gw_req *r)
{
	return h_intent(r, GW_INTENT_ATTACK);
}

/* ---------------------------------------------------------------- state */

static const char *field(const redisReply *h, const char *name)
{
	if (!h || h->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (size_t i = 0; i + 1 < h->elements; i += 2) {
		const redisReply *k = h->element[i], *v = h->element[i + 1];

		if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
		    !strcmp(k->str, name))
			return v->str;
	}
	return NULL;
}

static json_t *num_or_null(const char *s)
{
	char *e;
	double d;

	if (!s || !*s)
		return json_null();
	d = strtod(s, &e);
	if (*e || !isfinite(d))
		return json_null();
	return json_real(d);
}

/* The REST player object from the account and the view's hash (which may
 * be absent: the views have not seen the player yet). */
static json_t *player_json(const struct gw_account *acc, const char *player_id, const redisReply *h)
{
	const char *region = field(h, "region_id"), *online = field(h, "online");
	const char *hp = field(h, "hp");
	json_t *o = json_object(), *pos;

	if (!o)
		return NULL;
	json_object_set_new(o, "player_id", json_string(player_id));
	json_object_set_new(o, "username", acc ? json_string(acc->username) : json_null());
	json_object_set_new(o, "region_id", region && *region ? json_string(region) : json_null());
	if (field(h, "x") || field(h, "y") || field(h, "z")) {
		pos = json_object();
		json_object_set_new(pos, "x", num_or_null(field(h, "x")));
		json_object_set_new(pos, "y", num_or_null(field(h, "y")));
		json_object_set_new(pos, "z", num_or_null(field(h, "z")));
	} else {
		pos = json_null();
	}
	json_object_set_new(o, "position", pos);
	if (hp && *hp) {
		char *e;
		long long v = strtoll(hp, &e, 10);

		json_object_set_new(o, "hp", *e ? json_null() : json_integer(v));
	} else {
		json_object_set_new(o, "hp", json_null());
	}
	json_object_set_new(
	    o, "online", json_boolean(online && (!strcmp(online, "1") || !strcmp(online, "true"))));
	return o;
}

int gw_h_player(struct gw_req *r)
{
	struct gw_account acc;
	struct gw_auth a;
	redisReply *h;
	json_t *o;
	int rc;

	if ((rc = gw_require_auth(r, &a)))
		return rc;
	rc = gw_accts_get_by_player(r->g->accts, r->id, &acc);
	if (rc == MMO_ENOTFOUND)
		return gw_reply_err(r, 404, "not_found", NULL, "no player %s", r->id);
	if (rc)
		return gw_reply_err(r, 500, "internal", NULL, "accounts: %s", mmo_errdesc(rc));
	sodium_memzero(acc.hash, sizeof(acc.hash));
	h = gw_redis_cmd(r->g->redis, "HGETALL mmo:player:%s", r->id);
	if (!h)
		return gw_reply_retry(r, 503, 1, "unavailable", "state unavailable (Redis)");
	o = player_json(&acc, r->id, h);
	freeReplyObject(h);
	return gw_reply_json(r, 200, o, NULL);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int gw_h_region(struct gw_req *r)
{
	struct gw_auth a;
	redisReply *set, **hs = NULL;
	const char **ids = NULL;
	size_t n = 0;
	json_t *arr;
	int rc;

	if ((rc = gw_require_auth(r, &a)))
		return rc;
	set = gw_redis_cmd(r->g->redis, "SMEMBERS mmo:region:%s:players", r->id);
	if (!set)
		return gw_reply_retry(r, 503, 1, "unavailable", "state unavailable (Redis)");
	arr = json_array();
	if (set->type == REDIS_REPLY_ARRAY && set->elements) {
		ids = calloc(set->elements, sizeof(*ids));
		hs = calloc(set->elements, sizeof(*hs));
		if (!ids || !hs) {
			rc = gw_reply_err(r, 500, "internal", NULL, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < set->elements; i++) {
			const redisReply *e = set->element[i];

			if (e->type == REDIS_REPLY_STRING && mmo_id_valid(e->str))
				ids[n++] = e->str;
		}
		qsort(ids, n, sizeof(*ids), cmp_str);
		if (n > REGION_PLAYERS_MAX)
			n = REGION_PLAYERS_MAX;
		if (gw_redis_pipe(r->g->redis, "HGETALL mmo:player:%s", ids, n, hs)) {
			rc = gw_reply_retry(r, 503, 1, "unavailable", "state unavailable (Redis)");
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			struct gw_account acc;
			bool known = gw_accts_get_by_player(r->g->accts, ids[i], &acc) == MMO_OK;

			json_array_append_new(arr, player_json(known ? &acc : NULL, ids[i], hs[i]));
			freeReplyObject(hs[i]);
			hs[i] = NULL;
		}
	}
	rc =
	    gw_reply_json(r, 200, json_pack("{s:s,s:O}", "region_id", r->id, "players", arr), NULL);
out:
	json_decref(arr);
	if (hs) {
		for (size_t i = 0; i < n; i++)
			freeReplyObject(hs[i]);
	}
	free(hs);
	free(ids);
	freeReplyObject(set);
	return rc;
}

/* ---------------------------------------------------------------- audit */

/* RFC 3339 (or a date = its midnight UTC) or epoch milliseconds -> µs. */
static bool parse_u64(const char *s, uint64_t *out)
{
	char *e;

	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 19)
		return false;
	*out = strtoull(s, &e, 10);
	return true;
}

enum qparam { Q_PLAYER, Q_TYPE, Q_REGION, Q_FROM, Q_SINCE, Q_UNTIL, Q_LIMIT, Q_COUNT };
static const char *const qnames[Q_COUNT] = {"player_id", "type",  "region_id", "from_seq",
                                            "since",     "until", "limit"};

/* Split the query string into the known parameters (decoded). */
static int parse_query(struct gw_req *r, char vals[Q_COUNT][MMO_ID_MAX + 2], bool set[Q_COUNT])
{
	const char *qs = r->ri->query_string;

	while (qs && *qs) {
		size_t len = strcspn(qs, "&"), klen;
		const char *eq = memchr(qs, '=', len);
		char key[80], val[MMO_ID_MAX * 3 + 8];
		int q;

		klen = eq ? (size_t)(eq - qs) : len;
		if (klen >= sizeof(key) || mg_url_decode(qs, (int)klen, key, sizeof(key), 1) < 0)
			return gw_reply_err(r, 400, "unknown_field", NULL,
			                    "unknown query parameter");
		for (q = 0; q < Q_COUNT && strcmp(qnames[q], key); q++)
			;
		if (q == Q_COUNT)
			return gw_reply_err(r, 400, "unknown_field", key,
			                    "unknown query parameter '%.64s'", key);
		if (set[q])
			return gw_reply_err(r, 400, "invalid_field", key, "%s given twice", key);
		size_t vlen = eq ? len - klen - 1 : 0;
		int dl = vlen < sizeof(val)
		             ? mg_url_decode(eq ? eq + 1 : "", (int)vlen, val, sizeof(val), 1)
		             : -1;
		if (dl < 0 || dl > MMO_ID_MAX || (int)strlen(val) != dl)
			return gw_reply_err(r, 400, "invalid_field", key, "%s is too long", key);
		if (dl > 0) {
			set[q] = true;
			memcpy(vals[q], val, (size_t)dl + 1);
		}
		qs += len;
		if (*qs == '&')
			qs++;
	}
	return 0;
}

int gw_h_events(struct gw_req *r)
{
	gw *g = r->g;
	char vals[Q_COUNT][MMO_ID_MAX + 2] = {{0}};
	bool set[Q_COUNT] = {0};
	struct audit_filter q = {0};
	struct audit_page page = {0};
	uint64_t limit = EVENTS_LIMIT_DEFAULT;
	struct gw_auth a;
	json_t *arr;
	int rc;

	if ((rc = gw_require_auth(r, &a)))
		return rc;
	if (strcmp(a.role, "auditor")) {
		gw_sec_note(g, "security.forbidden", gw_peer_addr(r), a.sub);
		return gw_reply_err(r, 403, "forbidden", NULL, "the auditor role is required");
	}
	if ((rc = parse_query(r, vals, set)))
		return rc;
	if (set[Q_PLAYER] && !mmo_id_valid(vals[Q_PLAYER]))
		return gw_reply_err(r, 400, "bad_id", "player_id", "player_id is not a valid id");
	if (set[Q_REGION] && !mmo_id_valid(vals[Q_REGION]))
		return gw_reply_err(r, 400, "bad_id", "region_id", "region_id is not a valid id");
	if (set[Q_TYPE] && !audit_type_filter_valid(vals[Q_TYPE]))
		return gw_reply_err(r, 400, "invalid_field", "type",
		                    "type must be a type or a prefix ending in '.'");
	if (set[Q_FROM] && !parse_u64(vals[Q_FROM], &q.from_seq))
		return gw_reply_err(r, 400, "invalid_field", "from_seq", "from_seq must be a seq");
	if (set[Q_SINCE] && !(q.since_set = mmo_time_parse(vals[Q_SINCE], &q.since_us) == MMO_OK))
		return gw_reply_err(r, 400, "invalid_field", "since",
		                    "since must be RFC 3339 or epoch milliseconds");
	if (set[Q_UNTIL] && !(q.until_set = mmo_time_parse(vals[Q_UNTIL], &q.until_us) == MMO_OK))
		return gw_reply_err(r, 400, "invalid_field", "until",
		                    "until must be RFC 3339 or epoch milliseconds");
	if (q.since_set && q.until_set && q.until_us < q.since_us)
		return gw_reply_err(r, 400, "invalid_field", "until", "until is before since");
	if (set[Q_LIMIT] &&
	    (!parse_u64(vals[Q_LIMIT], &limit) || limit < 1 || limit > EVENTS_LIMIT_MAX))
		return gw_reply_err(r, 400, "out_of_range", "limit", "limit must be 1..%d",
		                    EVENTS_LIMIT_MAX);
	if (!g->o.log)
		return gw_reply_retry(r, 503, 5, "unavailable",
		                      "audit queries need the log on this host");
	q.player = set[Q_PLAYER] ? vals[Q_PLAYER] : NULL;
	q.type = set[Q_TYPE] ? vals[Q_TYPE] : NULL;
	q.region = set[Q_REGION] ? vals[Q_REGION] : NULL;
	/* The auditors' own query and record JSON (tools/audit), one page. */
	rc = audit_query_json(g->o.log, &q, 0, limit, AUDIT_SKIP_UNDECODABLE, &arr, &page);
	if (rc == MMO_EINVAL)
		return gw_reply_err(r, 400, "invalid_field", NULL, "cannot query: %s",
		                    mmo_errdesc(rc));
	if (rc)
		return gw_reply_err(r, 500, "internal", NULL,
		                    "the log is damaged near seq %llu: %s",
		                    (unsigned long long)page.stop_seq, mmo_errdesc(rc));
	return gw_reply_json(r, 200,
	                     json_pack("{s:o,s:I,s:b}", "events", arr, "next_seq",
	                               (json_int_t)page.next_seq, "more", page.more),
	                     NULL);
}
