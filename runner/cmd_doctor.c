/* cmd_doctor.c — `provium doctor`. Placeholder until its issue lands. */
#include "runner/commands.h"

#include <stdio.h>

int cmd_doctor(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "provium doctor: not built yet\n");
	return 3;
}
