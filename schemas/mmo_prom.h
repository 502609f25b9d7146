/* mmo_prom.h - the one Prometheus text writer and latency histogram.
 *
 * A histogram is a fixed set of atomic counters updated in place by the
 * thread that sees the event (no lock); rendering reads them relaxed (each
 * value is exact, the set is not a snapshot, as a scrape expects).
 *
 * The text buffer is bounded: the caller gives the memory, and output that
 * does not fit is dropped whole (the buffer keeps only complete writes and
 * `truncated` is set; later writes are ignored).
 */
#ifndef MMO_PROM_H
#define MMO_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MMO_HIST_N 14 /* buckets of a latency histogram (last = +Inf) */

struct mmo_hist {
	_Atomic uint64_t b[MMO_HIST_N]; /* per bucket, not cumulative */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_us;
};

/* Upper bounds of the buckets in µs: 250 µs .. 2.5 s, then +Inf. */
extern const int64_t mmo_hist_bounds_us[MMO_HIST_N - 1];

/* Count one observation of us µs (negative counts as 0). Thread-safe. */
void mmo_hist_observe(struct mmo_hist *h, int64_t us);

/* The value below which q (0..1) of the observations of a bucket count vector
 * fall, in µs (the bucket's upper bound; INT64_MAX for +Inf); 0 when empty. */
int64_t mmo_hist_quantile(const uint64_t b[MMO_HIST_N], double q);

struct mmo_prom {
	char *buf; /* borrowed from the caller, always NUL-terminated */
	size_t len, cap;
	bool truncated;
};

/* Write into buf (cap bytes, the NUL included; buf borrowed for as long as p
 * is used). cap 0 makes every write a truncation. */
void mmo_prom_init(struct mmo_prom *p, char *buf, size_t cap);

/* Append formatted text, or nothing if it does not fit whole. */
void mmo_prom_printf(struct mmo_prom *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "# HELP name help\n# TYPE name type\n". */
void mmo_prom_head(struct mmo_prom *p, const char *name, const char *type, const char *help);

/* The series of h: name_bucket{labels,le="0.00025"} .. le="+Inf" (cumulative),
 * name_sum (seconds, 6 decimals) and name_count. labels is "" or one or more
 * k="v" pairs without braces. */
void mmo_prom_hist(struct mmo_prom *p, const char *name, const char *labels,
                   const struct mmo_hist *h);

#endif
