/* cmd_repl.c — `provium repl [flags] FILE`: `provium run --interactive FILE` (which
 * implies -j1): the file's top level runs (its VMs start, its tests are registered),
 * then a Lua prompt on this terminal instead of the tests (lua/repl.lua,
 * docs/debugging.md). Every `run` flag works. */
#include "runner/commands.h"

#include <stdlib.h>
#include <string.h>

int cmd_repl(int argc, char **argv)
{
	static char flag[] = "--interactive";
	char **av = calloc((size_t)argc + 2, sizeof(char *));

	if (!av)
		return 3;
	av[0] = argv[0];
	av[1] = flag;
	memcpy(av + 2, argv + 1, (size_t)(argc - 1) * sizeof(char *));
	int code = cmd_run(argc + 1, av);
	free(av);
	return code;
}
