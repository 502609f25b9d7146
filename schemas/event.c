/* event.c - the event model: known types, validation, bounded encode/decode
 * and the allocation-free builder. The contract is in event.h. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "schemas/event.h"

/* clang-format off */
static const struct mmo_type_info types[] = {
	{"player.register", MMO__EVENT__BODY_PLAYER_REGISTER, MMO_PRIO_CRITICAL, true},
	{"player.login", MMO__EVENT__BODY_PLAYER_LOGIN, MMO_PRIO_CRITICAL, true},
	{"player.logout", MMO__EVENT__BODY_PLAYER_LOGOUT, MMO_PRIO_CRITICAL, true},
	{"player.move", MMO__EVENT__BODY_PLAYER_MOVE, MMO_PRIO_MEDIUM, true},
	{"combat.attack", MMO__EVENT__BODY_COMBAT_ATTACK, MMO_PRIO_HIGH, true},
	{"combat.defend", MMO__EVENT__BODY_COMBAT_DEFEND, MMO_PRIO_HIGH, true},
	/* player_id is the attacker: a player's history then shows its outcomes */
	{"combat.result", MMO__EVENT__BODY_COMBAT_RESULT, MMO_PRIO_HIGH, true},
	{"world.spawn", MMO__EVENT__BODY_WORLD_SPAWN, MMO_PRIO_MEDIUM, false},
	{"world.despawn", MMO__EVENT__BODY_WORLD_DESPAWN, MMO_PRIO_MEDIUM, false},
	{"world.update", MMO__EVENT__BODY_WORLD_UPDATE, MMO_PRIO_MEDIUM, false},
	/* the world raises this to MMO_PRIO_HIGH when it rejects an attack */
	{"world.reject", MMO__EVENT__BODY_WORLD_REJECT, MMO_PRIO_MEDIUM, false},
	{"security.login_failed", MMO__EVENT__BODY_SECURITY, MMO_PRIO_CRITICAL, false},
	{"security.token_refused", MMO__EVENT__BODY_SECURITY, MMO_PRIO_CRITICAL, false},
	{"security.forbidden", MMO__EVENT__BODY_SECURITY, MMO_PRIO_CRITICAL, false},
	{"security.rate_limited", MMO__EVENT__BODY_SECURITY, MMO_PRIO_CRITICAL, false},
	{"admin.action", MMO__EVENT__BODY_ADMIN_ACTION, MMO_PRIO_CRITICAL, false},
	{"stats.update", MMO__EVENT__BODY_STATS_UPDATE, MMO_PRIO_LOW, false},
};
/* clang-format on */

#define NTYPES (sizeof(types) / sizeof(types[0]))

/* What validate asks of one field of a body. */
enum rule {
	RULE_ID,       /* a required id */
	RULE_ID_OPT,   /* "" or an id */
	RULE_TEXT,     /* optional free text of at most MMO_TEXT_MAX bytes */
	RULE_TEXT_REQ, /* the same, but not empty */
	RULE_REASON,   /* 1..MMO_ID_MAX of [a-z_]: clients switch on it */
	RULE_RESULT,   /* "hit", "miss" or "critical" */
	RULE_POS,      /* a required position with finite coordinates */
	RULE_POS_OPT,  /* the same, but may be absent */
	RULE_FINITE,   /* a finite double */
};

struct body_rule {
	Mmo__Event__BodyCase body;
	enum rule rule;
	size_t offset;      /* of the field inside the body struct */
	const char *field;  /* reported to the caller, "combat_attack.defender_id" */
	const char *xyz[3]; /* positions only: the names of the coordinates */
};

