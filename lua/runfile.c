/* runfile.c — runs one test file in a forked worker (runner/worker.h). Placeholder. */
#include "runner/worker.h"

int worker_main(const struct worker_args *a)
{
	(void)a;
	return 2;
}
