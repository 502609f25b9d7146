/* cli_util.h - helpers every subcommand shares (tools/cli, tools/bench,
 * tools/audit): exit codes, option values, number parsing, errors. */
#ifndef MMO_CLI_UTIL_H
#define MMO_CLI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log/evlog.h"

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

/* Print "mmo <cmd>: <message>" on stderr. */
void cli_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Open DATA/log read-only into *out (the caller's, evlog_close). On
 * failure prints "mmo: cannot open the log in DIR: why" and returns the
 * error. */
int cli_open_log(const char *data, evlog **out);

/* Append an admin.action event (command, the operator, detail) to DATA/log:
 * the audit trail of operator commands that change something. Warns on
 * stderr and returns the error if it cannot (the action itself stands). */
int cli_admin_event(const char *data, const char *command, const char *detail);

#endif
