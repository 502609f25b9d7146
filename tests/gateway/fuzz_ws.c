/* fuzz_ws.c - libFuzzer target for what gateway clients send: a WebSocket
 * message (gw_ws_parse), the guard every JSON body passes
 * (gw_json_depth_ok, then jansson with duplicate keys refused), and the
 * request heads the event loop serves itself (rest_parse_head).
 *
 * In ctest it runs through tests/support/fuzz_replay.c over tests/gateway/
 * corpus plus mutations. Coverage-guided, by hand from the build tree:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined ... (link mmo_gateway's
 *   objects, mmo_log, mmo_schemas and their libraries)
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw.h"
#include "gateway/rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_ws_msg m;
	json_t *o = NULL;

	if (gw_ws_parse((const char *)data, size, 1e6, &m) == 0) {
		/* A message it accepts holds what its op needs, valid. */
		switch (m.op) {
		case GW_WS_SUBSCRIBE:
		case GW_WS_UNSUBSCRIBE:
			if (!mmo_id_valid(m.region))
				abort();
			break;
		case GW_WS_MOVE:
			if (!mmo_id_valid(m.ref) || !isfinite(m.x) || !isfinite(m.y) ||
			    !isfinite(m.z) || fabs(m.x) > 1e6 || fabs(m.y) > 1e6 || fabs(m.z) > 1e6)
				abort();
			break;
		case GW_WS_ATTACK:
			if (!mmo_id_valid(m.ref) || !mmo_id_valid(m.defender) ||
			    !mmo_id_valid(m.skill))
				abort();
			break;
		}
	} else if (!m.code || !m.message[0]) {
		abort(); /* every refusal says why */
	}
	if (gw_json_depth_ok((const char *)data, size, GW_JSON_DEPTH_MAX))
		o = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	json_decref(o);
	{
		const char *end = memmem(data, size, "\r\n\r\n", 4);
		struct rest_head h;

		if (end && rest_parse_head((const char *)data,
		                           (size_t)(end + 4 - (const char *)data), &h)) {
			/* What it takes is bounded and one of its two routes. */
			if (h.need < h.hend || h.need - h.hend > GW_BODY_MAX ||
			    (h.route != GW_R_MOVE && h.route != GW_R_ATTACK) ||
			    (h.has_authz && strlen(h.authz) >= sizeof(h.authz)) ||
			    (h.has_ctype && strlen(h.ctype) >= sizeof(h.ctype)))
				abort();
		}
	}
	return 0;
}
