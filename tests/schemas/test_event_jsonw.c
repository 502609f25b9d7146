/* test_event_jsonw.c - the fast JSON writer produces exactly the bytes of
 * json_dumps(mmo_event_to_json(ev), JSON_COMPACT), on generated events full
 * of escapes, control characters, valid and invalid UTF-8, NULL strings,
 * non-finite and extreme numbers, for every body type. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "schemas/event_json.h"

/* clang-format off */
static unsigned long long rs = 88172645463325252ull;
static unsigned rnd(void){ rs ^= rs<<13; rs ^= rs>>7; rs ^= rs<<17; return (unsigned)(rs>>11); }
static char *rstr(void){
	static const char *pieces[] = {"a","Z","0"," ","\"","\\","/","\n","\t","\r","\b","\f","\x01","\x1b","\x1f","\x7f",
	"\xc3\xa9","\xe2\x82\xac","\xf0\x9f\x98\x80","\xff","\xc0\x80","\xed\xa0\x80","\xe0\x80\x80","\xf4\x90\x80\x80","\xc3","\xe2\x82","\x80","\xef\xbf\xbd","\xf5", "player-1", "region_a", "\xf0\x9f"};
	int n = rnd()%8; char *s = calloc(1, 64*8+1);
	if (rnd()%5==0) { if (rnd()%2) { free(s); return NULL;} return s; }
	for (int i=0;i<n;i++) strcat(s, pieces[rnd()%(sizeof(pieces)/sizeof(*pieces))]);
	return s;
}
static double rdbl(void){
	switch (rnd()%12){case 0:return NAN;case 1:return INFINITY;case 2:return -INFINITY;case 3:return -0.0;case 4:return 1e300;case 5:return 1e-300;case 6:return 5e-324;case 7:return (double)(rnd()%1000);case 8:return 123456789012345678.0;default:return ((double)rnd()/7.0-1e5)*pow(10,(int)(rnd()%40)-20);}
}
static void fill(const ProtobufCMessageDescriptor *d, void *msg, int depth){
	for (size_t i=0;i<d->n_fields;i++){const ProtobufCFieldDescriptor*f=&d->fields[i]; char*p=(char*)msg+f->offset;
		if (f->label==PROTOBUF_C_LABEL_REPEATED||(f->flags&PROTOBUF_C_FIELD_FLAG_ONEOF)) continue;
		switch(f->type){
		case PROTOBUF_C_TYPE_STRING: *(char**)p=rstr(); break;
		case PROTOBUF_C_TYPE_DOUBLE: *(double*)p=rdbl(); break;
		case PROTOBUF_C_TYPE_FLOAT: *(float*)p=(float)rdbl(); break;
		case PROTOBUF_C_TYPE_BOOL: *(protobuf_c_boolean*)p=rnd()%2; break;
		case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_ENUM: *(int32_t*)p=(int32_t)rnd(); break;
		case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: *(uint32_t*)p=rnd()%3?rnd():0xffffffffu; break;
		case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64: *(int64_t*)p=rnd()%4?(int64_t)(((uint64_t)rnd()<<40)^rnd()):(rnd()%2?INT64_MIN:INT64_MAX); break;
		case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: *(uint64_t*)p=rnd()%4?(((uint64_t)rnd()<<40)^rnd()):UINT64_MAX; break;
		case PROTOBUF_C_TYPE_MESSAGE: if (depth<3 && rnd()%4){void*s=calloc(1,((const ProtobufCMessageDescriptor*)f->descriptor)->sizeof_message); protobuf_c_message_init(f->descriptor,s); fill(f->descriptor,s,depth+1); *(void**)p=s;} break;
		default: break;}}
}
/* clang-format on */

static void free_msg(const ProtobufCMessageDescriptor *d, void *msg)
{
	for (size_t i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char *p = (char *)msg + f->offset;

		if (f->label == PROTOBUF_C_LABEL_REPEATED || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
			continue;
		if (f->type == PROTOBUF_C_TYPE_STRING)
			free(*(char **)p);
		else if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(void **)p) {
			free_msg(f->descriptor, *(void **)p);
			free(*(void **)p);
		}
		if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
			*(void **)p = NULL;
	}
}

static void writer_matches_jansson_byte_for_byte(void **state)
{
	long bad = 0, n = 20000;
	char *buf = NULL;
	size_t cap = 0;

	(void)state;
	for (long k = 0; k < n; k++) {
		Mmo__Event ev = MMO__EVENT__INIT;
		const ProtobufCMessageDescriptor *ed = &mmo__event__descriptor;
		const ProtobufCFieldDescriptor *f;
		json_t *j;
		char *ref;
		long len;

		ev.event_id = rstr();
		ev.type = rstr();
		ev.player_id = rstr();
		ev.region_id = rstr();
		ev.seq = rnd() % 5 ? rnd() : UINT64_MAX;
		ev.ts = (int64_t)(((uint64_t)rnd() << 30) ^ rnd());
		ev.priority = rnd() % 6;
		ev.cause_seq = rnd() % 2 ? rnd() : 0;
		f = &ed->fields[rnd() % ed->n_fields];
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && f->type == PROTOBUF_C_TYPE_MESSAGE &&
		    rnd() % 10) {
			const ProtobufCMessageDescriptor *bd = f->descriptor;
			void *s = calloc(1, bd->sizeof_message);

			protobuf_c_message_init(bd, s);
			fill(bd, s, 0);
			*(void **)((char *)&ev + f->offset) = s;
			*(uint32_t *)((char *)&ev + f->quantifier_offset) = f->id;
		}
		j = mmo_event_to_json(&ev);
		assert_non_null(j);
		ref = json_dumps(j, JSON_COMPACT);
		assert_non_null(ref);
		len = mmo_event_json_write(&ev, &buf, &cap);
		if (len != (long)strlen(ref) || memcmp(buf, ref, (size_t)len) != 0) {
			if (bad++ < 3)
				print_message("mismatch\n ref=%s\n got=%.*s\n", ref, (int)len, buf);
		}
		free(ref);
		json_decref(j);
		if (ev.body_case != MMO__EVENT__BODY__NOT_SET) {
			const ProtobufCFieldDescriptor *bf =
			    protobuf_c_message_descriptor_get_field(ed, ev.body_case);
			void **body = (void **)((char *)&ev + bf->offset);

			free_msg(bf->descriptor, *body);
			free(*body);
		}
		free_msg(ed, &ev);
	}
	free(buf);
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(writer_matches_jansson_byte_for_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
