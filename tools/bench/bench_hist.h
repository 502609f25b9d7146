/* bench_hist.h - latency histograms of the benchmarks (internal to
 * tools/bench): log-linear buckets in µs, fixed size, mergeable. */
#ifndef MMO_BENCH_HIST_H
#define MMO_BENCH_HIST_H

#include <stdint.h>

/* Log-linear buckets in µs: exact below 128, then 64 per power of two. */
#define HIST_SUB 64
#define HIST_N   (2 * HIST_SUB + 40 * HIST_SUB)

struct hist {
	uint64_t n, b[HIST_N];
};

/* Count one value (µs) in h. */
void bench_hist_add(struct hist *h, uint64_t v);

/* Add every count of from to to. */
void bench_hist_merge(struct hist *to, const struct hist *from);

/* The p-quantile (0..1) of h: the low edge of its bucket; 0 when empty. */
uint64_t bench_hist_pct(const struct hist *h, double p);

#endif