/* clang-format off */
#define FIELD(bc, type, body, member, r) \
	{MMO__EVENT__BODY_##bc, r, offsetof(type, member), body "." #member, {NULL, NULL, NULL}}
#define POSITION(bc, type, body, r) \
	{MMO__EVENT__BODY_##bc, r, offsetof(type, position), body ".position", \
	 {body ".position.x", body ".position.y", body ".position.z"}}

/* Every string of every body has a row here, in proto field order, so the
 * first problem reported is the first one on the wire. tests/schemas checks
 * that no string field is left without a cap. */
static const struct body_rule rules[] = {
	FIELD(PLAYER_REGISTER, Mmo__PlayerRegister, "player_register", username, RULE_TEXT),
	FIELD(PLAYER_LOGIN, Mmo__PlayerLogin, "player_login", session_id, RULE_TEXT),
	FIELD(PLAYER_LOGIN, Mmo__PlayerLogin, "player_login", username, RULE_TEXT),
	FIELD(PLAYER_LOGOUT, Mmo__PlayerLogout, "player_logout", session_id, RULE_TEXT),
	FIELD(PLAYER_LOGOUT, Mmo__PlayerLogout, "player_logout", reason, RULE_TEXT),
	POSITION(PLAYER_MOVE, Mmo__PlayerMove, "player_move", RULE_POS),
	FIELD(COMBAT_ATTACK, Mmo__CombatAttack, "combat_attack", defender_id, RULE_ID),
	FIELD(COMBAT_ATTACK, Mmo__CombatAttack, "combat_attack", skill_id, RULE_ID),
	FIELD(COMBAT_DEFEND, Mmo__CombatDefend, "combat_defend", attacker_id, RULE_ID_OPT),
	FIELD(COMBAT_DEFEND, Mmo__CombatDefend, "combat_defend", skill_id, RULE_ID_OPT),
	FIELD(COMBAT_RESULT, Mmo__CombatResult, "combat_result", attacker_id, RULE_ID),
	FIELD(COMBAT_RESULT, Mmo__CombatResult, "combat_result", defender_id, RULE_ID),
	FIELD(COMBAT_RESULT, Mmo__CombatResult, "combat_result", skill_id, RULE_ID_OPT),
	FIELD(COMBAT_RESULT, Mmo__CombatResult, "combat_result", result, RULE_RESULT),
	FIELD(WORLD_SPAWN, Mmo__WorldSpawn, "world_spawn", entity_id, RULE_ID),
	FIELD(WORLD_SPAWN, Mmo__WorldSpawn, "world_spawn", entity_type, RULE_TEXT),
	POSITION(WORLD_SPAWN, Mmo__WorldSpawn, "world_spawn", RULE_POS_OPT),
	FIELD(WORLD_DESPAWN, Mmo__WorldDespawn, "world_despawn", entity_id, RULE_ID),
	FIELD(WORLD_DESPAWN, Mmo__WorldDespawn, "world_despawn", entity_type, RULE_TEXT),
	FIELD(WORLD_DESPAWN, Mmo__WorldDespawn, "world_despawn", reason, RULE_TEXT),
	FIELD(WORLD_UPDATE, Mmo__WorldUpdate, "world_update", entity_id, RULE_ID),
	FIELD(WORLD_UPDATE, Mmo__WorldUpdate, "world_update", entity_type, RULE_TEXT),
	POSITION(WORLD_UPDATE, Mmo__WorldUpdate, "world_update", RULE_POS_OPT),
	FIELD(WORLD_UPDATE, Mmo__WorldUpdate, "world_update", from_region_id, RULE_ID_OPT),
	FIELD(WORLD_REJECT, Mmo__WorldReject, "world_reject", reason, RULE_REASON),
	FIELD(WORLD_REJECT, Mmo__WorldReject, "world_reject", detail, RULE_TEXT),
	FIELD(SECURITY, Mmo__SecurityEvent, "security", kind, RULE_TEXT_REQ),
	FIELD(SECURITY, Mmo__SecurityEvent, "security", source, RULE_TEXT),
	FIELD(SECURITY, Mmo__SecurityEvent, "security", detail, RULE_TEXT),
	FIELD(ADMIN_ACTION, Mmo__AdminAction, "admin_action", command, RULE_TEXT_REQ),
	FIELD(ADMIN_ACTION, Mmo__AdminAction, "admin_action", actor, RULE_TEXT),
	FIELD(ADMIN_ACTION, Mmo__AdminAction, "admin_action", detail, RULE_TEXT),
	FIELD(STATS_UPDATE, Mmo__StatsUpdate, "stats_update", name, RULE_TEXT_REQ),
	FIELD(STATS_UPDATE, Mmo__StatsUpdate, "stats_update", value, RULE_FINITE),
};
/* clang-format on */

#define NRULES (sizeof(rules) / sizeof(rules[0]))

const struct mmo_type_info *mmo_type_lookup(const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < NTYPES; i++) {
		if (strcmp(types[i].name, name) == 0)
			return &types[i];
	}
	return NULL;
}

size_t mmo_type_count(void)
{
	return NTYPES;
}

const struct mmo_type_info *mmo_type_at(size_t i)
{
	return i < NTYPES ? &types[i] : NULL;
}

