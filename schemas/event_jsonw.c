/* event_jsonw.c - an event's JSON written straight into a reused buffer.
 *
 * The fast path of event_json.c for hot loops (the Redis view publishes every
 * event): exactly the bytes of json_dumps(mmo_event_to_json(ev),
 * JSON_COMPACT) (jansson 2.x: insertion order, "%.17g" reals, \uXXXX for
 * other control characters, invalid UTF-8 bytes as U+FFFD, non-finite
 * numbers as null), without a json_t per field. It walks the same protobuf-c
 * descriptors as event_json.c; no body field shares a name with the
 * envelope, so no key is ever replaced. tests/schemas/test_event_jsonw.c
 * checks byte equality on many generated events.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/event_json.h"
#include "schemas/mmo_utf8.h"

/* The output: a malloc'd buffer grown by doubling; oom is sticky. */
struct jw {
	char *p;
	size_t len, cap;
	bool oom;
};

static bool jw_reserve(struct jw *w, size_t n)
{
	size_t c;
	char *np;

	if (w->oom)
		return false;
	if (w->len + n <= w->cap)
		return true;
	c = w->cap ? w->cap : 256;
	while (c < w->len + n)
		c *= 2;
	np = realloc(w->p, c);
	if (!np) {
		w->oom = true;
		return false;
	}
	w->p = np;
	w->cap = c;
	return true;
}

static void jw_put(struct jw *w, const char *s, size_t n)
{
	if (!jw_reserve(w, n))
		return;
	memcpy(w->p + w->len, s, n);
	w->len += n;
}

/* Length of the well-formed UTF-8 sequence (RFC 3629) at p, or 0: the rule
 * of both jansson and schemas/event_json.c. */
/* A quoted string; NULL is "". */
static void jw_str(struct jw *w, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t len = strlen((const char *)p);
	char *o;

	/* at most 6 bytes per input byte (\u00XX), plus the quotes */
	if (!jw_reserve(w, len * 6 + 2))
		return;
	o = w->p + w->len;
	*o++ = '"';
	while (*p) {
		unsigned char ch = *p;

		if (ch >= 0x20 && ch < 0x80 && ch != '"' && ch != '\\') {
			*o++ = (char)ch;
			p++;
			continue;
		}
		if (ch >= 0x80) {
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
			continue;
		}
		*o++ = '\\';
		switch (ch) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			memcpy(o, "u00", 3);
			o[3] = hex[ch >> 4];
			o[4] = hex[ch & 15];
			o += 5;
			break;
		}
		p++;
	}
	*o++ = '"';
	w->len = (size_t)(o - w->p);
}

