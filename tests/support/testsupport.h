/* testsupport.h - what integration tests share: free ports, temporary
 * folders, child processes with a time bound. */
#ifndef MMO_TESTSUPPORT_H
#define MMO_TESTSUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A TCP port on 127.0.0.1 that was free a moment ago (bind to 0). */
int ts_free_port(void);

/* Make a fresh temporary folder; path receives it (cap bytes). 0 on success. */
int ts_tmpdir(char *path, size_t cap);

/* Remove a folder and everything in it. */
void ts_rmrf(const char *path);

/* Start argv[0] (a path) with stdout and stderr appended to logfile. Returns
 * the pid, or -1. The child is killed with SIGKILL if the test process dies. */
pid_t ts_spawn(char *const argv[], const char *logfile);

/* Wait until logfile contains needle, up to timeout_ms. true if found. */
bool ts_wait_log(const char *logfile, const char *needle, int timeout_ms);

/* Send sig to pid and wait for it, up to timeout_ms (then SIGKILL). Returns
 * the exit status as from waitpid, or -1. */
int ts_stop(pid_t pid, int sig, int timeout_ms);

/* Path of the mmo binary under test (MMO_BIN, or ../mmo next to the test). */
const char *ts_mmo_bin(void);

/* Start redis-server on a free port with its data in dir; *port receives the
 * port. Returns the pid or -1 (redis-server missing is -1 too). */
pid_t ts_redis_start(const char *dir, int *port, const char *extra_conf);

#endif
