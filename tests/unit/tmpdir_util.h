/* tmpdir_util.h — a per-group temporary directory for unit tests that work on files:
 * tmpdir_setup makes /tmp/provium-test-<name>-XXXXXX (name from tmpdir_name), and
 * tmpdir_teardown removes it with everything in it. Include once per test file. */
#ifndef PROVIUM_TMPDIR_UTIL_H
#define PROVIUM_TMPDIR_UTIL_H

#include <stdio.h>
#include <stdlib.h>

static char dir[64];
static const char *tmpdir_name = "unit";

static int tmpdir_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/provium-test-%s-XXXXXX", tmpdir_name);
	return mkdtemp(dir) ? 0 : -1;
}

static int tmpdir_teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