/* Spelled out rather than isalnum(): ids must not depend on the locale. */
static bool id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == ':' || c == '-';
}

bool mmo_id_valid(const char *id)
{
	size_t n;

	if (!id)
		return false;
	/* stops at the first byte past the limit: a huge string costs no more */
	for (n = 0; id[n]; n++) {
		if (n == MMO_ID_MAX || !id_char(id[n]))
			return false;
	}
	return n > 0;
}

unsigned mmo_event_priority(const Mmo__Event *ev)
{
	const struct mmo_type_info *t;

	if (!ev)
		return MMO_PRIO_MEDIUM;
	if (ev->priority >= MMO_PRIO_CRITICAL && ev->priority <= MMO_PRIO_LOW)
		return ev->priority;
	t = mmo_type_lookup(ev->type);
	return t ? t->priority : MMO_PRIO_MEDIUM;
}

/* The descriptor of ev's body field, or NULL when body_case names no body
 * (a hand-built event may hold any number there, even an envelope field's). */
static const ProtobufCFieldDescriptor *body_field(const Mmo__Event *ev)
{
	const ProtobufCFieldDescriptor *f;

	if (ev->body_case == MMO__EVENT__BODY__NOT_SET)
		return NULL;
	f = protobuf_c_message_descriptor_get_field(&mmo__event__descriptor, ev->body_case);
	if (!f || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return NULL;
	return f;
}

static const ProtobufCMessage *member_msg(const void *msg, const ProtobufCFieldDescriptor *f)
{
	return *(const ProtobufCMessage *const *)((const char *)msg + f->offset);
}

/* protobuf-c follows each message's own descriptor when it sizes or packs,
 * so a hand-built event with a wrong or missing one would crash it. Decoded
 * events always pass; this guards events built without mmo_ev_init(). */
static bool well_formed(const Mmo__Event *ev)
{
	const ProtobufCFieldDescriptor *bf;
	const ProtobufCMessage *body;
	const ProtobufCMessageDescriptor *d;
	size_t i;

	if (ev->base.descriptor != &mmo__event__descriptor)
		return false;
	if (ev->base.n_unknown_fields && !ev->base.unknown_fields)
		return false;
	bf = body_field(ev);
	if (!bf)
		return true;
	body = member_msg(ev, bf);
	if (!body)
		return true;
	d = bf->descriptor;
	if (body->descriptor != d || (body->n_unknown_fields && !body->unknown_fields))
		return false;
	/* bodies nest one level (Vec3) and Vec3 holds no message */
	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const ProtobufCMessage *sub;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
			continue;
		sub = member_msg(body, f);
		if (sub && (sub->descriptor != f->descriptor ||
		            (sub->n_unknown_fields && !sub->unknown_fields)))
			return false;
	}
	return true;
}

static int fail(const char **bad, const char *field, int err)
{
	*bad = field;
	return err;
}

static bool empty(const char *s)
{
	return !s || !*s;
}

static int check_id(const char *s, bool required, const char *field, const char **bad)
{
	if (empty(s))
		return required ? fail(bad, field, MMO_EMISSING) : MMO_OK;
	if (!mmo_id_valid(s))
		return fail(bad, field, MMO_EBADID);
	return MMO_OK;
}

static int check_text(const char *s, bool required, const char *field, const char **bad)
{
	if (empty(s))
		return required ? fail(bad, field, MMO_EMISSING) : MMO_OK;
	if (strnlen(s, MMO_TEXT_MAX + 1) > MMO_TEXT_MAX)
		return fail(bad, field, MMO_ETOOBIG);
	return MMO_OK;
}

static bool reason_valid(const char *s)
{
	size_t n;

	for (n = 0; s[n]; n++) {
		if (n == MMO_ID_MAX || !((s[n] >= 'a' && s[n] <= 'z') || s[n] == '_'))
			return false;
	}
	return n > 0;
}

static bool result_valid(const char *s)
{
	return !strcmp(s, "hit") || !strcmp(s, "miss") || !strcmp(s, "critical");
}

static int check_pos(const struct body_rule *r, const Mmo__Vec3 *v, const char **bad)
{
	if (!v)
		return r->rule == RULE_POS ? fail(bad, r->field, MMO_EMISSING) : MMO_OK;
	if (!isfinite(v->x))
		return fail(bad, r->xyz[0], MMO_ENONFINITE);
	if (!isfinite(v->y))
		return fail(bad, r->xyz[1], MMO_ENONFINITE);
	if (!isfinite(v->z))
		return fail(bad, r->xyz[2], MMO_ENONFINITE);
	return MMO_OK;
}

