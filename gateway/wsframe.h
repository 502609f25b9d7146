/* wsframe.h - RFC 6455 framing: the handshake's accept key, server frame
 * headers, and an incremental parser of client frames. Pure functions (no
 * I/O, no allocation), so they can be fuzzed. Internal to the gateway. */
#ifndef MMO_GW_WSFRAME_H
#define MMO_GW_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSF_HDR_MAX 14 /* a frame header: 2 + 8 (length) + 4 (mask) */

enum wsf_op {
	WSF_CONT = 0x0,
	WSF_TEXT = 0x1,
	WSF_BINARY = 0x2,
	WSF_CLOSE = 0x8,
	WSF_PING = 0x9,
	WSF_PONG = 0xA,
};

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (key is klen
 * bytes): base64(SHA-1(key ‖ GUID)), NUL-terminated in out. */
void wsf_accept_key(const char *key, size_t klen, char out[29]);

/* Write the header of an unmasked server frame (FIN set) of op and a
 * payload of len bytes into hdr; returns its length (2, 4 or 10). */
size_t wsf_header(uint8_t hdr[WSF_HDR_MAX], enum wsf_op op, uint64_t len);

/* One client frame's header, as parsed. */
struct wsf_frame {
	bool fin;
	enum wsf_op op;
	uint64_t len;    /* payload bytes */
	uint8_t mask[4]; /* client frames are always masked */
	size_t hdr_len;  /* bytes of the header */
};

enum wsf_status {
	WSF_NEED_MORE = 0, /* the header is not complete yet */
	WSF_OK = 1,        /* *f filled */
	WSF_PROTOCOL = -1, /* unmasked, reserved bits or opcode, bad control frame: close 1002 */
};

/* Parse the frame header at p (n bytes available). */
enum wsf_status wsf_parse(const uint8_t *p, size_t n, struct wsf_frame *f);

/* Unmask len payload bytes in place; off is the payload offset of p[0]
 * (for payloads unmasked in pieces). */
void wsf_unmask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t off);

#endif
