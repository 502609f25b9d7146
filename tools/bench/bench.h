/* bench.h - `mmo bench ...`: each benchmark measures mmo against its
 * physical limit and a peer in the same run and prints the ratios
 * (docs/performance.md). Each takes argv from its own name on and returns
 * an exit code (tools/cli/cli_util.h). */
#ifndef MMO_BENCH_H
#define MMO_BENCH_H

int cmd_bench(int argc, char **argv);     /* dispatcher + `bench log` (bench_log.c) */
int bench_replay(int argc, char **argv);  /* bench_replay.c */
int bench_audit(int argc, char **argv);   /* bench_audit.c */
int bench_gateway(int argc, char **argv); /* bench_gateway.c */
int bench_views(int argc, char **argv);   /* bench_views.c */

#endif
