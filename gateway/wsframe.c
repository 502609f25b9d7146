/* wsframe.c - RFC 6455 framing (see wsframe.h). SHA-1 and base64 come from
 * OpenSSL: the handshake needs them and nothing else does. */
#include <openssl/evp.h>
#include <string.h>

#include "wsframe.h"

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void wsf_accept_key(const char *key, size_t klen, char out[29])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	out[0] = 0;
	if (!c)
		return;
	if (EVP_DigestInit_ex(c, EVP_sha1(), NULL) == 1 && EVP_DigestUpdate(c, key, klen) == 1 &&
	    EVP_DigestUpdate(c, GUID, sizeof(GUID) - 1) == 1 &&
	    EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen == 20)
		EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 chars + NUL */
	EVP_MD_CTX_free(c);
}

size_t wsf_header(uint8_t hdr[WSF_HDR_MAX], enum wsf_op op, uint64_t len)
{
	hdr[0] = (uint8_t)(0x80 | (unsigned)op);
	if (len < 126) {
		hdr[1] = (uint8_t)len;
		return 2;
	}
	if (len <= 0xffff) {
		hdr[1] = 126;
		hdr[2] = (uint8_t)(len >> 8);
		hdr[3] = (uint8_t)len;
		return 4;
	}
	hdr[1] = 127;
	for (int i = 0; i < 8; i++)
		hdr[2 + i] = (uint8_t)(len >> (56 - 8 * i));
	return 10;
}

enum wsf_status wsf_parse(const uint8_t *p, size_t n, struct wsf_frame *f)
{
	size_t need = 2;
	uint64_t len;
	unsigned op;

	if (n < 2)
		return WSF_NEED_MORE;
	if (p[0] & 0x70)
		return WSF_PROTOCOL; /* no extension was negotiated */
	op = p[0] & 0x0f;
	if (op != WSF_CONT && op != WSF_TEXT && op != WSF_BINARY && op != WSF_CLOSE &&
	    op != WSF_PING && op != WSF_PONG)
		return WSF_PROTOCOL;
	if (!(p[1] & 0x80))
		return WSF_PROTOCOL; /* a client must mask */
	len = p[1] & 0x7f;
	if (len == 126)
		need += 2;
	else if (len == 127)
		need += 8;
	need += 4;
	if (n < need)
		return WSF_NEED_MORE;
	if (len == 126) {
		len = (uint64_t)p[2] << 8 | p[3];
		if (len < 126)
			return WSF_PROTOCOL; /* not the shortest form */
	} else if (len == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		if (len >> 63 || len <= 0xffff)
			return WSF_PROTOCOL;
	}
	if (op >= WSF_CLOSE && (len > 125 || !(p[0] & 0x80)))
		return WSF_PROTOCOL; /* control frames: short, never fragmented */
	f->fin = p[0] & 0x80;
	f->op = (enum wsf_op)op;
	f->len = len;
	memcpy(f->mask, p + need - 4, 4);
	f->hdr_len = need;
	return WSF_OK;
}

void wsf_unmask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		p[i] ^= mask[(off + i) & 3];
}
