/* mmo_time.h - the one parser and formatter of timestamps (µs since the
 * epoch, UTC), used by the gateway's queries and the auditors' flags. */
#ifndef MMO_TIME_H
#define MMO_TIME_H

#include <stddef.h>
#include <stdint.h>

#define MMO_TIME_LEN 27 /* "2026-11-23T21:10:01.123456Z" without its NUL */

/* Parse s into µs since the epoch. Accepted, strictly:
 *   - RFC 3339 YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM); 'T' may be 't' or
 *     a space, 'Z' may be 'z'; frac is 1 or more digits (past 6 truncated);
 *     seconds 00..60, a valid calendar date, an offset at most 23:59;
 *   - a date alone YYYY-MM-DD: its midnight UTC;
 *   - 1 to 15 digits: epoch milliseconds.
 * The instant must fall in 1970-01-01T00:00:00Z..9999-12-31T23:59:60Z.
 * MMO_OK with *us written, or MMO_EINVAL (s NULL, empty or anything else;
 * *us untouched). */
int mmo_time_parse(const char *s, int64_t *us);

/* Format us as "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" into buf (cap bytes, NUL
 * included). A negative us is written "-". Returns the length written
 * (without the NUL), or 0 when it does not fit (buf is then "" if cap > 0). */
size_t mmo_time_format(int64_t us, char *buf, size_t cap);

#endif
