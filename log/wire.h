/* wire.h - framing of the ingest protocol (docs/protocol.md is the spec).
 *
 * Every request and reply starts with a 16-byte header frame:
 *   0  'M' 'L'      magic
 *   2  u8           version (1)
 *   3  u8           op: 1 append, 2 read, 3 head, 4 stats
 *   4  u32 BE       req_id, chosen by the client, echoed in the reply
 *   8  u32 BE       request: count (append: event frames; read: max records)
 *                   reply: status (0 or an mmo_err code)
 *   12 u8           request: priority 1..4 (0 = medium); reply: 0
 *   13 3 bytes      zero
 */
#ifndef MMO_WIRE_H
#define MMO_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "schemas/mmo_err.h"

#define WIRE_HDR_LEN    16
#define WIRE_VERSION    1
#define WIRE_RESULT_LEN 12  /* seq u64 BE ‖ err u32 BE */
#define WIRE_TOPIC_END  '|' /* bus topic = region_id ‖ '|' */

enum wire_op {
	WIRE_OP_APPEND = 1,
	WIRE_OP_READ = 2,
	WIRE_OP_HEAD = 3,
	WIRE_OP_STATS = 4,
};

static inline void wire_hdr_put(uint8_t *h, unsigned op, uint32_t req_id, uint32_t word,
                                unsigned prio)
{
	memset(h, 0, WIRE_HDR_LEN);
	h[0] = 'M';
	h[1] = 'L';
	h[2] = WIRE_VERSION;
	h[3] = (uint8_t)op;
	h[4] = (uint8_t)(req_id >> 24);
	h[5] = (uint8_t)(req_id >> 16);
	h[6] = (uint8_t)(req_id >> 8);
	h[7] = (uint8_t)req_id;
	h[8] = (uint8_t)(word >> 24);
	h[9] = (uint8_t)(word >> 16);
	h[10] = (uint8_t)(word >> 8);
	h[11] = (uint8_t)word;
	h[12] = (uint8_t)prio;
}

/* Parse a header. Always writes *op, *req_id, *word and *prio; returns
 * MMO_EPROTO for a wrong size, magic, version or op, and MMO_EPRIORITY for a
 * priority above 4. A priority of 0 reads as medium. *req_id is bytes 4..7
 * whenever the frame holds at least the 16 header bytes, even when the rest
 * is wrong, so that a client with several requests in flight can match the
 * error reply; it is 0 only for a frame shorter than a header. *op is 0 when
 * the magic is wrong. */
static inline int wire_hdr_get(const uint8_t *h, size_t len, unsigned *op, uint32_t *req_id,
                               uint32_t *word, unsigned *prio)
{
	*op = 0;
	*req_id = 0;
	*word = 0;
	*prio = 3;
	if (len < WIRE_HDR_LEN)
		return MMO_EPROTO;
	*req_id = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
	if (len != WIRE_HDR_LEN || h[0] != 'M' || h[1] != 'L')
		return MMO_EPROTO;
	*op = h[3];
	if (h[2] != WIRE_VERSION || h[3] < WIRE_OP_APPEND || h[3] > WIRE_OP_STATS)
		return MMO_EPROTO;
	*word = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
	if (h[12] > 4)
		return MMO_EPRIORITY;
	*prio = h[12] ? h[12] : 3;
	return MMO_OK;
}

#endif