static int check_rule(const struct body_rule *r, const void *body, const char **bad)
{
	const char *p = (const char *)body + r->offset;
	const char *s = NULL;

	switch (r->rule) {
	case RULE_POS:
	case RULE_POS_OPT: return check_pos(r, *(const Mmo__Vec3 *const *)p, bad);
	case RULE_FINITE:
		return isfinite(*(const double *)p) ? MMO_OK : fail(bad, r->field, MMO_ENONFINITE);
	default: break;
	}

	s = *(const char *const *)p;
	switch (r->rule) {
	case RULE_ID: return check_id(s, true, r->field, bad);
	case RULE_ID_OPT: return check_id(s, false, r->field, bad);
	case RULE_TEXT: return check_text(s, false, r->field, bad);
	case RULE_TEXT_REQ: return check_text(s, true, r->field, bad);
	case RULE_REASON:
		if (empty(s))
			return fail(bad, r->field, MMO_EMISSING);
		return reason_valid(s) ? MMO_OK : fail(bad, r->field, MMO_EINVAL);
	case RULE_RESULT:
		/* an empty result is as wrong as "kill": the world always sets it */
		return !empty(s) && result_valid(s) ? MMO_OK : fail(bad, r->field, MMO_EINVAL);
	default: return MMO_OK;
	}
}

static int check_event(const Mmo__Event *ev, const char **bad)
{
	const struct mmo_type_info *t;
	const ProtobufCMessage *body;
	size_t i;
	int err;

	if (!ev || !well_formed(ev))
		return fail(bad, "event", MMO_EINVAL);

	err = check_id(ev->event_id, true, "event_id", bad);
	if (err)
		return err;

	if (empty(ev->type))
		return fail(bad, "type", MMO_EMISSING);
	t = mmo_type_lookup(ev->type);
	if (!t)
		return fail(bad, "type", MMO_EBADTYPE);

	if (ev->body_case == MMO__EVENT__BODY__NOT_SET)
		return fail(bad, "body", MMO_EMISSING);
	if (ev->body_case != t->body)
		return fail(bad, "body", MMO_EBADTYPE);
	body = member_msg(ev, body_field(ev));
	if (!body)
		return fail(bad, "body", MMO_EMISSING);

	err = check_id(ev->player_id, t->needs_player, "player_id", bad);
	if (err)
		return err;
	err = check_id(ev->region_id, false, "region_id", bad);
	if (err)
		return err;
	/* 0 asks for the type's default */
	if (ev->priority > MMO_PRIO_LOW)
		return fail(bad, "priority", MMO_EPRIORITY);

	for (i = 0; i < NRULES; i++) {
		if (rules[i].body != ev->body_case)
			continue;
		err = check_rule(&rules[i], body, bad);
		if (err)
			return err;
	}

	/* Last: only unknown fields kept from a decoded record can get this far
	 * once every text field is capped. */
	if (protobuf_c_message_get_packed_size(&ev->base) > MMO_RECORD_MAX)
		return fail(bad, "event", MMO_ETOOBIG);
	return MMO_OK;
}

int mmo_event_validate(const Mmo__Event *ev, const char **field)
{
	const char *bad = NULL;
	int err;

	err = check_event(ev, &bad);
	if (err && field)
		*field = bad;
	return err;
}

int mmo_event_decode(const uint8_t *buf, size_t len, Mmo__Event **out)
{
	Mmo__Event *ev;

	if (!out || (!buf && len))
		return MMO_EINVAL;
	if (len > MMO_RECORD_MAX)
		return MMO_ETOOBIG;
	/* Protobuf decodes zero bytes as an all-default message, but an event
	 * has at least an id and a type: an empty record is a framing error. */
	if (len == 0)
		return MMO_EMALFORMED;
	ev = mmo__event__unpack(NULL, len, buf);
	if (!ev)
		return MMO_EMALFORMED;
	*out = ev;
	return MMO_OK;
}

void mmo_event_free(Mmo__Event *ev)
{
	if (ev)
		mmo__event__free_unpacked(ev, NULL);
}

