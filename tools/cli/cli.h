/* cli.h - the `mmo` command: the subcommands main() dispatches to. Each
 * takes argv from its own name on and returns an exit code (cli_util.h). */
#ifndef MMO_CLI_H
#define MMO_CLI_H

#include "tools/cli/cli_util.h"

int cmd_serve(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_dlq(int argc, char **argv);
int cmd_views(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
