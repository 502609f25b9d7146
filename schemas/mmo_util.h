/* mmo_util.h - small helpers every module uses: clocks, one-line logs,
 * thread names. */
#ifndef MMO_UTIL_H
#define MMO_UTIL_H

#include <stdint.h>

/* Wall clock in µs since the epoch (event timestamps). */
int64_t mmo_now_us(void);

/* Monotonic clock in µs (latencies, timeouts). */
int64_t mmo_mono_us(void);

enum mmo_level { MMO_LOG_DEBUG, MMO_LOG_INFO, MMO_LOG_WARN, MMO_LOG_ERROR };

/* One line to stderr: "2026-11-23T21:10:01.123Z INFO  log: message".
 * Thread-safe (one write(2) per line). MMO_LOG_LEVEL=debug|info|warn|error
 * in the environment sets the threshold (default info). */
void mmo_logf(enum mmo_level lvl, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Name the calling thread (at most 15 bytes are kept), as top -H, perf and
 * gdb show it. */
void mmo_thread_name(const char *name);

#endif
