/* replay.c - `mmo replay` (being built: see the world issue). */
#include <stdio.h>

#include "cli.h"

int cmd_replay(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_err("replay", "not part of this build yet");
	return EXIT_FAIL;
}
