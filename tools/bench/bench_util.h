/* bench_util.h - what the benchmarks (bench*.c) share. */
#ifndef MMO_BENCH_UTIL_H
#define MMO_BENCH_UTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

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

/* Start redis-server (path) on a free 127.0.0.1 port with its data and log
 * (redis.out) in dir. aof: NULL for no append-only file, else the
 * appendfsync mode ("always", "no"). *pid is set as soon as the child
 * exists (signal handlers kill it) and cleared if it dies; the child dies
 * with the bench. Waits up to 10 s (or until *stop) for PING. 0, or -1 with
 * a one-line reason in why. */
int bench_redis_start(const char *path, const char *dir, const char *aof, volatile pid_t *pid,
                      volatile sig_atomic_t *stop, unsigned *port, char *why, size_t wl);

/* SIGTERM, then SIGKILL after 3 s; clears *pid. */
void bench_redis_stop(volatile pid_t *pid);

/* CPU time (user + system) of another process, µs; 0 if unknown. */
int64_t bench_pid_cpu_us(pid_t pid);

/* A number of /proc/PID/status (pid 0: this process), e.g. "VmRSS" or
 * "RssAnon" in kB, or "Threads"; 0 if unknown. */
long bench_pid_status(pid_t pid, const char *field);

#endif
