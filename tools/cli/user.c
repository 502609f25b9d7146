/* user.c - `mmo user` (being built: see the gateway issue). */
#include <stdio.h>

#include "cli.h"

int cmd_user(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_err("user", "not part of this build yet");
	return EXIT_FAIL;
}
