/* lab.c — the C pieces of the root Lab `provium` (the Lab itself is lab.lua):
 * provium.version, provium.PROTOCOL_VERSION, and provium._c_lab = {mkdtemp(prefix),
 * rm_rf(path)} for the per-file temp dir when the runner did not make one. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "agent/proto.h"
#include "lua/errors.h"
#include "runner/commands.h"

static int l_mkdtemp(lua_State *L)
{
	const char *base = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.XXXXXX", base && *base ? base : "/tmp",
		 luaL_optstring(L, 1, "provium"));
	if (!mkdtemp(path))
		return pv_lua_error(L, "infra", "tmpdir", NULL, "mkdtemp %s: %s", path, strerror(errno));
	lua_pushstring(L, path);
	return 1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static int l_rm_rf(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	if (!*path || !strcmp(path, "/"))
		return pv_lua_error(L, "invalid", "rm_rf", NULL, "refusing to remove '%s'", path);
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

int pv_luaopen_lab(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{"mkdtemp", l_mkdtemp},
		{"rm_rf", l_rm_rf},
		{NULL, NULL},
	};
	lua_getglobal(L, "provium");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "_c_lab");
	lua_pushstring(L, PROVIUM_VERSION);
	lua_setfield(L, -2, "version");
	lua_pushinteger(L, PROTOCOL_VERSION);
	lua_setfield(L, -2, "PROTOCOL_VERSION");
	lua_pop(L, 1);
	return 0;
}
