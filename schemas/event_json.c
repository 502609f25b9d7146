/* event_json.c - one flat JSON object per event (jansson).
 *
 * Body fields are rendered from the protobuf-c descriptors, under their
 * proto names: a field added to event.proto shows up here without an edit,
 * and the JSON names cannot drift from the schema.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/event_json.h"
#include "schemas/mmo_utf8.h"

/* Protobuf-c does not check that strings are UTF-8 and jansson refuses any
 * that is not: rather than drop the event, each bad byte becomes U+FFFD. */
static json_t *jstr_repaired(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s);
	json_t *j = NULL;
	char *out, *o;

	out = malloc(len * 3 + 1);
	if (!out)
		goto out;
	o = out;
	while (*p) {
		size_t n = mmo_utf8_len(p);

		if (n) {
			memcpy(o, p, n);
			o += n;
			p += n;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
		}
	}
	*o = '\0';
	j = json_string(out);
out:
	free(out);
	return j;
}

static json_t *jstr(const char *s)
{
	json_t *j;

	if (!s)
		s = "";
	j = json_string(s);
	return j ? j : jstr_repaired(s);
}

/* jansson refuses NaN and infinities; null keeps the key visible. */
static json_t *jreal(double d)
{
	return isfinite(d) ? json_real(d) : json_null();
}

/* Takes the reference to val, even on failure. */
static int put(json_t *obj, const char *key, json_t *val)
{
	if (!val || json_object_set_new(obj, key, val))
		return MMO_ENOMEM;
	return MMO_OK;
}

static int put_str(json_t *obj, const char *key, const char *s)
{
	if (!s || !*s)
		return MMO_OK;
	return put(obj, key, jstr(s));
}

static int put_message(json_t *obj, const ProtobufCMessageDescriptor *d, const void *msg);

static int put_field(json_t *obj, const ProtobufCFieldDescriptor *f, const void *msg)
{
	const char *p = (const char *)msg + f->offset;
	const ProtobufCMessage *sub;
	uint64_t u;
	json_t *o;
	int err;

	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: return put_str(obj, f->name, *(const char *const *)p);
	case PROTOBUF_C_TYPE_DOUBLE: return put(obj, f->name, jreal(*(const double *)p));
	case PROTOBUF_C_TYPE_FLOAT: return put(obj, f->name, jreal(*(const float *)p));
	case PROTOBUF_C_TYPE_BOOL:
		return put(obj, f->name, json_boolean(*(const protobuf_c_boolean *)p));
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_ENUM: return put(obj, f->name, json_integer(*(const int32_t *)p));
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: return put(obj, f->name, json_integer(*(const uint32_t *)p));
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: return put(obj, f->name, json_integer(*(const int64_t *)p));
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		/* above INT64_MAX this wraps; no counter of ours gets there */
		u = *(const uint64_t *)p;
		return put(obj, f->name, json_integer((json_int_t)u));
	case PROTOBUF_C_TYPE_MESSAGE:
		sub = *(const ProtobufCMessage *const *)p;
		if (!sub)
			return MMO_OK;
		o = json_object();
		if (!o)
			return MMO_ENOMEM;
		err = put_message(o, f->descriptor, sub);
		if (err) {
			json_decref(o);
			return err;
		}
		return put(obj, f->name, o);
	default:
		/* bytes: no body has any; leave them out rather than guess a form */
		return MMO_OK;
	}
}

/* Recursion is bounded by the schema: no message contains itself. */
static int put_message(json_t *obj, const ProtobufCMessageDescriptor *d, const void *msg)
{
	size_t i;
	int err;

	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		/* repeated and oneof fields need their count or case; bodies have none */
		if (f->label == PROTOBUF_C_LABEL_REPEATED ||
		    (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
			continue;
		err = put_field(obj, f, msg);
		if (err)
			return err;
	}
	return MMO_OK;
}

int mmo_event_body_to_json(const Mmo__Event *ev, json_t *obj)
{
	const ProtobufCFieldDescriptor *f;
	const ProtobufCMessage *body;

	if (!ev || !json_is_object(obj))
		return MMO_EINVAL;
	if (ev->body_case == MMO__EVENT__BODY__NOT_SET)
		return MMO_OK;
	/* the static descriptor, not the body's own: a hand-built body may lack it */
	f = protobuf_c_message_descriptor_get_field(&mmo__event__descriptor, ev->body_case);
	if (!f || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return MMO_OK;
	body = *(const ProtobufCMessage *const *)((const char *)ev + f->offset);
	if (!body)
		return MMO_OK;
	return put_message(obj, f->descriptor, body);
}

json_t *mmo_event_to_json(const Mmo__Event *ev)
{
	json_t *obj;

	if (!ev)
		return NULL;
	obj = json_object();
	if (!obj)
		return NULL;
	if (put(obj, "seq", json_integer((json_int_t)ev->seq)) ||
	    put(obj, "ts", json_integer(ev->ts)) || put(obj, "event_id", jstr(ev->event_id)) ||
	    put(obj, "type", jstr(ev->type)) ||
	    put(obj, "priority", json_integer(mmo_event_priority(ev))) ||
	    put_str(obj, "player_id", ev->player_id) || put_str(obj, "region_id", ev->region_id) ||
	    (ev->cause_seq && put(obj, "cause_seq", json_integer((json_int_t)ev->cause_seq))) ||
	    mmo_event_body_to_json(ev, obj)) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}
