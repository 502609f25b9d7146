/* fuzz_event.c - libFuzzer target for the bytes the log takes from outside:
 * decode, validate, render as JSON, and (for events that validate) encode.
 *
 * Not built by CMake; by hand, from the build tree:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I build/schemas/pb -I schemas \
 *     tests/schemas/fuzz_event.c schemas/event.c schemas/event_json.c schemas/mmo_err.c \
 *     build/schemas/pb/event.pb-c.c -lprotobuf-c -ljansson -lm -o fuzz_event
 *   ./fuzz_event -max_len=70000 tests/schemas/corpus
 * Beyond crashes it traps two broken promises: JSON rendering failing with
 * memory to spare, and a validated event that does not encode.
 */
#include <stdint.h>
#include <stdlib.h>

#include "schemas/event.h"
#include "schemas/event_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[MMO_RECORD_MAX];
	Mmo__Event *ev = NULL;
	const char *field = NULL;
	json_t *j = NULL;
	char *text = NULL;
	size_t len;

	if (mmo_event_decode(data, size, &ev))
		return 0;
	j = mmo_event_to_json(ev);
	if (!j)
		abort();
	text = json_dumps(j, JSON_COMPACT);
	if (!text)
		abort();
	if (mmo_event_validate(ev, &field) == MMO_OK &&
	    mmo_event_encode(ev, out, sizeof(out), &len) != MMO_OK)
		abort();
	free(text);
	json_decref(j);
	mmo_event_free(ev);
	return 0;
}
