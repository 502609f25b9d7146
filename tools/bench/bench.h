/* bench.h - `mmo bench ...`: each benchmark measures mmo against its
 * physical limit and a peer in the same run and prints the ratios
 * (docs/performance.md). Each takes argv from its own name on and returns
 * an exit code (tools/cli/cli_util.h). `mmo bench` (tools/cli/cmd_bench.c)
 * dispatches to them. */
#ifndef MMO_BENCH_H
#define MMO_BENCH_H

int bench_log(int argc, char **argv);     /* bench_log.c */
int bench_replay(int argc, char **argv);  /* bench_replay.c */
int bench_audit(int argc, char **argv);   /* bench_audit.c */
int bench_gateway(int argc, char **argv); /* bench_gateway.c */
int bench_views(int argc, char **argv);   /* bench_views.c */

#endif
