/* cmd_boot.c — `provium boot`. Placeholder until its issue lands. */
#include "runner/commands.h"

#include <stdio.h>

int cmd_boot(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "provium boot: not built yet\n");
	return 3;
}
