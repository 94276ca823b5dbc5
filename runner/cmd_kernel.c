/* cmd_kernel.c — `provium kernel`. Placeholder until its issue lands. */
#include "runner/commands.h"

#include <stdio.h>

int cmd_kernel(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "provium kernel: not built yet\n");
	return 3;
}
