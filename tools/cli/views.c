/* views.c - `mmo dlq` and `mmo views` (being built: see the views issue). */
#include <stdio.h>

#include "cli.h"

int cmd_dlq(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_err("dlq", "not part of this build yet");
	return EXIT_FAIL;
}

int cmd_views(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_err("views", "not part of this build yet");
	return EXIT_FAIL;
}
