/* bench_util.h - what the benchmarks (bench*.c) share. */
#ifndef MMO_BENCH_UTIL_H
#define MMO_BENCH_UTIL_H

#include <stdbool.h>
#include <stdint.h>

void bench_sleep_us(int64_t us);

/* A TCP port on 127.0.0.1 that was free a moment ago, 0 on failure. */
unsigned bench_free_port(void);

/* Remove a folder and everything in it (best effort). */
void bench_rm_tree(const char *dir);

/* The median of n values (0 for none); v is not changed. */
double bench_median(const double *v, unsigned n);

/* Parse --opt's value s as a number in lo..hi; on failure print one line
 * "mmo <cmd>: --opt takes a number in lo..hi, not 's'" and return false. */
bool bench_parse_num(const char *cmd, const char *opt, const char *s, uint64_t lo, uint64_t hi,
                     uint64_t *out);

/* Bytes allocated on disk to dir/name, 0 if absent. */
uint64_t bench_file_bytes(const char *dir, const char *name);

#endif