static void jw_int(struct jw *w, long long v)
{
	char tmp[24], *e = tmp + sizeof(tmp), *q = e;
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;

	do {
		*--q = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--q = '-';
	jw_put(w, q, (size_t)(e - q));
}

/* jansson's jsonp_dtostr with the default precision. */
static void jw_real(struct jw *w, double d)
{
	char b[64], *start, *end;
	int r;
	size_t n;

	if (!isfinite(d)) {
		jw_put(w, "null", 4);
		return;
	}
	r = snprintf(b, sizeof(b) - 3, "%.17g", d);
	if (r < 0 || (size_t)r >= sizeof(b) - 3) {
		w->oom = true;
		return;
	}
	n = (size_t)r;
	for (size_t i = 0; i < n; i++) {
		if (b[i] == ',')
			b[i] = '.'; /* a locale's decimal point, as jansson's from_locale */
	}
	if (!memchr(b, '.', n) && !memchr(b, 'e', n)) {
		b[n++] = '.';
		b[n++] = '0';
		b[n] = '\0';
	}
	start = memchr(b, 'e', n);
	if (start) {
		start++;
		end = start + 1;
		if (*start == '-')
			start++;
		while (*end == '0')
			end++;
		if (end != start) {
			memmove(start, end, n - (size_t)(end - b) + 1);
			n -= (size_t)(end - start);
		}
	}
	jw_put(w, b, n);
}

static void jw_key(struct jw *w, bool *first, const char *k)
{
	if (!*first)
		jw_put(w, ",", 1);
	*first = false;
	jw_str(w, k);
	jw_put(w, ":", 1);
}

static void jw_message(struct jw *w, bool *first, const ProtobufCMessageDescriptor *d,
                       const void *msg);

static void jw_field(struct jw *w, bool *first, const ProtobufCFieldDescriptor *f, const void *msg)
{
	const char *p = (const char *)msg + f->offset;
	const ProtobufCMessage *sub;
	const char *s;
	bool sfirst = true;

	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		s = *(const char *const *)p;
		if (!s || !*s)
			return;
		jw_key(w, first, f->name);
		jw_str(w, s);
		return;
	case PROTOBUF_C_TYPE_DOUBLE:
		jw_key(w, first, f->name);
		jw_real(w, *(const double *)p);
		return;
	case PROTOBUF_C_TYPE_FLOAT:
		jw_key(w, first, f->name);
		jw_real(w, *(const float *)p);
		return;
	case PROTOBUF_C_TYPE_BOOL:
		jw_key(w, first, f->name);
		if (*(const protobuf_c_boolean *)p)
			jw_put(w, "true", 4);
		else
			jw_put(w, "false", 5);
		return;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		jw_key(w, first, f->name);
		jw_int(w, *(const int32_t *)p);
		return;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		jw_key(w, first, f->name);
		jw_int(w, *(const uint32_t *)p);
		return;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		jw_key(w, first, f->name);
		jw_int(w, *(const int64_t *)p);
		return;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		jw_key(w, first, f->name);
		jw_int(w, (long long)*(const uint64_t *)p);
		return;
	case PROTOBUF_C_TYPE_MESSAGE:
		sub = *(const ProtobufCMessage *const *)p;
		if (!sub)
			return;
		jw_key(w, first, f->name);
		jw_put(w, "{", 1);
		jw_message(w, &sfirst, f->descriptor, sub);
		jw_put(w, "}", 1);
		return;
	default: return; /* bytes: left out, as schemas/event_json.c */
	}
}

static void jw_message(struct jw *w, bool *first, const ProtobufCMessageDescriptor *d,
                       const void *msg)
{
	for (size_t i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->label == PROTOBUF_C_LABEL_REPEATED ||
		    (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
			continue;
		jw_field(w, first, f, msg);
	}
}

static void jw_event(struct jw *w, const Mmo__Event *ev)
{
	const ProtobufCFieldDescriptor *f;
	const ProtobufCMessage *body;
	bool first = true;

	jw_put(w, "{", 1);
	jw_key(w, &first, "seq");
	jw_int(w, (long long)ev->seq);
	jw_key(w, &first, "ts");
	jw_int(w, (long long)ev->ts);
	jw_key(w, &first, "event_id");
	jw_str(w, ev->event_id);
	jw_key(w, &first, "type");
	jw_str(w, ev->type);
	jw_key(w, &first, "priority");
	jw_int(w, (long long)mmo_event_priority(ev));
	if (ev->player_id && *ev->player_id) {
		jw_key(w, &first, "player_id");
		jw_str(w, ev->player_id);
	}
	if (ev->region_id && *ev->region_id) {
		jw_key(w, &first, "region_id");
		jw_str(w, ev->region_id);
	}
	if (ev->cause_seq) {
		jw_key(w, &first, "cause_seq");
		jw_int(w, (long long)ev->cause_seq);
	}
	if (ev->body_case != MMO__EVENT__BODY__NOT_SET) {
		f = protobuf_c_message_descriptor_get_field(&mmo__event__descriptor, ev->body_case);
		if (f && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    f->type == PROTOBUF_C_TYPE_MESSAGE) {
			body = *(const ProtobufCMessage *const *)((const char *)ev + f->offset);
			if (body)
				jw_message(w, &first, f->descriptor, body);
		}
	}
	jw_put(w, "}", 1);
}

long mmo_event_json_write(const Mmo__Event *ev, char **buf, size_t *cap)
{
	struct jw w = {*buf, 0, *cap, false};

	jw_event(&w, ev);
	*buf = w.p;
	*cap = w.cap;
	return w.oom ? -1 : (long)w.len;
}
