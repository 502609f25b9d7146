/* mmo_utf8.h - the one UTF-8 validator (RFC 3629: no overlong forms, no
 * surrogates U+D800..U+DFFF, nothing past U+10FFFF). */
#ifndef MMO_UTF8_H
#define MMO_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the well-formed UTF-8 sequence at p (1 for ASCII), or 0 if p
 * starts an invalid one. p must be NUL-terminated: a NUL inside a sequence
 * makes it invalid, so nothing past the terminator is read. */
size_t mmo_utf8_len(const unsigned char *p);

/* Whether the n bytes at p are all well-formed UTF-8 (a truncated sequence
 * at the end is not). NUL bytes count as valid U+0000. n 0 is valid. */
bool mmo_utf8_valid(const void *p, size_t n);

#endif