int mmo_event_encode(const Mmo__Event *ev, uint8_t *buf, size_t cap, size_t *len)
{
	size_t need;

	if (!ev || !buf || !len || !well_formed(ev))
		return MMO_EINVAL;
	need = protobuf_c_message_get_packed_size(&ev->base);
	if (need > MMO_RECORD_MAX || need > cap)
		return MMO_ETOOBIG;
	*len = protobuf_c_message_pack(&ev->base, buf);
	return MMO_OK;
}

/* protobuf-c wants char * for strings it only reads; this is the library's
 * own empty string, which it never writes or frees either. */
static char *borrow(const char *s)
{
	return (char *)(s ? s : protobuf_c_empty_string);
}

int mmo_ev_init(struct mmo_ev *b, const char *type, const char *event_id, const char *player_id,
                const char *region_id)
{
	const struct mmo_type_info *t = mmo_type_lookup(type);

	if (!b)
		return MMO_EINVAL;
	if (!t)
		return MMO_EBADTYPE;

	memset(b, 0, sizeof(*b));
	mmo__event__init(&b->ev);
	mmo__vec3__init(&b->pos);
	b->ev.event_id = borrow(event_id);
	b->ev.type = borrow(t->name);
	b->ev.player_id = borrow(player_id);
	b->ev.region_id = borrow(region_id);

	switch (t->body) {
	case MMO__EVENT__BODY_PLAYER_REGISTER:
		mmo__player_register__init(&b->body.player_register);
		b->ev.player_register = &b->body.player_register;
		break;
	case MMO__EVENT__BODY_PLAYER_LOGIN:
		mmo__player_login__init(&b->body.player_login);
		b->ev.player_login = &b->body.player_login;
		break;
	case MMO__EVENT__BODY_PLAYER_LOGOUT:
		mmo__player_logout__init(&b->body.player_logout);
		b->ev.player_logout = &b->body.player_logout;
		break;
	case MMO__EVENT__BODY_PLAYER_MOVE:
		mmo__player_move__init(&b->body.player_move);
		b->body.player_move.position = &b->pos;
		b->ev.player_move = &b->body.player_move;
		break;
	case MMO__EVENT__BODY_COMBAT_ATTACK:
		mmo__combat_attack__init(&b->body.combat_attack);
		b->ev.combat_attack = &b->body.combat_attack;
		break;
	case MMO__EVENT__BODY_COMBAT_DEFEND:
		mmo__combat_defend__init(&b->body.combat_defend);
		b->ev.combat_defend = &b->body.combat_defend;
		break;
	case MMO__EVENT__BODY_COMBAT_RESULT:
		mmo__combat_result__init(&b->body.combat_result);
		b->ev.combat_result = &b->body.combat_result;
		break;
	case MMO__EVENT__BODY_WORLD_SPAWN:
		mmo__world_spawn__init(&b->body.world_spawn);
		b->body.world_spawn.position = &b->pos;
		b->ev.world_spawn = &b->body.world_spawn;
		break;
	case MMO__EVENT__BODY_WORLD_DESPAWN:
		mmo__world_despawn__init(&b->body.world_despawn);
		b->ev.world_despawn = &b->body.world_despawn;
		break;
	case MMO__EVENT__BODY_WORLD_UPDATE:
		mmo__world_update__init(&b->body.world_update);
		b->body.world_update.position = &b->pos;
		b->ev.world_update = &b->body.world_update;
		break;
	case MMO__EVENT__BODY_WORLD_REJECT:
		mmo__world_reject__init(&b->body.world_reject);
		b->ev.world_reject = &b->body.world_reject;
		break;
	case MMO__EVENT__BODY_SECURITY:
		mmo__security_event__init(&b->body.security);
		b->ev.security = &b->body.security;
		break;
	case MMO__EVENT__BODY_ADMIN_ACTION:
		mmo__admin_action__init(&b->body.admin_action);
		b->ev.admin_action = &b->body.admin_action;
		break;
	case MMO__EVENT__BODY_STATS_UPDATE:
		mmo__stats_update__init(&b->body.stats_update);
		b->ev.stats_update = &b->body.stats_update;
		break;
	default:
		/* every row of types[] names one of the cases above */
		return MMO_EBADTYPE;
	}
	b->ev.body_case = t->body;
	return MMO_OK;
}

void mmo_ev_set_pos(struct mmo_ev *b, double x, double y, double z)
{
	if (!b)
		return;
	b->pos.x = x;
	b->pos.y = y;
	b->pos.z = z;
}
