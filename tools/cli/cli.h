/* cli.h - the `mmo` command: shared helpers of the subcommands. */
#ifndef MMO_CLI_H
#define MMO_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes of every subcommand. */
#define EXIT_OK    0
#define EXIT_FAIL  1
#define EXIT_USAGE 2

/* The value of an option: the command line's if given, else the
 * environment's MMO_<NAME> (name upper-cased, '-' as '_'), else def. */
const char *cli_opt(const char *name, const char *given, const char *def);

/* Parse a size with an optional K/M/G suffix (powers of 1024). */
bool cli_parse_size(const char *s, size_t *out);

/* Parse an unsigned decimal integer (no sign, no trailing junk). */
bool cli_parse_u64(const char *s, uint64_t *out);

/* Append an admin.action event (command, the operator, detail) to DATA/log:
 * the audit trail of operator commands that change something. Warns on
 * stderr and returns the error if it cannot (the action itself stands). */
int cli_admin_event(const char *data, const char *command, const char *detail);

/* Print "mmo <cmd>: <message>" on stderr. */
void cli_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int cmd_serve(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int bench_replay(int argc, char **argv);  /* bench_replay.c */
int bench_audit(int argc, char **argv);   /* bench_audit.c */
int bench_gateway(int argc, char **argv); /* bench_gateway.c */
int bench_views(int argc, char **argv);   /* bench_views.c */
int cmd_replay(int argc, char **argv);
int cmd_dlq(int argc, char **argv);
int cmd_views(int argc, char **argv);
int cmd_user(int argc, char **argv);

#endif
