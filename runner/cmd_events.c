/* cmd_events.c — `provium events`. Placeholder until its issue lands. */
#include "runner/commands.h"

#include <stdio.h>

int cmd_events(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "provium events: not built yet\n");
	return 3;
}
