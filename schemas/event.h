/* event.h - the event model: types, priorities, validation, encoding.
 *
 * The wire and disk form of an event is the protobuf message mmo.Event
 * (schemas/event.proto, compiled by protoc-c into event.pb-c.h). This header
 * adds what every module needs around it: the table of known types, the
 * validation rules, bounded encode/decode, a builder that keeps an event and
 * its body in one struct without heap allocation, and a JSON rendering.
 *
 * This is the only module every other module includes.
 */
#ifndef MMO_EVENT_H
#define MMO_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schemas/event.pb-c.h"
#include "schemas/mmo_err.h"

#define MMO_ID_MAX 64                /* max bytes of any id (event, player, region, ...) */
#define MMO_TEXT_MAX 256             /* max bytes of free text fields (reason, detail) */
#define MMO_RECORD_MAX (64 * 1024)   /* max encoded size of one event */

enum mmo_priority {
	MMO_PRIO_CRITICAL = 1, /* auth, security */
	MMO_PRIO_HIGH = 2,     /* combat */
	MMO_PRIO_MEDIUM = 3,   /* movement, chat, world updates */
	MMO_PRIO_LOW = 4,      /* statistics */
};

struct mmo_type_info {
	const char *name;           /* "player.move" */
	Mmo__Event__BodyCase body;  /* the body this type carries */
	unsigned priority;          /* default priority */
	bool needs_player;          /* player_id is required */
};

/* The known types, in a fixed order. Returns NULL for an unknown name.
 * The returned pointer is static. */
const struct mmo_type_info *mmo_type_lookup(const char *name);
size_t mmo_type_count(void);
const struct mmo_type_info *mmo_type_at(size_t i);

/* Is id 1..MMO_ID_MAX bytes of [A-Za-z0-9_.:-]? NULL is not valid. */
bool mmo_id_valid(const char *id);

/* The effective priority of ev: its own if set (1..4), else its type's
 * default, else MMO_PRIO_MEDIUM. */
unsigned mmo_event_priority(const Mmo__Event *ev);

/* Check ev against the model. Returns MMO_OK or the first problem found:
 *   MMO_EMISSING   event_id, type, body, or player_id where the type needs it
 *                  (and the body's own required ids, e.g. defender_id)
 *   MMO_EBADID     an id (event, player, region, cause-related ids in the
 *                  body) not matching mmo_id_valid(); optional ids may be ""
 *   MMO_EBADTYPE   unknown type, or a body case that does not match the type
 *   MMO_ENONFINITE a NaN or infinite double anywhere in the body
 *   MMO_EPRIORITY  priority not 0..4
 *   MMO_ETOOBIG    a text field over MMO_TEXT_MAX, or the encoded size over
 *                  MMO_RECORD_MAX
 * If field is not NULL, *field is set to a static string naming the field at
 * fault ("event_id", "player_move.position.x", ...) on failure. */
int mmo_event_validate(const Mmo__Event *ev, const char **field);

/* Decode len bytes into a newly allocated event. Fails with MMO_ETOOBIG if
 * len > MMO_RECORD_MAX, MMO_EMALFORMED if the bytes do not decode. Does not
 * validate. On success the caller owns *out and frees it with
 * mmo_event_free(); on failure *out is untouched. */
int mmo_event_decode(const uint8_t *buf, size_t len, Mmo__Event **out);
void mmo_event_free(Mmo__Event *ev);

/* Encode ev into buf (cap bytes). MMO_ETOOBIG if the encoding is larger than
 * cap or MMO_RECORD_MAX; *len is written only on success. */
int mmo_event_encode(const Mmo__Event *ev, uint8_t *buf, size_t cap, size_t *len);

/* A builder: an envelope with storage for every body, so an event can be
 * made on the stack without allocation. Strings are borrowed: they must
 * outlive every use of the builder. */
struct mmo_ev {
	Mmo__Event ev;
	Mmo__Vec3 pos;
	union {
		Mmo__PlayerRegister player_register;
		Mmo__PlayerLogin player_login;
		Mmo__PlayerLogout player_logout;
		Mmo__PlayerMove player_move;
		Mmo__CombatAttack combat_attack;
		Mmo__CombatDefend combat_defend;
		Mmo__CombatResult combat_result;
		Mmo__WorldSpawn world_spawn;
		Mmo__WorldDespawn world_despawn;
		Mmo__WorldUpdate world_update;
		Mmo__WorldReject world_reject;
		Mmo__SecurityEvent security;
		Mmo__AdminAction admin_action;
		Mmo__StatsUpdate stats_update;
	} body;
};

/* Start an event of a known type: envelope fields set, body of the type's
 * case initialised to its defaults and linked, priority left 0 (default).
 * player_id and region_id may be NULL (stored as ""). For bodies with a
 * position (player.move, world.spawn, world.update) the position is linked
 * to b->pos. Returns MMO_EBADTYPE for an unknown type. */
int mmo_ev_init(struct mmo_ev *b, const char *type, const char *event_id,
                const char *player_id, const char *region_id);

/* Set b->pos (the body's position, where the body has one). */
void mmo_ev_set_pos(struct mmo_ev *b, double x, double y, double z);

#endif
