/* cmd_run.c — `provium run`. Placeholder until its issue lands. */
#include "runner/commands.h"

#include <stdio.h>

int cmd_run(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "provium run: not built yet\n");
	return 3;
}
