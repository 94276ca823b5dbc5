/* cmd_list.c — `provium list`. Placeholder until its issue lands. */
#include "runner/commands.h"

#include <stdio.h>

int cmd_list(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "provium list: not built yet\n");
	return 3;
}
