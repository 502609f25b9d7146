/* event_json.h - JSON rendering of events (jansson).
 *
 * One flat object per event, the form used by the WebSocket, the Redis
 * pub/sub channel and `mmo audit query --format jsonl`:
 *   {"seq","ts","event_id","type","priority","player_id","region_id",
 *    "cause_seq", ...body fields}
 * A position is rendered as "position":{"x","y","z"}. Empty optional
 * strings and zero cause_seq are omitted; seq, ts, type, priority and
 * event_id are always present.
 */
#ifndef MMO_EVENT_JSON_H
#define MMO_EVENT_JSON_H

#include <jansson.h>

#include "schemas/event.h"

/* A new JSON object for ev; the caller owns the reference. NULL only when
 * out of memory. */
json_t *mmo_event_to_json(const Mmo__Event *ev);

/* Write the bytes of json_dumps(mmo_event_to_json(ev), JSON_COMPACT) into
 * *buf, a malloc'd buffer of *cap bytes that is grown as needed (both may
 * start as NULL/0; the caller frees *buf). Returns the length (no NUL
 * terminator is added), or -1 when out of memory. No allocation per call
 * once the buffer is large enough: for hot loops. */
long mmo_event_json_write(const Mmo__Event *ev, char **buf, size_t *cap);

/* Add ev's body fields to obj (an object) without the envelope. */
int mmo_event_body_to_json(const Mmo__Event *ev, json_t *obj);

#endif
