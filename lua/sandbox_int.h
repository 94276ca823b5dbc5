/* sandbox_int.h — private to lua/sandbox.c and lua/sandbox_child.c: what the parent
 * side hands the child it clones as PID 1 of a new sandbox (see sandbox.h). */
#ifndef PROVIUM_LUA_SANDBOX_INT_H
#define PROVIUM_LUA_SANDBOX_INT_H

#include "lua/sandbox.h"

#include <stdbool.h>

struct child_args {
	const struct sandbox_config *cfg;
	const char *rootfs;
	int agent_fd, con_in, con_out, errfd, errrd;
	int go_rd, go_wr;   /* userns: the parent writes a byte once the id maps are set */
	bool userns;
};

/* PID 1 of the new namespaces: sets up the private root and execs /init or the agent;
 * never returns (failures are reported on errfd, then _exit). */
void __attribute__((noreturn)) sandbox_child_main(struct child_args *a);
/* Writes "step: strerror(errno)" on errfd (which the parent reads as the error) and
 * exits. Also used by sandbox_connect's helper inside the sandbox. */
void __attribute__((noreturn)) sandbox_child_fail(int errfd, const char *step);

#endif
