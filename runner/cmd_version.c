/* cmd_version.c — `provium version`. Placeholder until its issue lands. */
#include "runner/commands.h"

#include <stdio.h>

int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "provium version: not built yet\n");
	return 3;
}
