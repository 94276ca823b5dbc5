/* shell.c — provium._c_shell(fd, vmname): an interactive shell in a VM on this
 * terminal over a fresh agent connection fd (taken over and closed), runner/shell.c.
 * Returns the shell's exit status (0 when left with Ctrl-]); raises on failure.
 * vm:shell() (lua/vmlife.lua) calls it. */
#include "lua/errors.h"
#include "runner/shell.h"

#include <lauxlib.h>
#include <lua.h>
#include <unistd.h>

static int l_shell(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1);
	const char *vm = luaL_checkstring(L, 2);
	char err[512];
	int rc = pv_shell_ex(fd, vm, PV_SHELL_ESCAPE, err, sizeof(err));

	close(fd);
	if (rc < 0)
		return pv_lua_error(L, "infra", "vm:shell", vm, "%s", err);
	lua_pushinteger(L, rc);
	return 1;
}

int pv_luaopen_shell(lua_State *L)
{
	lua_getglobal(L, "provium");
	lua_pushcfunction(L, l_shell);
	lua_setfield(L, -2, "_c_shell");
	lua_pop(L, 1);
	return 0;
}
