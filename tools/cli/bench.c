/* bench.c - `mmo bench`: placeholder until the log benchmark lands. */
#include <stdio.h>

#include "cli.h"

int cmd_bench(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_err("bench", "no benchmark is built yet");
	return EXIT_FAIL;
}
