/* audit_int.h - what the audit files share: hex, file hashes, the signed
 * form of a manifest. Not a public header (audit.h is). */
#ifndef MMO_AUDIT_INT_H
#define MMO_AUDIT_INT_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/audit/audit.h"

#define AUDIT_PROGRESS_EVERY (64 * 1024)
#define AUDIT_EXPORT_FORMAT  "mmo-audit-export/1"

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void audit_hex(const uint8_t *in, size_t n, char *out);
/* Decode exactly 2n hex digits; false otherwise (out may be half written). */
bool audit_unhex(const char *s, uint8_t *out, size_t n);

/* SHA-256 of a file's bytes as hex, and its size. MMO_OK, MMO_EIO (errno
 * set) or MMO_ENOMEM. */
int audit_hash_file(const char *path, char hex[65], uint64_t *size);

/* The signed bytes of a manifest: without "signature", canonical JSON
 * (sorted keys, no whitespace, ASCII). The caller frees the result; NULL
 * when out of memory. */
char *audit_canonical(json_t *manifest);

/* Write one line into msg (if not NULL) and return err. */
int audit_msg(int err, char *msg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
