/* src_root.h — the source tree for unit tests that read files from it (the golden
 * protocol frames under tests/golden/proto, agent/proto.h): the current directory
 * when it is the tree, else $PROVIUM_BUILD/.. (the build tree's parent). */
#ifndef PROVIUM_TESTS_SRC_ROOT_H
#define PROVIUM_TESTS_SRC_ROOT_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* At most 2 KiB long. */
static inline const char *src_root(void)
{
	static char root[2048];
	const char *b = getenv("PROVIUM_BUILD");

	if (access("tests/golden/proto", F_OK) == 0 || !b)
		return ".";
	snprintf(root, sizeof(root), "%s/..", b);
	return root;
}

#endif
