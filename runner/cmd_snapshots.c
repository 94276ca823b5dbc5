/* cmd_snapshots.c — `provium snapshots`. Placeholder until its issue lands. */
#include "runner/commands.h"

#include <stdio.h>

int cmd_snapshots(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "provium snapshots: not built yet\n");
	return 3;
}
