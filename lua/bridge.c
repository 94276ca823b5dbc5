/* bridge.c — the C half of Bridge (lua/bridge.lua): Linux bridges in the run's
 * network namespace (runner/netns.h, runner/bridge.h). Exposed as provium._c_net:
 *   bridge_add(ifname) -> true, or false when the name is taken (another file of the
 *     run has it: the caller tries the next index);
 *   link_del(ifname); addr_add(ifname, cidr); run_name() -> "provium-..." or "". */
#include "lua/errors.h"
#include "runner/bridge.h"
#include "runner/netns.h"
#include "vmm/util.h"

#include <errno.h>

#include <lauxlib.h>
#include <lua.h>

static int runns(lua_State *L, const char *op)
{
	int fd = netns_open_run();
	if (fd < 0)
		pv_lua_error(L, "infra", op, NULL, "the run's network namespace: %s", pv_errmsg());
	return fd;
}

static int l_bridge_add(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	int fd = runns(L, "lab:bridge");
	int e = nb_bridge_add(fd, name);
	if (e == -EEXIST) {
		lua_pushboolean(L, 0);
		return 1;
	}
	if (e == 0)
		e = nb_link_set(fd, name, NULL, true, NULL);
	if (e < 0)
		return pv_lua_error(L, "infra", "lab:bridge", NULL, "%s", pv_errmsg());
	lua_pushboolean(L, 1);
	return 1;
}

static int l_link_del(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	int fd = runns(L, "bridge teardown");
	lua_pushboolean(L, nb_link_del(fd, name) == 0);
	return 1;
}

static int l_addr_add(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1), *cidr = luaL_checkstring(L, 2);
	if (nb_addr_add(runns(L, "bridge"), name, cidr) < 0)
		return pv_lua_error(L, "infra", "bridge", NULL, "%s", pv_errmsg());
	return 0;
}

static int l_run_name(lua_State *L)
{
	runns(L, "bridge");
	lua_pushstring(L, netns_run_name());
	return 1;
}

int pv_luaopen_bridge(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{"bridge_add", l_bridge_add}, {"link_del", l_link_del},
		{"addr_add", l_addr_add}, {"run_name", l_run_name}, {NULL, NULL},
	};
	lua_getglobal(L, "provium");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "_c_net");
	lua_pop(L, 1);
	return 0;
}
